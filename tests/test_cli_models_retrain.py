"""retrain and reclassify through the CLI, against a real database (SQLite, then PostgreSQL: ``db_url``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import classifiers
import storage
from pipeline.cli.app import app
from pipeline.core.model import Channel, IntakeItem, Source

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "resources" / "classify" / "fixture.jsonl"
HELDOUT = ROOT / "classifiers" / "data" / "heldout" / "eval.jsonl"
TEXTS = [
    "The toilets on the second floor are filthy and there is no soap.",
    "请问护照办理需要多长时间？",
    "Waited two hours at window 4, nobody explained anything.",
    "感谢医务室的医生，态度非常好！",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("retrain") / "model"
    classifiers.train([FIXTURE], out)
    return out


@pytest.fixture
def deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path, db_url: str
) -> Iterator[storage.Database]:
    """A deployment whose database (SQLite or PostgreSQL, migrated) holds one case per text of TEXTS."""
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", db_url)
    monkeypatch.setenv("COMPLAINTDESK_MODEL_DIR", str(model_dir))
    db = storage.open_database(db_url)
    model = classifiers.load_model(model_dir)
    with db.session() as s:
        for text, c in zip(TEXTS, model.classify(TEXTS), strict=True):
            item = IntakeItem(source=Source.from_bytes(Channel.manual, "typed", text.encode()), text=text,
                              classification=c)
            storage.create_case(s, item, due_days=15, actor="test")
    try:
        yield db
    finally:
        db.dispose()


def _cases(db: storage.Database) -> dict[str, dict]:
    with db.session() as s:
        return {c.text: storage.case_to_dict(c) for c in storage.list_cases(s)}


def test_reclassify_keeps_reviewer_confirmed_labels(deployment: storage.Database, tmp_path: Path) -> None:
    text = TEXTS[0]
    with deployment.session() as s:
        (case,) = [c for c in storage.list_cases(s) if c.text == text]
        wrong = "medical"  # a reviewer's (odd) choice the model would never make for this text
        storage.correct_label(s, case, "department", wrong, reviewer="ana")
        storage.correct_label(s, case, "kind", "suggestion", reviewer="ana")
    # a different model: trained with another seed on more data
    other = tmp_path / "other"
    classifiers.train([FIXTURE, HELDOUT], other, seed=3)
    result = CliRunner().invoke(app, ["reclassify", "--model-dir", str(other), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    version = classifiers.load_model(other).version
    assert summary["cases"] == 4 and summary["confirmed_labels_kept"] == 2
    assert summary["model_version"] == version
    after = _cases(deployment)
    assert after[text]["department"] == "medical" and after[text]["kind"] == "suggestion"
    assert after[text]["labels"]["department"]["confirmed_by"] == "ana"
    assert after[text]["labels"]["sentiment"]["model_version"] == version
    for row in after.values():
        assert row["model_version"] == version


def test_retrain_compares_registers_and_reports(deployment: storage.Database, model_dir: Path) -> None:
    with deployment.session() as s:
        for case in storage.list_cases(s):
            storage.correct_label(s, case, "sentiment", "negative", reviewer="bo")
    heldout = [json.loads(line) for line in HELDOUT.read_text(encoding="utf-8").splitlines()][:40]
    small = model_dir.parent / "heldout.jsonl"
    small.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in heldout), encoding="utf-8")
    result = CliRunner().invoke(app, ["retrain", "--data", str(FIXTURE), "--heldout", str(small), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["current"] == classifiers.load_model(model_dir).version
    assert isinstance(out["promoted"], bool) and out["reason"]
    label_sets = {"department", "sentiment", "kind"}
    assert set(out["current_report"]) - {"cases_auto_accepted"} == label_sets
    assert set(out["candidate_report"]) - {"cases_auto_accepted"} == label_sets
    assert out["eval_rows"] >= 40
    with deployment.session() as s:
        registered = {v.version: v.status for v in storage.list_model_versions(s)}
    assert out["candidate"] in registered
    assert registered[out["candidate"]] == ("promoted" if out["promoted"] else "candidate")
    listed = json.loads(CliRunner().invoke(app, ["models", "list", "--json"]).stdout)
    assert out["candidate"] in {v["version"] for v in listed}


def test_retrain_without_new_corrections_does_nothing(deployment: storage.Database, model_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["retrain", "--data", str(FIXTURE), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["retrained"] is False and "no reviewer corrections" in out["reason"]
    with deployment.session() as s:
        assert storage.list_model_versions(s) == []
        (case,) = [c for c in storage.list_cases(s) if c.text == TEXTS[2]]
        storage.correct_label(s, case, "sentiment", "negative", reviewer="bo")
    first = json.loads(
        runner.invoke(app, ["retrain", "--data", str(FIXTURE), "--heldout", str(FIXTURE), "--json"]).stdout)
    assert first["retrained"] is True
    # nothing corrected since: the nightly run says so and trains nothing
    again = runner.invoke(app, ["retrain", "--data", str(FIXTURE), "--heldout", str(FIXTURE)])
    assert again.exit_code == 0, again.output
    assert "no new corrections" in again.stdout and first["candidate"] in again.stdout
    with deployment.session() as s:
        assert len(storage.list_model_versions(s)) == 1
