"""The e-mail channel's stages: accept raw messages, then parse, recognise, drop noise, thread replies,
OCR attachments, classify and store them. Used by the IMAP poller and by ``complaintdesk mail import``.

``accept_messages`` writes a batch of intake rows in one short transaction (originals first).
``process_messages`` then reads and decides each message with read-only lookups, OCRs attachments
and classifies with no transaction open, and stores the whole batch in one transaction (new
complaints in bulk, ``storage.create_cases``) that also finishes the intake rows. A message seen
again (after a crash, a UIDVALIDITY change, or a second import of the same archive) is recognised
at accept by its fingerprint (Message-ID with sender, date and body) or its content hash.

With ``COMPLAINTDESK_QUEUE=postgres``, ``accept_messages`` also queues ``process(intake_id)`` for each
new message in its transaction, and ``ingest_messages`` stops there (outcome ``queued``): a worker runs
``process_messages`` for it. Whether its new case gets an acknowledgment is decided then, from the
``ack_from`` the poller kept in the intake row's options (the worker need not know the SMTP relay;
the poller sends what workers queue in the outbox).
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import functools
import hashlib
import logging
import mailbox
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ocr
import storage
from pipeline.context import RunContext
from pipeline.core.errors import (
    ComplaintdeskError,
    InputError,
    MissingDependencyError,
    StorageError,
)
from pipeline.core.model import Channel, IntakeItem, Original, Outcome, OutcomeKind, PageText, Source
from pipeline.enrich import enrich
from pipeline.intake import Pending, earlier_outcomes, queued, start
from pipeline.mail.ack import ack_request, should_ack
from pipeline.mail.parse import Attachment, ParsedMessage, parse_message
from pipeline.mail.settings import SmtpSettings
from pipeline.store import create_or_match, quarantine_in, recorded_outcome

log = logging.getLogger(__name__)

#: threads writing originals to the BlobStore in parallel (the work is fsync waits, not CPU)
BLOB_WRITERS = 8
#: default size limit of one message for ``mail import`` (the poller uses ``ImapSettings``)
DEFAULT_MAX_MESSAGE_BYTES = 50 * 1024 * 1024
#: attachments OCR'd per message; a message with more (300 tiny images once held the poller for minutes)
#: gets the rest listed on its case as not read
MAX_ATTACHMENTS_READ = 10


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
class _Prepared:
    """A message between reading and storing: what to do with it, decided before the write transaction."""

    envelope: Envelope
    parsed: ParsedMessage | None
    action: str  # "done" (outcome known), "quarantine", "noise", "reply" or "new"
    intake_id: int = 0
    outcome: Outcome | None = None
    error: ComplaintdeskError | None = None
    item: IntakeItem | None = None
    originals: list[Original] = dataclasses.field(default_factory=list)
    text: str = ""
    ack: bool = False  # queue an acknowledgment if this becomes a new case
    pages: list[PageText] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)  # what could not be read, for the case
    to_ocr: list[Attachment] = dataclasses.field(default_factory=list)
    failure: ComplaintdeskError | None = None  # the last attachment that could not be read


# -- accept ---------------------------------------------------------------------------------------


def fingerprint(data: bytes) -> str:
    """What recognises a message delivered twice: Message-ID, From, Date and the body, not the transport.

    Two deliveries of one message differ in ``Received``/``Delivered-To`` headers; two different
    complaints that reuse a Message-ID (a broken mailer, two citizens) differ in sender, date or body.
    Headers are read raw, so a malformed encoded word cannot make this fail.
    """
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    digest = hashlib.sha256()
    for name in ("Message-ID", "From", "Date"):
        digest.update(str(headers.get(name, "")).strip().encode("utf-8", "surrogateescape") + b"\0")
    digest.update(data[min(ends, default=len(data)):].strip())
    return digest.hexdigest()


def accept_messages(ctx: RunContext, envelopes: Sequence[Envelope], *, max_message_bytes: int,
                    outbox: str = "", ack_from: str | None = None) -> list[tuple[Envelope, int, bool]]:
    """Keep the batch's originals, then write its intake rows in one transaction (with the queue on,
    and the jobs of the new ones: ``process`` runs in a worker).

    ``ack_from``: acknowledgments are on, sent from this address; kept on a queued row for the worker.
    Returns, per envelope in order, its intake id and whether it is new (False: seen before).
    """
    _put_all(ctx, [e.data for e in envelopes if e.data])
    accepted = []
    to_queue = queued(ctx)
    with ctx.db.session() as session:
        for envelope in envelopes:
            source = _accepted_source(envelope)
            keys = (
                [f"mail:{fingerprint(envelope.data)}", f"sha256:{source.sha256}"]
                if envelope.data else [f"sha256:{source.sha256}"]
            )
            options = {"origin": envelope.origin, "declared_size": envelope.declared_size,
                       "max_bytes": max_message_bytes, "outbox": outbox, "downloaded": bool(envelope.data)}
            if to_queue and ack_from is not None:
                options["ack_from"] = ack_from
            record, new = storage.accept_record(
                session, keys=keys, channel=str(Channel.email), source_name=source.name,
                sha256=source.sha256, size=source.size, media_type=source.media_type,
                message_id=_message_id(envelope.data), mailbox=envelope.mailbox, uid=envelope.uid,
                options=options)
            accepted.append((envelope, record.id, new))
        if to_queue:  # the jobs commit with their intake rows, or neither does
            storage.queue.enqueue(session, list(dict.fromkeys(i for _, i, new in accepted if new)))
    return accepted


def _accepted_source(envelope: Envelope) -> Source:
    """The source an intake row records for a message (a placeholder's bytes when not downloaded)."""
    data = envelope.data or f"{envelope.origin} ({envelope.declared_size} bytes)".encode()
    return Source(Channel.email, _message_id(envelope.data) or envelope.origin,
                  hashlib.sha256(data).hexdigest(), envelope.declared_size or len(envelope.data),
                  "message/rfc822")


def _message_id(data: bytes) -> str:
    if not data:
        return ""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    return " ".join(str(headers.get("Message-ID", "")).split())[:900]


def _put_all(ctx: RunContext, blobs: Sequence[bytes]) -> None:
    """Write originals to the store before the rows that name them.

    Each put fsyncs its file; threads overlap those waits (10x faster than one by one here).
    """
    unique = {hashlib.sha256(data).digest(): data for data in blobs}
    if len(unique) <= 1:
        for data in unique.values():
            ctx.blobs.put(data)
        return
    with ThreadPoolExecutor(max_workers=BLOB_WRITERS) as pool:
        for _ in pool.map(ctx.blobs.put, unique.values()):
            pass


# -- process --------------------------------------------------------------------------------------


def ingest_messages(
    envelopes: Sequence[Envelope],
    ctx: RunContext,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    acknowledge: Callable[[ParsedMessage], bool] | None = None,
    outbox: str = "",
    ack_from: str = "",
) -> list[Ingested]:
    """The mail channel: accept a batch of raw messages, then process the new ones; in order.

    With the queue on, the new and unfinished ones are reported ``queued`` instead (their jobs were
    queued at their first accept), and a worker processes them; ``acknowledge`` is then decided there,
    with ``should_ack`` and ``ack_from`` (the poller's From address).

    Raises:
        StorageError: the database failed (what was committed is recognised on a replay).
        MissingDependencyError: Tesseract is missing.
    """
    accepted = accept_messages(ctx, envelopes, max_message_bytes=max_message_bytes, outbox=outbox,
                               ack_from=ack_from if acknowledge is not None else None)
    seen_before = list(dict.fromkeys(intake_id for _, intake_id, new in accepted if not new))
    earlier, _ = earlier_outcomes(ctx, seen_before)
    results = {intake_id: Ingested(envelope, earlier[intake_id])
               for envelope, intake_id, _ in accepted if intake_id in earlier}
    # new and unfinished messages, in their batch's order (a reply may follow its original)
    todo = list(dict.fromkeys(intake_id for _, intake_id, _ in accepted if intake_id not in earlier))
    if queued(ctx):
        for envelope, intake_id, _ in accepted:
            if intake_id not in results:
                results[intake_id] = Ingested(envelope, Outcome(
                    OutcomeKind.queued, _accepted_source(envelope),
                    reason=f"intake item {intake_id}, queued for a worker", intake_id=intake_id))
        todo = []
    for done in process_messages(ctx, start(ctx, todo), acknowledge=acknowledge):
        results[done.outcome.intake_id or 0] = done
    out = []
    reported: set[int] = set()
    for envelope, intake_id, _ in accepted:
        result = results[intake_id]
        outcome = _again(result.outcome) if intake_id in reported else result.outcome  # twice in one batch
        reported.add(intake_id)
        out.append(Ingested(envelope, outcome, result.parsed))
    return out


def _again(outcome: Outcome) -> Outcome:
    if outcome.kind is OutcomeKind.created:
        return dataclasses.replace(outcome, kind=OutcomeKind.matched, reason="already stored")
    return outcome


def process_messages(ctx: RunContext, items: Sequence[Pending], *,
                     acknowledge: Callable[[ParsedMessage], bool] | None = None) -> list[Ingested]:
    """Read, decide, OCR and classify with no transaction open, then store the batch in one transaction.

    Plain new complaints are written with one multi-row INSERT per table (``storage.create_cases``),
    replies, noise and quarantine one by one with a savepoint each. If that transaction fails, the
    batch is stored again one message per transaction, so a message the database rejects is
    quarantined alone instead of blocking the mailbox. A new case whose message passes
    ``acknowledge`` gets an acknowledgment queued in the outbox in the same transaction.
    """
    if not items:
        return []
    prepared = _read(ctx, items)
    to_classify = [p for p in prepared if p.action in ("new", "reply") and p.item is not None]
    for p, item in zip(to_classify,
                       enrich([p.item for p in to_classify if p.item is not None], ctx.classifier),
                       strict=True):
        p.item = item
    for p, pending in zip(prepared, items, strict=True):
        wants = acknowledge or _queued_acknowledge(pending)
        if wants is not None:
            p.ack = p.parsed is not None and p.action in ("new", "reply") and wants(p.parsed)
    stored = {id(a.data) for p in prepared for a in p.to_ocr}  # put before OCR: the workers read them there
    _put_all(ctx, [o.data for p in prepared for o in p.originals
                   if o.role == "attachment" and id(o.data) not in stored])
    outbox = str(items[0].options.get("outbox", ""))
    try:
        with ctx.db.session() as session:
            return _settle_batch(session, prepared, ctx, outbox)
    except (StorageError, _RetryAlone) as e:
        log.warning("storing the batch failed (%s); storing its %d messages one by one", e, len(prepared))
        return [_settle_alone(p, ctx, outbox) for p in prepared]


def _queued_acknowledge(item: Pending) -> Callable[[ParsedMessage], bool] | None:
    """For a worker: the poller's acknowledgment rule, if it had acknowledgments on at accept."""
    ack_from = item.options.get("ack_from")
    if ack_from is None:
        return None
    return functools.partial(should_ack, settings=SmtpSettings(ack=True, from_address=str(ack_from)))


def _envelope(ctx: RunContext, item: Pending) -> Envelope:
    o = item.options
    data = ctx.blobs.read(item.source.sha256) if o.get("downloaded", True) else b""
    return Envelope(data, str(o.get("origin", item.source.name)), str(o.get("mailbox", "")), o.get("uid"),
                    int(o.get("declared_size", 0)))


def _settle_batch(session: Any, prepared: Sequence[_Prepared], ctx: RunContext,
                  outbox: str) -> list[Ingested]:
    """Store a batch in ``session``, in order: runs of plain new complaints in bulk, the rest one by one.

    A reply may refer to a case made earlier in this batch, so the pending run of new complaints is
    written before any other message is.
    """
    done: list[Ingested | None] = [None] * len(prepared)
    run: list[int] = []
    shas: set[str] = set()

    def write_run() -> None:
        for i, result in zip(run, _create_many(session, [prepared[i] for i in run], ctx, outbox),
                             strict=True):
            done[i] = result
        run.clear()
        shas.clear()

    for i, p in enumerate(prepared):
        if _plain_new(p) and p.parsed is not None and p.parsed.sha256 not in shas:
            run.append(i)
            shas.add(p.parsed.sha256)
            continue
        write_run()
        done[i] = _settle(session, p, ctx, outbox)
    write_run()
    return [d for d in done if d is not None]


def _plain_new(p: _Prepared) -> bool:
    """A new complaint that cannot depend on another message of its batch (not a reply)."""
    parsed = p.parsed
    return (p.action == "new" and p.item is not None and parsed is not None
            and not parsed.case_reference and not parsed.thread_ids)


def _create_many(session: Any, run: Sequence[_Prepared], ctx: RunContext, outbox: str) -> list[Ingested]:
    if not run:
        return []
    items = [p.item for p in run if p.item is not None]
    originals = [[o.ref() for o in p.originals] for p in run]
    try:
        made = storage.create_cases(session, items, due_days=ctx.settings.due_days, actor=ctx.actor,
                                    thresholds=ctx.thresholds, originals=originals,
                                    sla=ctx.settings.due_rules())
    except StorageError:
        raise
    except Exception as e:
        raise _RetryAlone(f"creating {len(run)} cases: {type(e).__name__}: {e}") from e
    for p, case in zip(run, made, strict=True):
        if not storage.finish_intake(session, p.intake_id, OutcomeKind.created, case_id=case.id):
            raise _RetryAlone(f"intake item {p.intake_id} was finished by another process")
    storage.queue_acks(session, [(case.id, ack_request(p.parsed)) for p, case in zip(run, made, strict=True)
                                 if p.ack and p.parsed is not None], mailbox=outbox)
    return [Ingested(p.envelope, Outcome(OutcomeKind.created, _source(p), case.reference, case=case.data,
                                         intake_id=p.intake_id), p.parsed)
            for p, case in zip(run, made, strict=True)]


def _read(ctx: RunContext, items: Sequence[Pending]) -> list[_Prepared]:
    """Parse each message and decide what it is: lookups in one read-only session, then attachment OCR."""
    prepared: list[_Prepared] = []
    for item in items:
        envelope = _envelope(ctx, item)
        try:
            parsed = _parse(envelope, int(item.options.get("max_bytes", DEFAULT_MAX_MESSAGE_BYTES)))
        except InputError as e:
            prepared.append(_Prepared(envelope, None, "quarantine", item.intake_id, error=e))
            continue
        except Exception as e:  # any failure reading one message quarantines it, never the mailbox
            log.exception("unexpected error parsing %s; quarantining it", envelope.origin)
            error = InputError(f"the message cannot be read: {type(e).__name__}: {e}")
            prepared.append(_Prepared(envelope, None, "quarantine", item.intake_id, error=error))
            continue
        prepared.append(_Prepared(envelope, parsed, "new", item.intake_id))
    parsed_ok = [p for p in prepared if p.parsed is not None]
    if parsed_ok:
        with ctx.db.reader() as session:
            seen = _Seen.load(session, [p.parsed for p in parsed_ok if p.parsed is not None])
            for p in parsed_ok:
                _guard(p, functools.partial(_decide, session, p, seen))
    wanted = [p for p in parsed_ok if p.action in ("new", "reply")]
    for p in wanted:
        _guard(p, functools.partial(_collect, p, ctx))
    _ocr_attachments([p for p in wanted if p.action in ("new", "reply")], ctx)  # no transaction open
    for p in wanted:
        if p.action in ("new", "reply"):
            _guard(p, functools.partial(_finish_text, p))
    return prepared


def _guard(p: _Prepared, step: Callable[[], None]) -> None:
    try:
        step()
    except (StorageError, MissingDependencyError):
        raise
    except InputError as e:
        p.action, p.error = "quarantine", e
    except Exception as e:  # a bug on one odd message must not block the mailbox forever
        log.exception("unexpected error on %s; quarantining it", p.envelope.origin)
        p.action = "quarantine"
        p.error = InputError(f"internal error while processing the message: {type(e).__name__}: {e}")


def _decide(session: Any, p: _Prepared, seen: _Seen) -> None:
    parsed = p.parsed
    assert parsed is not None
    earlier = seen.earlier(parsed)
    if earlier is not None:
        p.action, p.outcome = "done", dataclasses.replace(earlier, source=_source(p), intake_id=p.intake_id)
        return
    if parsed.is_noise:
        p.action = "noise"
        return
    if parsed.case_reference or parsed.thread_ids:
        # a reply: to a stored case (known now) or to a message of this very batch (known at _settle)
        p.action = "reply" if _thread_case(session, parsed) is not None else "new"


def _collect(p: _Prepared, ctx: RunContext) -> None:
    """The body as the first page, the originals to keep, and the attachments to OCR (capped per message)."""
    parsed = p.parsed
    assert parsed is not None
    body = parsed.text.strip() or parsed.subject.strip()
    p.pages = [PageText(1, body, -1.0, "", "plain")] if body else []
    p.problems = list(parsed.problems)
    p.originals = [Original("message.eml", p.envelope.data, "message/rfc822")]
    p.originals += [Original(a.name, a.data, a.media_type, "attachment") for a in parsed.attachments]
    limit, cap = ctx.settings.ocr.max_file_bytes, MAX_ATTACHMENTS_READ
    wanted = [a for a in parsed.attachments if a.wants_ocr]
    for a in wanted[cap:]:
        p.problems.append(
            f"attachment {a.name}: not read, over the limit of {cap} attachments read per message"
        )
    for a in wanted[:cap]:
        if a.size > limit:
            p.problems.append(
                f"attachment {a.name}: not read, {a.size:,} bytes is over the OCR limit of {limit:,}"
            )
        else:
            p.to_ocr.append(a)


def _ocr_attachments(prepared: Sequence[_Prepared], ctx: RunContext) -> None:
    """OCR the batch's attachments in the bounded process pool (workers read them from the blob store).

    An attachment that cannot be read (corrupt, a decompression bomb, a Tesseract failure) is noted
    on its case, which then needs review; the message is only quarantined if nothing of it is readable.
    Each message has an OCR time budget (``ocr.max_seconds_per_message``): its attachments are handed
    to the pool in order, and once the budget is used up the rest are not read and are listed.
    """
    if not any(p.to_ocr for p in prepared):
        return
    budget = _Budget(ctx.settings.ocr.max_seconds_per_message)
    results = dict(ocr.ocr_many(_budgeted_jobs(prepared, ctx, budget), ctx.settings.ocr,
                                pool=ctx.ocr_pool))
    for i, p in enumerate(prepared):
        for j, attachment in enumerate(p.to_ocr):
            result = results.get((i, j))
            if result is None:  # never handed to the pool: the message's budget was used up
                p.problems.append(f"attachment {attachment.name}: not read, the message's OCR time budget "
                                  f"of {budget.seconds:g} s was used up")
                continue
            if isinstance(result, MissingDependencyError):
                raise result
            if isinstance(result, ComplaintdeskError):
                log.warning("attachment %s of %s not read: %s", attachment.name, p.envelope.origin, result)
                p.problems.append(f"attachment {attachment.name}: not read: {result}")
                p.failure = result
                continue
            for page in result.pages:
                p.pages.append(dataclasses.replace(page, number=len(p.pages) + 1))


@dataclass
class _Budget:
    """When each message's first attachment went to the OCR pool, against its seconds of OCR."""

    seconds: float
    started: dict[int, float] = dataclasses.field(default_factory=dict)

    def spent(self, message: int) -> bool:
        # wall clock, not worker CPU: what holds the mailbox is elapsed time, and a hung Tesseract
        # run uses little CPU
        now = time.monotonic()
        return now - self.started.setdefault(message, now) >= self.seconds


def _budgeted_jobs(prepared: Sequence[_Prepared], ctx: RunContext,
                   budget: _Budget) -> Iterator[tuple[tuple[int, int], Path, str]]:
    """The batch's OCR jobs in message order, each checked against its message's budget when pulled.

    ``ocr_many`` pulls a job only when the pool has room, so the check happens just before the
    attachment would start, not when the batch is planned.
    """
    for i, p in enumerate(prepared):
        for j, a in enumerate(p.to_ocr):
            if budget.spent(i):
                log.warning("OCR time budget of %g s used up for %s; %d attachment(s) not read",
                            budget.seconds, p.envelope.origin, len(p.to_ocr) - j)
                break
            yield (i, j), ctx.blobs.path(ctx.blobs.put(a.data)), a.name


def _finish_text(p: _Prepared) -> None:
    parsed = p.parsed
    assert parsed is not None
    text = "\n\n".join(page.text.strip() for page in p.pages if page.text.strip())
    p.text = text
    if not text:
        if p.failure is not None:
            raise InputError(f"the e-mail has no text and its attachment could not be read: {p.failure}")
        if p.action == "new":
            raise InputError("the e-mail has no text: an empty body and no readable attachment")
        return
    p.item = IntakeItem(source=_source(p), text=text, pages=tuple(p.pages), subject=parsed.subject,
                        sender=parsed.sender, problems=tuple(p.problems))


@dataclass
class _Seen:
    """What the database already holds for a batch's messages, read with one query per table.

    Messages stored before intake rows existed are recognised here by content hash (the intake row
    recognises everything accepted since).
    """

    by_sha256: dict[str, storage.Case]
    reply_by_sha256: dict[str, storage.Case]
    ignored: dict[str, str]  # sha256 -> reason
    quarantined: dict[str, str]

    @classmethod
    def load(cls, session: Any, parsed: Sequence[ParsedMessage]) -> _Seen:
        shas = [m.sha256 for m in parsed]
        return cls(
            storage.cases_by_sha256(session, shas),
            storage.cases_by_message_sha256(session, shas),
            {k: r.reason for k, r in storage.ignored_by_sha256(session, shas).items()},
            {k: r.reason for k, r in storage.quarantine_by_sha256(session, shas).items()},
        )

    def earlier(self, parsed: ParsedMessage) -> Outcome | None:
        """The recorded outcome of these exact bytes if they were handled before."""
        source = Source(Channel.email, parsed.message_id, parsed.sha256, parsed.size, "message/rfc822")
        sha = parsed.sha256
        case = self.by_sha256.get(sha) or self.reply_by_sha256.get(sha)
        if case is not None:
            return Outcome(OutcomeKind.matched, source, case.reference, reason="already stored",
                           case=storage.case_to_dict(case))
        if sha in self.ignored:
            return Outcome(OutcomeKind.ignored, source, reason=self.ignored[sha])
        if sha in self.quarantined:
            return Outcome(OutcomeKind.quarantined, source, reason=self.quarantined[sha])
        return None


class _RetryAlone(Exception):
    """A message failed inside the batch transaction: store the batch one message at a time."""


def _settle(session: Any, p: _Prepared, ctx: RunContext, outbox: str, *, alone: bool = False) -> Ingested:
    """Write what ``p`` needs in ``session``.

    In a batch transaction an unexpected error rolls the batch back (``_RetryAlone``); alone, the
    message is quarantined instead, so one odd message never blocks the mailbox.
    """
    if not alone:
        try:
            return _write(session, p, ctx, outbox)
        except StorageError:
            raise
        except Exception as e:
            raise _RetryAlone(f"{p.envelope.origin}: {type(e).__name__}: {e}") from e
    try:
        with session.begin_nested():
            return _write(session, p, ctx, outbox)
    except StorageError:
        raise
    except Exception as e:  # noqa: BLE001 - an odd message: quarantine it, keep the batch
        error = e if isinstance(e, InputError) else InputError(
            f"internal error while storing the message: {type(e).__name__}: {e}")
        if not isinstance(e, InputError):
            log.exception("unexpected error storing %s; quarantining it", p.envelope.origin)
        p.action, p.error = "quarantine", error
        with session.begin_nested():
            return _write(session, p, ctx, outbox)


def _settle_alone(p: _Prepared, ctx: RunContext, outbox: str) -> Ingested:
    """Store one message in its own transaction; quarantine it if the database rejects it."""
    try:
        with ctx.db.session() as session:
            return _settle(session, p, ctx, outbox, alone=True)
    except StorageError as e:
        if p.action == "quarantine":
            raise
        log.warning("the database rejected %s (%s); quarantining it", p.envelope.origin, e)
        p.action, p.error = "quarantine", InputError(f"the database rejected the message: {e}")
        with ctx.db.session() as session:
            return _settle(session, p, ctx, outbox, alone=True)


def _write(session: Any, p: _Prepared, ctx: RunContext, outbox: str) -> Ingested:
    """Store one message and finish its intake row; a row another process finished is left as it is."""
    record = session.get(storage.IntakeRecord, p.intake_id)
    if record is not None and record.state == "done":
        return Ingested(p.envelope, recorded_outcome(session, record, again=True), p.parsed)
    outcome, case_id = _write_outcome(session, p, ctx, outbox)
    storage.finish_intake(session, p.intake_id, outcome.kind, case_id=case_id, reason=outcome.reason)
    return Ingested(p.envelope, dataclasses.replace(outcome, intake_id=p.intake_id), p.parsed)


def _write_outcome(session: Any, p: _Prepared, ctx: RunContext, outbox: str) -> tuple[Outcome, int | None]:
    """What ``p`` becomes, written in ``session``, and the row id of its case if it has one."""
    envelope, parsed = p.envelope, p.parsed
    if p.action == "done":  # recognised by content hash: a case stored before intake rows existed
        assert p.outcome is not None
        earlier = storage.find_case(session, p.outcome.reference) if p.outcome.reference else None
        return p.outcome, earlier.id if earlier is not None else None
    source = _source(p)
    if p.action == "quarantine" or parsed is None:
        return quarantine_in(session, ctx, source, p.error or InputError("the message cannot be used")), None
    if p.action == "noise":
        storage.record_ignored(session, message_id=parsed.message_id, sha256=parsed.sha256,
                               reason=parsed.noise_reason, mailbox=envelope.mailbox, uid=envelope.uid)
        log.info("ignored %s: %s", envelope.origin, parsed.noise_reason)
        return Outcome(OutcomeKind.ignored, source, reason=parsed.noise_reason), None
    case = _thread_case(session, parsed) if (parsed.case_reference or parsed.thread_ids) else None
    if case is not None:
        storage.add_message(
            session, case, message_id=parsed.message_id, in_reply_to=" ".join(parsed.in_reply_to),
            references=parsed.references, sender=parsed.sender, subject=parsed.subject, text=p.text,
            sha256=parsed.sha256, received_at=parsed.date, actor=ctx.actor,
        )
        log.info("reply %s added to case %s", envelope.origin, case.reference)
        return Outcome(OutcomeKind.matched, source, case.reference, reason="reply added to the case",
                       case=storage.case_to_dict(case)), case.id
    if p.item is None:  # decided as a reply, but its case is gone, and it has no text of its own
        raise InputError("the e-mail has no text: an empty body and no readable attachment")
    outcome, case_id = create_or_match(session, ctx, p.item, [o.ref() for o in p.originals])
    if p.ack and outcome.kind is OutcomeKind.created:
        storage.queue_ack(session, case_id, ack_request(parsed), mailbox=outbox)
    return outcome, case_id


def _parse(envelope: Envelope, limit: int) -> ParsedMessage:
    size = envelope.declared_size or len(envelope.data)
    if size > limit:
        raise InputError(
            f"the message is {size:,} bytes, over the limit of {limit:,} (imap.max_message_bytes)"
            + ("; it was not downloaded and stays on the server" if not envelope.data else "")
        )
    return parse_message(envelope.data)


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


def _source(p: _Prepared) -> Source:
    envelope, parsed = p.envelope, p.parsed
    if parsed is None:
        data = envelope.data or f"{envelope.origin} ({envelope.declared_size} bytes)".encode()
        return Source(Channel.email, envelope.origin, hashlib.sha256(data).hexdigest(),
                      envelope.declared_size or len(envelope.data), "message/rfc822")
    return Source(Channel.email, parsed.message_id or envelope.origin, parsed.sha256, parsed.size,
                  "message/rfc822")


# -- new complaints -----------------------------------------------------------------------------


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


__all__ = ["Envelope", "Ingested", "import_paths", "ingest_messages", "iter_envelopes"]
