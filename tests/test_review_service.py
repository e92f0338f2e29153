"""The review service (``pipeline.review``) on SQLite and PostgreSQL: corrections, the status lifecycle,
assignment and SLA due dates, notes, text edits, history, the review queue's order and pages, overdue
cases, and the role/department checks every operation applies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import storage
from pipeline import review
from pipeline.config import Settings, SlaSettings
from pipeline.core.actor import Actor
from pipeline.core.errors import AccessDeniedError, InvalidLabelError, UsageError
from pipeline.core.model import Channel, Classification, IntakeItem, Label, PageText, Source

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SUPER = Actor.supervisor("sam")
REVIEWER = Actor("rita", "reviewer")
FACILITIES = Actor("fay", "department", "facilities")
TRANSPORT = Actor("tom", "department", "transport")


def make_case(db: storage.Database, text: str, *, department: str = "facilities", confidence: float = 0.9,
              runner_up: float = 0.05, ocr: float = -1.0, created: datetime = T0,
              settings: Settings | None = None) -> str:
    """A case as the intake stores it, with department/sentiment labels and an OCR confidence."""
    labels = {
        "department": Label("department", department, confidence,
                            {department: confidence, "general": runner_up}),
        "sentiment": Label("sentiment", "negative", 0.95, {"negative": 0.95, "neutral": 0.05}),
    }
    item = IntakeItem(source=Source.from_bytes(Channel.slip, f"{text}.png", f"{text}{created}".encode()),
                      text=text, language="en", pages=(PageText(1, text, ocr),) if ocr >= 0 else (),
                      classification=Classification(labels, "m-1"))
    rules = (settings or Settings()).due_rules()
    with db.session() as session:
        return storage.create_case(session, item, due_days=15, actor="scan", now=created, sla=rules,
                                   thresholds={}).reference


@pytest.fixture
def desk(db: storage.Database, tmp_path: Path) -> Iterator[review.Desk]:
    sla = {"transport": SlaSettings(first_response_days=1, resolution_days=5)}
    settings = Settings(home=tmp_path, sla=sla)
    yield review.open_desk(settings, db=db)


def test_correction_stores_who_when_old_new_and_model_version_and_accept_confirms(
        desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "the lift is broken", confidence=0.4, runner_up=0.35)
    shown = review.correct(desk, REVIEWER, ref, {"department": "transport"})
    assert shown["department"] == "transport" and shown["assigned_department"] == "transport"
    assert shown["labels"]["department"]["confirmed_by"] == "rita"
    assert shown["needs_review"]  # sentiment is not confirmed yet
    shown = review.accept(desk, REVIEWER, ref)
    assert not shown["needs_review"] and shown["labels"]["sentiment"]["confirmed_by"] == "rita"
    with db.reader() as session:
        corrections = storage.list_corrections(session)
        rows = [(c.label_set, c.old_label, c.new_label, c.reviewer, c.model_version) for c in corrections]
        assert rows == [
            ("department", "facilities", "transport", "rita", "m-1"),
            ("sentiment", "negative", "negative", "rita", "m-1")]
        assert corrections[0].created_at is not None


def test_a_label_the_model_does_not_have_is_refused_and_nothing_is_stored(
        desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "x")
    with pytest.raises(InvalidLabelError, match="pol1ce"):
        review.correct(desk, SUPER, ref, {"department": "pol1ce", "sentiment": "positive"})
    with db.reader() as session:
        assert storage.list_corrections(session) == []


def test_status_lifecycle_reject_needs_a_reason_and_closed_reopens(
        desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "queue too long")
    with pytest.raises(UsageError, match="reason"):
        review.set_status(desk, SUPER, ref, "rejected")
    with pytest.raises(storage.InvalidTransitionError, match="triaged, in_progress, rejected"):
        review.set_status(desk, SUPER, ref, "closed")
    for status in ("triaged", "in_progress", "resolved", "closed"):
        assert review.set_status(desk, SUPER, ref, status)["status"] == status
    reopened = review.set_status(desk, SUPER, ref, "in_progress", note="citizen called back")
    assert reopened["status"] == "in_progress" and reopened["closed_at"] is None
    rejected = review.set_status(desk, SUPER, ref, "rejected", note="not ours: city council")
    assert rejected["status"] == "rejected"
    events = [(e.kind, e.detail.get("to"), e.detail.get("note")) for e in review.history(desk, SUPER, ref)
              if e.kind == "status"]
    assert events[-2:] == [("status", "in_progress", "citizen called back"),
                           ("status", "rejected", "not ours: city council")]


def test_sla_due_dates_at_intake_and_on_assignment(desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "bus bay blocked", department="transport", settings=desk.settings)
    shown = review.get_case(desk, SUPER, ref)
    assert shown["due_at"] == (T0 + timedelta(days=5)).isoformat()
    assert shown["first_response_due_at"] == (T0 + timedelta(days=1)).isoformat()
    moved = review.assign(desk, SUPER, ref, department="facilities", assignee="fay")
    assert moved["assigned_department"] == "facilities" and moved["assignee"] == "fay"
    assert moved["due_at"] == (T0 + timedelta(days=15)).isoformat()  # the default SLA
    assert moved["first_response_due_at"] == (T0 + timedelta(days=2)).isoformat()
    with pytest.raises(InvalidLabelError, match="departments:"):
        review.assign(desk, SUPER, ref, department="nowhere")


def test_overdue_lists_open_cases_past_a_due_date(desk: review.Desk, db: storage.Database) -> None:
    late = make_case(db, "old one", created=datetime.now(UTC) - timedelta(days=20))
    make_case(db, "fresh one", created=datetime.now(UTC))
    closed = make_case(db, "old but rejected", created=datetime.now(UTC) - timedelta(days=30))
    review.set_status(desk, SUPER, closed, "rejected", note="spam")
    found = review.overdue(desk, SUPER)
    assert [c["reference"] for c in found] == [late] and found[0]["overdue"]


def test_text_edit_keeps_the_original_and_notes_show_in_history(
        desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "the 1ift is br0ken")
    shown = review.edit_text(desk, REVIEWER, ref, "the lift is broken")
    assert shown["text"] == "the lift is broken" and shown["original_text"] == "the 1ift is br0ken"
    review.edit_text(desk, REVIEWER, ref, "the lift on floor 2 is broken")
    assert review.get_case(desk, SUPER, ref)["original_text"] == "the 1ift is br0ken"
    review.add_note(desk, FACILITIES, ref, "technician booked for Monday")
    kinds = [(e.kind, e.actor) for e in review.history(desk, SUPER, ref)]
    assert kinds == [("created", "scan"), ("text_edited", "rita"), ("text_edited", "rita"), ("note", "fay")]


def test_roles_and_departments_are_checked_by_every_operation(
        desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "toilet dirty", department="facilities")
    assert review.get_case(desk, FACILITIES, ref)["reference"] == ref
    for call in (lambda: review.get_case(desk, TRANSPORT, ref),
                 lambda: review.add_note(desk, TRANSPORT, ref, "mine now"),
                 lambda: review.set_status(desk, TRANSPORT, ref, "triaged"),
                 lambda: review.history(desk, TRANSPORT, ref),
                 lambda: review.correct(desk, FACILITIES, ref, {"sentiment": "neutral"}),
                 lambda: review.review_queue(desk, FACILITIES),
                 lambda: review.get_case(desk, Actor("sue", "scanner"), ref),
                 lambda: review.assign(desk, FACILITIES, ref, department="transport"),
                 lambda: review.get_case(desk, Actor("nobody", "department", ""), ref)):
        with pytest.raises(AccessDeniedError):
            call()
    with db.reader() as session:
        trail = storage.audit_trail(session, storage.get_case(session, ref))
        assert [e.action for e in trail] == ["created"]
    assert review.can(REVIEWER, "correct", {"assigned_department": "transport"})
    assert not review.can(REVIEWER, "reply") and review.can(FACILITIES, "reply", {"assigned_department":
                                                                                   "facilities"})
    assert not review.can(SUPER, "no such action")
    assert [c["reference"] for c in review.list_cases(desk, TRANSPORT)] == []
    assert [c["reference"] for c in review.list_cases(desk, FACILITIES)] == [ref]


def test_queue_orders_by_need_then_due_then_age_and_pages_without_gaps(
        desk: review.Desk, db: storage.Database) -> None:
    sure_old = make_case(db, "sure but unread", confidence=0.9, ocr=40.0, created=T0)
    low_close_blurred = make_case(db, "three reasons", confidence=0.3, runner_up=0.28, ocr=50.0,
                                  created=T0 + timedelta(hours=2))
    low_close = make_case(db, "two reasons", confidence=0.3, runner_up=0.28, created=T0 + timedelta(hours=1))
    low_close_older = make_case(db, "two reasons, older", confidence=0.3, runner_up=0.29,
                                created=T0 + timedelta(minutes=30))
    low_only = make_case(db, "one reason", confidence=0.45, runner_up=0.1, created=T0 + timedelta(hours=3))
    make_case(db, "no reason: not queued", confidence=0.99, runner_up=0.01)
    with db.session() as session:  # sure of its labels, but the scan was hard to read: a person looks
        for ref in (sure_old,):
            storage.get_case(session, ref).needs_review = True
    expected = [low_close_blurred, low_close_older, low_close, sure_old, low_only]
    first = review.review_queue(desk, REVIEWER, limit=2)
    assert [c["reference"] for c in first.cases] == expected[:2] and first.next
    second = review.review_queue(desk, REVIEWER, limit=2, after=first.next)
    third = review.review_queue(desk, REVIEWER, limit=2, after=second.next)
    assert [c["reference"] for c in second.cases + third.cases] == expected[2:]
    assert third.next is None
    review.accept(desk, REVIEWER, low_close_blurred)  # reviewed: leaves the queue
    assert review.review_queue(desk, SUPER, limit=50).cases[0]["reference"] == low_close_older
    with pytest.raises(UsageError):
        review.review_queue(desk, REVIEWER, after="garbage!")


def test_undo_takes_back_the_latest_step_whole(desk: review.Desk, db: storage.Database) -> None:
    ref = make_case(db, "the lift is broken", confidence=0.4, runner_up=0.35)
    before = review.get_case(desk, SUPER, ref)
    review.correct(desk, REVIEWER, ref, {"department": "transport"})
    accepted = review.accept(desk, REVIEWER, ref)  # one step: sentiment confirmed, off the queue
    assert not accepted["needs_review"]
    step = review.undo(desk, REVIEWER, ref)
    assert step["needs_review"] and step["labels"]["sentiment"]["confirmed_by"] is None
    assert step["labels"]["department"]["label"] == "transport"  # the earlier step stays
    back = review.undo(desk, REVIEWER, ref)
    assert back["labels"] == before["labels"] and back["assigned_department"] == "facilities"
    assert back["review_rank"] == before["review_rank"]
    assert review.undo(desk, REVIEWER, ref)["labels"] == before["labels"]  # nothing left: unchanged
    with db.reader() as session:
        assert storage.list_corrections(session) == []
    assert [e.kind for e in review.history(desk, SUPER, ref)].count("corrections_undone") == 2
