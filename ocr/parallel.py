"""OCR of many files in a process pool that streams.

At most ``IN_FLIGHT_PER_WORKER`` jobs per worker are submitted at a time, and the job iterable is
consumed lazily, so a folder of 10,000 files costs the memory of a handful. Workers get the
settings explicitly (pickled with each job), read the file themselves (only the path crosses the
process boundary), and send back either an ``OcrResult`` or the ``ComplaintdeskError`` instance.

Stopping is the owner's job: workers ignore SIGINT, and when ``ocr_many`` ends early (Ctrl-C, an
error, the generator closed) it kills them instead of waiting for their pages. Workers die with
their owner too when it cannot clean up (``kill -9``): a parent-death signal from the forkserver
and a thread watching the owner's pid. Without that they block forever on the pool's queue, whose
other end they hold themselves, and keep the forkserver alive.

Memory: a worker imports the OCR modules itself (the owner and the forkserver never read a page, so
they do not load OpenCV or ONNX Runtime), serves page-sized blocks from mappings of their own, and
gives the heap's free pages back after each file (``pipeline.core.memory``): between pages it holds
its sessions and modules, not the high-water mark of the hardest page read so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

from ocr.settings import OcrSettings, effective_policy
from pipeline.core.errors import ComplaintdeskError, OcrError, UnreadableScanError
from pipeline.core.memory import cap_mmap_threshold, release_free_memory
from pipeline.core.model import OcrResult

K = TypeVar("K")

IN_FLIGHT_PER_WORKER = 2
#: how often a worker checks that the process that owns the pool is still alive
OWNER_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # <sys/prctl.h>
#: blocks from this size up (a slip's page-sized arrays, PP-OCR's detection tensors) get a mapping of
#: their own in a worker, unmapped when freed. Measured on one process reading 30 slips: glibc's
#: default peaked at 470-510 MB, 16 MiB at 422, 8 MiB at 395; 1 MiB at 329, but the page faults of
#: its fresh mappings cost a third more CPU.
MMAP_THRESHOLD = 8 * 2**20


class OcrPool:
    """OCR worker processes that outlive one ``ocr_many`` call.

    ``scan`` reads a whole folder in one call, so a pool per call is right there. A queue worker
    calls ``ocr_many`` once per job, for one or two pages: starting a pool each time (a process from
    the forkserver, its PP-OCR sessions) took longer than reading the page, and two pools could be
    alive at once. The worker opens one ``OcrPool`` for its life and its jobs (threads) share it.
    """

    def __init__(self, settings: OcrSettings) -> None:
        self.settings = settings
        self.workers = settings.workers or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        """The pool's executor, started on first use."""
        with self._lock:
            if self._executor is None:
                self._executor = _new_pool(self.workers, multiprocessing.get_context("forkserver"),
                                           effective_policy(self.settings) != "tesseract",
                                           self.settings.threads)
            return self._executor

    def replace(self, broken: ProcessPoolExecutor) -> None:
        """A worker died and broke ``broken``: stop it and start afresh, once, whoever noticed first."""
        with self._lock:
            if self._executor is broken:
                _stop(broken)
                self._executor = None

    def close(self, *, kill: bool = False) -> None:
        """Wait for the pages in hand, or with ``kill`` stop the workers at once."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            if kill:
                _stop(executor)
            else:
                executor.shutdown(wait=True)

    def __enter__(self) -> OcrPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)


def ocr_many(
    jobs: Iterable[tuple[K, Path] | tuple[K, Path, str]], settings: OcrSettings, *,
    pool: OcrPool | None = None,
) -> Iterator[tuple[K, OcrResult | ComplaintdeskError]]:
    """OCR each ``(key, path)`` in a process pool; yield ``(key, result or error)`` as each finishes.

    A job may name the file as people know it (``(key, path, name)``): originals are read from the
    blob store, whose file names are hashes, and error messages should name the scan.

    The pool has ``settings.workers`` processes (0 = one per core), each giving Tesseract
    ``OMP_THREAD_LIMIT=settings.threads`` (default 1, so Tesseract's own threads don't fight the pool)
    and PP-OCR as many ONNX Runtime threads; each worker makes its PP-OCR sessions once, when it
    starts. A worker that dies (killed, out of memory) turns its in-flight jobs into ``OcrError``
    results and the pool is restarted. If the caller stops early (KeyboardInterrupt, an error, or
    closing the generator) the workers and their Tesseract children are killed at once, not waited
    for; no process of the pool outlives it. With a shared ``pool`` (an ``OcrPool`` the caller
    owns) the call starts no processes of its own; stopping early only cancels its own waiting jobs.
    """
    own = pool is None
    shared = pool if pool is not None else OcrPool(settings)
    limit = shared.workers * IN_FLIGHT_PER_WORKER
    pending = iter(jobs)
    in_flight: dict[Future[OcrResult | ComplaintdeskError], tuple[K, ProcessPoolExecutor]] = {}
    completed = False
    try:
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < limit:
                job = next(pending, None)
                if job is None:
                    exhausted = True
                    break
                key, path, *name = job
                executor = shared.executor()
                in_flight[executor.submit(_ocr_file, str(path), settings, *name)] = key, executor
            if not in_flight:
                completed = True
                return
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                key, ran_in = in_flight.pop(future)
                result, broken = _outcome(future)
                # The other jobs of a broken pool fail too; restart once, not for each of them.
                if broken:
                    shared.replace(ran_in)
                yield key, result
    finally:
        if own:
            shared.close(kill=not completed)
        else:
            for future in in_flight:
                future.cancel()


def _new_pool(workers: int, context: multiprocessing.context.BaseContext, ppocr: bool,
              threads: int = 1) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(os.getpid(), ppocr, threads)
    )


def _stop(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers (and their Tesseract runs) without waiting for the jobs in hand."""
    with _sigint_deferred():
        # shutdown(wait=True) would wait for every job already in a worker: up to timeout_seconds
        # per page, and forever if a worker is stuck. The executor keeps its processes private.
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():  # a dead worker's pid may already belong to someone else
                _kill_group(process.pid)
        for process in processes:
            process.join(timeout=5)


