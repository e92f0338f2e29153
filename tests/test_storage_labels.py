"""Reviewer corrections, confirmed labels, re-classification, and the model version registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import storage
from pipeline.core.model import Channel, Classification, IntakeItem, Label, Source


def cls(department: str, version: str, confidence: float = 0.9) -> Classification:
    return Classification(
        {
            "department": Label("department", department, confidence,
                                {department: confidence, "x": 1 - confidence}),
            "sentiment": Label("sentiment", "negative", 0.9, {"negative": 0.9, "neutral": 0.1}),
        },
        model_version=version,
    )


def make_case(
    s: object, body: str = "Broken bench in the waiting hall", department: str = "facilities"
) -> storage.Case:
    item = IntakeItem(source=Source.from_bytes(Channel.manual, "typed", body.encode()), text=body,
                      classification=cls(department, "v1"))
    return storage.create_case(s, item, due_days=15, actor="t")  # type: ignore[arg-type]


def test_correction_recorded_and_label_confirmed(db: storage.Database) -> None:
    with db.session() as s:
        case = make_case(s)
        correction = storage.correct_label(s, case, "department", "maintenance", reviewer="ana")
        assert (correction.old_label, correction.new_label, correction.model_version) == (
            "facilities", "maintenance", "v1")
        reference = case.reference
    with db.session() as s:
        case = storage.get_case(s, reference)
        row = storage.case_to_dict(case)
        assert row["department"] == "maintenance"
        assert row["labels"]["department"]["confirmed_by"] == "ana"
        assert row["labels"]["department"]["confirmed_at"] is not None
        assert row["labels"]["sentiment"]["confirmed_by"] is None
        assert storage.confirmed_labels(case) == {"department": "maintenance"}
        corrections = storage.list_corrections(s)
        assert [(c.reviewer, c.label_set, c.old_label, c.new_label) for c in corrections] == [
            ("ana", "department", "facilities", "maintenance")]
        events = [e for e in storage.audit_trail(s, case) if e.action == "label_corrected"]
        assert len(events) == 1 and events[0].actor == "ana"
        detail = dict(events[0].detail)
        assert detail.pop("before")["confidence"] == 0.9  # what undo puts back
        assert detail == {"label_set": "department", "old": "facilities", "new": "maintenance",
                          "model_version": "v1"}


def test_confirming_the_model_label_is_recorded(db: storage.Database) -> None:
    with db.session() as s:
        case = make_case(s)
        storage.correct_label(s, case, "sentiment", "negative", reviewer="bo")
        storage.correct_label(s, case, "kind", "praise", reviewer="bo")  # a label set the model did not give
        assert storage.confirmed_labels(case) == {"sentiment": "negative", "kind": "praise"}
        assert [e.action for e in storage.audit_trail(s, case)][1:] == ["label_confirmed", "label_corrected"]
        kinds = storage.list_corrections(s, label_set="kind")
        assert len(kinds) == 1 and kinds[0].old_label is None
        assert storage.list_corrections(s, since=datetime.now(UTC) + timedelta(hours=1)) == []


def test_training_rows_from_confirmed_labels(db: storage.Database) -> None:
    with db.session() as s:
        a = make_case(s, "first")
        make_case(s, "second (not reviewed)")
        storage.correct_label(s, a, "department", "permits", reviewer="ana")
        storage.correct_label(s, a, "sentiment", "neutral", reviewer="ana")
    with db.session() as s:
        assert storage.confirmed_training_rows(s) == [
            {"text": "first", "reference": a.reference, "department": "permits", "sentiment": "neutral"}]


def test_relabel_keeps_confirmed_labels(db: storage.Database) -> None:
    with db.session() as s:
        case = make_case(s)
        storage.correct_label(s, case, "department", "maintenance", reviewer="ana")
        changed = storage.relabel_case(s, case, Classification(
            {"department": Label("department", "permits", 0.99, {}),
             "sentiment": Label("sentiment", "positive", 0.95, {"positive": 0.95, "negative": 0.05})}, "v2"),
            actor="reclassify")
        assert changed == ["sentiment"]
        assert storage.confirmed_labels(case) == {"department": "maintenance"}
        assert case.label("sentiment").label == "positive"  # type: ignore[union-attr]
        assert case.label("sentiment").model_version == "v2"  # type: ignore[union-attr]
        assert case.model_version == "v2" and case.needs_review is False
        event = storage.audit_trail(s, case)[-1]
        assert event.action == "reclassified" and event.detail["kept"] == ["department"]


def test_mark_reviewed(db: storage.Database) -> None:
    with db.session() as s:
        item = IntakeItem(source=Source.from_bytes(Channel.manual, "typed", b"unsure"), text="unsure",
                          classification=cls("permits", "v1", confidence=0.3))
        case = storage.create_case(s, item, due_days=15, actor="t")
        assert case.needs_review
        storage.mark_reviewed(s, case, reviewer="ana")
        assert not case.needs_review
        assert storage.list_cases(s, needs_review=True) == []


def test_model_registry(db: storage.Database) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with db.session() as s:
        assert storage.current_model_version(s) is None
        storage.register_model_version(s, "v1", "/models/v1", metrics={"macro_f1": 0.8}, now=t0)
        storage.register_model_version(s, "v2", "/models/v2", metrics={"macro_f1": 0.85},
                                       now=t0 + timedelta(days=1))
        storage.promote_model_version(s, "v1", actor="ops", now=t0)
    with db.session() as s:
        current = storage.current_model_version(s)
        assert current is not None and current.version == "v1" and current.promoted_at is not None
        storage.promote_model_version(s, "v2", actor="ops", now=t0 + timedelta(days=2))
    with db.session() as s:
        assert [(m.version, m.status) for m in storage.list_model_versions(s)] == [
            ("v2", "promoted"), ("v1", "retired")]
        back = storage.rollback_model_version(s, actor="ops", now=t0 + timedelta(days=3))
        assert back.version == "v1"
        assert storage.get_model_version(s, "v2").status == "retired"
        again = storage.register_model_version(s, "v2", "/models/v2b", metrics={"macro_f1": 0.9})
        assert again.path == "/models/v2b" and again.metrics == {"macro_f1": 0.9}
        assert again.status == "retired"
        storage.register_model_version(s, "v3", "/models/v3")
        storage.retire_model_version(s, "v3", actor="ops")
        assert storage.get_model_version(s, "v3").status == "retired"
        with pytest.raises(storage.ModelVersionNotFoundError, match="models list"):
            storage.promote_model_version(s, "v9", actor="ops")
        actions = [e.action for e in s.scalars(select(storage.AuditEvent).order_by(storage.AuditEvent.id))]
        assert actions.count("model_promoted") == 3


def test_rollback_without_history_fails(db: storage.Database) -> None:
    with db.session() as s:
        storage.register_model_version(s, "v1", "/m/v1")
        storage.promote_model_version(s, "v1", actor="ops")
        with pytest.raises(storage.ModelVersionNotFoundError, match="roll back"):
            storage.rollback_model_version(s, actor="ops")
