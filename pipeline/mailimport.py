"""E-mail into cases: parse, recognise what was seen before, drop noise, thread replies, OCR
attachments, classify and store. Used by the IMAP poller and by ``complaintdesk mail import``.

Each message is stored in its own transaction (``run.store_item`` / one session per message), so a
message counts as done only once its case, reply, ignored or quarantine record is committed. A
message seen again (after a crash, a UIDVALIDITY change, or a second import of the same archive)
is recognised by its content hash and its Message-ID and changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import mailbox
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import ocr
import storage
from pipeline.errors import (
    ComplaintdeskError,
    DecompressionBombError,
    InputError,
    MalformedMessageError,
    MissingDependencyError,
    OcrError,
    StorageError,
)
from pipeline.mail import Attachment, ParsedMessage, parse_message
from pipeline.model import Channel, IntakeItem, PageText, Source
from pipeline.run import Original, Outcome, OutcomeKind, RunContext, enrich, quarantine_input, store_item

log = logging.getLogger(__name__)

#: default size limit of one message for ``mail import`` (the poller uses ``ImapSettings``)
DEFAULT_MAX_MESSAGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Envelope:
    """One raw message and where it came from (``imap://user@host/INBOX;UID=7`` or a file path)."""

    data: bytes
    origin: str
    mailbox: str = ""  # "user@host:port/INBOX" for IMAP, "" for files
    uid: int | None = None
    declared_size: int = 0  # the server's size when the bytes were not downloaded (over the limit)


@dataclass(frozen=True, slots=True)
class Ingested:
    """What became of one message; ``parsed`` is None when it could not be parsed."""

    envelope: Envelope
    outcome: Outcome
    parsed: ParsedMessage | None = None


@dataclass
class _Pending:
    envelope: Envelope
    parsed: ParsedMessage
    item: IntakeItem
    originals: list[Original]


def ingest_messages(
    envelopes: Sequence[Envelope],
    ctx: RunContext,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[Ingested]:
    """Turn a batch of raw messages into cases (classified together), in order.

    Raises:
        StorageError: the database failed (the batch stops; what was committed stays committed).
        MissingDependencyError: Tesseract is missing.
    """
    results: dict[int, Ingested] = {}
    pending: dict[int, _Pending] = {}
    for n, envelope in enumerate(envelopes):
        parsed = None
        try:
            parsed = _parse(envelope, max_message_bytes)
            if _answers_pending(parsed, pending):
                _flush(pending, results, ctx)  # a reply to a message of this batch: store that first
            done = _route(envelope, parsed, ctx)
            if done is None:
                pending[n] = _pending(envelope, parsed, ctx)
                continue
        except (StorageError, MissingDependencyError):
            raise
        except InputError as e:
            done = Ingested(envelope, _quarantine(envelope, e, ctx), parsed)
        except Exception as e:  # a bug on one odd message must not block the mailbox forever
            log.exception("unexpected error on %s; quarantining it", envelope.origin)
            error = InputError(f"internal error while processing the message: {type(e).__name__}: {e}")
            done = Ingested(envelope, _quarantine(envelope, error, ctx), parsed)
        results[n] = done
    _flush(pending, results, ctx)
    return [results[n] for n in sorted(results)]


def _parse(envelope: Envelope, limit: int) -> ParsedMessage:
    size = envelope.declared_size or len(envelope.data)
    if size > limit:
        raise InputError(
            f"the message is {size:,} bytes, over the limit of {limit:,} (imap.max_message_bytes)"
            + ("; it was not downloaded and stays on the server" if not envelope.data else "")
        )
    return parse_message(envelope.data)


def _answers_pending(parsed: ParsedMessage, pending: dict[int, _Pending]) -> bool:
    ids = set(parsed.thread_ids)
    return bool(ids) and any(p.parsed.message_id in ids for p in pending.values())


def _route(envelope: Envelope, parsed: ParsedMessage, ctx: RunContext) -> Ingested | None:
    """Settle a message that needs no classification (seen, noise, reply); None for a new complaint."""
    with ctx.db.session() as session:
        earlier = _earlier(session, parsed)
        if earlier is not None:
            return Ingested(envelope, dataclasses.replace(earlier, source=_source(envelope, parsed)), parsed)
        if parsed.is_noise:
            storage.record_ignored(session, message_id=parsed.message_id, sha256=parsed.sha256,
                                   reason=parsed.noise_reason, mailbox=envelope.mailbox, uid=envelope.uid)
            log.info("ignored %s: %s", envelope.origin, parsed.noise_reason)
            return Ingested(envelope, Outcome(OutcomeKind.ignored, _source(envelope, parsed),
                                              reason=parsed.noise_reason), parsed)
        case = _thread_case(session, parsed)
        if case is None:
            return None
        text, _ = _text_with_attachments(parsed, ctx)
        ctx.blobs.put(envelope.data)
        storage.add_message(
            session, case, message_id=parsed.message_id, in_reply_to=" ".join(parsed.in_reply_to),
            references=parsed.references, sender=parsed.sender, subject=parsed.subject, text=text,
            sha256=parsed.sha256, received_at=parsed.date, actor=ctx.actor,
        )
        reference = case.reference
        case_dict = storage.case_to_dict(case)
    log.info("reply %s added to case %s", envelope.origin, reference)
    return Ingested(envelope, Outcome(OutcomeKind.matched, _source(envelope, parsed), reference,
                                      reason="reply added to the case", case=case_dict), parsed)


def _earlier(session: Any, parsed: ParsedMessage) -> Outcome | None:
    """The recorded outcome of this message if it was handled before (by content hash or Message-ID)."""
    source = Source(Channel.email, parsed.message_id, parsed.sha256, parsed.size, "message/rfc822")
    case = storage.find_case_by_sha256(session, parsed.sha256)
    if case is None and parsed.message_id:
        case = storage.find_case_by_message_id(session, [parsed.message_id])
    if case is None:
        message = storage.find_message(session, sha256=parsed.sha256)
        case = message.case if message is not None else None
    if case is not None:
        return Outcome(OutcomeKind.matched, source, case.reference, reason="already stored",
                       case=storage.case_to_dict(case))
    ignored = storage.find_ignored(session, sha256=parsed.sha256,
                                   message_id=parsed.message_id or None)
    if ignored is not None:
        return Outcome(OutcomeKind.ignored, source, reason=ignored.reason)
    record = storage.find_quarantine_by_sha256(session, parsed.sha256)
    if record is not None:
        return Outcome(OutcomeKind.quarantined, source, reason=record.reason)
    return None


def _thread_case(session: Any, parsed: ParsedMessage) -> storage.Case | None:
    """The case a reply belongs to: by ``[Case #REF]`` in the subject, else by In-Reply-To/References."""
    if parsed.case_reference:
        case = storage.find_case(session, parsed.case_reference)
        if case is not None:
            return case
        log.info("subject names case %s, which does not exist; trying the headers", parsed.case_reference)
    if parsed.thread_ids:
        return storage.find_case_by_message_id(session, parsed.thread_ids)
    return None


def _source(envelope: Envelope, parsed: ParsedMessage | None) -> Source:
    if parsed is None:
        data = envelope.data or f"{envelope.origin} ({envelope.declared_size} bytes)".encode()
        return Source(Channel.email, envelope.origin, hashlib.sha256(data).hexdigest(),
                      envelope.declared_size or len(envelope.data), "message/rfc822")
    return Source(Channel.email, parsed.message_id or envelope.origin, parsed.sha256, parsed.size, "message/rfc822")


def _quarantine(envelope: Envelope, error: ComplaintdeskError, ctx: RunContext) -> Outcome:
    log.warning("quarantined %s: %s", envelope.origin, error)
    source = _source(envelope, None)
    return quarantine_input(source, envelope.data or None, error, ctx)


# -- new complaints -----------------------------------------------------------------------------


def _pending(envelope: Envelope, parsed: ParsedMessage, ctx: RunContext) -> _Pending:
    text, pages = _text_with_attachments(parsed, ctx)
    if not text.strip():
        raise InputError("the e-mail has no text: an empty body and no readable attachment")
    item = IntakeItem(source=_source(envelope, parsed), text=text, pages=pages, subject=parsed.subject,
                      sender=parsed.sender)
    originals = [Original("message.eml", envelope.data, "message/rfc822")]
    originals += [Original(a.name, a.data, a.media_type, "attachment") for a in parsed.attachments]
    return _Pending(envelope, parsed, item, originals)


def _text_with_attachments(parsed: ParsedMessage, ctx: RunContext) -> tuple[str, tuple[PageText, ...]]:
    """The case text and its pages: the body, then the OCR'd text of image and PDF attachments.

    Raises:
        DecompressionBombError: an attachment is a decompression bomb (the message is quarantined).
        InputError: nothing readable at all and an attachment failed to read.
    """
    pages: list[PageText] = []
    body = parsed.text.strip() or parsed.subject.strip()
    if body:
        pages.append(PageText(1, body, -1.0, "", "plain"))
    failure: ComplaintdeskError | None = None
    for attachment in parsed.attachments:
        if not attachment.wants_ocr:
            continue
        try:
            result = _ocr(attachment, ctx)
        except DecompressionBombError:
            raise
        except (InputError, OcrError) as e:
            log.warning("attachment %s of %s not read: %s", attachment.name, parsed.dedupe_key, e)
            failure = e
            continue
        for page in result:
            pages.append(dataclasses.replace(page, number=len(pages) + 1))
    text = "\n\n".join(p.text.strip() for p in pages if p.text.strip())
    if not text and failure is not None:
        raise InputError(f"the e-mail has no text and its attachment could not be read: {failure}")
    return text, tuple(pages)


def _ocr(attachment: Attachment, ctx: RunContext) -> tuple[PageText, ...]:
    limit = ctx.settings.ocr.max_file_bytes
    if attachment.size > limit:
        raise InputError(f"attachment {attachment.name} is {attachment.size:,} bytes, over the OCR limit of {limit:,}")
    return ocr.read_document(attachment.data, attachment.name, ctx.settings.ocr).pages


def _flush(pending: dict[int, _Pending], results: dict[int, Ingested], ctx: RunContext) -> None:
    """Classify the pending new complaints as one batch and store each in its own transaction."""
    if not pending:
        return
    keys = sorted(pending)
    items = enrich([pending[k].item for k in keys], ctx.classifier)
    for key, item in zip(keys, items, strict=True):
        p = pending[key]
        outcome = store_item(item, p.originals, ctx)
        results[key] = Ingested(p.envelope, outcome, p.parsed)
    pending.clear()


# -- files: .eml, mbox, Maildir -----------------------------------------------------------------


def iter_envelopes(paths: Iterable[Path]) -> Iterator[Envelope]:
    """The messages in .eml files, mbox files and Maildir folders (folders are searched recursively).

    Raises:
        InputError: a path does not exist.
    """
    for path in paths:
        if path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            yield from _maildir(path)
        elif path.is_dir():
            for child in sorted(path.iterdir()):
                if child.name.startswith("."):
                    continue
                if child.is_dir() or child.suffix.lower() in (".eml", ".mbox", ".msg") or _is_mbox(child):
                    yield from iter_envelopes([child])
        elif path.is_file():
            if _is_mbox(path):
                yield from _mbox(path)
            else:
                yield Envelope(path.read_bytes(), str(path))
        else:
            raise InputError(f"no such file or folder: {path}")


def _is_mbox(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as f:
        return f.read(5) == b"From "


def _mbox(path: Path) -> Iterator[Envelope]:
    box = mailbox.mbox(path, create=False)
    try:
        for n, key in enumerate(box.iterkeys(), start=1):
            yield Envelope(box.get_bytes(key), f"{path}#{n}")
    finally:
        box.close()


def _maildir(path: Path) -> Iterator[Envelope]:
    box = mailbox.Maildir(path, factory=None, create=False)
    for key in sorted(box.iterkeys()):
        yield Envelope(box.get_bytes(key), f"{path}/{key}")


def import_paths(
    paths: Iterable[Path],
    ctx: RunContext,
    *,
    batch_size: int = 100,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    on_outcome: Callable[[Ingested], None] | None = None,
) -> Iterator[Outcome]:
    """Import every message found in ``paths``; yields one outcome per message.

    Raises:
        InputError: a path does not exist.
        StorageError: the database failed.
    """
    batch: list[Envelope] = []
    for envelope in iter_envelopes(paths):
        batch.append(envelope)
        if len(batch) >= batch_size:
            yield from _outcomes(ingest_messages(batch, ctx, max_message_bytes=max_message_bytes), on_outcome)
            batch = []
    if batch:
        yield from _outcomes(ingest_messages(batch, ctx, max_message_bytes=max_message_bytes), on_outcome)


def _outcomes(done: list[Ingested], on_outcome: Callable[[Ingested], None] | None) -> Iterator[Outcome]:
    for d in done:
        if on_outcome is not None:
            on_outcome(d)
        yield d.outcome


__all__ = ["Envelope", "Ingested", "MalformedMessageError", "import_paths", "ingest_messages", "iter_envelopes"]
