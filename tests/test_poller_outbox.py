"""The poller's acknowledgment outbox (real aiosmtpd), waiting for a database that is down at
start (real PostgreSQL behind a TCP relay the test switches on), and IDLE with several folders
(real Dovecot)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

import storage
from pipeline.context import RunContext
from pipeline.mail import poller as poller_module
from pipeline.mail.poller import Poller
from pipeline.mail.settings import Security, SmtpSettings
from tests.db_fixtures import postgres_schema_url
from tests.dovecot import Dovecot, dovecot_server, free_port  # noqa: F401  (fixture)
from tests.mail_support import case_count, complaint, make_context, smtp_relay, wait_for
from tests.test_poller import ctx, imap_for, new_folder  # noqa: F401  (ctx is a fixture)

pytestmark = pytest.mark.dovecot


def smtp_for(port: int) -> SmtpSettings:
    return SmtpSettings(ack=True, host="127.0.0.1", port=port, security=Security.none,
                        from_address="desk@center.example", timeout_seconds=3)


def outbox(ctx: RunContext) -> list[storage.PendingAck]:
    with ctx.db.session() as s:
        return list(s.query(storage.PendingAck).order_by(storage.PendingAck.id))


def out_messages(ctx: RunContext, reference: str) -> list[str]:
    with ctx.db.session() as s:
        return [m.message_id for m in storage.get_case(s, reference).messages if m.direction == "out"]


# -- outbox ---------------------------------------------------------------------------------------


def _crashing_child(db_url: str, home: str, imap: dict[str, object], smtp_port: int) -> None:
    """A poller process that dies (SIGKILL) right when it is about to send its first acknowledgment."""
    def die(*_args: object) -> str:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    poller_module.send_ack = die  # type: ignore[assignment]
    ctx = make_context(db_url, Path(home))
    Poller(ctx, poller_module.ImapSettings.model_validate(imap), smtp=smtp_for(smtp_port)).run(once=True)
    os._exit(0)


def test_ack_is_not_lost_when_the_poller_dies_between_commit_and_send(dovecot_server: Dovecot,  # noqa: F811
                                                                       tmp_path: Path) -> None:
    folder = new_folder()
    dovecot_server.append([complaint(1, mid="<one@example.org>"), complaint(2, mid="<two@example.org>")],
                          folder)
    db_url, home = f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home"
    ctx = make_context(db_url, home)
    imap = imap_for(dovecot_server, folder)
    try:
        with smtp_relay(free_port()) as relay:
            proc = multiprocessing.get_context("fork").Process(
                target=_crashing_child,
                args=(db_url, str(home),
                      {**imap.model_dump(mode="json"), "password": dovecot_server.password}, relay.port))
            proc.start()
            proc.join(60)
            assert proc.exitcode == -signal.SIGKILL
            # the cases and their acks were committed together; nothing was sent
            assert case_count(ctx) == 2 and relay.received == []
            assert [(a.sent_at, a.attempts) for a in outbox(ctx)] == [(None, 0), (None, 0)]
            # the next poller sends the pending acks when it starts, once each
            stats = Poller(ctx, imap, smtp=smtp_for(relay.port)).run(once=True)
            assert stats.acks_sent == 2 and stats.total == 0 and len(relay.received) == 2
            acks = [message_from_bytes(m) for m in relay.received]
            assert sorted(a["In-Reply-To"] for a in acks) == ["<one@example.org>", "<two@example.org>"]
            rows = outbox(ctx)
            assert all(r.sent_at is not None for r in rows)
            with ctx.db.session() as s:
                references = {c.id: c.reference for c in storage.list_cases(s)}
            for row in rows:
                assert out_messages(ctx, references[row.case_id]) == [row.message_id]
            # and never again: a later pass, and a re-read of the whole folder, send nothing
            Poller(ctx, imap, smtp=smtp_for(relay.port)).run(once=True)
            with ctx.db.session() as s:
                storage.set_mailbox_state(s, f"{imap.mailbox_key}/{folder}", uidvalidity=0, last_uid=0)
            again = Poller(ctx, imap, smtp=smtp_for(relay.port)).run(once=True)
            assert again.outcomes == {"matched": 2} and again.acks_sent == 0 and len(relay.received) == 2
    finally:
        ctx.db.dispose()


def test_ack_waits_in_the_outbox_while_the_relay_is_down(dovecot_server: Dovecot, ctx: RunContext,  # noqa: F811
                                                         caplog: pytest.LogCaptureFixture) -> None:
    folder = new_folder()
    dovecot_server.append([complaint(1, mid="<down@example.org>")], folder)
    imap = imap_for(dovecot_server, folder)
    port = free_port()  # nothing listens yet
    stats = Poller(ctx, imap, smtp=smtp_for(port)).run(once=True)
    assert stats.outcomes == {"created": 1} and stats.acks_sent == 0
    (row,) = outbox(ctx)
    assert row.sent_at is None and row.attempts == 1 and "could not send" in row.last_error
    assert "retrying at the next pass" in caplog.text
    with smtp_relay(port) as relay:
        stats = Poller(ctx, imap, smtp=smtp_for(port)).run(once=True)
        assert stats.acks_sent == 1 and len(relay.received) == 1
        assert message_from_bytes(relay.received[0])["In-Reply-To"] == "<down@example.org>"
    (row,) = outbox(ctx)
    assert row.sent_at is not None and row.attempts == 2


# -- database down at start -----------------------------------------------------------------------


class TcpRelay:
    """Forwards 127.0.0.1:<port> to PostgreSQL once ``open()`` is called; until then the port refuses."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._server: socket.socket | None = None

    def open(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.mark.postgres
def test_database_down_at_start_is_waited_for(dovecot_server: Dovecot, tmp_path: Path,  # noqa: F811
                                              caplog: pytest.LogCaptureFixture) -> None:
    schema_urls = postgres_schema_url()
    url = next(schema_urls)
    try:
        ctx = make_context(url, tmp_path / "home")  # migrated while the database is reachable
        ctx.db.dispose()
        parsed = make_url(url)
        relay = TcpRelay((parsed.host or "127.0.0.1", parsed.port or 5432))
        down = storage.Database(storage.create_database_engine(
            parsed.set(port=relay.port).render_as_string(hide_password=False)))
        ctx = dataclasses.replace(ctx, db=down)
        folder = new_folder()
        dovecot_server.append([complaint(1)], folder)
        imap = imap_for(dovecot_server, folder, backoff_initial_seconds=0.1, backoff_max_seconds=0.4,
                        once_attempts=100)
        threading.Timer(1.5, relay.open).start()
        caplog.set_level(logging.WARNING, logger="pipeline.mail.poller")
        started = time.monotonic()
        stats = Poller(ctx, imap).run(once=True)
        assert stats.outcomes == {"created": 1} and time.monotonic() - started >= 1.5
        assert "cannot take the mailbox lock, the database is unavailable" in caplog.text
        assert "retry 2 in" in caplog.text  # backed off more than once, then went on
        relay.close()
        down.dispose()
    finally:
        next(schema_urls, None)


def test_database_down_for_good_gives_up_after_once_attempts(dovecot_server: Dovecot,  # noqa: F811
                                                             tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    ctx = make_context(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home")
    ctx.db.dispose()
    gone = storage.Database(storage.create_database_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"))
    imap = imap_for(dovecot_server, new_folder(), once_attempts=3)
    with pytest.raises(storage.StorageError):
        Poller(dataclasses.replace(ctx, db=gone), imap).run(once=True)
    assert caplog.text.count("the database is unavailable") == 2  # two retries, the third failure is raised


# -- IDLE with several folders --------------------------------------------------------------------


def test_idle_watches_the_first_folder_when_several_are_configured(dovecot_server: Dovecot,  # noqa: F811
                                                                   ctx: RunContext,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    first, second = new_folder(), new_folder()
    dovecot_server.append([complaint(1)], first)
    dovecot_server.append([complaint(2)], second)
    caplog.set_level(logging.INFO, logger="pipeline.mail.poller")
    poller = Poller(ctx, imap_for(dovecot_server, f"{first},{second}", idle=True))
    thread = threading.Thread(target=poller.run, kwargs={"every": 120}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: case_count(ctx) == 2 and poller.stats.cycles >= 1)
        time.sleep(0.5)  # let it settle into IDLE
        dovecot_server.append([complaint(3)], first)
        wait_for(lambda: case_count(ctx) == 3, timeout=20)  # far sooner than the 120 s interval
    finally:
        poller.stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert f"IDLE watches folder {first}; the other folders ({second}) are polled every 120s" in caplog.text
