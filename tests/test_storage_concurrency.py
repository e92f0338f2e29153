"""Readers are not held up by a long batch writing in another process, and cannot write themselves.

The writer is a subprocess that mimics a scan batch: many write transactions, each held ~100 ms
(as storing a case with its documents and audit event can take on a slow disk). Meanwhile the test
reads cases through ``db.reader()`` in a loop. Before readers had their own deferred transactions,
every read on SQLite took the write lock with ``BEGIN IMMEDIATE`` and queued behind the writer.
The latency test runs on SQLite only: PostgreSQL readers never wait for writers (MVCC), and its
latency on a loaded CI machine would measure the machine, not locking.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

import storage

ROOT = Path(__file__).resolve().parent.parent
WRITES = 50
HOLD_SECONDS = 0.1
P95_LIMIT_SECONDS = 0.050

WRITER = """
import sys, time
import storage
from pipeline.core.model import Channel, IntakeItem, PageText, Source

url, writes, hold, ready = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
db = storage.open_database(url)
items = []
for n in range(writes):  # built beforehand: the lock is free only for the moment between two transactions
    body = f"batch slip {n}: the lift in building {n} has been broken for a week"
    source = Source.from_bytes(Channel.slip, f"batch/{n}.png", body.encode(), "image/png")
    items.append(IntakeItem(source=source, text=body, language="en", pages=(PageText(1, body, 90.0),)))
for n, item in enumerate(items):
    with db.session() as session:
        storage.create_case(session, item, due_days=15, actor="batch")
        if n == 0:
            open(ready, "w").close()
        time.sleep(hold)  # the rest of a slow transaction: the write lock stays held
db.dispose()
"""


def _start_writer(db_url: str, ready: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, db_url, str(WRITES), str(HOLD_SECONDS), str(ready)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def _read_once(db: storage.Database) -> int:
    """A small read (the newest cases' references): its time is lock waits, not ORM work."""
    with db.reader() as session:
        return len([c.reference for c in storage.list_cases(session, limit=5)])


@pytest.mark.slow
def test_sqlite_readers_are_not_blocked_by_a_long_writer(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'complaintdesk.db'}"
    storage.migrate(db_url)
    ready = tmp_path / "writer-started"
    writer = _start_writer(db_url, ready)
    db = storage.open_database(db_url)
    latencies: list[float] = []
    failures: list[BaseException] = []
    seen: list[int] = []
    pauses = random.Random(4)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert writer.poll() is None, writer.communicate()[1].decode()
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.01)
        while writer.poll() is None:
            started = time.perf_counter()
            try:
                seen.append(_read_once(db))
            except storage.StorageError as e:
                failures.append(e)
            latencies.append(time.perf_counter() - started)
            # at random moments, like people opening cases: a fixed rhythm could fall into step
            # with the writer's (a reader retrying its lock first starves the writer instead)
            time.sleep(pauses.uniform(0, HOLD_SECONDS))
    finally:
        _, err = writer.communicate(timeout=120)
        db.dispose()
    assert writer.returncode == 0, err.decode()
    assert failures == []
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"{len(latencies)} reads, median {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {p95 * 1000:.1f} ms")
    assert p95 < P95_LIMIT_SECONDS, (
        f"p95 read latency {p95 * 1000:.0f} ms over {len(latencies)} reads (slowest {max(latencies):.2f} s)"
    )
    assert len(latencies) >= 30, "the writer finished before the readers got going"
    assert seen == sorted(seen)  # each read is a consistent snapshot of a growing table
    assert _read_once(storage.open_database(db_url)) == 5


def test_reader_cannot_write(db: storage.Database) -> None:
    with pytest.raises(storage.StorageError), db.reader() as session:
        session.add(storage.QuarantineRecord(channel="slip", source_name="x", sha256="c" * 64, reason="r",
                                             error_type="E"))
        session.flush()
    with db.reader() as session:
        assert storage.find_quarantine_by_sha256(session, "c" * 64) is None
    with db.session() as session:  # the pooled connection is writable again for a write session
        session.add(storage.QuarantineRecord(channel="slip", source_name="x", sha256="c" * 64, reason="r",
                                             error_type="E"))
    with db.reader() as session:
        assert storage.find_quarantine_by_sha256(session, "c" * 64) is not None


def test_reader_sees_a_snapshot_while_a_writer_holds_the_lock(db: storage.Database) -> None:
    with db.session() as writer:
        writer.add(storage.QuarantineRecord(channel="slip", source_name="x", sha256="d" * 64, reason="r",
                                            error_type="E"))
        writer.flush()  # the write lock is held (SQLite) and the row is not committed
        started = time.perf_counter()
        with db.reader() as session:
            assert storage.find_quarantine_by_sha256(session, "d" * 64) is None
        assert time.perf_counter() - started < 1.0
    with db.reader() as session:
        assert storage.find_quarantine_by_sha256(session, "d" * 64) is not None
