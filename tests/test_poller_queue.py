"""The poller with the task queue on (COMPLAINTDESK_QUEUE=postgres), against a real Dovecot and the real
PostgreSQL queue: fetched mail is accepted with its jobs in one transaction, not processed in the poller;
a worker turns the jobs into cases; polling the same messages again loses and duplicates nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import storage
from pipeline.context import RunContext
from pipeline.mail.poller import MAX_ACK_ATTEMPTS, Poller
from pipeline.mail.settings import Security, SmtpSettings
from pipeline.worker import run_worker
from tests.db_fixtures import postgres_schema_url
from tests.dovecot import Dovecot, dovecot_server  # noqa: F401  (fixture)
from tests.mail_support import case_count, complaint, make_context, queue_context, queue_counts
from tests.test_poller import imap_for, new_folder, states

pytestmark = pytest.mark.dovecot

#: acknowledgments on (the relay is never reached here: the test reads the outbox, not the relay)
SMTP = SmtpSettings(ack=True, host="127.0.0.1", port=1, security=Security.none,
                    from_address="desk@center.example")


@pytest.fixture(params=["postgresql"])  # the parameter marks the tests "postgres" (tests/conftest.py)
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunContext]:
    for url in postgres_schema_url():
        context = queue_context(url, tmp_path / "home")
        yield context
        context.db.dispose()


def _rewind(ctx: RunContext, key: str) -> None:
    """Forget how far the folder was read, as a poller that crashed before saving it would."""
    uidvalidity, _ = states(ctx, key)
    with ctx.db.session() as session:
        storage.set_mailbox_state(session, key, uidvalidity=uidvalidity, last_uid=0)


def test_polled_mail_becomes_jobs_that_a_worker_turns_into_cases_once(
    dovecot_server: Dovecot, ctx: RunContext
) -> None:
    folder = new_folder()
    dovecot_server.append([complaint(i) for i in range(4)], folder)
    imap = imap_for(dovecot_server, folder)
    key = f"{imap.mailbox_key}/{folder}"

    stats = Poller(ctx, imap, smtp=SMTP).run(once=True)
    assert stats.outcomes == {"queued": 4}
    counts = queue_counts(ctx)
    assert (counts.queued, counts.done, case_count(ctx)) == (4, 0, 0)  # nothing processed in the poller
    assert states(ctx, key)[1] == 4  # the watermark moved: the jobs are committed

    _rewind(ctx, key)  # fetched again before any worker ran: recognised, not queued twice
    assert Poller(ctx, imap).run(once=True).outcomes == {"queued": 4}
    assert (queue_counts(ctx).queued, case_count(ctx)) == (4, 0)

    run_worker(ctx, concurrency=2, drain=True)
    counts = queue_counts(ctx)
    assert (counts.queued, counts.running, counts.failed, counts.done, case_count(ctx)) == (0, 0, 0, 4, 4)
    with ctx.db.reader() as session:  # the workers queued the acknowledgments the poller will send
        acks = storage.pending_acks(session, mailbox=imap.mailbox_key, max_attempts=MAX_ACK_ATTEMPTS)
    assert len(acks) == 4

    _rewind(ctx, key)  # and fetched again after: each matches its case
    assert Poller(ctx, imap).run(once=True).outcomes == {"matched": 4}
    counts = queue_counts(ctx)
    assert (counts.queued, counts.done, case_count(ctx)) == (0, 4, 4)


def test_without_the_queue_the_poller_still_processes_its_own_mail(
    dovecot_server: Dovecot, tmp_path: Path
) -> None:
    context = make_context(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home")
    try:
        folder = new_folder()
        dovecot_server.append([complaint(i) for i in range(3)], folder)
        assert Poller(context, imap_for(dovecot_server, folder)).run(once=True).outcomes == {"created": 3}
        assert case_count(context) == 3
    finally:
        context.db.dispose()
