"""The web app's embedded processing of uploads: one thread that runs the intake service's ``process``
on what the upload page accepted, so OCR never runs on the event loop or in a request.

Used when no task queue is configured (with ``COMPLAINTDESK_QUEUE=postgres`` ``accept`` already queued
a job per file and ``complaintdesk worker`` processes them). Batches run one after another, each with
the bounded OCR process pool of ``pipeline.intake``. The run context (database, blob store, model) is
opened on the first batch, so a web app nobody uploads to never loads the model. A batch that fails
(Tesseract missing, no model, the database down) keeps its error on its intake rows, which the upload
list shows; they stay ``received`` and ``complaintdesk resume``, or the next batch, finishes them.
Every outcome is counted in this process's metrics (``pipeline.metrics``, served by ``serve
--metrics-port``), as the worker counts its jobs'.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Callable, Sequence

import storage
from pipeline import intake, metrics
from pipeline.context import RunContext
from pipeline.core.errors import ComplaintdeskError

log = logging.getLogger(__name__)


class Processor:
    """Runs ``intake.process_many`` for batches of intake ids in one background thread."""

    def __init__(self, open_context: Callable[[], RunContext]) -> None:
        self._open_context = open_context
        self._context: RunContext | None = None
        self._lock = threading.Lock()
        self._batches: queue.Queue[tuple[str, list[int]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def context(self) -> RunContext:
        """The run context, opened on first use (from any thread; also what uploads are accepted with)."""
        with self._lock:
            if self._context is None:
                self._context = self._open_context()
            return self._context

    def submit(self, actor: str, ids: Sequence[int]) -> None:
        """Queue ``ids`` (accepted by ``actor``, who is recorded on their cases) for processing."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="upload-processing", daemon=True)
                self._thread.start()
        self._batches.put((actor, list(ids)))

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every submitted batch is processed; False if ``timeout`` seconds passed first."""
        done = threading.Event()

        def join() -> None:
            self._batches.join()
            done.set()

        threading.Thread(target=join, daemon=True).start()
        return done.wait(timeout)

    def close(self) -> None:
        """Stop after the running batch (batches not started stay ``received``, for ``resume``)."""
        if self._thread is not None:
            self._batches.put(None)
            self._thread.join(timeout=5)
        if self._context is not None:
            self._context.db.dispose()

    def _run(self) -> None:
        while (batch := self._batches.get()) is not None:
            try:
                self._process(*batch)
            finally:
                self._batches.task_done()
        self._batches.task_done()

    def _process(self, actor: str, ids: list[int]) -> None:
        try:
            ctx = dataclasses.replace(self.context(), actor=actor)
            for resumed in intake.resume(ctx, idle_for=intake.RESUME_IDLE):  # what a crash left, as scans do
                metrics.record(resumed)
            for outcome in metrics.record_batch(intake.process_many(ctx, ids)):
                log.info("upload %s: %s %s", outcome.source.name, outcome.kind,
                         outcome.reference or outcome.reason)
        except ComplaintdeskError as e:  # process_many noted it on the rows it had; the context's own too
            log.error("processing %d uploads stopped: %s", len(ids), e)
            self._note(ids, f"{type(e).__name__}: {e}")
        except Exception as e:  # a bug: the thread lives on for the next batch, the rows say what happened
            log.exception("processing %d uploads failed", len(ids))
            self._note(ids, f"{type(e).__name__}: {e}")

    def _note(self, ids: list[int], error: str) -> None:
        if self._context is None:
            return
        try:
            with self._context.db.session() as session:
                for intake_id in ids:
                    storage.record_failure(session, intake_id, error)
        except storage.StorageError:
            log.exception("could not record the error on %d intake items", len(ids))
