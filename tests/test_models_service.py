"""The model service (``pipeline.models``) on a real database (SQLite, then PostgreSQL): review rules
from labels.toml, label validation, retrain on corrections; and the ``Classifier`` protocol."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import classifiers
import storage
from classifiers.labels import DEFAULT_LABELS_FILE
from pipeline import models as service
from pipeline.core.errors import InvalidLabelError
from pipeline.core.model import Channel, IntakeItem, Source
from tests.fakes import FakeClassifier, RecordingClassifier

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "resources" / "classify" / "fixture.jsonl"
TEXTS = [
    "Waited two hours at window 4, nobody explained anything.",
    "The toilets on the second floor are filthy and there is no soap.",
    "感谢医务室的医生，态度非常好！",
]


def _train_with_rules(folder: Path, threshold: float, margin: float) -> classifiers.SpacyClassifier:
    """The fixture model trained with a labels.toml whose every label set has this threshold and margin."""
    folder.mkdir(parents=True)
    shutil.copy(FIXTURE, folder / "train.jsonl")
    labels = DEFAULT_LABELS_FILE.read_text(encoding="utf-8")
    labels = re.sub(r"threshold = [0-9.]+", f"threshold = {threshold}", labels)
    labels = re.sub(r"margin = [0-9.]+", f"margin = {margin}", labels)
    (folder / "labels.toml").write_text(labels, encoding="utf-8")
    classifiers.train([folder], folder / "model")
    return classifiers.load_model(folder / "model")


@pytest.fixture(scope="module")
def strict_and_lenient(tmp_path_factory: pytest.TempPathFactory) -> tuple[classifiers.SpacyClassifier, ...]:
    root = tmp_path_factory.mktemp("rules")
    return _train_with_rules(root / "strict", 0.99, 0.5), _train_with_rules(root / "lenient", 0.0, 0.0)


def _create(db: storage.Database, text: str, model: classifiers.Classifier) -> str:
    (classification,) = model.classify([text])
    item = IntakeItem(source=Source.from_bytes(Channel.manual, "typed", text.encode()), text=text,
                      classification=classification)
    with db.session() as s:
        case = storage.create_case(s, item, due_days=15, actor="t",
                                   thresholds=classifiers.review_rules(model.label_sets))
        return case.reference


def test_labels_toml_thresholds_decide_needs_review(
    db: storage.Database, strict_and_lenient: tuple[classifiers.SpacyClassifier, ...]
) -> None:
    strict, lenient = strict_and_lenient
    assert {ls.threshold for ls in strict.label_sets} == {0.99}
    assert {ls.margin for ls in lenient.label_sets} == {0.0}
    strict_refs = [_create(db, text, strict) for text in TEXTS]
    lenient_refs = [_create(db, f"{text} (again)", lenient) for text in TEXTS]
    with db.session() as s:
        assert [storage.get_case(s, r).needs_review for r in strict_refs] == [True] * 3
        assert [storage.get_case(s, r).needs_review for r in lenient_refs] == [False] * 3
    # reclassify recomputes the flag with the new model's rules
    summary = service.reclassify(db, strict, actor="test")
    assert summary.cases == 6
    with db.session() as s:
        assert all(storage.get_case(s, r).needs_review for r in lenient_refs)


def test_unlisted_label_sets_use_the_labels_toml_defaults(db: storage.Database) -> None:
    sure = FakeClassifier(confidence=0.9)
    unsure = FakeClassifier(confidence=0.45)
    with db.session() as s:
        for n, model in enumerate((sure, unsure)):
            (c,) = model.classify(["x"])
            item = IntakeItem(source=Source.from_bytes(Channel.manual, "t", f"x{n}".encode()), text="x",
                              classification=c)
            flagged = storage.create_case(s, item, due_days=15, actor="t").needs_review
            assert flagged is (model is unsure)


def test_correct_label_is_checked_against_the_label_sets(db: storage.Database) -> None:
    label_sets = classifiers.load_label_sets()
    reference = _create(db, "The police desk lost my passport.", FakeClassifier())
    with pytest.raises(InvalidLabelError,
                       match=r"'pol1ce_typo' is not a label of 'department'.*public_security"):
        service.correct_label(db, reference, "department", "pol1ce_typo", reviewer="ana",
                              label_sets=label_sets)
    with pytest.raises(InvalidLabelError,
                       match=r"'mood' is not a label set; allowed: department, sentiment, kind"):
        service.correct_label(db, reference, "mood", "negative", reviewer="ana", label_sets=label_sets)
    # storage checks too when it is given the allowed labels (a web app calling it directly)
    with db.session() as s, pytest.raises(InvalidLabelError, match="allowed: negative, neutral, positive"):
        storage.correct_label(s, storage.get_case(s, reference), "sentiment", "angry", reviewer="ana",
                              allowed={ls.name: tuple(ls.labels) for ls in label_sets})
    with db.session() as s:
        assert storage.list_corrections(s) == []
    case = service.correct_label(db, reference, "department", "public_security", reviewer="ana",
                                 label_sets=label_sets)
    assert case["department"] == "public_security" and case["labels"]["department"]["confirmed_by"] == "ana"


def test_retrain_never_trains_on_a_label_the_label_sets_lack(db: storage.Database, tmp_path: Path) -> None:
    current = tmp_path / "current"
    classifiers.train([FIXTURE], current)
    refs = [_create(db, text, FakeClassifier()) for text in TEXTS]
    with db.session() as s:
        # a typo stored before labels were checked (storage without ``allowed``)
        storage.correct_label(s, storage.get_case(s, refs[0]), "department", "pol1ce_typo", reviewer="old")
        storage.correct_label(s, storage.get_case(s, refs[0]), "sentiment", "negative", reviewer="old")
        storage.correct_label(s, storage.get_case(s, refs[1]), "department", "facilities", reviewer="ana")
    outcome = service.retrain(db, tmp_path / "models", actor="test", model_dir=current, data=[FIXTURE],
                              heldout=[FIXTURE], dry_run=True)
    assert outcome.retrained and outcome.corrections == 2 and not outcome.promoted
    assert outcome.candidate is not None
    meta = json.loads((tmp_path / "models" / outcome.candidate / "meta.json").read_text(encoding="utf-8"))
    departments = next(ls["labels"] for ls in meta["label_sets"] if ls["name"] == "department")
    assert "pol1ce_typo" not in departments and "facilities" in departments
    assert [v.version for v in service.list_versions(db, tmp_path / "models")] == [outcome.candidate]


def test_fakes_and_the_spacy_model_are_classifiers() -> None:
    fake = FakeClassifier(rule=lambda text: {"kind": "question"} if "?" in text else {})
    recording = RecordingClassifier(fake)
    assert isinstance(fake, classifiers.Classifier) and isinstance(recording, classifiers.Classifier)
    first, second = recording.classify(["Where is the bank?", "The bank is closed."])
    assert first.labels["kind"].label == "question" and second.labels["kind"].label == "complaint"
    assert sum(first.labels["kind"].scores.values()) == pytest.approx(1.0)
    assert recording.calls == [2] and fake.calls == [2]
    assert isinstance(classifiers.load_model(classifiers.BUNDLED_MODEL_DIR), classifiers.Classifier)
