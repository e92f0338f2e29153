"""Scale-out: two `complaintdesk worker` processes on the PostgreSQL queue, one SIGKILLed halfway.

200 rendered slips are accepted and queued (the issue's test: OCR jobs, not typed text); two workers
process them; when half are done the worker that holds a running job is killed
with SIGKILL. Its jobs must be picked up by the other after the heartbeat timeout: 200 cases, one per
input, no job queued, running or failed, and every job the dead worker held finished.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

import storage
from ocr.synth import make_slip
from pipeline.context import RunContext
from pipeline.intake import accept_file
from tests.db_fixtures import postgres_schema_url
from tests.mail_support import make_context

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).parent / "complaintdesk")
TOTAL = 200
HEARTBEAT_SECONDS = 3
DEADLINE_SECONDS = 600


@pytest.fixture(params=["postgresql"])  # the parameter marks the tests "postgres" (tests/conftest.py)
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from postgres_schema_url()


@pytest.fixture
def queued(pg_url: str, tmp_path: Path) -> Iterator[RunContext]:
    """200 accepted slips, each with its job on the queue."""
    ctx = make_context(pg_url, tmp_path / "home")
    ctx.settings = ctx.settings.model_copy(update={"queue": "postgres"})
    slips = tmp_path / "slips"
    slips.mkdir()
    for i in range(TOTAL):
        words = f"Complaint {i}: the queue at window {i % 7} was very long and nobody explained why."
        path = slips / f"slip-{i:03d}.png"
        path.write_bytes(make_slip(words, seed=i, width=800, font_px=24))  # smaller: quicker to draw
        accept_file(ctx, path)
    yield ctx
    ctx.db.dispose()


def _worker(ctx: RunContext, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env |= {"COMPLAINTDESK_HOME": str(ctx.settings.home),
            "COMPLAINTDESK_DATABASE_URL": ctx.settings.database_url, "COMPLAINTDESK_QUEUE": "postgres",
            "COMPLAINTDESK_QUEUE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "COMPLAINTDESK_OCR_WORKERS": "1", "COMPLAINTDESK_OCR_LANGUAGES": "eng"}
    err = tmp_path / f"{name}.err"
    with err.open("wb") as stderr:  # a file, not a pipe: a stuck child must not hang the test
        proc = subprocess.Popen([EXE, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    return proc, err


def _manager_id(err: Path) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if found := re.search(r"worker ([0-9a-f-]{36}) started", err.read_text()):
            return found.group(1)
        time.sleep(0.2)
    pytest.fail(f"the worker did not start: {err.read_text()[-2000:]}")


def _done(ctx: RunContext) -> int:
    with ctx.db.reader() as session:
        return int(session.scalar(select(func.count()).where(storage.IntakeRecord.state == "done")) or 0)


def _unfinished(ctx: RunContext) -> bool:
    """Items not stored yet, or jobs not yet logged as finished (workers write those in batches)."""
    with ctx.db.reader() as session:
        counts = storage.queue.counts(session)
    return counts.done < TOTAL or counts.queued + counts.running > 0


def _held_by(ctx: RunContext, manager: str) -> list[int]:
    with ctx.db.reader() as session:
        return list(session.scalars(text("SELECT id FROM pgqueuer WHERE status = 'picked' "
                                         "AND queue_manager_id = CAST(:m AS uuid)"), {"m": manager}))


def test_two_workers_one_killed_halfway_lose_nothing_and_store_nothing_twice(
    queued: RunContext, tmp_path: Path
) -> None:
    ctx = queued
    workers = [_worker(ctx, tmp_path, "a"), _worker(ctx, tmp_path, "b")]
    try:
        ids = [_manager_id(err) for _, err in workers]
        deadline = time.monotonic() + DEADLINE_SECONDS
        while _done(ctx) < TOTAL // 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        # kill whichever worker holds a job right now (SIGKILL: no clean-up, its jobs stay "picked")
        victim, held = None, []
        while victim is None and time.monotonic() < deadline:
            for n, manager in enumerate(ids):
                if held := _held_by(ctx, manager):
                    victim = n
                    break
            else:
                time.sleep(0.05)
        assert victim is not None, "no worker held a job"
        workers[victim][0].send_signal(signal.SIGKILL)
        workers[victim][0].wait(timeout=30)

        while _unfinished(ctx) and time.monotonic() < deadline:
            time.sleep(0.5)
        with ctx.db.reader() as session:
            counts = storage.queue.counts(session)
            cases = session.scalar(select(func.count()).select_from(storage.Case))
            distinct = session.scalar(select(func.count(func.distinct(storage.IntakeRecord.case_id))))
            outcomes = dict(session.execute(select(storage.IntakeRecord.outcome, func.count())
                                            .group_by(storage.IntakeRecord.outcome)).all())
            finished = set(session.scalars(text(
                "SELECT job_id FROM pgqueuer_log WHERE status = 'successful' AND job_id = ANY(:ids)"),
                {"ids": held}))
    finally:
        for proc, _ in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    assert outcomes == {"created": TOTAL}, (workers[1 - victim][1].read_text()[-3000:])
    assert (cases, distinct) == (TOTAL, TOTAL)  # one case per input: nothing lost, nothing twice
    assert (counts.queued, counts.running, counts.failed, counts.done) == (0, 0, 0, TOTAL)
    # the dead worker's jobs were finished by the other one (each logged successful, none stuck)
    assert held and finished == set(held)
