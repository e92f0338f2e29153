"""The task queue (COMPLAINTDESK_QUEUE=postgres): accept queues a job in the intake row's transaction, a
worker processes jobs, failing jobs are retried and then held as failed with their item's last error,
``complaintdesk jobs`` shows and retries them, and the worker's metrics endpoint answers.

On PostgreSQL only: SQLite has no queue (the last test checks that nothing changes there).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import storage
from pipeline import metrics
from pipeline.context import RunContext
from pipeline.core.errors import ConfigError, MissingDependencyError
from pipeline.core.model import OutcomeKind
from pipeline.intake import MAX_ATTEMPTS, accept_text, scan_files, submit_text
from pipeline.worker import queue_health, run_one, run_worker
from tests.cli_support import cli, deployment_env
from tests.db_fixtures import postgres_schema_url
from tests.mail_support import make_context, queue_context, queue_counts

TEXT = "The ticket machine at window {n} has printed blank tickets all morning; please fix it."


@pytest.fixture(params=["postgresql"])  # the parameter marks the tests "postgres" (tests/conftest.py)
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def ctx(pg_url: str, tmp_path: Path) -> Iterator[RunContext]:
    context = queue_context(pg_url, tmp_path / "home")
    yield context
    context.db.dispose()


def _cases(ctx: RunContext) -> int:
    with ctx.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(storage.Case)) or 0)


def test_accept_queues_a_job_in_the_same_transaction(ctx: RunContext) -> None:
    outcome = submit_text(TEXT.format(n=1), ctx)
    assert outcome.kind is OutcomeKind.queued
    assert (queue_counts(ctx).queued, _cases(ctx)) == (1, 0)  # nothing processed at accept

    # a transaction that fails after accept leaves neither the intake row nor its job
    with pytest.raises(RuntimeError), ctx.db.session() as session:
        record, new = storage.accept_record(session, channel="manual", source_name="typed", sha256="0" * 64,
                                            size=1, media_type="text/plain", options={"typed": True})
        storage.queue.enqueue(session, [record.id])
        raise RuntimeError("the caller fails before commit")
    with ctx.db.reader() as session:
        assert session.scalar(select(func.count()).select_from(storage.IntakeRecord)) == 1
    assert queue_counts(ctx).queued == 1


def test_a_scanned_file_named_again_is_not_queued_twice(ctx: RunContext, tmp_path: Path) -> None:
    slip = tmp_path / "slip.txt.png"
    slip.write_bytes(b"not really an image, but accept only hashes it")
    first = list(scan_files([slip], ctx))
    again = list(scan_files([slip], ctx))
    assert [o.kind for o in first] == [OutcomeKind.queued]
    assert [o.kind for o in again] == [OutcomeKind.queued]  # still unfinished: reported, not re-queued
    assert queue_counts(ctx).queued == 1


def test_a_worker_processes_the_queue_and_health_reports_it(ctx: RunContext) -> None:
    for n in range(5):
        accept_text(ctx, TEXT.format(n=n))
    health = queue_health(ctx.db)
    assert (health.reachable, health.depth, health.failed, health.problem) == (True, 5, 0, "")
    assert 0 < health.oldest_age < 60
    run_worker(ctx, concurrency=2, drain=True)
    counts = queue_counts(ctx)
    assert (counts.queued, counts.running, counts.failed, counts.done, _cases(ctx)) == (0, 0, 0, 5, 5)
    assert queue_health(ctx.db).depth == 0


def test_a_failing_job_is_retried_then_held_failed_with_its_error_and_an_operator_retries_it(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    accepted = accept_text(ctx, TEXT.format(n=7))
    runs: list[int] = []

    def broken(context: RunContext, intake_id: int) -> None:
        runs.append(intake_id)
        storage_error = MissingDependencyError(f"tesseract vanished (run {len(runs)})")
        with context.db.session() as session:
            storage.start_attempt(session, [intake_id])  # as process() counts each run
        with context.db.session() as session:
            storage.record_failure(session, intake_id, f"{type(storage_error).__name__}: {storage_error}")
        raise storage_error

    run_worker(ctx, drain=True, job=broken)
    assert runs == [accepted.intake_id] * MAX_ATTEMPTS  # retried, then given up
    counts = queue_counts(ctx)
    assert (counts.queued, counts.running, counts.failed, counts.done) == (0, 0, 1, 0)
    with ctx.db.reader() as session:
        (failed,) = storage.queue.failed_jobs(session)
    assert failed.intake_id == accepted.intake_id
    assert failed.last_error == f"MissingDependencyError: tesseract vanished (run {MAX_ATTEMPTS})"

    deployment_env(monkeypatch, ctx.settings.home, str(ctx.settings.database_url))
    monkeypatch.setenv("COMPLAINTDESK_QUEUE", "postgres")
    shown = cli(capsys, "jobs")
    assert shown.code == 0 and "failed 1" in shown.out and "tesseract vanished" in shown.out
    retried = json.loads(cli(capsys, "jobs", "--retry", "--json").out)
    assert (retried["retried"], retried["queued"], retried["failed"]) == (1, 1, 0)

    run_worker(ctx, drain=True)  # the real job now: the item's attempts were reset, so it is processed
    counts = queue_counts(ctx)
    assert (counts.queued, counts.failed, counts.done, _cases(ctx)) == (0, 0, 1, 1)


def test_an_unexpected_error_is_kept_on_the_intake_row(ctx: RunContext,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = accept_text(ctx, TEXT.format(n=3))
    monkeypatch.setattr("pipeline.worker.process", lambda c, i: {}["no such key"])
    with pytest.raises(KeyError):
        run_one(ctx, accepted.intake_id)
    with ctx.db.reader() as session:
        (row,) = storage.get_intake(session, [accepted.intake_id])
        assert row.last_error == "KeyError: 'no such key'"


def test_metrics_endpoint_shows_counters_and_queue_gauges(ctx: RunContext, unused_port: int) -> None:
    accept_text(ctx, TEXT.format(n=1))
    accept_text(ctx, TEXT.format(n=2))
    before = metrics.CASES_CREATED._value.get()
    run_one(ctx, accept_text(ctx, TEXT.format(n=3)).intake_id)
    metrics.serve(ctx.db, unused_port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{unused_port}/metrics", timeout=10).read().decode()
    assert "complaintdesk_queue_up 1.0" in body
    assert 'complaintdesk_queue_depth{state="queued"} 3.0' in body  # the third's job is still queued
    assert f"complaintdesk_cases_created_total {before + 1}" in body
    assert "complaintdesk_queue_oldest_job_age_seconds" in body
    assert "complaintdesk_ocr_seconds_bucket" in body


def test_a_taken_metrics_port_is_a_config_error(ctx: RunContext) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="--metrics-port"):
            metrics.serve(ctx.db, port)


def test_worker_and_jobs_refuse_without_the_queue(pg_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    context = make_context(pg_url, tmp_path / "home")
    try:
        with pytest.raises(ConfigError, match="COMPLAINTDESK_QUEUE=postgres"):
            run_worker(context, drain=True)
        assert submit_text(TEXT.format(n=1), context).kind is OutcomeKind.created  # in-process, as before
    finally:
        context.db.dispose()
    deployment_env(monkeypatch, tmp_path / "home", None)
    monkeypatch.setenv("COMPLAINTDESK_QUEUE", "postgres")
    refused = cli(capsys, "jobs")
    assert refused.code != 0 and "postgresql" in refused.err


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
