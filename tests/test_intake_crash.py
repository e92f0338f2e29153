"""Crash safety of the intake service, end to end: real processes, real Tesseract, SIGKILL, resume.

Every input ends as exactly one case: none lost after a ``kill -9`` in the middle of processing,
none duplicated when two scans of one folder run at once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocr.synth import CLEAN, make_slip
from tests.mail_support import complaint

EXE = str(Path(sys.executable).parent / "complaintdesk")
TOPICS = ("the queue screen", "the toilets on floor 2", "the bank counter", "the metro exit B", "the lift",
          "the parking lot", "the printer at window 4", "the air conditioning")

pytestmark = pytest.mark.slow


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env |= {"COMPLAINTDESK_HOME": str(home), "COLUMNS": "200"}
    return env


def _slips(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        text = f"Slip {i}: {TOPICS[i % len(TOPICS)]} is broken again, please repair it. Number {i * 37}."
        path = folder / f"slip{i:03d}.png"
        path.write_bytes(make_slip(text, CLEAN, seed=i))
        paths.append(path)
    return paths


def _count(home: Path, sql: str) -> int:
    db = home / "complaintdesk.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


def _kill_when(proc: subprocess.Popen[str], ready: callable, timeout: float = 300) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be killed:\n{proc.communicate()}"
        assert time.monotonic() < deadline, "never reached the point to kill it"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()  # reaps it and closes its pipes


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], env=_env(home), capture_output=True, text=True, timeout=900)


def _start(home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([EXE, *args], env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def test_kill_9_while_processing_scans_then_resume_gives_each_slip_one_case(tmp_path: Path) -> None:
    home = tmp_path / "home"
    slips = _slips(tmp_path / "box", 40)
    assert _run(home, "init").returncode == 0
    proc = _start(home, "scan", str(tmp_path / "box"))
    _kill_when(proc, lambda: _count(home, "SELECT count(*) FROM cases") >= 3)
    accepted = _count(home, "SELECT count(*) FROM intake_items")
    unfinished = _count(home, "SELECT count(*) FROM intake_items WHERE state = 'received'")
    assert accepted == 40 and unfinished > 0, (accepted, unfinished)  # all accepted, some not processed

    resumed = _run(home, "resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert len(resumed.stdout.splitlines()) == unfinished
    assert _count(home, "SELECT count(*) FROM cases") == 40
    assert _count(home, "SELECT count(DISTINCT sha256) FROM cases") == 40
    assert _count(home, "SELECT count(*) FROM intake_items WHERE state = 'done'") == 40

    again = _run(home, "scan", "--json", *map(str, slips))
    assert again.returncode == 0 and again.stdout.count('"matched"') == 40
    assert _count(home, "SELECT count(*) FROM cases") == 40


def test_two_scans_of_one_folder_at_once_store_each_slip_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _slips(tmp_path / "box", 12)
    assert _run(home, "init").returncode == 0
    procs = [_start(home, "scan", "--json", str(tmp_path / "box")) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert _count(home, "SELECT count(*) FROM cases") == 12
    assert _count(home, "SELECT count(*) FROM intake_items") == 12
    for out, _ in outs:  # each scan reports every slip, as created or matched
        assert out.count('"created"') + out.count('"matched"') == 12


def test_kill_9_during_a_mail_batch_then_resume_gives_each_message_one_case(tmp_path: Path) -> None:
    home = tmp_path / "home"
    box = tmp_path / "mail"
    box.mkdir()
    for n in range(400):
        (box / f"{n:04d}.eml").write_bytes(complaint(n))
    assert _run(home, "init").returncode == 0
    proc = _start(home, "mail", "import", str(box))
    _kill_when(proc, lambda: _count(home, "SELECT count(*) FROM cases") >= 100)
    assert _count(home, "SELECT count(*) FROM cases") < 400, "the import finished before the kill"
    _run(home, "resume")
    again = _run(home, "mail", "import", str(box))
    assert again.returncode == 0, again.stderr
    assert _count(home, "SELECT count(*) FROM cases") == 400
    assert _count(home, "SELECT count(DISTINCT sha256) FROM cases") == 400
    assert _count(home, "SELECT count(*) FROM intake_items WHERE state = 'done'") == 400


def test_cases_can_be_read_while_a_real_scan_runs(tmp_path: Path) -> None:
    # issue 9: with the poller's OCR inside a transaction, a web page waited for the busy timeout
    import random
    import statistics

    import storage

    home = tmp_path / "home"
    _slips(tmp_path / "box", 16)
    assert _run(home, "init").returncode == 0
    scan = _start(home, "scan", str(tmp_path / "box"))
    db = storage.open_database(f"sqlite:///{home / 'complaintdesk.db'}")
    latencies: list[float] = []
    pauses = random.Random(9)
    try:
        while scan.poll() is None:
            started = time.perf_counter()
            with db.reader() as session:  # a failure raises: no read may fail
                [storage.case_to_dict(c) for c in storage.list_cases(session, limit=20)]
            latencies.append(time.perf_counter() - started)
            time.sleep(pauses.uniform(0, 0.1))
    finally:
        out, err = scan.communicate(timeout=900)
        db.dispose()
    assert scan.returncode == 0, err
    assert _count(home, "SELECT count(*) FROM cases") == 16
    p95 = statistics.quantiles(latencies, n=20)[-1]
    print(f"{len(latencies)} reads during the scan, p95 {p95 * 1000:.1f} ms")
    assert len(latencies) >= 30 and p95 < 0.050, (len(latencies), p95)
