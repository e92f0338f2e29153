"""Training, loading and classifying with real (small) spaCy pipelines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import classifiers
from classifiers.runtime import SpacyClassifier
from pipeline.core.errors import InputError, ModelError
from pipeline.core.model import Classification

FIXTURE = Path(__file__).parent / "resources" / "classify" / "fixture.jsonl"
PROBES = [
    "The toilets on the second floor have no paper and smell awful.",
    "Thank you to the lady at window 3, she was very patient!",
    "二楼卫生间没有纸，太脏了。",
    "请问办理居住证需要带什么材料？",
    "",
]


@pytest.fixture(scope="module")
def fixture_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[classifiers.ModelInfo, SpacyClassifier]:
    out = tmp_path_factory.mktemp("model") / "m"
    info = classifiers.train([FIXTURE], out, seed=0)
    return info, classifiers.load_model(out)


def _scores(model: SpacyClassifier) -> list[dict[str, dict[str, float]]]:
    return [{k: lab.scores for k, lab in c.labels.items()} for c in model.classify(PROBES)]


def test_train_writes_meta_and_language_pipelines(
    fixture_model: tuple[classifiers.ModelInfo, SpacyClassifier],
) -> None:
    info, model = fixture_model
    meta = json.loads((info.path / "meta.json").read_text(encoding="utf-8"))
    assert meta["version"] == info.version == model.version
    assert info.version.startswith("m-") and len(info.version.split("-")) == 3
    assert sorted(meta["languages"]) == ["en", "zh"]
    assert (info.path / "en" / "config.cfg").is_file() and (info.path / "zh" / "config.cfg").is_file()
    assert [ls.name for ls in model.label_sets] == ["department", "sentiment", "kind"]
    assert meta["counts"]["en"]["sentiment"] and meta["counts"]["zh"]["kind"]
    assert set(meta["metrics"]) == {"department", "sentiment", "kind"}
    for lang in ("en", "zh"):
        names = model.pipelines[lang].pipe_names
        assert names == ["textcat_department", "textcat_sentiment", "textcat_kind"]


def test_training_is_deterministic(
    fixture_model: tuple[classifiers.ModelInfo, SpacyClassifier], tmp_path: Path
) -> None:
    info, model = fixture_model
    again = classifiers.train([FIXTURE], tmp_path / "again", seed=0)
    assert again.version.split("-")[-1] == info.version.split("-")[-1]
    assert _scores(classifiers.load_model(tmp_path / "again")) == _scores(model)


def test_retraining_identical_data_in_place_keeps_the_version(tmp_path: Path) -> None:
    first = classifiers.train([FIXTURE], tmp_path / "m")
    second = classifiers.train([FIXTURE], tmp_path / "m")
    assert first.version == second.version


def test_classify_gives_every_label_set_with_scores(
    fixture_model: tuple[classifiers.ModelInfo, SpacyClassifier],
) -> None:
    _, model = fixture_model
    results = model.classify(PROBES)
    assert len(results) == len(PROBES)
    for c in results:
        assert isinstance(c, Classification) and c.model_version == model.version
        for ls in model.label_sets:
            lab = c.labels[ls.name]
            assert set(lab.scores) == set(ls.labels)
            assert lab.confidence == max(lab.scores.values()) and lab.scores[lab.label] == lab.confidence
            assert sum(lab.scores.values()) == pytest.approx(1.0, abs=1e-3)


def test_chinese_text_is_tokenized_by_character_and_classified(
    fixture_model: tuple[classifiers.ModelInfo, SpacyClassifier],
) -> None:
    _, model = fixture_model
    doc = model.pipelines["zh"].make_doc("二楼卫生间没有纸")
    assert [t.text for t in doc] == list("二楼卫生间没有纸")
    assert classifiers.route_language("二楼卫生间没有纸", model.languages) == "zh"
    (result,) = model.classify(["窗口工作人员态度很好，非常感谢！"])
    assert result.labels["sentiment"].label == "positive"


def test_rows_without_a_label_set_field_only_train_the_others(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows):
        if i % 2:
            del row["kind"]
    data = tmp_path / "partial.jsonl"
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    info = classifiers.train([data], tmp_path / "m")
    kinds = sum(sum(info.counts[lang]["kind"].values()) for lang in info.languages)
    sentiments = sum(sum(info.counts[lang]["sentiment"].values()) for lang in info.languages)
    assert kinds == len(rows) // 2 and sentiments == len(rows)


def test_label_sets_come_from_a_labels_file_next_to_the_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {"text": "the lift is broken again", "urgency": "high"},
        {"text": "lift out of order, my mother cannot climb stairs", "urgency": "high"},
        {"text": "could you add more plants in the hall", "urgency": "low"},
        {"text": "a small idea: music in the waiting area", "urgency": "low"},
    ]
    (data / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (data / "labels.toml").write_text(
        '[[label_set]]\nname = "urgency"\nthreshold = 0.7\n[label_set.labels]\nhigh = "now"\nlow = "later"\n',
        encoding="utf-8",
    )
    classifiers.train([data], tmp_path / "m")
    model = classifiers.load_model(tmp_path / "m")
    assert [(ls.name, ls.label_ids, ls.threshold) for ls in model.label_sets] == [
        ("urgency", ("high", "low"), 0.7)]
    assert model.languages == ("en",)
    (c,) = model.classify(["电梯坏了"])  # no zh pipeline: routed to the one there is
    assert c.labels["urgency"].label in {"high", "low"}


def test_training_without_labels_is_an_input_error(tmp_path: Path) -> None:
    data = tmp_path / "x.jsonl"
    data.write_text('{"text": "hello"}\n', encoding="utf-8")
    with pytest.raises(InputError):
        classifiers.train([data], tmp_path / "m")
    with pytest.raises(InputError):
        classifiers.train([tmp_path / "missing"], tmp_path / "m")


def test_missing_or_corrupt_model_is_a_model_error(
    fixture_model: tuple[classifiers.ModelInfo, SpacyClassifier], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="complaintdesk train"):
        classifiers.load_model(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(fixture_model[0].path, broken)
    (broken / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="make model"):
        classifiers.load_model(broken)
    shutil.copytree(fixture_model[0].path, broken, dirs_exist_ok=True)
    (broken / "meta.json").write_text(
        (fixture_model[0].path / "meta.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    shutil.rmtree(broken / "zh")
    with pytest.raises(ModelError):
        classifiers.load_model(broken)


def test_public_api_is_exported() -> None:
    for name in classifiers.__all__:
        assert hasattr(classifiers, name), name
