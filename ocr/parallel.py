"""OCR of many files in a process pool that streams.

At most ``IN_FLIGHT_PER_WORKER`` jobs per worker are submitted at a time, and the job iterable is
consumed lazily, so a folder of 10,000 files costs the memory of a handful. Workers get the
settings explicitly (pickled with each job), read the file themselves (only the path crosses the
process boundary), and send back either an ``OcrResult`` or the ``ComplaintdeskError`` instance.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from ocr.read import read_document
from ocr.settings import OcrSettings
from pipeline.core.errors import ComplaintdeskError, OcrError, UnreadableScanError
from pipeline.core.model import OcrResult

K = TypeVar("K")

IN_FLIGHT_PER_WORKER = 2


def ocr_many(
    jobs: Iterable[tuple[K, Path] | tuple[K, Path, str]], settings: OcrSettings
) -> Iterator[tuple[K, OcrResult | ComplaintdeskError]]:
    """OCR each ``(key, path)`` in a process pool; yield ``(key, result or error)`` as each finishes.

    A job may name the file as people know it (``(key, path, name)``): originals are read from the
    blob store, whose file names are hashes, and error messages should name the scan.

    The pool has ``settings.workers`` processes (0 = one per core), each with ``OMP_THREAD_LIMIT=1``
    so Tesseract's own threads don't fight the pool. A worker that dies (killed, out of memory)
    turns its in-flight jobs into ``OcrError`` results and the pool is restarted.
    """
    workers = settings.workers or os.cpu_count() or 1
    limit = workers * IN_FLIGHT_PER_WORKER
    pending = iter(jobs)
    # forkserver: workers start from a clean process, not a fork of a parent holding threads.
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
    in_flight: dict[Future[OcrResult | ComplaintdeskError], K] = {}
    try:
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < limit:
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    break
                key, path, *name = job
                in_flight[pool.submit(_ocr_file, str(path), settings, *name)] = key
            if not in_flight:
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                key = in_flight.pop(future)
                result, broken = _outcome(future)
                if broken:
                    pool.shutdown(wait=False, cancel_futures=True)
                    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
                yield key, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker() -> None:
    # Tesseract (a child of this worker) reads it from the environment it inherits.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    import cv2

    cv2.setNumThreads(1)


def _ocr_file(path: str, settings: OcrSettings, name: str = "") -> OcrResult | ComplaintdeskError:
    name = name or Path(path).name
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return UnreadableScanError(f"{name}: cannot read the file ({e.strerror or e})")
    try:
        return read_document(data, name, settings)
    except ComplaintdeskError as e:
        return _plain(e)
    except Exception as e:  # noqa: BLE001 - one bad file must not end a batch of thousands
        return OcrError(f"{name}: unexpected {type(e).__name__} while reading: {e}")


def _plain(error: ComplaintdeskError) -> ComplaintdeskError:
    # The cause chain may hold third-party exceptions that do not pickle; the message says it all.
    copy = type(error)(str(error))
    return copy


def _outcome(future: Future[OcrResult | ComplaintdeskError]) -> tuple[OcrResult | ComplaintdeskError, bool]:
    try:
        return future.result(), False
    except BrokenProcessPool as e:
        return OcrError(f"the OCR worker died while reading this file ({e})"), True
    except Exception as e:  # noqa: BLE001 - e.g. a result that failed to pickle
        return OcrError(f"OCR worker failed: {type(e).__name__}: {e}"), False