def _kill_group(pid: int | None) -> None:
    if pid is None:
        return
    try:
        # Each worker leads its own process group (``_init_worker``), with its Tesseract inside.
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        # Not yet a group leader (still starting up): the worker alone.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    # A second Ctrl-C while the workers are being killed must not abandon half of them.
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(owner: int, ppocr: bool = False, threads: int = 1) -> None:
    """Set up a worker: no Ctrl-C of its own, ``threads`` threads (``[ocr] threads``) for Tesseract,
    OpenCV and ONNX Runtime, and death with the process that owns the pool.

    ``owner`` is the pid of the process running ``ocr_many``; the worker's parent is the forkserver.
    With ``ppocr`` the worker makes its PP-OCR sessions now, once: every page it reads reuses them.
    """
    # Ctrl-C reaches the whole foreground process group. A worker interrupted inside the pool's
    # queue code can leave its lock taken and hang the pool; the owner handles Ctrl-C and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Its own process group, so the owner can kill a worker together with its Tesseract run.
    os.setpgid(0, 0)
    _die_with_parent()
    threading.Thread(target=_watch_owner, args=(owner,), name="watch-owner", daemon=True).start()
    # Tesseract (a child of this worker) reads it from the environment it inherits.
    os.environ["OMP_THREAD_LIMIT"] = str(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    # Before the imports and sessions: their big blocks are placed by it too.
    cap_mmap_threshold(MMAP_THRESHOLD)
    import cv2

    # Imported here, not at the top: the owner imports this module to run the pool, not to read.
    import ocr.read  # noqa: F401, PLC0415 - loaded once now, not on the first page
    from ocr.ppocr import ppocr_engine  # noqa: PLC0415

    cv2.setNumThreads(threads)
    if ppocr:
        with contextlib.suppress(ComplaintdeskError):
            ppocr_engine(threads)  # a missing model is reported on the first page, as an error result
    release_free_memory()


def _die_with_parent() -> None:
    # Linux: SIGKILL when the forkserver that forked us exits. Not enough alone: the forkserver
    # lives as long as any worker holds its "alive" pipe, so the owner is also watched.
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _watch_owner(owner: int) -> None:
    # A killed owner (kill -9, OOM killer) cannot clean up: its workers would block forever on a
    # queue whose other end they hold themselves. Leave, with any Tesseract run of ours.
    while _alive(owner):
        time.sleep(OWNER_POLL_SECONDS)
    with contextlib.suppress(OSError):
        os.killpg(0, signal.SIGKILL)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A killed process stays a zombie until its parent reaps it, and a zombie still "exists".
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] not in (["Z"], ["X"])


def _ocr_file(path: str, settings: OcrSettings, name: str = "") -> OcrResult | ComplaintdeskError:
    try:
        return _read_file(path, settings, name)
    finally:
        # A hard page leaves the heap at its high-water mark; the next page may be an easy one.
        release_free_memory()


def _read_file(path: str, settings: OcrSettings, name: str) -> OcrResult | ComplaintdeskError:
    from ocr.read import read_document  # noqa: PLC0415 - imported by ``_init_worker`` already

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
