"""Helpers for the e-mail tests: a RunContext on a real DB with the real bundled model, sample messages,
and a real SMTP server on loopback (``smtp_relay``, or the ``relay`` fixture) that keeps what it gets."""

from __future__ import annotations

import functools
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

import classifiers
import storage
from ocr.settings import OcrSettings
from pipeline.config import Settings
from pipeline.context import RunContext
from pipeline.mail.settings import Security, SmtpSettings

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


@dataclass(frozen=True)
class Envelope:
    """One message as the relay got it: the envelope's recipients (RCPT TO) and the bytes (DATA)."""

    rcpt_tos: list[str]
    content: bytes


@dataclass
class Relay:
    """A real SMTP server (aiosmtpd) on loopback and the messages it received."""

    port: int
    envelopes: list[Envelope] = field(default_factory=list)

    @property
    def received(self) -> list[bytes]:
        """The bytes of each message received, in order."""
        return [e.content for e in self.envelopes]

    @property
    def settings(self) -> SmtpSettings:
        """SMTP settings that send to this relay, without TLS or login."""
        return SmtpSettings(host="127.0.0.1", port=self.port, security=Security.none,
                            from_address="desk@center.example", timeout_seconds=5)


@contextmanager
def smtp_relay(port: int | None = None) -> Iterator[Relay]:
    """Run a relay on ``port`` (default: a free one) until the block ends."""
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    relay = Relay(port)

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
            relay.envelopes.append(Envelope(list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield relay
    finally:
        controller.stop()


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A relay for one test (import it into the test module as a fixture)."""
    with smtp_relay() as got:
        yield got
