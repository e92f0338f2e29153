"""The OCR process pool: a mixed batch gives one result or error per job, and streams its input."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocr import OcrPool, ocr_many
from ocr.settings import OcrSettings
from ocr.synth import Degradation, make_slip
from pipeline.core.errors import DecompressionBombError, UnreadableScanError, UnsupportedFormatError
from pipeline.core.model import OcrResult
from tests.ocr_fixtures import png_bytes, png_declaring

pytestmark = pytest.mark.slow

SETTINGS = OcrSettings(languages="eng", preprocess=["grayscale", "deskew"], workers=2)


def test_mixed_batch_returns_results_and_errors_keyed_by_job(tmp_path: Path) -> None:
    files = {
        "good1": ("a.png", make_slip("The elevator near the east entrance is broken again.", seed=1)),
        "good2": ("b.jpg", make_slip("Window 3 staff were helpful and quick.", Degradation(angle=2), seed=2)),
        "empty": ("c.png", b""),
        "truncated": ("d.png", png_bytes(300, 300)[:100]),
        "text": ("e.txt", b"just some words"),
        "bomb": ("f.png", png_declaring(9000, 9000)),
    }
    jobs = []
    for key, (name, data) in files.items():
        (tmp_path / name).write_bytes(data)
        jobs.append((key, tmp_path / name))
    jobs.append(("missing", tmp_path / "nowhere.png"))

    results = dict(ocr_many(jobs, SETTINGS))

    assert set(results) == {key for key, _ in jobs}
    assert isinstance(results["good1"], OcrResult) and "elevator" in results["good1"].text
    assert isinstance(results["good2"], OcrResult) and "helpful" in results["good2"].text
    assert isinstance(results["empty"], UnreadableScanError)
    assert isinstance(results["truncated"], UnreadableScanError)
    assert isinstance(results["text"], UnsupportedFormatError)
    assert isinstance(results["bomb"], DecompressionBombError)
    assert isinstance(results["missing"], UnreadableScanError) and "cannot read" in str(results["missing"])


def test_jobs_are_consumed_lazily(tmp_path: Path) -> None:
    # The pool must not drain the job iterator up front: that is what keeps 10,000 files flat.
    path = tmp_path / "one.png"
    path.write_bytes(make_slip("Short slip.", seed=3))
    pulled = []

    def jobs() -> Iterator[tuple[int, Path]]:
        for i in range(12):
            pulled.append(i)
            yield i, path

    stream = ocr_many(jobs(), SETTINGS)
    first = next(stream)
    assert isinstance(first[1], OcrResult)
    assert len(pulled) <= 2 * SETTINGS.workers + 2
    rest = list(stream)
    assert sorted([first[0]] + [key for key, _ in rest]) == list(range(12))


@pytest.mark.slow
def test_ctrl_c_reaching_the_workers_neither_breaks_nor_hangs_the_pool(tmp_path: Path) -> None:
    # Ctrl-C goes to the whole foreground process group, workers included. A worker interrupted in the
    # pool's queue code died or left a lock taken (a scan hung in one try of five); workers now ignore
    # it and the owner alone decides. Here SIGINT reaches the workers only, while they have jobs.
    import os
    import signal
    import time

    import psutil

    paths = []
    for i in range(6):
        path = tmp_path / f"slip{i}.png"
        path.write_bytes(make_slip(f"Slip {i}: the lift in hall B is broken again, please fix it.", seed=i))
        paths.append(path)
    results = ocr_many(((p.name, p) for p in paths), SETTINGS)
    done = [next(results)]
    workers = [p for p in psutil.Process().children(recursive=True) if "python" in p.name().lower()]
    assert workers, "no worker process found"
    for _ in range(3):
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):  # a worker that finished its jobs and left
                os.kill(worker.pid, signal.SIGINT)
        time.sleep(0.2)
    started = time.monotonic()
    done += list(results)
    assert time.monotonic() - started < 120
    errors = [(key, result) for key, result in done if not isinstance(result, OcrResult)]
    assert len(done) == len(paths) and errors == []


def test_a_shared_pool_reads_for_many_calls_with_the_same_processes(tmp_path: Path) -> None:
    # A queue worker calls ocr_many once per job: the pool's processes (and their PP-OCR
    # sessions) must outlive the call, and go when the pool is closed.
    paths = []
    for i, words in enumerate(("The lift is broken.", "Window 5 was closed.")):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(make_slip(words, seed=10 + i))
    settings = OcrSettings(languages="eng", workers=1)
    with OcrPool(settings) as pool:
        first = dict(ocr_many([("a", paths[0])], settings, pool=pool))
        workers = _pool_processes(pool)
        second = dict(ocr_many([("b", paths[1])], settings, pool=pool))
        assert _pool_processes(pool) == workers and len(workers) == 1
    assert isinstance(first["a"], OcrResult) and "lift" in first["a"].text
    assert isinstance(second["b"], OcrResult) and "closed" in second["b"].text
    assert not any(_running(pid) for pid in workers)


def _pool_processes(pool: OcrPool) -> set[int]:
    """The pids of the pool's worker processes (the executor keeps them private)."""
    return set(getattr(pool.executor(), "_processes", {}))


def _running(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
