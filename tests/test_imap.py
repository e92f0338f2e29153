"""ImapMailSource against a real Dovecot on 127.0.0.1."""

from __future__ import annotations

import threading
import uuid

import pytest

from pipeline.core.errors import MailboxError
from pipeline.mail.imap import ImapMailSource, MailboxLoginError
from pipeline.mail.settings import AfterStore, ImapSettings, Security
from tests.dovecot import Dovecot, dovecot, dovecot_server, free_port  # noqa: F401  (fixtures)

pytestmark = pytest.mark.dovecot


def settings_for(server: Dovecot, **kw: object) -> ImapSettings:
    values: dict[str, object] = {"host": "127.0.0.1", "port": server.port, "user": server.user,
                                 "password": server.password, "security": Security.none, "timeout_seconds": 5}
    values.update(kw)
    return ImapSettings.model_validate(values)


def message(n: int, size: int = 0) -> bytes:
    body = f"complaint number {n}\r\n" + "x" * size
    return (f"From: c{n}@example.org\r\nSubject: complaint {n}\r\nMessage-ID: <imap-{n}-{uuid.uuid4()}@t>\r\n"
            f"\r\n{body}\r\n").encode()


def test_fetch_in_batches_flag_and_move(dovecot_server: Dovecot) -> None:
    folder = f"T{uuid.uuid4().hex[:8]}"
    dovecot_server.append([message(i) for i in range(7)], folder)
    settings = settings_for(dovecot_server, move_to=f"{folder}-done")
    with ImapMailSource(settings) as source:
        status = source.open_folder(folder)
        assert status.exists == 7 and status.uidvalidity > 0
        batches = list(source.fetch_after(0, 3, 10_000))
        assert [len(b) for b in batches] == [3, 3, 1]
        assert [m.uid for b in batches for m in b] == list(range(1, 8))
        assert b"complaint number 0" in batches[0][0].data
        assert [m.uid for b in source.fetch_after(5, 100, 10_000) for m in b] == [6, 7]
        assert list(source.fetch_after(7, 100, 10_000)) == []
        source.apply([1, 2], AfterStore.flag)
        source.apply([3], AfterStore.seen)
        source.apply([4, 5], AfterStore.move)
    flags = dovecot_server.uids(folder)
    assert "$Complaintdesk" in flags[1] and "\\Seen" not in flags[1]  # PEEK did not mark seen
    assert "\\Seen" in flags[3]
    assert set(flags) == {1, 2, 3, 6, 7}
    assert len(dovecot_server.uids(f"{folder}-done")) == 2


def test_oversized_message_is_not_downloaded(dovecot_server: Dovecot) -> None:
    folder = f"T{uuid.uuid4().hex[:8]}"
    dovecot_server.append([message(1), message(2, size=5000), message(3)], folder)
    with ImapMailSource(settings_for(dovecot_server)) as source:
        source.open_folder(folder)
        got = [m for b in source.fetch_after(0, 10, 2000) for m in b]
    assert [(m.uid, m.too_large) for m in got] == [(1, False), (2, True), (3, False)]
    assert got[1].size > 5000


def test_wrong_password_is_a_login_error(dovecot_server: Dovecot) -> None:
    with pytest.raises(MailboxLoginError, match="refused the login") as err:
        ImapMailSource(settings_for(dovecot_server, password="wrong-password-xyz"))
    assert "wrong-password-xyz" not in str(err.value)


def test_connection_refused_is_a_mailbox_error() -> None:
    port = free_port()
    with pytest.raises(MailboxError, match="connecting to IMAP 127.0.0.1"):
        ImapMailSource(ImapSettings(host="127.0.0.1", port=port, user="u", password="p",  # type: ignore[arg-type]
                                    security=Security.none, timeout_seconds=2))


def test_missing_folder_and_server_gone(dovecot: Dovecot) -> None:
    source = ImapMailSource(settings_for(dovecot))
    try:
        with pytest.raises(MailboxError, match="selecting folder"):
            source.open_folder("NoSuchFolder")
        source.open_folder("INBOX")
        dovecot.stop()
        with pytest.raises(MailboxError):
            source.open_folder("INBOX")
    finally:
        source.close()  # never raises


def test_idle_wakes_on_new_mail(dovecot_server: Dovecot) -> None:
    folder = f"T{uuid.uuid4().hex[:8]}"
    dovecot_server.append([message(1)], folder)
    with ImapMailSource(settings_for(dovecot_server, idle=True)) as source:
        source.open_folder(folder)
        timer = threading.Timer(0.5, lambda: dovecot_server.append([message(2)], folder))
        timer.start()
        import time

        started = time.monotonic()
        source.wait_for_news(20, threading.Event())
        timer.join()
        assert time.monotonic() - started < 10
