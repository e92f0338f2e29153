"""The orchestrator: an item goes through extract text -> enrich (language, fields, labels) -> store.

``scan_files`` is the batch runner for slips; e-mail and typed-in complaints reuse ``enrich`` and
``store_item``. Each complaint is stored in its own transaction, so one bad input never costs
the rest of a batch, and an input is only counted done once its case or quarantine record exists.
"""

from __future__ import annotations

import dataclasses
import mimetypes
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import classifiers
import ocr
import storage
from pipeline.config import Settings
from pipeline.core.errors import ComplaintdeskError, InputError, MissingDependencyError, UnreadableScanError
from pipeline.files import Skipped, read_file, sha256_file, source_name, storable
from pipeline.core.model import Channel, IntakeItem, OcrResult, Source


class OutcomeKind(StrEnum):
    """What became of one input."""

    created = "created"  # a new case
    matched = "matched"  # the same original was already a case (or a reply joined its case)
    quarantined = "quarantined"  # unreadable or malformed: kept with its reason
    ignored = "ignored"  # e-mail noise: auto-replies, bounces, bulk mail
    skipped = "skipped"  # not taken, not recorded (not a scan, link out, unreadable): looked at again next time


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one input: what happened, to which case, and why."""

    kind: OutcomeKind
    source: Source
    reference: str | None = None
    reason: str = ""
    case: dict | None = None  # the case as ``storage.case_to_dict`` shows it


@dataclass(frozen=True, slots=True)
class Original:
    """Bytes to keep with a case, exactly as received."""

    name: str
    data: bytes
    media_type: str
    role: str = "original"  # or "attachment"

    def ref(self) -> storage.OriginalRef:
        """How the case lists this file: (name, media type, role, SHA-256, size)."""
        return (self.name, self.media_type, self.role, storage.sha256_bytes(self.data), len(self.data))


@dataclass
class RunContext:
    """What every stage needs, opened once per command: settings, database, store, model."""

    settings: Settings
    db: storage.Database
    blobs: storage.BlobStore
    classifier: classifiers.Classifier
    actor: str = "system"

    @property
    def thresholds(self) -> dict[str, float]:
        return {ls.name: ls.threshold for ls in self.classifier.label_sets}


def open_context(settings: Settings, *, actor: str = "system", need_ocr: bool = True) -> RunContext:
    """Check external programs, open the database and load the model, failing early with a hint.

    Raises:
        MissingDependencyError: Tesseract or a language pack is missing.
        ModelError: there is no trained model.
        StorageError: the database cannot be opened.
    """
    if need_ocr:
        ocr.check_tesseract(settings.ocr.languages)
    model = classifiers.load_model(classifiers.resolve_model_dir(settings))
    db = storage.open_database(settings.resolved_database_url)
    return RunContext(settings, db, storage.BlobStore(settings.blob_dir), model, actor)


def enrich(items: Sequence[IntakeItem], classifier: classifiers.Classifier) -> list[IntakeItem]:
    """Normalise the text, detect its language, extract fields and classify, as one batch."""
    prepared = []
    for item in items:
        text = classifiers.normalize_text(item.text)
        language = classifiers.detect_language(text)
        fields = classifiers.extract_fields(text, language)
        prepared.append(dataclasses.replace(item, text=text, language=language, fields=fields))
    labels = classifier.classify([item.text for item in prepared])
    return [dataclasses.replace(item, classification=c) for item, c in zip(prepared, labels, strict=True)]


def store_item(item: IntakeItem, originals: Sequence[Original], ctx: RunContext) -> Outcome:
    """Store one classified item as a case in its own transaction, keeping its originals.

    If a case with the same original already exists (a re-scan, or a concurrent run that won
    the race), nothing new is written and the existing case is returned.
    """
    for original in originals:
        ctx.blobs.put(original.data)
    with ctx.db.session() as session:
        existing = storage.find_case_by_sha256(session, item.source.sha256)
        if existing is not None:
            return Outcome(OutcomeKind.matched, item.source, existing.reference, case=storage.case_to_dict(existing))
        try:
            case = storage.create_case(
                session,
                item,
                due_days=ctx.settings.due_days,
                actor=ctx.actor,
                thresholds=ctx.thresholds,
                originals=[o.ref() for o in originals],
            )
        except storage.DuplicateCaseError:
            # another process stored the same original between our check and our insert
            existing = storage.find_case_by_sha256(session, item.source.sha256)
            assert existing is not None
            return Outcome(OutcomeKind.matched, item.source, existing.reference, case=storage.case_to_dict(existing))
        return Outcome(OutcomeKind.created, item.source, case.reference, case=storage.case_to_dict(case))


def quarantine_input(source: Source, data: bytes | None, error: ComplaintdeskError, ctx: RunContext) -> Outcome:
    """Keep an input we could not use, with the reason, so it never vanishes and is never retried as new."""
    if data is not None:
        ctx.blobs.put(data)
    with ctx.db.session() as session:
        # storable: a reason may quote a file name holding bytes that are not UTF-8
        text = storable(str(error))
        record = storage.quarantine(session, source, text, type(error).__name__, actor=ctx.actor)
        reason = record.reason
    return Outcome(OutcomeKind.quarantined, source, None, reason=reason)


def previous_outcome(source: Source, ctx: RunContext) -> Outcome | None:
    """The outcome recorded for these exact bytes in an earlier run, if any."""
    with ctx.db.session() as session:
        case = storage.find_case_by_sha256(session, source.sha256)
        if case is not None:
            return Outcome(OutcomeKind.matched, source, case.reference, case=storage.case_to_dict(case))
        record = storage.find_quarantine_by_sha256(session, source.sha256)
        if record is not None:
            return Outcome(OutcomeKind.quarantined, source, None, reason=record.reason)
    return None


def media_type_for(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def skipped_outcome(path: Path, reason: str, channel: Channel = Channel.slip) -> Outcome:
    """An entry that was not taken: it has no bytes we could hash, so nothing is stored for it."""
    source = Source(channel, source_name(path), "", 0, media_type_for(path))
    return Outcome(OutcomeKind.skipped, source, reason=reason)


def scan_files(
    paths: Iterable[Path | Skipped],
    ctx: RunContext,
    *,
    channel: Channel = Channel.slip,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> Iterator[Outcome]:
    """OCR, classify and store each file; yields one outcome per file or ``Skipped`` entry, as each is done.

    Files already stored (same sha256) are matched without OCR; a file named twice in one batch
    is OCR'd once. OCR runs in a process pool (``ocr.ocr_many``) that streams, so a folder of
    10,000 files does not load them all. A file that cannot be read (permission, vanished, I/O
    error) is a ``skipped`` outcome, like the ``Skipped`` entries of ``pipeline.files.iter_files``.

    Raises:
        MissingDependencyError: Tesseract disappeared mid-batch (nothing else aborts a batch).
    """
    # sha256 -> sources waiting on that OCR job, with the path to read (a source's name is for people)
    pending: dict[str, list[tuple[Source, Path]]] = {}

    def jobs() -> Iterator[tuple[str, Path]]:
        for path in paths:
            if isinstance(path, Skipped):
                _report(skipped_outcome(path.path, path.reason, channel), on_outcome, finished)
                continue
            try:
                sha, size = sha256_file(path)
            except InputError as e:
                _report(skipped_outcome(path, str(e), channel), on_outcome, finished)
                continue
            source = Source(channel, source_name(path), sha, size, media_type_for(path))
            if sha in pending:
                pending[sha].append((source, path))
                continue
            if size > ctx.settings.ocr.max_file_bytes:
                done = quarantine_input(source, None, UnreadableScanError(
                    f"file is {size:,} bytes, over the limit of {ctx.settings.ocr.max_file_bytes:,}; "
                    "raise ocr.max_file_bytes if this is a genuine scan"), ctx)
                _report(done, on_outcome, finished)
                continue
            earlier = previous_outcome(source, ctx)
            if earlier is not None:
                _report(earlier, on_outcome, finished)
                continue
            pending[sha] = [(source, path)]
            yield sha, path

    finished: list[Outcome] = []
    for sha, result in ocr.ocr_many(jobs(), ctx.settings.ocr):
        yield from _drain(finished)
        sources = pending.pop(sha)
        first, path = sources[0]
        try:
            data = read_file(path, ctx.settings.ocr.max_file_bytes)
        except InputError as e:  # gone or locked since it was hashed
            outcome = dataclasses.replace(skipped_outcome(path, str(e), channel), source=first)
        else:
            outcome = _finish_one(first, data, result, ctx)
        _report(outcome, on_outcome, finished)
        for dup, _ in sources[1:]:
            _report(dataclasses.replace(outcome, source=dup, kind=_dup_kind(outcome)), on_outcome, finished)
        yield from _drain(finished)
    yield from _drain(finished)


def _dup_kind(outcome: Outcome) -> OutcomeKind:
    return OutcomeKind.matched if outcome.kind is OutcomeKind.created else outcome.kind


def _report(outcome: Outcome, on_outcome: Callable[[Outcome], None] | None, sink: list[Outcome]) -> None:
    if on_outcome is not None:
        on_outcome(outcome)
    sink.append(outcome)


def _drain(sink: list[Outcome]) -> Iterator[Outcome]:
    while sink:
        yield sink.pop(0)


def _finish_one(source: Source, data: bytes, result: OcrResult | ComplaintdeskError, ctx: RunContext) -> Outcome:
    if isinstance(result, MissingDependencyError):
        raise result
    if isinstance(result, ComplaintdeskError):
        return quarantine_input(source, data, result, ctx)
    if not result.text.strip():
        return quarantine_input(source, data, UnreadableScanError("OCR found no text on any page"), ctx)
    item = IntakeItem(source=source, text=result.text, pages=result.pages)
    (item,) = enrich([item], ctx.classifier)
    original = Original(Path(source.name).name, data, source.media_type)
    return store_item(item, [original], ctx)


def submit_text(text: str, ctx: RunContext, *, channel: Channel = Channel.manual, name: str = "typed") -> Outcome:
    """Store a complaint typed in by staff (hotline, opinion book) or sent through the web form."""
    data = text.encode("utf-8")
    source = Source.from_bytes(channel, name, data, "text/plain")
    if not text.strip():
        return quarantine_input(source, data, InputError("the complaint text is empty"), ctx)
    earlier = previous_outcome(source, ctx)
    if earlier is not None:
        return earlier
    (item,) = enrich([IntakeItem(source=source, text=text)], ctx.classifier)
    return store_item(item, [Original(f"{name}.txt", data, "text/plain")], ctx)
