"""Evaluation numbers against a hand-computed confusion matrix, F1 and calibration table."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

import classifiers
from classifiers.evaluation import EvaluationReport, score_predictions

GOLD = ["a", "a", "a", "b", "b", "c"]
PRED = ["a", "a", "b", "b", "c", "c"]
CONF = [0.9, 0.8, 0.6, 0.7, 0.55, 0.95]


def test_scores_match_hand_computed_values() -> None:
    r = score_predictions("toy", GOLD, PRED, CONF, labels=["a", "b", "c", "d"])
    # rows = gold, columns = predicted, in the configured order (d never occurs)
    assert r.labels == ("a", "b", "c", "d")
    assert r.confusion == ((2, 1, 0, 0), (0, 1, 1, 0), (0, 0, 1, 0), (0, 0, 0, 0))
    assert r.n == 6
    assert r.accuracy == pytest.approx(4 / 6, abs=1e-4)
    a, b, c = r.per_label["a"], r.per_label["b"], r.per_label["c"]
    assert (a.precision, a.recall, a.f1, a.support) == (1.0, pytest.approx(2 / 3, abs=1e-4), 0.8, 3)
    assert (b.precision, b.recall, b.f1, b.support) == (0.5, 0.5, 0.5, 2)
    assert (c.precision, c.recall, c.f1, c.support) == (0.5, 1.0, pytest.approx(2 / 3, abs=1e-4), 1)
    assert "d" not in r.per_label  # absent from gold and predictions: not part of macro-F1
    assert r.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3, abs=1e-4)


def test_reliability_table_and_ece() -> None:
    r = score_predictions("toy", GOLD, PRED, CONF)
    bins = {round(b.lower, 1): b for b in r.reliability if b.count}
    assert sorted(bins) == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert (bins[0.9].count, bins[0.9].mean_confidence, bins[0.9].accuracy) == (2, 0.925, 1.0)
    assert (bins[0.6].count, bins[0.6].accuracy) == (1, 0.0)
    assert len(r.reliability) == 10 and sum(b.count for b in r.reliability) == 6
    # |1-.925|*2 + |1-.8| + |1-.7| + |0-.6| + |0-.55|, over 6
    assert r.ece == pytest.approx(1.8 / 6, abs=1e-4)


def test_to_json_shape() -> None:
    report = EvaluationReport({"toy": score_predictions("toy", GOLD, PRED, CONF)}, "m-x")
    out = report.to_json()
    assert set(out["toy"]) == {"accuracy", "macro_f1", "n", "per_label", "confusion", "reliability",
                               "top2_accuracy", "coverage_curve", "auto_accept"}
    # score_predictions has no scores or review rule: evaluate() fills these in
    assert out["toy"]["top2_accuracy"] is None and out["toy"]["auto_accept"] is None
    assert out["toy"]["per_label"]["a"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3}
    assert out["toy"]["confusion"]["matrix"][0] == [2, 1, 0]
    assert out["toy"]["reliability"]["ece"] == 0.3


def test_rich_renderer_prints_every_table(tmp_path: Path) -> None:
    console = Console(record=True, width=120)
    classifiers.render_report(
        EvaluationReport({"toy": score_predictions("toy", GOLD, PRED, CONF)}, "m-x"), console)
    text = console.export_text()
    assert "macro-F1 0.656" in text and "confusion" in text and "ECE 0.300" in text


def test_length_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError):
        score_predictions("toy", ["a"], [])
