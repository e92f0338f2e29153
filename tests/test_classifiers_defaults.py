"""Training defaults: the dev split carved from the training rows, the settings chosen on it and
recorded, labels described in ``labels.toml`` before they have examples, and what ``evaluate``
reports about abstaining (top-2, coverage curve, auto-accepted share) and the baseline."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

import classifiers
from classifiers import training
from classifiers.labels import LabelSet, load_label_sets, restrict_to_data
from classifiers.training import carve_dev, description_rows, load_training_config, train_rows
from pipeline.cli.app import app
from pipeline.core.errors import MissingDependencyError
from tests.fakes import FakeClassifier

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "resources" / "classify" / "fixture.jsonl"
TRAIN = ROOT / "classifiers" / "data" / "train.jsonl"


def _rows(n_per_group: int) -> list[dict[str, object]]:
    return [{"text": f"{lang} {dept} {i}", "lang": lang, "department": dept}
            for lang in ("en", "zh") for dept in ("a", "b", "c") for i in range(n_per_group)]


def test_carve_dev_is_seeded_stratified_and_disjoint() -> None:
    rows = _rows(40)
    train, dev = carve_dev(rows, ["department"], 0.1, seed=0)
    assert len(dev) == 24 and len(train) == 216
    assert {r["text"] for r in train}.isdisjoint(r["text"] for r in dev)
    # every (language, label) group gives its share: 4 of its 40 rows
    assert Counter((r["lang"], r["department"]) for r in dev) == {
        (lang, d): 4 for lang in ("en", "zh") for d in ("a", "b", "c")}
    assert carve_dev(_rows(40), ["department"], 0.1, seed=0)[1] == dev  # same seed, same split
    assert carve_dev(_rows(40), ["department"], 0.1, seed=1)[1] != dev
    assert carve_dev(rows, ["department"], 0.0, seed=0) == (rows, [])


def _library_sets() -> tuple[LabelSet, ...]:
    """The bundled label sets plus a `library` department that has a description and no rows."""
    sets = load_label_sets()
    dept = sets[0]
    library = replace(dept, labels={**dept.labels, "library": "The public library on the 4th floor"},
                      handles={**dept.handles, "library": {
                          "en": ("public library", "borrowing and returning books", "library card",
                                 "reading room seats", "overdue book fines", "children's story corner"),
                          "zh": ("图书馆", "借书还书", "借书证", "阅览室座位", "逾期罚款", "少儿阅读区")}})
    return (library, *sets[1:])


def test_a_department_described_in_labels_toml_is_learnt_before_it_has_rows(tmp_path: Path) -> None:
    rows = classifiers.read_rows([FIXTURE])
    sets = _library_sets()
    assert "library" in restrict_to_data(sets, rows)[0].labels
    # rows with labels of their own (none of ours): the descriptions are not this data's labels
    foreign = [{"text": "pothole", "department": "roads"}, {"text": "bins", "department": "waste"}]
    assert set(restrict_to_data(sets, foreign)[0].labels) == {"roads", "waste"}
    assert not description_rows(restrict_to_data(sets, foreign), ["en"])

    cfg = load_training_config(overrides={"training.epochs": 8})
    train_rows(rows, tmp_path / "m", label_sets=sets, config=cfg)
    model = classifiers.load_model(tmp_path / "m")
    assert "library" in model.label_set("department").labels  # type: ignore[union-attr]
    assert model.meta["description_rows"] > 0
    texts = ["I could not renew my library card and the overdue book fines are wrong",
             "阅览室座位太少了，借书还书要排很久"]
    assert [c.labels["department"].label for c in model.classify(texts)] == ["library", "library"]
    # without the description the same texts go elsewhere: the description is what taught it
    plain = tmp_path / "plain"
    train_rows(rows, plain, label_sets=load_label_sets(), config=cfg)
    assert all(c.labels["department"].label != "library"
               for c in classifiers.load_model(plain).classify(texts))


def test_train_chooses_settings_on_the_carved_dev_split_and_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two candidates besides the config as written keep the test short; the real grid has three
    grid = [training.SEARCH_GRID[0], {"optimizer": {"learn_rate": 0.05}, "training": {"batch_size": 64}}]
    monkeypatch.setattr(training, "SEARCH_GRID", grid)
    rows = classifiers.read_rows([TRAIN])
    cfg = load_training_config(overrides={"training.min_dev_rows": 40, "training.epochs": 6})
    train_rows(rows, tmp_path / "m", label_sets=load_label_sets(), config=cfg)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    sel = meta["selection"]
    assert sel["dev_source"] == "carved" and sel["dev_rows"] == meta["dev_rows"] >= 40
    assert sel["patience"] == 2 and len(sel["candidates"]) == 3
    scores = [c["score"] for c in sel["candidates"]]
    best = scores.index(max(scores))
    assert sel["chosen"] == ([{}] + grid)[best]
    assert meta["epochs"] == sel["candidates"][best]["epochs"]  # the refit trains the chosen epochs
    for c in sel["candidates"]:
        assert 0 < c["dev_macro_f1"] <= 1 and 0 < c["noisy_dev_macro_f1"] <= 1
    # the chosen settings are those in the recorded config
    if sel["chosen"].get("optimizer"):
        assert f"learn_rate = {sel['chosen']['optimizer']['learn_rate']}" in meta["config"]


def test_too_few_dev_rows_train_the_config_as_written(tmp_path: Path) -> None:
    rows = classifiers.read_rows([FIXTURE])
    train_rows(rows, tmp_path / "m", label_sets=load_label_sets(),
               config=load_training_config(overrides={"training.epochs": 3}))
    meta = json.loads((tmp_path / "m" / "meta.json").read_text(encoding="utf-8"))
    assert meta["selection"]["enough_dev_rows"] is False and meta["selection"]["candidates"] == []
    assert meta["selection"]["patience"] == 0 and meta["epochs"] == {"en": 3, "zh": 3}


def test_evaluate_reports_top2_coverage_and_auto_accepted_share() -> None:
    rows = [{"text": f"t{i}", "department": "medical" if i < 6 else "transport", "sentiment": "neutral"}
            for i in range(10)]
    sure = FakeClassifier(labels={"department": "medical", "sentiment": "neutral"}, confidence=0.9,
                          rule=lambda t: {} if int(t[1:]) < 8 else {"department": "general"})
    report = classifiers.evaluate(sure, rows)
    dept = report.label_sets["department"]
    assert dept.accuracy == 0.6
    # confident everywhere: all auto-accepted, and as right as the predictions are
    assert dept.auto_accept == {"share": 1.0, "accuracy": 0.6, "n": 10}
    assert dept.coverage_curve[-1][:2] == (1.0, 0.6)
    assert report.case_auto_accept == {"share": 1.0, "accuracy": 0.6, "n": 10}

    unsure = FakeClassifier(labels={"department": "medical", "sentiment": "neutral"}, confidence=0.4)
    report = classifiers.evaluate(unsure, rows)
    assert report.label_sets["department"].auto_accept == {"share": 0.0, "accuracy": 0.0, "n": 0}
    assert report.case_auto_accept is not None and report.case_auto_accept["share"] == 0.0


def test_coverage_curve_keeps_the_most_confident_first() -> None:
    from classifiers.evaluation import coverage_curve

    curve = coverage_curve([True, True, False, False], [0.9, 0.8, 0.7, 0.2], steps=4)
    assert curve == ((0.25, 1.0, 0.9), (0.5, 1.0, 0.8), (0.75, 0.6667, 0.7), (1.0, 0.5, 0.2))


def test_evaluate_baseline_compares_on_the_same_rows(tmp_path: Path) -> None:
    out = tmp_path / "model"
    assert CliRunner().invoke(app, ["train", "--data", str(FIXTURE), "--model-dir", str(out)]).exit_code == 0
    result = CliRunner().invoke(app, ["evaluate", "--data", str(FIXTURE), "--model-dir", str(out),
                                      "--baseline", "--train-data", str(TRAIN), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    for name in ("department", "sentiment", "kind"):
        for side in ("model", "baseline"):
            scores = data[side][name]
            assert 0 < scores["macro_f1"] <= 1 and scores["top2_accuracy"] >= scores["accuracy"]
            assert scores["coverage_curve"][-1]["coverage"] == 1.0
    table = CliRunner().invoke(app, ["evaluate", "--data", str(FIXTURE), "--model-dir", str(out),
                                     "--baseline", "--train-data", str(TRAIN)])
    assert table.exit_code == 0, table.output
    rows = [line.split("│") for line in table.stdout.splitlines() if "macro-F1" in line and "│" in line]
    # one macro-F1 row per label set, the model's and the baseline's figure side by side
    assert {r[1].strip() for r in rows} == {"department", "sentiment", "kind"}
    for r in rows:
        assert 0 < float(r[3]) <= 1 and 0 < float(r[4]) <= 1


def test_the_baseline_without_scikit_learn_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from classifiers.baseline import train_baseline

    monkeypatch.setitem(sys.modules, "sklearn.feature_extraction.text", None)
    with pytest.raises(MissingDependencyError, match="baseline"):
        train_baseline(classifiers.read_rows([FIXTURE]), load_label_sets())
