"""Dev-fitted score adjustments: label offsets for macro-F1 and the temperature after them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import classifiers
from classifiers.labels import find_label_sets
from classifiers.runtime import SpacyClassifier, apply_temperature
from classifiers.training import fit_biases, load_training_config, train_rows

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "resources" / "classify" / "fixture.jsonl"
TRAIN = ROOT / "classifiers" / "data" / "train.jsonl"
HELDOUT = ROOT / "classifiers" / "data" / "heldout" / "eval.jsonl"


def test_apply_temperature_shifts_log_scores_then_scales() -> None:
    shifted = apply_temperature({"a": 0.6, "b": 0.4}, 1.0, {"b": math.log(2.0)})
    assert shifted["b"] == pytest.approx(0.8 / 1.4) and sum(shifted.values()) == pytest.approx(1.0)
    sharpened = apply_temperature({"a": 0.6, "b": 0.4}, 0.5)
    assert sharpened["a"] == pytest.approx(0.36 / 0.52)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A model that rarely saw praise (12 positive rows of 139), the held-out file as calibration rows."""
    out = tmp_path_factory.mktemp("calibrated") / "m"
    rows, positives = [], 0
    for row in classifiers.read_rows([TRAIN]):
        positives += row.get("sentiment") == "positive"
        if row.get("sentiment") != "positive" or positives <= 12:
            rows.append(row)
    heldout = classifiers.read_rows([HELDOUT])
    cfg = load_training_config(overrides={"training.bias_min_rows": 50, "training.refit_on_all": False})
    train_rows(rows, out, label_sets=find_label_sets([TRAIN]), config=cfg, calibration_rows=heldout)
    return out, heldout


def test_offsets_are_stored_and_never_lower_macro_f1_on_the_rows_they_were_fitted_on(
    calibrated: tuple[Path, list[dict]],
) -> None:
    out, heldout = calibrated
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    model = classifiers.load_model(out)
    assert model.biases == meta["biases"]
    assert set(meta["temperatures"]) == {ls.name for ls in model.label_sets}
    raw = SpacyClassifier(model.pipelines, model.label_sets, model.version)
    with_offsets = classifiers.evaluate(model, heldout)
    without = classifiers.evaluate(raw, heldout)
    for name, report in with_offsets.label_sets.items():
        assert report.macro_f1 >= without.label_sets[name].macro_f1
    # the under-trained label is pushed up, and that is what lifts macro-F1
    assert model.biases["sentiment"]["positive"] > 0
    assert with_offsets.label_sets["sentiment"].macro_f1 > without.label_sets["sentiment"].macro_f1
    assert with_offsets.label_sets["sentiment"].per_label["positive"].recall > without.label_sets[
        "sentiment"].per_label["positive"].recall
    assert meta["metrics"]["department"]["macro_f1"] == with_offsets.label_sets["department"].macro_f1


def test_offsets_decide_the_label_and_scores_stay_a_distribution(calibrated: tuple[Path, list[dict]]) -> None:
    out, heldout = calibrated
    model = classifiers.load_model(out)
    raw = SpacyClassifier(model.pipelines, model.label_sets, model.version)
    texts = [r["text"] for r in heldout[:40]]
    for adjusted, plain in zip(model.classify(texts), raw.classify(texts), strict=True):
        for name, label in adjusted.labels.items():
            assert sum(label.scores.values()) == pytest.approx(1.0)
            offsets = model.biases.get(name, {})
            logits = {k: math.log(max(v, 1e-12)) + offsets.get(k, 0.0)
                      for k, v in plain.labels[name].scores.items()}
            assert label.label == max(logits, key=logits.__getitem__)


def test_no_offsets_from_few_rows_or_when_they_do_not_generalise(tmp_path: Path) -> None:
    info = classifiers.train([FIXTURE], tmp_path / "m")  # 48 rows: a dev split of a handful
    meta = json.loads((info.path / "meta.json").read_text(encoding="utf-8"))
    assert meta["biases"] == {}
    model = classifiers.load_model(info.path)
    raw = SpacyClassifier(model.pipelines, model.label_sets, model.version)
    rows = classifiers.read_rows([FIXTURE])
    assert fit_biases(raw, rows, min_rows=len(rows) + 1) == {}
    # labels unrelated to the texts: offsets fitted on one half never help on the other
    shuffled = [{**r, "sentiment": ["negative", "neutral", "positive"][i % 3]}
                for i, r in enumerate(rows * 5)]
    assert "sentiment" not in fit_biases(raw, shuffled, min_rows=10)
