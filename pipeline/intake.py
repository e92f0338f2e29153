"""The intake service, and the table of contents of complaintdesk: how any input becomes a case.

Every channel (``scan``, ``submit``, ``mail import``, ``poll``, the web app's uploads; later the API)
is a thin adapter over two calls:

    accept   hash the input, recognise it if seen before, keep its original bytes in the blob store
             and write its intake row (state ``received``): one short transaction, nothing slow.
    process  extract text     OCR of scans in the bounded process pool (``ocr``), or mail parsing
                              with attachments (``pipeline.mail.ingest``), or the typed text as it is
             parse            a scan's pages as slip forms: one item per slip, its text what the citizen
                              wrote, the form's fields and printed number (``pipeline.forms.stage``)
             enrich           normalise, detect the language, extract fields, classify (``pipeline.enrich``)
             store            a case (one per slip; a slip number seen before matches its case), a quarantine
                              record, an ignored record, or a reply joined to its case, and the intake row
                              ``done``: one short transaction (``pipeline.store``)

With ``COMPLAINTDESK_QUEUE=postgres``, ``accept`` also queues a job ``process(intake_id)`` in the same
transaction as the intake row (``storage.queue``), the channels stop there (outcome ``queued``), and
``complaintdesk worker`` processes (``pipeline.worker``). Without it there is no queue at all.

No database transaction is open while OCR or classification runs. ``process`` is idempotent: a
finished item is left as it is, and an item a crash left half-done is finished by the next
``process``/``resume`` (every ``scan`` and ``poll`` resumes first).
"""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import ocr
import storage
from pipeline.context import RunContext
from pipeline.core.errors import ComplaintdeskError, InputError, MissingDependencyError, UnreadableScanError
from pipeline.core.model import Channel, IntakeItem, Outcome, OutcomeKind, Source
from pipeline.enrich import enrich
from pipeline.files import UNPRINTABLE, Skipped, media_type_for, open_regular, source_name, storable
from pipeline.forms.stage import parse_slips
from pipeline.store import other_slips, recorded_outcome, source_of, store_case, store_quarantine, store_slips

log = logging.getLogger(__name__)

