"""What the e-mail poller stores: messages and threading, ignored noise, mailbox state, locks."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

import storage
from pipeline.core.model import Channel, IntakeItem, Source
from storage.models import utcnow


def email_case(s: object, message_id: str, body: str = "The lift is broken") -> storage.Case:
    source = Source.from_bytes(Channel.email, message_id, f"Message-ID: {message_id}\n\n{body}".encode(),
                               "message/rfc822")
    item = IntakeItem(source=source, text=body, subject="Lift", sender="citizen@example.org")
    return storage.create_case(s, item, due_days=15, actor="poll")  # type: ignore[arg-type]


def test_reply_threads_onto_its_case(db: storage.Database) -> None:
    with db.session() as s:
        case = email_case(s, "<first@example.org>")
        storage.add_message(s, case, message_id="<first@example.org>", sender="citizen@example.org",
                            subject="Lift", text="The lift is broken", sha256="a" * 64)
        storage.add_message(s, case, message_id="<ack-1@desk>", in_reply_to="<first@example.org>",
                            references=["<first@example.org>"], direction="out", subject="[Case #x] Lift")
        other = email_case(s, "<other@example.org>", "Other thing")
        reference = case.reference
    with db.session() as s:
        # a reply to our acknowledgment, by References
        found = storage.find_case_by_message_id(s, ["<unknown@x>", "<ack-1@desk>"])
        assert found is not None and found.reference == reference
        # a reply to a case made from an e-mail before any message was stored with it
        found = storage.find_case_by_message_id(s, [" <other@example.org> "])
        assert found is not None and found.reference == other.reference
        assert storage.find_case_by_message_id(s, ["<nothing@x>"]) is None
        assert storage.find_case_by_message_id(s, ["", "  "]) is None
        case = storage.get_case(s, reference)
        reply = storage.add_message(s, case, message_id="<reply@example.org>", in_reply_to="<ack-1@desk>",
                                    references="<first@example.org> <ack-1@desk>", text="Still broken",
                                    sha256="c" * 64)
        assert reply.references == "<first@example.org> <ack-1@desk>"
    with db.session() as s:
        case = storage.get_case(s, reference)
        assert [m.message_id for m in case.messages] == [
            "<first@example.org>", "<ack-1@desk>", "<reply@example.org>"]
        assert [m.direction for m in case.messages] == ["in", "out", "in"]
        msg = storage.find_message(s, sha256="c" * 64)
        assert msg is not None and msg.message_id == "<reply@example.org>"
        msg = storage.find_message(s, message_id="<ack-1@desk>")
        assert msg is not None and msg.direction == "out"
        assert storage.find_message(s, message_id="<none@x>", sha256="d" * 64) is None
        actions = [e.action for e in storage.audit_trail(s, case)]
        assert actions == ["created", "message_added", "message_added", "message_added"]


def test_add_message_is_idempotent_by_message_id(db: storage.Database) -> None:
    with db.session() as s:
        case = email_case(s, "<m@x>")
        first = storage.add_message(s, case, message_id="<r@x>", text="one")
        again = storage.add_message(s, case, message_id="<r@x>", text="one")
        assert again is first
        with pytest.raises(storage.StorageError, match="direction"):
            storage.add_message(s, case, message_id="<q@x>", direction="sideways")
    with db.session() as s:
        assert len(storage.get_case(s, case.reference).messages) == 1


def test_ignored_messages_recorded_once(db: storage.Database) -> None:
    with db.session() as s:
        first = storage.record_ignored(s, message_id="<auto@x>", sha256="e" * 64,
                                       reason="auto-reply (Auto-Submitted)", mailbox="desk@host/INBOX", uid=7)
    with db.session() as s:
        again = storage.record_ignored(s, message_id="<auto@x>", sha256="e" * 64, reason="other")
        assert again.id == first.id and again.reason.startswith("auto-reply") and again.uid == 7
        found = storage.find_ignored(s, message_id="<auto@x>")
        assert found is not None and found.id == first.id
        assert storage.find_ignored(s, sha256="f" * 64) is None


def test_mailbox_state_round_trip(db: storage.Database) -> None:
    with db.session() as s:
        assert storage.get_mailbox_state(s, "desk@host/INBOX") is None
        storage.set_mailbox_state(s, "desk@host/INBOX", uidvalidity=1000, last_uid=5)
    with db.session() as s:
        storage.set_mailbox_state(s, "desk@host/INBOX", uidvalidity=1000, last_uid=9)
        storage.set_mailbox_state(s, "desk@host/Other", uidvalidity=3, last_uid=1)
    with db.session() as s:
        state = storage.get_mailbox_state(s, "desk@host/INBOX")
        assert state is not None and (state.uidvalidity, state.last_uid) == (1000, 9)
        assert state.updated_at.tzinfo is not None


def test_lock_is_exclusive_until_released_or_stale(db: storage.Database) -> None:
    name = "poll:desk@host/INBOX"
    with db.session() as s:
        assert storage.acquire_lock(s, name, "host-a:1")
    with db.session() as s:
        assert not storage.acquire_lock(s, name, "host-b:2")  # held, fresh heartbeat
        assert storage.acquire_lock(s, name, "host-a:1")  # the holder may re-acquire
        assert not storage.refresh_lock(s, name, "host-b:2")
        assert storage.refresh_lock(s, name, "host-a:1")
        holder = storage.lock_holder(s, name)
        assert holder is not None and holder.holder == "host-a:1"
    later = utcnow() + timedelta(minutes=10)
    with db.session() as s:
        assert not storage.acquire_lock(s, name, "host-b:2", stale_after=timedelta(minutes=30), now=later)
        # stale: taken
        assert storage.acquire_lock(s, name, "host-b:2", stale_after=timedelta(minutes=5), now=later)
    with db.session() as s:
        holder = storage.lock_holder(s, name)
        assert holder is not None and holder.holder == "host-b:2"
        assert not storage.refresh_lock(s, name, "host-a:1")  # the old holder learns it lost the lock
        assert not storage.release_lock(s, name, "host-a:1")
        assert storage.release_lock(s, name, "host-b:2")
        assert storage.lock_holder(s, name) is None
    with db.session() as s:
        assert storage.acquire_lock(s, name, "host-a:1")  # free again


def test_lock_race_has_one_winner(db: storage.Database) -> None:
    import threading

    barrier = threading.Barrier(4)
    results: dict[str, bool] = {}

    def contender(holder: str) -> None:
        barrier.wait()
        with db.session() as s:
            results[holder] = storage.acquire_lock(s, "poll:race", holder)

    threads = [threading.Thread(target=contender, args=(f"h{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [False, False, False, True]
    with db.session() as s:
        holder = storage.lock_holder(s, "poll:race")
        assert holder is not None and results[holder.holder]


def test_message_dates_naive_or_zoned_are_stored_as_utc(db: storage.Database) -> None:
    from datetime import datetime, timezone

    with db.session() as s:
        case = email_case(s, "<dates@x>")
        naive = storage.add_message(s, case, message_id="<n@x>", received_at=datetime(2026, 3, 1, 8, 0))
        zoned = storage.add_message(s, case, message_id="<z@x>",
                                    received_at=datetime(2026, 3, 1, 16, 0,
                                                         tzinfo=timezone(timedelta(hours=8))))
        s.flush()
        ids = naive.id, zoned.id
    with db.session() as s:
        for message_id in ids:
            message = s.get(storage.CaseMessage, message_id)
            assert message is not None
            assert message.received_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
            assert message.received_at.tzinfo is UTC
