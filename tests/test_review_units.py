"""The review service's pure parts and edges: the role/department matrix, reply templates in both
languages with hostile case fields, a refused relay recording nothing, the corrections report, and
migration 0005 computing departments and review ranks for cases stored before it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import text

import storage
from pipeline import review
from pipeline.config import Settings
from pipeline.core.actor import Actor
from pipeline.core.errors import AccessDeniedError, ConfigError
from pipeline.core.model import Channel
from pipeline.mail.settings import Security, SmtpSettings
from pipeline.review.replies import fill_template, template_text
from tests.cli_support import add_case

CASE = {"assigned_department": "facilities"}
OTHER = {"assigned_department": "transport"}


@pytest.mark.parametrize(("role", "allowed"), [
    ("scanner", {"upload"}),
    ("reviewer", {"read", "queue", "correct", "edit_text", "status", "assign", "note"}),
    ("department", {"read", "status", "assign", "note", "reply"}),
    ("supervisor", set(review.ACTIONS)),
])
def test_the_role_matrix(role: str, allowed: set[str]) -> None:
    actor = Actor("x", role, "facilities")
    assert {a for a in review.ACTIONS if review.can(actor, a, CASE)} == allowed
    if role == "department":  # the same actions on another department's case: none
        assert not any(review.can(actor, a, OTHER) for a in review.ACTIONS)
        assert not review.can_assign_to(actor, "transport") and review.can_assign_to(actor, "facilities")
    else:
        assert {a for a in review.ACTIONS if review.can(actor, a, OTHER)} == allowed
    with pytest.raises(ValueError):
        Actor("x", "admin")


def test_templates_fill_in_both_languages_and_never_evaluate_case_fields(tmp_path: Path) -> None:
    case = {"reference": "2026-000042", "language": "zh", "subject": "电梯\r\nBcc: x@evil",
            "status": "new", "created_at": "2026-11-02T09:00:00+00:00", "assigned_department": "facilities",
            "fields": [{"name": "name", "value": "${reference} {0.__class__} $body"}]}
    zh = fill_template(template_text(tmp_path, "facilities", "zh"), case, "已安排维修。", language="zh")
    assert "案件编号 2026-000042" in zh and "已安排维修。" in zh and "[Case #2026-000042]" in zh
    assert "投诉受理台（设施）" in zh and "facilities" not in zh  # the department by name, not by id
    assert zh.startswith("${reference} {0.__class__} $body，")  # substituted once, as text
    en = fill_template(template_text(tmp_path, "facilities", "en"), case | {"fields": []}, "Fixed.")
    assert en.startswith("Dear citizen,") and "\n-- \n" in en  # the signature delimiter keeps its space
    assert "Complaints Desk (Facilities)" in en
    (tmp_path / "replies").mkdir()
    own = tmp_path / "replies" / "facilities.en.txt"
    own.write_text("Facilities: $reference $unknown", encoding="utf-8")
    filled = fill_template(template_text(tmp_path, "facilities", "en"), case)
    assert filled == "Facilities: 2026-000042 $unknown"
    assert "Dear" in template_text(tmp_path, "transport", "en")  # no own template: the bundled one


@pytest.fixture
def desk(db: storage.Database, tmp_path: Path) -> Iterator[review.Desk]:
    yield review.open_desk(Settings(home=tmp_path), db=db)


def test_a_refused_relay_records_nothing_and_no_relay_is_a_config_error(
        desk: review.Desk, db: storage.Database) -> None:
    ref = add_case(db, "lights out", channel=Channel.email, sender="li@example.org", subject="Lights")
    sam = Actor.supervisor("sam")
    with pytest.raises(ConfigError, match="smtp.host"):
        review.reply(desk, sam, ref, "hello")
    desk.settings = desk.settings.model_copy(update={"smtp": SmtpSettings(
        host="127.0.0.1", port=1, security=Security.none, from_address="desk@center.example",
        timeout_seconds=2)})
    with pytest.raises(review.ReplyError, match="127.0.0.1:1"):
        review.reply(desk, sam, ref, "hello")
    assert [e.kind for e in review.history(desk, sam, ref)] == ["created"]
    with pytest.raises(AccessDeniedError):
        review.reply(desk, Actor("rita", "reviewer"), ref, "hello")


def test_corrections_report_counts_changes_and_reads_the_last_retrain(
        desk: review.Desk, db: storage.Database) -> None:
    sam = Actor.supervisor("sam")
    refs = [add_case(db, f"case {n}", department="general") for n in range(3)]
    for ref in refs[:2]:
        review.correct(desk, sam, ref, {"department": "transport"})
    review.accept(desk, sam, refs[2])
    empty = review.corrections_report(desk, sam)
    assert empty.retrain == {} and empty.corrections == 2 and empty.confirmations == 1
    assert [(c.label_set, c.old, c.new, c.count) for c in empty.most_corrected] == [
        ("department", "general", "transport", 2)]
    reports = SimpleNamespace(label_sets={"department": SimpleNamespace(macro_f1=0.61)})
    after = SimpleNamespace(label_sets={"department": SimpleNamespace(macro_f1=0.67)})
    outcome: Any = SimpleNamespace(result=SimpleNamespace(current_report=reports, candidate_report=after,
                                                          eval_rows=40),
                                   current="m-1", candidate="m-2", promoted=True, dry_run=False,
                                   reason="macro-F1 0.61 -> 0.67", corrections=3)
    review.record_retrain(desk, sam, outcome)
    report = review.corrections_report(desk, sam)
    assert report.retrain["candidate"] == "m-2" and report.retrain["promoted"]
    assert [(c.label_set, c.before, c.after, c.delta) for c in report.label_sets] == [
        ("department", 0.61, 0.67, 0.06)]
    assert json.loads(json.dumps(report.to_json()))["most_corrected"][0]["count"] == 2
    with pytest.raises(AccessDeniedError):
        review.corrections_report(desk, Actor("rita", "reviewer"))


def test_migration_0005_backfills_department_and_rank(blank_db_url: str) -> None:
    storage.migrate(blank_db_url, "0004")
    engine = storage.create_database_engine(blank_db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO cases (id, reference, channel, source_name, sha256, language, text, subject, "
                "sender, status, model_version, ocr_confidence, needs_review, fields, problems, pages, "
                "created_at, updated_at) VALUES (1, '2026-000001', 'slip', 'a.png', :sha, 'en', 't', '', "
                "'', 'new', 'm', 45.0, true, '[]', '[]', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"sha": "a" * 64})
            conn.execute(text(
                "INSERT INTO case_labels (case_id, label_set, label, confidence, scores, model_version) "
                "VALUES (1, 'department', 'medical', 0.4, :scores, 'm')"),
                {"scores": json.dumps({"medical": 0.4, "general": 0.35})})
    finally:
        engine.dispose()
    storage.migrate(blank_db_url)
    with storage.open_database(blank_db_url) as db, db.reader() as session:
        case = storage.get_case(session, "2026-000001")
        assert (case.department, case.review_rank, case.assignee) == ("medical", 0, "")


def test_upgrading_a_sqlite_database_keeps_every_case_label(tmp_path: Path) -> None:
    """Migrations that copy ``cases`` (SQLite batch mode) must not cascade away its children."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    storage.migrate(url, "0003")  # 0004 copies the cases table
    engine = storage.create_database_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO cases (id, reference, channel, source_name, sha256, language, text, subject, "
                "sender, status, model_version, needs_review, fields, pages, created_at, updated_at) "
                "VALUES (1, '2026-000001', 'slip', 'a', ?, 'en', 't', '', '', 'new', 'm', 1, '[]', '[]', "
                "'2026-01-01', '2026-01-01')", ("a" * 64,))
            conn.exec_driver_sql("INSERT INTO case_labels (case_id, label_set, label, confidence, scores, "
                                 "model_version) VALUES (1, 'department', 'medical', 0.4, '{}', 'm')")
    finally:
        engine.dispose()
    storage.migrate(url)
    with storage.open_database(url) as db, db.reader() as session:
        case = storage.get_case(session, "2026-000001")
        assert [(lab.label_set, lab.label) for lab in case.labels] == [("department", "medical")]
        assert case.department == "medical"


def test_sla_tables_in_config_toml_and_bad_values_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.config import load_settings

    for name in ("COMPLAINTDESK_CONFIG", "COMPLAINTDESK_SLA", "COMPLAINTDESK_DUE_DAYS",
                 "COMPLAINTDESK_FIRST_RESPONSE_DAYS"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config.toml").write_text(
        "due_days = 10\nfirst_response_days = 1.5\n[sla.transport]\nresolution_days = 5\n", encoding="utf-8")
    rules = load_settings(home=tmp_path).due_rules()
    assert rules == {"": (1.5, 10.0), "transport": (1.5, 5.0)}
    (tmp_path / "config.toml").write_text("[sla.transport]\nresolution_days = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="sla.transport.resolution_days"):
        load_settings(home=tmp_path)
