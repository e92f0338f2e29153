"""Reviewer corrections and confirmed labels, and re-labelling a case without losing them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.core.errors import InvalidLabelError
from pipeline.core.model import Classification, ReviewRule
from storage.audit import record_event
from storage.cases import review_needed
from storage.followup import rerank
from storage.models import AuditEvent, Case, CaseLabel, Correction, utcnow


def correct_label(
    session: Session,
    case: Case,
    label_set: str,
    label: str,
    *,
    reviewer: str,
    allowed: Mapping[str, Collection[str]] | None = None,
    now: datetime | None = None,
) -> Correction:
    """Record a reviewer's label for one label set of ``case`` and mark it confirmed.

    Confirming the label the model chose is recorded too (old == new): both are training data for
    the next model. The correction keeps the model version that produced the old label.

    ``allowed`` (label set -> its labels, from the model's label sets) rejects a typo before it
    becomes training data; callers that take labels from people must pass it.

    Raises:
        InvalidLabelError: ``allowed`` is given and ``label_set``/``label`` is not in it.
    """
    if allowed is not None:
        check_allowed(allowed, label_set, label)
    at = now or utcnow()
    current = case.label(label_set)
    old = current.label if current is not None else None
    model_version = (current.model_version if current is not None else "") or case.model_version
    # what the label was, so that ``undo_corrections`` can put it back exactly
    before = ({"confidence": current.confidence, "scores": dict(current.scores),
               "model_version": current.model_version, "confirmed_by": current.confirmed_by,
               "confirmed_at": current.confirmed_at.isoformat() if current.confirmed_at else None}
              if current is not None else None)
    if current is None:
        current = CaseLabel(label_set=label_set, label=label, confidence=1.0, scores={}, model_version="")
        case.labels.append(current)
    current.label = label
    current.confidence = 1.0
    current.confirmed_by = reviewer
    current.confirmed_at = at
    case.updated_at = at
    if label_set == "department":  # the reviewer says which department handles it
        case.department = label
    rerank(case)
    correction = Correction(
        case=case, label_set=label_set, old_label=old, new_label=label, reviewer=reviewer,
        model_version=model_version, created_at=at,
    )
    session.add(correction)
    record_event(
        session, "label_corrected" if old != label else "label_confirmed", actor=reviewer, case=case, at=at,
        detail={"label_set": label_set, "old": old, "new": label, "model_version": model_version,
                "before": before},
    )
    return correction


def undo_corrections(
    session: Session, case: Case, *, reviewer: str, now: datetime | None = None
) -> list[str]:
    """Take back ``reviewer``'s latest corrections of ``case`` (all those made at that same moment: one
    "accept all" is one step): each label goes back to what it was, confirmation included, the
    corrections are deleted (a slip of the key is not training data), and the review flag comes back
    if the step had cleared it. Returns the label sets restored ([] when there is nothing to undo).
    """
    latest = session.scalars(
        select(Correction).where(Correction.case_id == case.id, Correction.reviewer == reviewer)
        .order_by(Correction.created_at.desc(), Correction.id.desc()).limit(1)).first()
    if latest is None:
        return []
    step = list(session.scalars(select(Correction).where(
        Correction.case_id == case.id, Correction.reviewer == reviewer,
        Correction.created_at == latest.created_at)))
    events = list(session.scalars(select(AuditEvent).where(
        AuditEvent.case_id == case.id, AuditEvent.actor == reviewer, AuditEvent.at == latest.created_at,
        AuditEvent.action.in_(("label_corrected", "label_confirmed", "reviewed")))))
    befores = {e.detail.get("label_set"): e.detail.get("before") for e in events if e.action != "reviewed"}
    restored = []
    for correction in step:
        label = case.label(correction.label_set)
        before = befores.get(correction.label_set)
        if label is not None:
            if before is None and correction.old_label is None:
                case.labels.remove(label)
            else:
                label.label = correction.old_label or label.label
                if before is not None:
                    label.confidence = float(before["confidence"])
                    label.scores = dict(before["scores"])
                    label.model_version = before["model_version"]
                    label.confirmed_by = before["confirmed_by"]
                    label.confirmed_at = (datetime.fromisoformat(before["confirmed_at"])
                                          if before["confirmed_at"] else None)
                else:
                    label.confirmed_by = label.confirmed_at = None
        if correction.label_set == "department" and correction.old_label:
            case.department = correction.old_label
        restored.append(correction.label_set)
        session.delete(correction)
    if any(e.action == "reviewed" for e in events):
        case.needs_review = True
    rerank(case)
    case.updated_at = now or utcnow()
    record_event(session, "corrections_undone", actor=reviewer, case=case, at=case.updated_at,
                 detail={"label_sets": restored})
    return restored


def check_allowed(allowed: Mapping[str, Collection[str]], label_set: str, label: str) -> None:
    """Raise unless ``label`` is one of ``allowed[label_set]``.

    Raises:
        InvalidLabelError: the label set or the label is unknown (the message lists the allowed values).
    """
    if label_set not in allowed:
        raise InvalidLabelError(
            f"{label_set!r} is not a label set; allowed: {', '.join(allowed) or '(none)'}")
    if label not in allowed[label_set]:
        raise InvalidLabelError(
            f"{label!r} is not a label of {label_set!r}; allowed: {', '.join(allowed[label_set]) or '(none)'}"
        )


def mark_reviewed(session: Session, case: Case, *, reviewer: str, now: datetime | None = None) -> Case:
    """Take ``case`` off the review queue."""
    at = now or utcnow()
    case.needs_review = False
    case.updated_at = at
    record_event(session, "reviewed", actor=reviewer, case=case, at=at)
    return case


def confirmed_labels(case: Case) -> dict[str, str]:
    """The labels of ``case`` a reviewer has confirmed or corrected, by label set."""
    return {lab.label_set: lab.label for lab in case.labels if lab.confirmed_by is not None}


def list_corrections(
    session: Session, *, since: datetime | None = None, label_set: str | None = None
) -> list[Correction]:
    """Corrections, oldest first."""
    statement = select(Correction)
    if since is not None:
        statement = statement.where(Correction.created_at >= since)
    if label_set is not None:
        statement = statement.where(Correction.label_set == label_set)
    return list(session.scalars(statement.order_by(Correction.created_at, Correction.id)))


def confirmed_training_rows(session: Session) -> list[dict[str, Any]]:
    """One row per case with reviewer-confirmed labels: ``{"text", "reference", <label_set>: label...}``.

    The shape ``classifiers.train`` reads from JSONL (missing label sets are simply absent).
    """
    confirmed = select(CaseLabel.case_id).where(CaseLabel.confirmed_by.is_not(None))
    statement = select(Case).where(Case.id.in_(confirmed)).order_by(Case.id)
    rows = []
    for case in session.scalars(statement):
        rows.append({"text": case.text, "reference": case.reference, **confirmed_labels(case)})
    return rows


def relabel_case(
    session: Session,
    case: Case,
    classification: Classification,
    *,
    actor: str,
    thresholds: Mapping[str, ReviewRule] | None = None,
) -> list[str]:
    """Apply a new model's labels to ``case``, leaving reviewer-confirmed label sets alone.

    Returns the label sets whose label changed. The review flag is recomputed from the labels
    that are not confirmed (a case whose every label is confirmed does not need review).
    """
    confirmed = confirmed_labels(case)
    changed: list[str] = []
    for label in classification.labels.values():
        if label.label_set in confirmed:
            continue
        current = case.label(label.label_set)
        if current is None:
            current = CaseLabel(label_set=label.label_set, label=label.label, confidence=0.0, scores={})
            case.labels.append(current)
            changed.append(label.label_set)
        elif current.label != label.label:
            changed.append(label.label_set)
            if label.label_set == "department" and case.department == current.label:
                case.department = label.label  # not assigned elsewhere by a person: follow the model
        current.label = label.label
        current.confidence = float(label.confidence)
        current.scores = {k: float(v) for k, v in label.scores.items()}
        current.model_version = classification.model_version
    unconfirmed = Classification(
        {k: v for k, v in classification.labels.items() if v.label_set not in confirmed},
        classification.model_version,
    )
    case.model_version = classification.model_version
    case.needs_review = bool(unconfirmed.labels) and review_needed(unconfirmed, thresholds or {})
    rerank(case, thresholds)
    case.updated_at = utcnow()
    record_event(
        session, "reclassified", actor=actor, case=case,
        detail={"model_version": classification.model_version, "changed": changed, "kept": sorted(confirmed)},
    )
    return changed
