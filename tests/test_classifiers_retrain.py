"""The promotion gate: a candidate trained on poisoned corrections is refused, a better one passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import classifiers
from classifiers.evaluation import EvaluationReport, score_predictions
from classifiers.retrain import gate, retrain, split_corrections

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "resources" / "classify" / "fixture.jsonl"
TRAIN = ROOT / "classifiers" / "data" / "train.jsonl"
HELDOUT = ROOT / "classifiers" / "data" / "heldout" / "eval.jsonl"


def _rows(path: Path, n: int) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()][:n]


def _report(**f1_inputs: tuple[list[str], list[str]]) -> EvaluationReport:
    return EvaluationReport({k: score_predictions(k, g, p) for k, (g, p) in f1_inputs.items()})


def test_gate_rules() -> None:
    good = (["a", "b", "a", "b"], ["a", "b", "a", "b"])
    half = (["a", "b", "a", "b"], ["a", "a", "a", "a"])
    assert gate(_report(x=half), _report(x=good)).promote
    assert gate(_report(x=good), _report(x=good)).promote  # equal is not a drop
    refused = gate(_report(x=good), _report(x=half))
    assert not refused.promote and "drop" in refused.reason
    # the mean does not drop, but label set x loses more than the allowed 0.02
    mixed = gate(_report(x=good, y=half), _report(x=half, y=good, z=good))
    assert not mixed.promote and mixed.reason.startswith("x macro-F1 would drop")
    # only label sets both models have are compared (z is new)
    assert gate(_report(x=half), _report(x=good, z=half)).promote


def test_corrections_feed_the_evaluation_deterministically() -> None:
    rows = [{"text": f"case {i}", "reference": f"2026-{i:06d}", "kind": "complaint"} for i in range(100)]
    train_a, eval_a = split_corrections(rows)
    train_b, eval_b = split_corrections(list(reversed(rows)))
    assert {r["reference"] for r in eval_a} == {r["reference"] for r in eval_b}
    assert 5 <= len(eval_a) <= 40 and len(train_a) + len(eval_a) == 100


@pytest.fixture(scope="module")
def current(tmp_path_factory: pytest.TempPathFactory) -> classifiers.Classifier:
    out = tmp_path_factory.mktemp("current") / "m"
    classifiers.train([FIXTURE], out)
    return classifiers.load_model(out)


def test_poisoned_corrections_are_refused(current: classifiers.Classifier, tmp_path: Path) -> None:
    poisoned = []
    for i, row in enumerate(_rows(TRAIN, 150)):
        bad = {"text": row["text"], "reference": f"p-{i}"}
        for ls in current.label_sets:
            labels = ls.label_ids
            bad[ls.name] = labels[(labels.index(row[ls.name]) + 1) % len(labels)]
        poisoned.append(bad)
    result = retrain(data=[FIXTURE], corrections=poisoned, heldout=_rows(HELDOUT, 90), current=current,
                     out_dir=tmp_path / "cand", seed=0)
    assert not result.decision.promote, result.decision
    assert result.decision.candidate_macro_f1 < result.decision.current_macro_f1
    assert result.to_json()["current"] == current.version


def test_good_corrections_pass_the_gate(current: classifiers.Classifier, tmp_path: Path) -> None:
    good = [{**row, "reference": f"g-{i}"} for i, row in enumerate(_rows(TRAIN, 150))]
    result = retrain(data=[FIXTURE], corrections=good, heldout=_rows(HELDOUT, 90), current=current,
                     out_dir=tmp_path / "cand", seed=0)
    assert result.decision.promote, result.decision
    assert result.decision.candidate_macro_f1 > result.decision.current_macro_f1
    assert result.train_corrections + (result.eval_rows - 90) == 150
