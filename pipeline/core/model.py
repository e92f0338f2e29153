"""The unit of work that flows through intake -> OCR/parse -> classify -> store.

Each stage returns a small result type (``OcrResult``, ``Classification``, fields) and the runner
folds it into the ``IntakeItem`` with ``dataclasses.replace``; stages never share mutable state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Channel(StrEnum):
    """How a complaint reached the center."""

    slip = "slip"  # a scanned suggestion-box slip
    email = "email"  # a message from the public inbox
    web = "web"  # an upload through the web app
    manual = "manual"  # hotline or opinion book, typed in by staff


@dataclass(frozen=True, slots=True)
class Source:
    """Where an item came from: its channel, its name and the hash of its original bytes."""

    channel: Channel
    name: str  # file name, or the Message-ID of an e-mail
    sha256: str  # of the original bytes, exactly as received
    size: int
    media_type: str = "application/octet-stream"
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_bytes(cls, channel: Channel, name: str, data: bytes, media_type: str = "") -> Source:
        return cls(
            channel=channel,
            name=name,
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            media_type=media_type or "application/octet-stream",
        )


@dataclass(frozen=True, slots=True)
class OcrWord:
    """One word an OCR engine read, where it stands on the page, and how sure the engine was (0-100).

    Form parsing locates the printed parts of a slip by these boxes, so they are in the pixels of
    the image the engine read (``PageText.size``), after preprocessing (deskewed, rescaled).
    """

    text: str
    confidence: float
    box: tuple[int, int, int, int]  # left, top, right, bottom
    line: int  # 0-based index of the word's line on the page, in reading order


@dataclass(frozen=True, slots=True)
class PageText:
    """The text of one page and how sure the OCR engine was of it (0-100, -1 when not OCR'd)."""

    number: int  # 1-based
    text: str
    confidence: float
    language: str = ""  # tesseract language string used, e.g. "eng", "chi_sim", "eng+chi_sim"
    method: str = "ocr"  # "ocr", "text-layer" (PDF), "plain" (typed text)
    words: tuple[OcrWord, ...] = ()  # in reading order; empty for text layers and typed text
    size: tuple[int, int] = (0, 0)  # width, height of the image the word boxes refer to


@dataclass(frozen=True, slots=True)
class OcrResult:
    """The text of a whole document, page by page."""

    pages: tuple[PageText, ...]

    @property
    def text(self) -> str:
        return "\n\n".join(p.text.strip() for p in self.pages if p.text.strip())

    @property
    def confidence(self) -> float:
        """Mean confidence over OCR'd pages weighted by text length; -1 if nothing was OCR'd."""
        scored = [p for p in self.pages if p.confidence >= 0 and p.text.strip()]
        if not scored:
            return -1.0
        total = sum(len(p.text) for p in scored)
        return sum(p.confidence * len(p.text) for p in scored) / total


@dataclass(frozen=True, slots=True)
class ExtractedField:
    """A value found in the text: a phone number, a window number, a date... with its span."""

    name: str  # "name", "phone", "email", "window", "badge", "date", "time", "place"
    value: str
    start: int  # -1 with end for a field read from the slip form's box, not from the text
    end: int
    confidence: float = 1.0  # 0-1: a form field's OCR and label certainty; 1 for a match in the text


@dataclass(frozen=True, slots=True)
class Label:
    """The winning label of one label set, with its confidence and the runner-up's."""

    label_set: str  # "department", "sentiment", "kind", ...
    label: str
    confidence: float
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReviewRule:
    """When a label set's label sends a case to review (``threshold`` and ``margin`` of ``labels.toml``).

    Lives here, not in ``classifiers``, so that ``storage`` can apply it without importing the model code.
    """

    threshold: float = 0.5  # the top label scores below this
    margin: float = 0.1  # or the runner-up is closer than this

    def needs_review(self, label: Label) -> bool:
        """True when the top label is below the threshold or the runner-up is within ``margin``."""
        if label.confidence < self.threshold:
            return True
        others = sorted((s for k, s in label.scores.items() if k != label.label), reverse=True)
        return bool(others) and label.confidence - others[0] < self.margin


@dataclass(frozen=True, slots=True)
class Classification:
    """Labels for every label set, from one model version."""

    labels: dict[str, Label]
    model_version: str

    def get(self, label_set: str) -> Label | None:
        return self.labels.get(label_set)


@dataclass(frozen=True, slots=True)
class IntakeItem:
    """One complaint on its way to becoming a case."""

    source: Source
    text: str = ""
    pages: tuple[PageText, ...] = ()
    language: str = ""  # "en", "zh", "mixed" or "" when unknown
    fields: tuple[ExtractedField, ...] = ()
    classification: Classification | None = None
    subject: str = ""  # e-mail subject, empty for slips
    sender: str = ""  # e-mail From address, empty for slips
    # what could not be read: a corrupt or skipped attachment, a truncated part
    problems: tuple[str, ...] = ()
    # a scanned slip parsed as a form (pipeline.forms): everything the OCR read (print included) for
    # reviewers, while ``text`` is what the citizen wrote; its printed number; the matched template;
    # and which slip of its file it is (0, 1, ... for a batch scan holding several)
    ocr_text: str = ""
    slip_number: str = ""
    form: str = ""
    part: int = 0

    @property
    def ocr_confidence(self) -> float:
        return OcrResult(self.pages).confidence if self.pages else -1.0


class OutcomeKind(StrEnum):
    """What became of one input."""

    created = "created"  # a new case
    matched = "matched"  # the same original was already a case (or a reply joined its case)
    quarantined = "quarantined"  # unreadable or malformed: kept with its reason
    ignored = "ignored"  # e-mail noise: auto-replies, bounces, bulk mail
    # not taken, not recorded (not a scan, a link out, unreadable): looked at again next time
    skipped = "skipped"
    # accepted and queued (COMPLAINTDESK_QUEUE=postgres): a `complaintdesk worker` processes it
    queued = "queued"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one input: what happened, to which case, and why."""

    kind: OutcomeKind
    source: Source
    reference: str | None = None
    reason: str = ""
    case: dict[str, Any] | None = None  # the case as ``storage.case_to_dict`` shows it
    intake_id: int | None = None


@dataclass(frozen=True, slots=True)
class Original:
    """Bytes to keep with a case, exactly as received."""

    name: str
    data: bytes
    media_type: str
    role: str = "original"  # or "attachment"

    def ref(self) -> tuple[str, str, str, str, int]:
        """How the case lists this file: (name, media type, role, SHA-256, size)."""
        return (self.name, self.media_type, self.role, hashlib.sha256(self.data).hexdigest(), len(self.data))
