"""Queue workers: ``complaintdesk worker`` runs the ``process(intake_id)`` jobs that ``accept`` queued.

Only with ``COMPLAINTDESK_QUEUE=postgres``. PgQueuer (see docs/architecture.md for why it) dequeues
with ``FOR UPDATE SKIP LOCKED``, so any number of workers on any number of machines share one queue.

    a job runs      ``pipeline.intake.process`` in a thread, ``--concurrency`` jobs at once per worker;
                    their OCR goes to one process pool the worker keeps for its life (``OcrPool``)
    a worker dies   its running jobs stop sending heartbeats; after ``queue_heartbeat_seconds`` another
                    worker picks them up again. ``process`` is idempotent (the intake row says whether
                    the item is finished), so a job whose item was already stored is not stored twice;
                    an item that killed its worker ``MAX_ATTEMPTS`` times is quarantined, as in-process
    a job fails     the error is kept on the intake row (``last_error``) and the job runs again after
                    ``queue_retry_delay_seconds``, doubling; after ``MAX_ATTEMPTS`` runs it is held as
                    ``failed`` until an operator retries it (``complaintdesk jobs --retry``)
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

import ocr
import storage
from pipeline import metrics
from pipeline.context import RunContext
from pipeline.core.errors import ConfigError, StorageError
from pipeline.core.memory import cap_mmap_threshold, release_free_memory
from pipeline.core.model import Channel
from pipeline.intake import MAX_ATTEMPTS, process

log = logging.getLogger(__name__)

#: the longest wait between two retries of a failing job
MAX_RETRY_DELAY = timedelta(minutes=5)
#: the worker's own process reads no pages, so its big blocks are rare: return each one when freed
MAIN_MMAP_THRESHOLD = 2**20


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """For ``complaintdesk doctor``: can the queue be reached, how many jobs wait, and for how long."""

    reachable: bool
    depth: int = 0
    oldest_age: float = 0.0
    failed: int = 0
    problem: str = ""
    running: int = 0


def queue_health(db: storage.Database) -> QueueHealth:
    """The queue's state, or why it cannot be read (not PostgreSQL, unreachable, migrations not run)."""
    if db.dialect != "postgresql":
        return QueueHealth(False, problem=f"the task queue needs PostgreSQL; {db.url} is {db.dialect}")
    try:
        with db.reader() as session:
            counts = storage.queue.counts(session)
    except StorageError as e:
        return QueueHealth(False, problem=str(e))
    return QueueHealth(True, counts.queued, counts.oldest_age, counts.failed, running=counts.running)


def run_one(ctx: RunContext, intake_id: int) -> None:
    """The body of one job: process the item; any error is kept on its row and raised for a retry."""
    started = time.monotonic()
    try:
        outcome = process(ctx, intake_id)
    except Exception as e:
        _keep_error(ctx, intake_id, e)
        raise
    scanned = outcome.source.channel is Channel.slip
    metrics.record(outcome, time.monotonic() - started if scanned else None)
    log.info("intake item %d: %s %s", intake_id, outcome.kind, outcome.reference or outcome.reason)


def _keep_error(ctx: RunContext, intake_id: int, error: Exception) -> None:
    try:
        with ctx.db.session() as session:
            storage.record_failure(session, intake_id, f"{type(error).__name__}: {error}")
    except StorageError:  # the database is what failed: the job's own log keeps the traceback
        log.exception("could not record the error of intake item %d", intake_id)


def run_worker(ctx: RunContext, *, concurrency: int = 1, drain: bool = False,
               job: Callable[[RunContext, int], None] = run_one) -> None:
    """Run jobs until SIGTERM/SIGINT (a graceful stop: running jobs finish), or until the queue is
    empty with ``drain``. ``job`` is what runs for an intake id (tests replace it).

    Raises:
        ConfigError: the queue is not enabled.
        StorageError: the database cannot be reached or has no queue tables (run ``complaintdesk init``).
    """
    if ctx.settings.queue != "postgres":
        raise ConfigError("the worker needs the task queue: set COMPLAINTDESK_QUEUE=postgres and a "
                          "PostgreSQL COMPLAINTDESK_DATABASE_URL (then run complaintdesk init)")
    # The forkserver only forks the pool's process, once for the worker's life (again after a
    # crash): preloading the OCR modules there kept a 65 MB copy of them resident for a second's
    # gain at start. An empty list, not the default, which imports the `complaintdesk` script.
    multiprocessing.get_context("forkserver").set_forkserver_preload([])
    # Loading the model (open_context) left tens of MB free in the heap that a worker never reuses.
    cap_mmap_threshold(MAIN_MMAP_THRESHOLD)
    release_free_memory()
    # one OCR pool for the worker's life: a pool per job cost more than the job's page
    with ocr.OcrPool(ctx.settings.ocr) as pool:
        asyncio.run(_serve(replace(ctx, ocr_pool=pool), concurrency, drain, job))


async def _serve(ctx: RunContext, concurrency: int, drain: bool,
                 job: Callable[[RunContext, int], None]) -> None:
    from pgqueuer import DatabaseRetryEntrypointExecutor, Job, PsycopgDriver, Queries, QueueManager
    from pgqueuer.types import QueueExecutionMode

    url = make_url(ctx.settings.resolved_database_url).set(drivername="postgresql")
    try:
        connection = await psycopg.AsyncConnection.connect(
            url.render_as_string(hide_password=False), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as e:
        raise StorageError(f"the worker cannot reach the queue's database {ctx.db.url}: {e}") from e
    heartbeat = timedelta(seconds=ctx.settings.queue_heartbeat_seconds)
    running = asyncio.Semaphore(concurrency)

    def executor(parameters: Any) -> Any:
        # MAX_ATTEMPTS runs in all, as many as an item gets in-process before it counts as poison
        return DatabaseRetryEntrypointExecutor(
            parameters, max_attempts=MAX_ATTEMPTS - 1, max_delay=MAX_RETRY_DELAY,
            initial_delay=timedelta(seconds=ctx.settings.queue_retry_delay_seconds))

    async with connection:
        manager = QueueManager(Queries(PsycopgDriver(connection)))

        @manager.entrypoint(storage.queue.ENTRYPOINT, on_failure="hold", executor_factory=executor)
        async def _process(item: Job) -> None:
            assert item.payload is not None
            async with running:
                await asyncio.to_thread(job, ctx, int(item.payload.decode()))

        _stop_on_signals(manager.shutdown.set)
        log.warning("worker %s started: %d job(s) at a time on %s", manager.queue_manager_id, concurrency,
                    ctx.db.url)
        try:
            await manager.run(
                # one job fetched at a time (PgQueuer's floor for its cap is twice that): a busy
                # worker does not hoard jobs that an idle one could run
                batch_size=1, max_concurrent_tasks=max(2, concurrency),
                heartbeat_timeout=heartbeat, dequeue_timeout=min(heartbeat, timedelta(seconds=10)),
                mode=QueueExecutionMode.drain if drain else QueueExecutionMode.continuous)
        except RuntimeError as e:  # PgQueuer's verify_structure: tables or indexes missing
            raise StorageError(f"the queue's tables are not ready in {ctx.db.url} ({e}); "
                               "run complaintdesk init") from e
    log.warning("worker stopped")


def _stop_on_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
