"""Bulk case creation (``create_cases``), batch lookups and the acknowledgment outbox, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

import storage
from pipeline.core.model import Channel, IntakeItem, ReviewRule, Source
from tests.test_storage_cases import item


def email_item(message_id: str, body: str) -> IntakeItem:
    source = Source.from_bytes(Channel.email, message_id, f"{message_id}\n{body}".encode(),
                               "message/rfc822")
    return IntakeItem(source=source, text=body, language="en", subject=f"About {message_id}",
                      sender="a@example.org")


def test_create_cases_matches_create_case(db: storage.Database) -> None:
    with db.session() as s:
        single = storage.create_case(s, item("one by one"), due_days=15, actor="t",
                                     thresholds={"kind": ReviewRule(0.8)})
        single_row = storage.case_to_dict(single)
        items = [item(f"bulk number {n}") for n in range(5)]
        originals = [None, *[[("a.eml", "message/rfc822", "original", "b" * 64, 10),
                              ("x.png", "image/png", "attachment", "c" * 64, 20)]] * 4]
        made = storage.create_cases(s, items, due_days=15, actor="t", thresholds={"kind": ReviewRule(0.8)},
                                    originals=originals)
    first = int(single_row["reference"].split("-")[1])
    assert [m.reference.split("-")[1] for m in made] == [f"{first + n:06d}" for n in range(1, 6)]
    with db.session() as s:
        for case in made:
            stored = storage.get_case(s, case.reference)
            assert stored.id == case.id
            assert storage.case_to_dict(stored) == case.data  # the returned JSON form is what is stored
            assert [e.action for e in storage.audit_trail(s, stored)] == ["created"]
        row = made[0].data
    # same shape and values as a case made by create_case (apart from what identifies it)
    differ = {"reference", "sha256", "source", "text", "pages", "documents", "created_at", "updated_at",
              "due_at"}
    assert ({k: v for k, v in row.items() if k not in differ}
            == {k: v for k, v in single_row.items() if k not in differ})
    assert row["needs_review"] is True  # kind 0.7 < threshold 0.8, as for the single case
    assert [d["role"] for d in made[1].data["documents"]] == ["original", "attachment"]


def test_create_cases_refuses_a_known_original_and_writes_nothing(db: storage.Database) -> None:
    with db.session() as s:
        known = storage.create_case(s, item("already here"), due_days=15, actor="t")
        reference = known.reference
    with db.session() as s:
        with pytest.raises(storage.DuplicateCaseError):
            storage.create_cases(s, [item("fresh"), item("already here")], due_days=15, actor="t")
        with pytest.raises(storage.DuplicateCaseError):
            storage.create_cases(s, [item("twice"), item("twice")], due_days=15, actor="t")
        # the caller's transaction is still usable
        (made,) = storage.create_cases(s, [item("fresh")], due_days=15, actor="t")
    with db.session() as s:
        assert len(storage.list_cases(s)) == 2
        assert s.scalar(select(func.count()).select_from(storage.CaseLabel)) == 6
    assert made.reference > reference


def test_batch_lookups(db: storage.Database) -> None:
    with db.session() as s:
        a, b = storage.create_cases(s, [email_item("<a@x>", "first"), email_item("<b@x>", "second")],
                                    due_days=15, actor="t")
        case_b = storage.get_case(s, b.reference)
        storage.add_message(s, case_b, message_id="<reply@x>", text="more", sha256="d" * 64)
        storage.record_ignored(s, message_id="<noise@x>", sha256="e" * 64, reason="auto-reply")
    with db.session() as s:
        by_mid = storage.cases_by_message_id(s, ["<a@x>", "<reply@x>", "<none@x>", ""])
        assert {k: v.reference for k, v in by_mid.items()} == {"<a@x>": a.reference, "<reply@x>": b.reference}
        assert set(storage.cases_by_sha256(s, [a.data["sha256"], "0" * 64])) == {a.data["sha256"]}
        assert {k: v.reference for k, v in storage.cases_by_message_sha256(s, ["d" * 64]).items()} == {
            "d" * 64: b.reference}
        assert set(storage.ignored_by_sha256(s, ["e" * 64, "d" * 64])) == {"e" * 64}
        assert storage.quarantine_by_sha256(s, ["e" * 64]) == {}


def test_outbox_one_ack_per_case_sent_once(db: storage.Database) -> None:
    request = storage.AckRequest("citizen@example.org", "Citizen", "Broken lift", "<m1@x>", "<m0@x>")
    with db.session() as s:
        one, two = storage.create_cases(s, [email_item("<m1@x>", "lift"), email_item("<m2@x>", "queue")],
                                        due_days=15, actor="t")
        storage.queue_acks(s, [(one.id, request)], mailbox="box")
        assert storage.queue_ack(s, one.id, request, mailbox="box") is False  # already queued
        assert storage.queue_ack(s, two.id, request, mailbox="other") is True
    with db.session() as s:
        (pending,) = storage.pending_acks(s, mailbox="box", max_attempts=3)
        assert pending.reference == one.reference and pending.request == request and pending.attempts == 0
        storage.mark_ack_failed(s, pending.id, "relay down")
        storage.mark_ack_failed(s, pending.id, "relay down")
    with db.session() as s:
        assert storage.pending_acks(s, mailbox="box", max_attempts=2) == []  # gave up after 2 attempts
        (pending,) = storage.pending_acks(s, mailbox="box", max_attempts=3)
        assert storage.mark_ack_sent(s, pending.id, "<ack@x>") is True
        assert storage.mark_ack_sent(s, pending.id, "<ack@x>") is False  # never twice
    with db.session() as s:
        assert storage.pending_acks(s, mailbox="box", max_attempts=9) == []
        row = storage.find_ack(s, one.id)
        assert row is not None and row.message_id == "<ack@x>" and row.sent_at is not None
        assert row.attempts == 3
        assert [p.reference for p in storage.pending_acks(s, mailbox="other", max_attempts=3)] == [
            two.reference]
