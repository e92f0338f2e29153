"""Helpers for the e-mail tests: a RunContext on a real DB with the real bundled model, sample messages."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import classifiers
import storage
from ocr.settings import OcrSettings
from pipeline.config import Settings
from pipeline.context import RunContext

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "pipeline" / "samples" / "emails"


@functools.cache
def bundled_model() -> classifiers.SpacyClassifier:
    """The trained model shipped in ``classifiers/model`` (``make model``), loaded once per process.

    Loading takes about half a second, training even the small fixture model longer, so the mail
    integration tests share this one; a forked poller child inherits it already loaded.
    """
    return classifiers.load_model(classifiers.BUNDLED_MODEL_DIR)


def make_context(db_url: str, home: Path, *, classifier: classifiers.Classifier | None = None) -> RunContext:
    """A RunContext on a migrated database with the real bundled model (or ``classifier``)."""
    storage.migrate(db_url)
    settings = Settings(home=home, database_url=db_url, ocr=OcrSettings(languages="eng", workers=1))
    home.mkdir(parents=True, exist_ok=True)
    return RunContext(settings, storage.open_database(db_url), storage.BlobStore(settings.blob_dir),
                      classifier or bundled_model(), actor="test")


def queue_context(db_url: str, home: Path) -> RunContext:
    """``make_context`` with the PostgreSQL task queue on, heartbeats of 2 s and no retry delay."""
    context = make_context(db_url, home)
    context.settings = context.settings.model_copy(
        update={"queue": "postgres", "queue_heartbeat_seconds": 2.0, "queue_retry_delay_seconds": 0.0})
    return context


def queue_counts(ctx: RunContext) -> storage.queue.QueueCounts:
    with ctx.db.reader() as session:
        return storage.queue.counts(session)


def complaint(n: int, *, subject: str = "", body: str = "", mid: str = "", **headers: str) -> bytes:
    """A small distinct text complaint."""
    m = EmailMessage()
    m["From"] = f"Citizen {n} <citizen{n}@example.org>"
    m["To"] = "desk@center.example"
    m["Subject"] = subject or f"Complaint {n}: long queue at window {n % 9 + 1}"
    m["Date"] = format_datetime(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    m["Message-ID"] = mid or f"<c{n}-{uuid.uuid4().hex[:10]}@example.org>"
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body or f"I waited {n} minutes at window {n % 9 + 1} and nobody helped me. Ticket {n}.")
    return m.as_bytes()


def case_count(ctx: RunContext) -> int:
    with ctx.db.session() as s:
        return len(storage.list_cases(s))


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Return once ``condition()`` is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
