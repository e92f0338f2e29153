"""Helpers for the e-mail tests: a keyword classifier (fast, deterministic) and a RunContext on a real DB."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import storage
from ocr.settings import OcrSettings
from pipeline.config import Settings
from pipeline.core.model import Classification, Label
from pipeline.context import RunContext

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "pipeline" / "samples" / "emails"


@dataclass(frozen=True)
class _LabelSet:
    name: str
    labels: tuple[str, ...]
    threshold: float = 0.5


@dataclass
class KeywordClassifier:
    """Stands in for the spaCy model at the classifier seam: keyword rules, version ``test-kw``."""

    version: str = "test-kw"
    label_sets: tuple[_LabelSet, ...] = field(default_factory=lambda: (
        _LabelSet("department", ("window_services", "facilities", "general")),
        _LabelSet("sentiment", ("negative", "neutral", "positive")),
        _LabelSet("kind", ("complaint", "suggestion", "praise", "question")),
    ))
    calls: list[int] = field(default_factory=list)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls.append(len(texts))
        return [self._one(t.lower()) for t in texts]

    def _one(self, text: str) -> Classification:
        dept = "window_services" if ("window" in text or "窗口" in text) else (
            "facilities" if any(w in text for w in ("toilet", "elevator", "soap", "lights")) else "general")
        kind = "suggestion" if ("suggest" in text or "please" in text) else "complaint"
        labels = {
            "department": Label("department", dept, 0.9, {dept: 0.9}),
            "sentiment": Label("sentiment", "negative", 0.8, {"negative": 0.8}),
            "kind": Label("kind", kind, 0.85, {kind: 0.85}),
        }
        return Classification(labels, self.version)


def make_context(db_url: str, home: Path, *, classifier: KeywordClassifier | None = None) -> RunContext:
    """A RunContext on a migrated database with the keyword classifier."""
    storage.migrate(db_url)
    settings = Settings(home=home, database_url=db_url, ocr=OcrSettings(languages="eng", workers=1))
    home.mkdir(parents=True, exist_ok=True)
    return RunContext(settings, storage.open_database(db_url), storage.BlobStore(settings.blob_dir),
                      classifier or KeywordClassifier(), actor="test")  # type: ignore[arg-type]


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
