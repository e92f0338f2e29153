"""The store stage: one short transaction writes what became of an input and finishes its intake row.

Every function here re-reads the intake row inside its transaction: if another process finished the
same input in the meantime (two scans of one folder, a resume racing a scan), it returns that
outcome and writes nothing, so an input never becomes two cases.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import storage
from pipeline.context import RunContext
from pipeline.core.errors import ComplaintdeskError
from pipeline.core.model import Channel, IntakeItem, Outcome, OutcomeKind, Source
from pipeline.files import storable

log = logging.getLogger(__name__)


def source_of(record: storage.IntakeRecord) -> Source:
    """The ``Source`` an intake row describes."""
    return Source(Channel(record.channel), record.source_name, record.sha256, record.size, record.media_type,
                  record.received_at)


def recorded_outcome(session: Any, record: storage.IntakeRecord, *, again: bool = False) -> Outcome:
    """What became of a finished intake row; ``again``: as seen by a later arrival of the same input."""
    case = session.get(storage.Case, record.case_id) if record.case_id is not None else None
    kind = OutcomeKind(record.outcome or OutcomeKind.quarantined)
    if again and kind is OutcomeKind.created:
        kind = OutcomeKind.matched
    reason = record.reason or ("already stored" if again and case is not None else "")
    return Outcome(kind, source_of(record), case.reference if case is not None else None, reason,
                   storage.case_to_dict(case) if case is not None else None, record.id)


def other_slips(ctx: RunContext, outcome: Outcome) -> list[Outcome]:
    """The other cases of a scanned file holding several slips, as seen by a later arrival of the file."""
    if outcome.source.channel is not Channel.slip or outcome.reference is None:
        return []
    with ctx.db.reader() as session:
        cases = storage.cases_with_sha256(session, outcome.source.sha256)
        return [Outcome(OutcomeKind.matched, outcome.source, c.reference, "already stored",
                        storage.case_to_dict(c), outcome.intake_id)
                for c in cases if c.reference != outcome.reference]


def store_case(
    ctx: RunContext, intake_id: int, item: IntakeItem, originals: Sequence[storage.OriginalRef]
) -> Outcome:
    """Create the case of a classified item and finish its intake row, in one transaction.

    The originals' bytes are already in the blob store.
    """
    with ctx.db.session() as session:
        record = _row(session, intake_id)
        if record.state == "done":
            return recorded_outcome(session, record, again=True)
        outcome, case_id = create_or_match(session, ctx, item, originals)
        storage.finish_intake(session, intake_id, outcome.kind, case_id=case_id, reason=outcome.reason)
        return dataclasses.replace(outcome, intake_id=intake_id)


def store_slips(
    ctx: RunContext, intake_id: int, items: Sequence[IntakeItem], originals: Sequence[storage.OriginalRef]
) -> list[Outcome]:
    """One case per slip of a scanned file, and its intake row finished, in one transaction.

    A slip whose printed number is already a case's (the same paper scanned again, as a new file)
    matches that case instead of making a new one. The intake row points at the first new case.
    """
    with ctx.db.session() as session:
        record = _row(session, intake_id)
        if record.state == "done":
            return [recorded_outcome(session, record, again=True)]
        made = [_slip_case(session, ctx, item, originals) for item in items]
        first = next((m for m in made if m[0].kind is OutcomeKind.created), made[0])
        storage.finish_intake(session, intake_id, first[0].kind, case_id=first[1], reason=first[0].reason)
        return [dataclasses.replace(outcome, intake_id=intake_id) for outcome, _ in made]


def _slip_case(session: Any, ctx: RunContext, item: IntakeItem,
               originals: Sequence[storage.OriginalRef]) -> tuple[Outcome, int]:
    earlier = storage.find_case_by_slip_number(session, item.slip_number)
    if earlier is not None and earlier.sha256 != item.source.sha256:
        reason = f"slip No. {item.slip_number} was scanned before"
        return Outcome(OutcomeKind.matched, item.source, earlier.reference, reason,
                       storage.case_to_dict(earlier)), earlier.id
    return create_or_match(session, ctx, item, originals)


def store_quarantine(ctx: RunContext, intake_id: int, source: Source, error: ComplaintdeskError) -> Outcome:
    """Quarantine an input with its reason (its bytes are kept) and finish its intake row."""
    with ctx.db.session() as session:
        record = _row(session, intake_id)
        if record.state == "done":
            return recorded_outcome(session, record, again=True)
        outcome = quarantine_in(session, ctx, source, error)
        storage.finish_intake(session, intake_id, outcome.kind, reason=outcome.reason)
        return dataclasses.replace(outcome, intake_id=intake_id)


def create_or_match(
    session: Any, ctx: RunContext, item: IntakeItem, originals: Sequence[storage.OriginalRef]
) -> tuple[Outcome, int]:
    """Create the case of ``item`` in ``session``: its outcome and the case's row id.

    If a case with the same original exists (a concurrent run stored it first), that case is matched.
    """
    try:
        case = storage.create_case(session, item, due_days=ctx.settings.due_days, actor=ctx.actor,
                                   thresholds=ctx.thresholds, originals=list(originals),
                                   sla=ctx.settings.due_rules())
    except storage.DuplicateCaseError:
        existing = storage.find_case_by_sha256(session, item.source.sha256)
        assert existing is not None
        return Outcome(OutcomeKind.matched, item.source, existing.reference, "already stored",
                       storage.case_to_dict(existing)), existing.id
    return Outcome(OutcomeKind.created, item.source, case.reference, "", storage.case_to_dict(case)), case.id


def quarantine_in(session: Any, ctx: RunContext, source: Source, error: ComplaintdeskError) -> Outcome:
    """Quarantine ``source`` with the error as its reason, in ``session`` (its bytes are in the store)."""
    # storable: a reason may quote a file name holding bytes that are not UTF-8
    kept = storage.quarantine(session, source, storable(str(error)), type(error).__name__, actor=ctx.actor)
    log.warning("quarantined %s: %s", source.name, kept.reason)
    return Outcome(OutcomeKind.quarantined, source, None, kept.reason)


def _row(session: Any, intake_id: int) -> storage.IntakeRecord:
    record = session.get(storage.IntakeRecord, intake_id, with_for_update=True)
    if record is None:
        raise storage.StorageError(f"no intake item {intake_id}")
    return record
