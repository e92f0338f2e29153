"""The poller against a real Dovecot (and a real SMTP server, aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

import storage
from pipeline.context import RunContext
from pipeline.core.errors import MailboxError
from pipeline.mail.imap import ImapMailSource, MailboxLoginError
from pipeline.mail.parse import parse_message
from pipeline.mail.poller import MailboxBusyError, Poller, parse_interval
from pipeline.mail.settings import AfterStore, ImapSettings, Security, SmtpSettings
from tests.dovecot import Dovecot, dovecot, dovecot_server  # noqa: F401  (fixtures)
from tests.mail_support import SAMPLES, case_count, complaint, make_context, wait_for

pytestmark = pytest.mark.dovecot


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[RunContext]:
    context = make_context(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home")
    yield context
    context.db.dispose()


def imap_for(server: Dovecot, folder: str, **kw: object) -> ImapSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1", "port": server.port, "user": server.user, "password": server.password,
        "security": Security.none, "folder": folder, "timeout_seconds": 5, "batch_size": 50,
        "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.5, "once_attempts": 3,
        "lock_ttl_seconds": 30,
    }
    values.update(kw)
    return ImapSettings.model_validate(values)


def new_folder() -> str:
    return f"F{uuid.uuid4().hex[:10]}"


def states(ctx: RunContext, key: str) -> tuple[int, int]:
    with ctx.db.session() as s:
        st = storage.get_mailbox_state(s, key)
        assert st is not None
        return st.uidvalidity, st.last_uid


# -- basics ---------------------------------------------------------------------------------------


def test_new_mail_becomes_cases_flagged_after_commit(dovecot_server: Dovecot, ctx: RunContext) -> None:
    folder = new_folder()
    samples = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    dovecot_server.append(samples + [complaint(i) for i in range(60)], folder)
    imap = imap_for(dovecot_server, folder)
    applied: list[tuple[list[int], bool]] = []

    class Checking(ImapMailSource):
        """The real source, checking that every message is settled in the DB before it is flagged."""

        def apply(self, uids: Sequence[int], action: AfterStore) -> None:
            with ctx.db.session() as s:
                ignored = s.query(storage.IgnoredMessage).count()
                stored = len(storage.list_cases(s)) + ignored
            applied.append((list(uids), stored >= max(uids) - 1))  # two samples are replies/noise
            super().apply(uids, action)

    stats = Poller(ctx, imap, source_factory=Checking).run(once=True)
    # 04-reply-quoted.eml answers 01-plain-en.eml (References), so it joins that case
    assert stats.outcomes == {"created": 64, "matched": 1, "ignored": 2}
    assert [len(u) for u, _ in applied] == [50, 17] and all(ok for _, ok in applied)
    flags = dovecot_server.uids(folder)
    assert all("$Complaintdesk" in f for f in flags.values())
    assert not any("\\Seen" in f for f in flags.values())
    assert states(ctx, f"{imap.mailbox_key}/{folder}")[1] == 67
    with ctx.db.session() as s:
        slip = storage.find_case_by_message_id(s, ["<slip-0005@center.example>"])
        assert slip is not None and "soap" in slip.text.lower()  # the attachment was OCR'd (Tesseract)
    # a second pass finds nothing new
    again = Poller(ctx, imap).run(once=True)
    assert again.total == 0 and case_count(ctx) == 64


def test_move_and_seen_actions(dovecot_server: Dovecot, ctx: RunContext) -> None:
    folder = new_folder()
    dovecot_server.append([complaint(i) for i in range(3)], folder)
    Poller(ctx, imap_for(dovecot_server, folder, after_store="move", move_to=f"{folder}-done")).run(once=True)
    assert dovecot_server.uids(folder) == {} and len(dovecot_server.uids(f"{folder}-done")) == 3
    folder2 = new_folder()
    dovecot_server.append([complaint(i) for i in range(10, 12)], folder2)
    Poller(ctx, imap_for(dovecot_server, folder2, after_store="seen")).run(once=True)
    assert all("\\Seen" in f for f in dovecot_server.uids(folder2).values())
    assert case_count(ctx) == 5


def test_uidvalidity_change_makes_no_duplicates(dovecot_server: Dovecot, ctx: RunContext) -> None:
    folder = new_folder()
    msgs = [complaint(i) for i in range(5)]
    dovecot_server.append(msgs, folder)
    imap = imap_for(dovecot_server, folder, after_store="none")
    Poller(ctx, imap).run(once=True)
    before = states(ctx, f"{imap.mailbox_key}/{folder}")
    dovecot_server.delete_folder(folder)
    time.sleep(1.1)  # UIDVALIDITY is time based
    dovecot_server.append(msgs + [complaint(99)], folder)  # recreated: same mail, new UIDVALIDITY, one new
    stats = Poller(ctx, imap).run(once=True)
    after = states(ctx, f"{imap.mailbox_key}/{folder}")
    assert after[0] != before[0] and after[1] == 6
    assert stats.outcomes == {"matched": 5, "created": 1}
    assert case_count(ctx) == 6


def test_threading_noise_and_acknowledgment(dovecot_server: Dovecot, ctx: RunContext) -> None:
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            received.append(envelope.content)  # type: ignore[attr-defined]
            return "250 OK"

    from tests.dovecot import free_port

    smtp_port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        smtp = SmtpSettings(ack=True, host="127.0.0.1", port=smtp_port,
                            security=Security.none, from_address="desk@center.example")
        folder = new_folder()
        first = complaint(1, mid="<first@example.org>")
        noise = [(SAMPLES / "06-auto-reply.eml").read_bytes(), (SAMPLES / "07-bounce.eml").read_bytes(),
                 complaint(2, Precedence="bulk"), complaint(3, List_Id="<news.example.org>")]
        dovecot_server.append([first, *noise], folder)
        imap = imap_for(dovecot_server, folder)
        stats = Poller(ctx, imap, smtp=smtp).run(once=True)
        assert stats.outcomes == {"created": 1, "ignored": 4} and stats.acks_sent == 1
        assert len(received) == 1  # noise never triggers a reply
        ack = message_from_bytes(received[0])
        with ctx.db.session() as s:
            (case,) = storage.list_cases(s)
            ref = case.reference
            ignored = {r.reason for r in s.query(storage.IgnoredMessage)}
        assert f"[Case #{ref}]" in ack["Subject"] and ack["Auto-Submitted"] == "auto-replied"
        assert ack["In-Reply-To"] == "<first@example.org>" and ack["To"] == "citizen1@example.org"
        assert any("precedence: bulk" in r for r in ignored) and any("mailing list" in r for r in ignored)
        # the citizen answers the ack (subject keeps the reference), and answers the first mail (In-Reply-To)
        by_ref = complaint(5, subject="Re: " + " ".join(ack["Subject"].split()),
                           body="Here is my ticket number: 42.")
        by_header = complaint(6, subject="Re: something", body="Also the lights.",
                              In_Reply_To="".join(ack["Message-ID"].split()))
        dovecot_server.append([by_ref, by_header], folder)
        stats2 = Poller(ctx, imap, smtp=smtp).run(once=True)
        assert stats2.outcomes == {"matched": 2} and len(received) == 1
        with ctx.db.session() as s:
            case = storage.get_case(s, ref)
            texts = [(m.direction, m.text) for m in case.messages]
        assert ("in", "Here is my ticket number: 42.") in texts and ("in", "Also the lights.") in texts
        assert case_count(ctx) == 1
    finally:
        controller.stop()


def test_broken_mime_is_quarantined_and_polling_goes_on(dovecot_server: Dovecot, ctx: RunContext) -> None:
    folder = new_folder()
    broken = [b"X-Nothing: at all\r\n\r\n", b"garbage without headers \x00\xff",
              b"From: a@b\r\nContent-Type: multipart/mixed; boundary=\"z\"\r\n\r\n"
              b"--z\r\nContent-Type: text/plain;"
              b" charset=bogus-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@notbase64\r\n"]
    dovecot_server.append([broken[0], complaint(1), broken[1], broken[2], complaint(2)], folder)
    stats = Poller(ctx, imap_for(dovecot_server, folder)).run(once=True)
    assert stats.outcomes["quarantined"] >= 2 and stats.outcomes["created"] >= 2 and stats.total == 5
    with ctx.db.session() as s:
        for record in storage.list_quarantine(s):
            assert ctx.blobs.exists(record.sha256)  # raw bytes kept
    assert all("$Complaintdesk" in f for f in dovecot_server.uids(folder).values())


# -- locks ----------------------------------------------------------------------------------------


def test_second_poller_exits_with_a_clear_message(dovecot_server: Dovecot, ctx: RunContext) -> None:
    imap = imap_for(dovecot_server, new_folder())
    lock_name = f"imap-poller:{imap.mailbox_key}"
    with ctx.db.session() as s:
        assert storage.acquire_lock(s, lock_name, "otherhost:1234")
    with pytest.raises(MailboxBusyError, match=r"another poller \(otherhost:1234\).*--wait-for-lock"):
        Poller(ctx, imap).run(once=True)
    # a waiting poller gets it once the other lets go
    waiting = Poller(ctx, imap.model_copy(update={"wait_for_lock": True, "lock_ttl_seconds": 4}))
    threading.Timer(0.5, lambda: _release(ctx, lock_name, "otherhost:1234")).start()
    dovecot_server.append([complaint(1)], imap.folder)
    assert waiting.run(once=True).outcomes == {"created": 1}


def _release(ctx: RunContext, name: str, holder: str) -> None:
    with ctx.db.session() as s:
        storage.release_lock(s, name, holder)


def test_lock_of_a_dead_local_poller_is_taken_over(dovecot_server: Dovecot, ctx: RunContext) -> None:
    import socket
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    imap = imap_for(dovecot_server, new_folder())
    dovecot_server.append([complaint(1)], imap.folder)
    with ctx.db.session() as s:
        assert storage.acquire_lock(s, f"imap-poller:{imap.mailbox_key}",
                                    f"{socket.gethostname()}:{dead.pid}")
    assert Poller(ctx, imap).run(once=True).outcomes == {"created": 1}


# -- resilience -----------------------------------------------------------------------------------


def test_auth_failure_retries_then_gives_up_in_once_mode(dovecot_server: Dovecot, ctx: RunContext,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    imap = imap_for(dovecot_server, "INBOX", password="wrong-password", once_attempts=2)
    with pytest.raises(MailboxLoginError):
        Poller(ctx, imap).run(once=True)
    assert "retry 1" in caplog.text and "check COMPLAINTDESK_IMAP_USER" in caplog.text
    assert "wrong-password" not in caplog.text
    # the lock was released on the way out
    with ctx.db.session() as s:
        assert storage.lock_holder(s, f"imap-poller:{imap.mailbox_key}") is None


def test_dovecot_stopped_and_started_while_polling(dovecot: Dovecot, ctx: RunContext) -> None:
    folder = "INBOX"
    imap = imap_for(dovecot, folder, batch_size=10)
    poller = Poller(ctx, imap)
    thread = threading.Thread(target=poller.run, kwargs={"every": 0.1}, daemon=True)
    dovecot.append([complaint(i) for i in range(30)], folder)
    thread.start()
    try:
        wait_for(lambda: case_count(ctx) >= 10)
        dovecot.stop()  # mid-stream: the poller sees the connection drop and backs off
        time.sleep(0.8)
        dovecot.start()
        dovecot.append([complaint(i) for i in range(30, 40)], folder)
        wait_for(lambda: case_count(ctx) == 40 and poller.stats.cycles >= 2)
        dovecot.stop()
        time.sleep(0.3)
        dovecot.start()
        dovecot.append([complaint(i) for i in range(40, 45)], folder)
        wait_for(lambda: case_count(ctx) == 45)
    finally:
        poller.stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert poller.stats.reconnects >= 3 and case_count(ctx) == 45
    assert all("$Complaintdesk" in f for f in dovecot.uids(folder).values())


def test_connection_refused_backs_off_and_stops_cleanly(ctx: RunContext) -> None:
    from tests.dovecot import free_port

    imap = ImapSettings(host="127.0.0.1", port=free_port(), user="u", password="p",  # type: ignore[arg-type]
                        security=Security.none, backoff_initial_seconds=0.05, backoff_max_seconds=0.2,
                        timeout_seconds=1)
    poller = Poller(ctx, imap)
    thread = threading.Thread(target=poller.run, kwargs={"every": 0.1}, daemon=True)
    thread.start()
    time.sleep(1.0)
    poller.stop.set()
    thread.join(5)
    assert not thread.is_alive() and poller.stats.cycles == 0


def test_parse_interval() -> None:
    assert [parse_interval(t) for t in ("5m", "30s", "1h", "90")] == [300, 30, 3600, 90]
    with pytest.raises(ValueError):
        parse_interval("-1m")


def test_stale_fetch_error_is_translated(dovecot: Dovecot) -> None:
    source = ImapMailSource(imap_for(dovecot, "INBOX"))
    try:
        source.open_folder("INBOX")
        dovecot.stop()
        with pytest.raises(MailboxError):
            list(source.fetch_after(0, 10, 1000))
    finally:
        source.close()


def test_parse_of_fetched_sample_roundtrips(dovecot_server: Dovecot) -> None:
    folder = new_folder()
    data = (SAMPLES / "02-chinese-gb2312.eml").read_bytes()
    dovecot_server.append([data], folder)
    with ImapMailSource(imap_for(dovecot_server, folder)) as source:
        source.open_folder(folder)
        (batch,) = list(source.fetch_after(0, 10, 10_000))
    assert batch[0].data == data  # byte for byte, so the sha256 is stable across re-reads
    assert parse_message(batch[0].data).subject == "投诉：三号窗口排队太久"