#: an item whose processing was interrupted this many times (a crash, an out-of-memory kill) is
#: quarantined instead of being tried again, so one poison input cannot stop every resume
MAX_ATTEMPTS = 3
#: an unfinished item untouched this long is taken over by the next ``scan``/``poll``
RESUME_IDLE = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted input: its intake row, and whether it is new or was recognised as seen before."""

    intake_id: int
    new: bool
    source: Source


@dataclass(frozen=True, slots=True)
class Pending:
    """An intake row as ``process`` reads it, detached from the database session."""

    intake_id: int
    source: Source
    options: dict[str, Any]
    state: str
    attempts: int
    last_error: str


# -- accept ---------------------------------------------------------------------------------------


def accept_file(ctx: RunContext, path: Path, *, channel: Channel = Channel.slip) -> Accepted:
    """Accept one scanned file: its bytes are streamed into the blob store once and hashed on the way.

    Raises:
        UnreadableScanError, UnsupportedFormatError: the file cannot be read (permission, vanished, an
            I/O error) or is not a regular file; nothing is recorded, so the next scan tries it again.
    """
    with open_regular(path) as f:  # a read failing half-way becomes UnreadableScanError there
        sha, size = ctx.blobs.put_stream(f)
    source = Source(channel, source_name(path), sha, size, media_type_for(path))
    return accept_source(ctx, source, keys=[f"sha256:{sha}"])


def accept_text(ctx: RunContext, text: str, *, channel: Channel = Channel.manual,
                name: str = "typed") -> Accepted:
    """Accept a complaint typed in by staff (hotline, opinion book) or sent through a web form."""
    data = text.encode("utf-8")
    source = Source.from_bytes(channel, name, data, "text/plain")
    ctx.blobs.put(data)
    # No dedupe key: two callers reporting the same broken lift in the same words are two complaints.
    return accept_source(ctx, source, keys=[], options={"typed": True})


def accept_source(ctx: RunContext, source: Source, *, keys: Sequence[str], message_id: str = "",
                  mailbox: str = "", uid: int | None = None,
                  options: dict[str, Any] | None = None, uploaded_by: str = "") -> Accepted:
    """Write the intake row of an input whose original is already in the blob store (one transaction).

    ``uploaded_by``: a web app upload's uploader, recorded (``storage.record_upload``) in the same
    transaction, whether the input is new or recognised as seen before.
    """
    with ctx.db.session() as session:
        record, new = storage.accept_record(
            session, keys=keys, channel=str(source.channel), source_name=source.name, sha256=source.sha256,
            size=source.size, media_type=source.media_type, message_id=message_id, mailbox=mailbox, uid=uid,
            options=options or {},
        )
        if new and queued(ctx):  # the job commits with its intake row, or neither does
            storage.queue.enqueue(session, [record.id])
        if uploaded_by:
            storage.record_upload(session, intake_id=record.id, uploaded_by=uploaded_by, filename=source.name,
                                  new=new)
        return Accepted(record.id, new, source)


def accept_upload(ctx: RunContext, f: BinaryIO, filename: str, *, uploaded_by: str) -> Accepted:
    """Accept one file uploaded in the web app, as a scanned slip, recording who uploaded it.

    Its bytes are streamed into the blob store (kept under their hash); ``filename``, the browser's
    word, is only recorded, made safe by ``upload_name``, and never used as a path. Whatever the file
    holds, it is accepted: one that is not a readable scan is quarantined by ``process``, with its reason.
    """
    sha, size = ctx.blobs.put_stream(f)
    name = upload_name(filename)
    source = Source(Channel.slip, name, sha, size, media_type_for(Path(name)))
    return accept_source(ctx, source, keys=[f"sha256:{sha}"], uploaded_by=uploaded_by)


def upload_name(filename: str) -> str:
    """A browser's file name as a record may hold it: the last part of any path (``/`` or ``\\``), no
    control or format characters, at most 200 characters; ``upload`` when nothing is left."""
    last = filename.replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c for c in storable(last) if unicodedata.category(c) not in UNPRINTABLE).strip()
    return kept[:200] if kept not in ("", ".", "..") else "upload"


def queued(ctx: RunContext) -> bool:
    """Whether accepted inputs go to the task queue (processed by workers) instead of in-process."""
    return ctx.settings.queue == "postgres"


def queued_outcome(a: Accepted) -> Outcome:
    return Outcome(OutcomeKind.queued, a.source, reason=f"intake item {a.intake_id}, queued for a worker")


# -- process --------------------------------------------------------------------------------------


def process(ctx: RunContext, intake_id: int) -> Outcome:
    """Run the stages for one accepted item (see the module docstring); idempotent.

    A scan holding several slips becomes several cases: this returns its first slip's outcome
    (``process_many`` yields them all).
    """
    return next(iter(process_many(ctx, [intake_id])))


def process_many(ctx: RunContext, ids: Sequence[int], *,
                 acknowledge: Callable[[Any], bool] | None = None) -> Iterator[Outcome]:
    """Process accepted items as batches per channel; yields one outcome per item, in completion order.

    An item that was started before and never finished (a crash, an out-of-memory kill) is run
    alone, so that one poison input cannot take its whole batch down with it again; after
    ``MAX_ATTEMPTS`` such starts it is quarantined. ``acknowledge`` decides, per parsed e-mail,
    whether its new case gets an acknowledgment queued.

    Raises:
        MissingDependencyError: Tesseract disappeared mid-batch (the rest stays ``received``).
        StorageError: the database failed (likewise).
    """
    fresh, retried = [], []
    for item in _read_pending(ctx, ids):
        if item.state == "done":
            yield _recorded(ctx, item.intake_id, again=False)
        elif item.attempts >= MAX_ATTEMPTS:
            yield store_quarantine(ctx, item.intake_id, item.source, InputError(
                f"processing was interrupted {item.attempts} times; last error: {item.last_error or 'none'}"))
        elif item.attempts:
            retried.append(item)
        else:
            fresh.append(item)
    try:
        yield from _run_stages(ctx, fresh, acknowledge)
        for item in retried:
            yield from _run_stages(ctx, [item], acknowledge)
    except ComplaintdeskError as e:  # the batch stops (Tesseract gone, database down): say why on its rows
        _note_failure(ctx, [item.intake_id for item in (*fresh, *retried)], e)
        raise


def _note_failure(ctx: RunContext, ids: Sequence[int], error: ComplaintdeskError) -> None:
    """Keep the error that stopped a batch on its unfinished rows, so it is never only in a log."""
    try:
        with ctx.db.session() as session:
            for intake_id in ids:
                storage.record_failure(session, intake_id, f"{type(error).__name__}: {error}")
    except storage.StorageError:  # the database itself is what failed: the log is all there is
        log.exception("could not record the error on %d intake items", len(ids))


def _run_stages(ctx: RunContext, items: Sequence[Pending],
                acknowledge: Callable[[Any], bool] | None) -> Iterator[Outcome]:
    from pipeline.mail import ingest  # the mail channel's extract and store stages

    mails = [i for i in items if i.source.channel is Channel.email]
    texts = [i for i in items if i.options.get("typed")]
    files = [i for i in items if i not in mails and i not in texts]
    if texts:
        start(ctx, [i.intake_id for i in texts])
        yield from _process_texts(ctx, texts)
    if mails:
        start(ctx, [i.intake_id for i in mails])
        yield from (done.outcome for done in ingest.process_messages(ctx, mails, acknowledge=acknowledge))
    yield from _process_files(ctx, files)


def resume(ctx: RunContext, *, idle_for: timedelta | None = None, limit: int | None = None,
           acknowledge: Callable[[Any], bool] | None = None) -> list[Outcome]:
    """Finish the accepted items a crash or a stop left unfinished, oldest first.

    ``idle_for``: only items untouched for that long, so that a ``scan`` starting beside another
    one does not redo the other's work (the explicit ``complaintdesk resume`` takes everything).
    """
    before = datetime.now(UTC) - idle_for if idle_for is not None else None
    with ctx.db.reader() as session:
        ids = storage.pending_intake(session, before=before, limit=limit)
    if not ids:
        return []
    log.warning("finishing %d intake items an earlier run left unfinished", len(ids))
    outcomes = list(process_many(ctx, ids, acknowledge=acknowledge))
    for outcome in outcomes:
        log.warning("resumed %s: %s %s", outcome.source.name, outcome.kind,
                    outcome.reference or outcome.reason)
    return outcomes


def start(ctx: RunContext, ids: Sequence[int]) -> list[Pending]:
    """Count one more attempt for each unfinished item among ``ids`` and read them (one short transaction)."""
    if not ids:
        return []
    with ctx.db.session() as session:
        storage.start_attempt(session, ids)
        return [_pending_of(r) for r in storage.get_intake(session, ids)]


def _read_pending(ctx: RunContext, ids: Sequence[int]) -> list[Pending]:
    if not ids:
        return []
    with ctx.db.reader() as session:
        return [_pending_of(r) for r in storage.get_intake(session, ids)]


def _pending_of(r: storage.IntakeRecord) -> Pending:
    return Pending(r.id, source_of(r), dict(r.options or {}) | {"mailbox": r.mailbox, "uid": r.uid}, r.state,
                   r.attempts, r.last_error)


def _recorded(ctx: RunContext, intake_id: int, *, again: bool) -> Outcome:
    with ctx.db.reader() as session:
        (record,) = storage.get_intake(session, [intake_id])
        return recorded_outcome(session, record, again=again)


def _process_texts(ctx: RunContext, items: Sequence[Pending]) -> Iterator[Outcome]:
    ready = []
    for item in items:
        text = ctx.blobs.read(item.source.sha256).decode("utf-8")
        if not text.strip():
            yield store_quarantine(ctx, item.intake_id, item.source,
                                   InputError("the complaint text is empty"))
        else:
            ready.append((item, IntakeItem(source=item.source, text=text)))
    for (item, _), enriched in zip(ready, enrich([i for _, i in ready], ctx.classifier), strict=True):
        yield store_case(ctx, item.intake_id, enriched, [_original(item.source, f"{item.source.name}.txt")])


def _process_files(ctx: RunContext, items: Sequence[Pending]) -> Iterator[Outcome]:
    """OCR scans in the bounded process pool (workers read the originals from the blob store)."""
    by_id = {item.intake_id: item for item in items}
    limit = ctx.settings.ocr.max_file_bytes
    for item in items:
        if item.source.size > limit:
            del by_id[item.intake_id]
            yield store_quarantine(ctx, item.intake_id, item.source, UnreadableScanError(
                f"file is {item.source.size:,} bytes, over the limit of {limit:,}; its original is kept; "
                "raise ocr.max_file_bytes if this is a genuine scan"))

    def jobs() -> Iterator[tuple[int, Path, str]]:
        # An attempt counts when the job enters the bounded pool: only items in flight at a crash
        # are suspects, not the whole batch.
        for intake_id, item in list(by_id.items()):
            start(ctx, [intake_id])
            yield intake_id, ctx.blobs.path(item.source.sha256), Path(item.source.name).name

    for intake_id, result in ocr.ocr_many(jobs(), ctx.settings.ocr, pool=ctx.ocr_pool):
        item = by_id[intake_id]
        if isinstance(result, MissingDependencyError):
            raise result
        if isinstance(result, ComplaintdeskError):
            yield store_quarantine(ctx, intake_id, item.source, result)
        elif not result.text.strip():
            yield store_quarantine(ctx, intake_id, item.source,
                                   UnreadableScanError("OCR found no text on any page"))
        else:
            slips = parse_slips(ctx, IntakeItem(source=item.source, text=result.text, pages=result.pages))
            yield from store_slips(ctx, intake_id, enrich(slips, ctx.classifier),
                                   [_original(item.source, Path(item.source.name).name)])


def _original(source: Source, filename: str) -> storage.OriginalRef:
    """How a case lists its original, whose bytes are already in the blob store since ``accept``."""
    return (filename, source.media_type, "original", source.sha256, source.size)


# -- channels -------------------------------------------------------------------------------------


def scan_files(paths: Iterable[Path | Skipped], ctx: RunContext, *,
               channel: Channel = Channel.slip) -> Generator[Outcome, None, None]:
    """The scan channel: accept every file, then process the new ones; one outcome per entry.

    A file named twice, or stored by an earlier run, is reported as a match without OCR. An entry
    that is not taken (``Skipped`` by ``pipeline.files.iter_files``, or unreadable) is reported as
    ``skipped`` with its reason. Items an earlier run left unfinished are finished first (``resume``;
    their outcomes are logged).
    """
    if not queued(ctx):  # with a queue, the workers (and their retries) own unfinished items
        resume(ctx, idle_for=RESUME_IDLE)
    accepted: list[Accepted] = []
    for entry in paths:
        if isinstance(entry, Skipped):
            yield skipped_outcome(entry.path, entry.reason, channel)
            continue
        try:
            accepted.append(accept_file(ctx, entry, channel=channel))
        except InputError as e:
            yield skipped_outcome(entry, str(e), channel)
    todo: list[int] = []
    recognised: list[Accepted] = []
    again_in_batch: list[Accepted] = []  # a file named twice, or two copies of one file
    first: set[int] = set()
    for a in accepted:
        if a.intake_id in first:
            again_in_batch.append(a)
        elif a.new:
            todo.append(a.intake_id)
        else:
            recognised.append(a)
        first.add(a.intake_id)
    earlier, unfinished = earlier_outcomes(ctx, [a.intake_id for a in recognised])
    for a in recognised:  # reported under the name it has now; a batch scan: every slip's case
        if a.intake_id in earlier:
            for outcome in (earlier[a.intake_id], *other_slips(ctx, earlier[a.intake_id])):
                yield dataclasses.replace(outcome, source=a.source)
    if queued(ctx):  # each one has its job since accept (an unfinished one, since its first accept)
        by_id = {a.intake_id: a for a in accepted}
        yield from (queued_outcome(by_id[i]) for i in todo + unfinished)
        return
    yield from process_many(ctx, todo + unfinished)
    for a in again_in_batch:  # reported under its own name
        outcome = _recorded(ctx, a.intake_id, again=True)
        for each in (outcome, *other_slips(ctx, outcome)):
            yield dataclasses.replace(each, source=a.source)


def skipped_outcome(path: Path, reason: str, channel: Channel = Channel.slip) -> Outcome:
    """An entry that was not taken: it has no bytes we could hash, so nothing is stored for it."""
    source = Source(channel, source_name(path), "", 0, media_type_for(path))
    return Outcome(OutcomeKind.skipped, source, reason=reason)


def submit_text(text: str, ctx: RunContext, *, channel: Channel = Channel.manual,
                name: str = "typed") -> Outcome:
    """The typed-in channel: accept the text, then process it (typed text is never recognised as seen)."""
    accepted = accept_text(ctx, text, channel=channel, name=name)
    return queued_outcome(accepted) if queued(ctx) else process(ctx, accepted.intake_id)


def earlier_outcomes(ctx: RunContext, ids: Sequence[int]) -> tuple[dict[int, Outcome], list[int]]:
    """The recorded outcomes of finished inputs seen before, and the ids still unfinished (a crash, a
    concurrent run), in one read-only session."""
    outcomes: dict[int, Outcome] = {}
    unfinished: list[int] = []
    with ctx.db.reader() as session:
        for record in storage.get_intake(session, ids):
            if record.state == "done":
                outcomes[record.id] = recorded_outcome(session, record, again=True)
            else:
                unfinished.append(record.id)
    return outcomes, unfinished
