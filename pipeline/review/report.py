"""What the corrections did, for the models page and ``retrain``: macro-F1 per label set before and after a
retrain (on the same held-out rows), and the labels reviewers corrected most.

``record_retrain`` keeps a retrain's comparison as an audit event (``retrained``), so the page can show
the last one long after the command ran; ``corrections_report`` reads it back with the corrections.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

import storage
from pipeline.core.actor import Actor
from pipeline.review.access import require
from pipeline.review.desk import Desk

if TYPE_CHECKING:
    from pipeline.models import RetrainOutcome


@dataclass(frozen=True)
class LabelSetChange:
    """One label set's macro-F1 on the held-out rows, under the model before and the candidate after."""

    label_set: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 4)


@dataclass(frozen=True)
class CorrectedLabel:
    """How often reviewers changed ``old`` to ``new`` in a label set."""

    label_set: str
    old: str | None
    new: str
    count: int


@dataclass(frozen=True)
class CorrectionsReport:
    """The last retrain's comparison (empty before the first one) and the most corrected labels."""

    retrain: dict[str, Any]  # candidate, current, promoted, reason, corrections, at ("" fields: none yet)
    label_sets: list[LabelSetChange] = field(default_factory=list)
    most_corrected: list[CorrectedLabel] = field(default_factory=list)
    corrections: int = 0  # label changes (old != new) counted
    confirmations: int = 0  # labels accepted as the model gave them

    def to_json(self) -> dict[str, Any]:
        return {"retrain": self.retrain,
                "label_sets": [{"label_set": c.label_set, "before": c.before, "after": c.after,
                                "delta": c.delta} for c in self.label_sets],
                "most_corrected": [{"label_set": c.label_set, "old": c.old, "new": c.new, "count": c.count}
                                   for c in self.most_corrected],
                "corrections": self.corrections, "confirmations": self.confirmations}


def retrain_summary(outcome: RetrainOutcome) -> dict[str, Any]:
    """The part of a retrain worth keeping: versions, the gate's verdict, macro-F1 per label set."""
    result = outcome.result
    if result is None:
        return {"retrained": False, "reason": outcome.reason, "current": outcome.current}
    before, after = result.current_report.label_sets, result.candidate_report.label_sets
    return {
        "retrained": True, "current": outcome.current, "candidate": outcome.candidate,
        "promoted": outcome.promoted, "dry_run": outcome.dry_run, "reason": outcome.reason,
        "corrections": outcome.corrections, "eval_rows": result.eval_rows,
        "macro_f1": {name: {"before": before[name].macro_f1, "after": after[name].macro_f1}
                     for name in before if name in after},
    }


def record_retrain(desk: Desk, actor: Actor, outcome: RetrainOutcome) -> dict[str, Any]:
    """Keep a retrain's summary as an audit event (``retrained``); returns the summary.

    Raises:
        AccessDeniedError: the actor may not run models.
    """
    require(actor, "models")
    summary = retrain_summary(outcome)
    with desk.db.session() as session:
        storage.record_event(session, "retrained", actor=actor.name, detail=summary)
    return summary


def corrections_report(desk: Desk, actor: Actor, *, top: int = 10) -> CorrectionsReport:
    """The last recorded retrain's macro-F1 per label set before and after, and the ``top`` label
    changes reviewers made most (every correction so far, confirmations counted apart).

    Raises:
        AccessDeniedError: the actor may not see models.
    """
    require(actor, "models")
    with desk.db.reader() as session:
        last = session.scalars(
            select(storage.AuditEvent).where(storage.AuditEvent.action == "retrained")
            .order_by(storage.AuditEvent.at.desc(), storage.AuditEvent.id.desc()).limit(1)).first()
        corrections = storage.list_corrections(session)
        retrain = dict(last.detail) | {"at": last.at.isoformat(), "actor": last.actor} if last else {}
    changes = [LabelSetChange(name, float(v["before"]), float(v["after"]))
               for name, v in sorted(retrain.get("macro_f1", {}).items())]
    counted = Counter((c.label_set, c.old_label, c.new_label)
                      for c in corrections if c.old_label != c.new_label)
    most = [CorrectedLabel(ls, old, new, n) for (ls, old, new), n in counted.most_common(top)]
    confirmations = sum(1 for c in corrections if c.old_label == c.new_label)
    return CorrectionsReport(retrain, changes, most, sum(counted.values()), confirmations)
