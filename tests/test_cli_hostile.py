"""Text from outside never breaks or restyles the terminal (issue 10, defect 7).

Case text, file names, quarantine reasons, Message-IDs and subjects with rich markup (``[/]``,
``[red]``, ``[link=...]``) or control characters (ESC, bidi overrides) are printed literally. Before,
``submit "[/] bus late"`` stored the case and then exited 1 with ``MarkupError``, and ``cases list``
failed for the whole database afterwards.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pytest
from rich.console import Console

from pipeline.cli.output import SafeFormatter, plain, safe
from tests.cli_support import cli, deployment_env

HOSTILE = "[/] bus late [red]x[/red] [link=http://evil.example]click[/link] \x1b[2J\x07 \u202eevil"
SHOWN = "[/] bus late [red]x[/red] [link=http://evil.example]click[/link] \\x1b[2J\\x07 \\u202eevil"


def printed(value: str) -> str:
    out = io.StringIO()
    console = Console(file=out, width=300, color_system="truecolor", force_terminal=True, highlight=False)
    console.print(safe(value), end="")
    return out.getvalue()


def test_safe_prints_markup_literally_and_control_characters_visibly() -> None:
    assert printed(HOSTILE) == SHOWN  # no style codes at all: nothing was taken as markup
    # a trailing backslash must not escape the closing tag the CLI puts after a value
    out = io.StringIO()
    Console(file=out, highlight=False).print(f"[bold]{safe('C:' + chr(92))}[/bold] next", end="")
    assert out.getvalue() == "C:\\ next"
    assert plain("line one\nline two\ttab", keep_newlines=True) == "line one\nline two\ttab"
    assert plain("line one\r\nline two\ttab") == "line one line two tab"
    assert plain("中文 [投诉]") == "中文 [投诉]"


def test_log_lines_show_control_characters() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "bad file %s", ("a\x1b[2Jb.png",), None)
    assert SafeFormatter("%(message)s").format(record) == "bad file a\\x1b[2Jb.png"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests read whole cells back from tables. The console's width is fixed when it is
    # created, from the terminal or COLUMNS of whichever process imported it first (80 under xdist).
    from pipeline.cli import output

    monkeypatch.setattr(output.console, "width", 200)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Path:
    # SQLite: `submit` and `scan` leave their engine to the garbage collector (see test_exit_codes)
    deployment_env(monkeypatch, tmp_path / "home", None)
    assert cli(capsys, "init").code == 0
    return tmp_path / "home"


def test_submitted_text_with_markup_is_stored_listed_and_shown(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    submitted = cli(capsys, "submit", HOSTILE)
    assert submitted.code == 0, submitted  # was 1 (MarkupError) after storing the case
    assert "created" in submitted.out and "\x1b" not in submitted.out
    listed = cli(capsys, "cases", "list")
    assert listed.code == 0, listed  # was 1 for the whole database
    assert "[/] bus late [red]x[/red]" in listed.out and "\x1b" not in listed.out
    reference = next(line.split()[1] for line in listed.out.splitlines() if "[/] bus" in line)
    shown = cli(capsys, "cases", "show", reference)
    assert shown.code == 0, shown
    assert SHOWN in shown.out and "\x1b" not in shown.out


def test_a_protective_tab_does_not_become_a_live_formula(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the text normalisation strips the leading tab a cautious clerk typed; the CSV quotes what is left
    assert cli(capsys, "submit", "\t=1+1 the toilets are dirty").code == 0
    out = home / "cases.csv"
    assert cli(capsys, "cases", "export", "--format", "csv", "-o", str(out)).code == 0
    (row,) = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline=""))
    assert row["text"] in ("'=1+1 the toilets are dirty", "'\t=1+1 the toilets are dirty")


def test_file_name_and_reason_with_markup_and_escapes(home: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    box = tmp_path / "box"
    box.mkdir()
    name = "[bold red]x[reverse]\x1b[2J.png"  # a file name cannot hold "/", so no closing tag
    (box / name).write_bytes(b"not an image at all")
    run = cli(capsys, "scan", str(box / name))
    assert run.code == 3, run  # quarantined, and printed
    assert "[bold red]x[reverse]\\x1b[2J.png" in run.out and "\x1b" not in run.out
    missing = cli(capsys, "scan", str(box / "[/]\x1b]0;pwned\x07.png"))
    assert missing.code == 4, missing
    assert "[/]\\x1b]0;pwned\\x07.png" in missing.err and "\x1b" not in missing.err
    unknown = cli(capsys, "cases", "show", "[/]\x1b[2J")
    assert unknown.code == 7 and "[/]\\x1b[2J" in unknown.err


def test_message_id_and_subject_with_markup_and_escapes(home: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    eml = tmp_path / "hostile.eml"
    eml.write_bytes(
        b"From: Citizen <citizen@example.org>\r\nTo: complaints@center.example\r\n"
        b"Subject: [red]urgent[/red] \x1b[2J\r\nMessage-ID: <[/]evil@example.org>\r\n"
        b"Date: Tue, 01 Dec 2026 08:00:00 +0800\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"The lift on floor 2 has been broken for a week. [link=http://evil.example]click[/link]\r\n"
    )
    run = cli(capsys, "mail", "import", str(eml))
    assert run.code == 0, run
    assert "[/]evil" in run.out and "\x1b" not in run.out
    listed = cli(capsys, "cases", "list", "--channel", "email")
    reference = next(line.split()[1] for line in listed.out.splitlines() if "email" in line)
    shown = cli(capsys, "cases", "show", reference)
    assert shown.code == 0, shown
    assert "[link=http://evil.example]click[/link]" in shown.out and "\x1b" not in shown.out


def test_model_version_names_are_printed_literally(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "models", "promote", "[/]m-\x1b[2J")
    assert run.code != 0 and "Traceback" not in run.err
    assert "[/]m-\\x1b[2J" in run.err and "\x1b" not in run.err
