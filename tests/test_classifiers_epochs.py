"""Choosing the number of epochs on the dev split (``[training] patience``), as ``spacy train`` keeps
model-best."""

from __future__ import annotations

import json
from pathlib import Path

import classifiers
from classifiers.labels import find_label_sets
from classifiers.training import _DevScorer, _final_weights, _fit, _prepare, load_training_config, train_rows

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT / "classifiers" / "data" / "train.jsonl"
HELDOUT = ROOT / "classifiers" / "data" / "heldout" / "eval.jsonl"


def _english(path: Path) -> list[dict]:
    return [r for r in (_prepare(r) for r in classifiers.read_rows([path])) if r["lang"] == "en"]


def test_patience_keeps_the_best_epoch_and_the_refit_trains_that_many() -> None:
    rows, dev = _english(TRAIN), _english(HELDOUT)
    sets = find_label_sets([TRAIN])
    # a high learning rate overfits within a few epochs: the best epoch is an early one
    cfg = load_training_config(
        overrides={"training.patience": 3, "training.epochs": 30, "optimizer.learn_rate": 0.05})
    nlp, kept = _fit("en", rows, sets, cfg, 0, dev)
    assert 1 <= kept < 30  # stopped early
    best = _DevScorer(nlp, sets, dev).score(_final_weights(nlp, {}))

    # the weights it kept are those of epoch `kept`: training exactly that long gives the same dev score
    again, n = _fit("en", rows, sets, cfg, 0, epochs=kept)
    assert n == kept
    assert _DevScorer(again, sets, dev).score(_final_weights(again, {})) == best
    # and every other epoch count it tried scores no better on dev
    for epochs in sorted({1, max(1, kept - 1), kept + 1}):
        other, _ = _fit("en", rows, sets, cfg, 0, epochs=epochs)
        assert _DevScorer(other, sets, dev).score(_final_weights(other, {})) <= best


def test_train_records_the_epochs_and_patience_zero_trains_them_all(tmp_path: Path) -> None:
    rows = classifiers.read_rows([TRAIN])
    heldout = classifiers.read_rows([HELDOUT])
    sets = find_label_sets([TRAIN])
    chosen = load_training_config(overrides={"training.patience": 2, "training.epochs": 30,
                                             "optimizer.learn_rate": 0.05, "training.refit_on_all": True})
    train_rows(rows, tmp_path / "a", label_sets=sets, config=chosen, calibration_rows=heldout)
    epochs = json.loads((tmp_path / "a" / "meta.json").read_text(encoding="utf-8"))["epochs"]
    assert set(epochs) == {"en", "zh"} and all(1 <= n < 30 for n in epochs.values())

    fixed = load_training_config(overrides={"training.epochs": 5})
    train_rows(rows, tmp_path / "b", label_sets=sets, config=fixed)
    meta = json.loads((tmp_path / "b" / "meta.json").read_text(encoding="utf-8"))
    assert meta["epochs"] == {"en": 5, "zh": 5}
