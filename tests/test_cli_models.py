"""The model commands: train, evaluate, models list|promote|rollback, and model resolution."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import classifiers
from pipeline.cli import app
from pipeline.config import BUNDLED_MODEL_DIR, load_settings
from pipeline.core.errors import ExitCode, ModelError

FIXTURE = Path(__file__).parent / "resources" / "classify" / "fixture.jsonl"
CONSOLE_SCRIPT = Path(sys.executable).parent / "complaintdesk"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COMPLAINTDESK_MODEL_DIR", raising=False)
    monkeypatch.delenv("COMPLAINTDESK_CONFIG", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "model"
    result = CliRunner().invoke(app, ["train", "--data", str(FIXTURE), "--model-dir", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_train_with_model_dir_writes_there(trained: Path) -> None:
    meta = json.loads((trained / "meta.json").read_text(encoding="utf-8"))
    assert meta["version"].startswith("m-") and meta["rows"] == 48


def test_evaluate_json(trained: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--data", str(FIXTURE), "--model-dir", str(trained), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == {"department", "sentiment", "kind"}
    for scores in out.values():
        assert scores["n"] == 48
        assert {"accuracy", "macro_f1", "per_label", "confusion", "reliability"} <= set(scores)
        assert 0.0 <= scores["macro_f1"] <= 1.0


def test_evaluate_prints_tables(trained: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--data", str(FIXTURE), "--model-dir", str(trained)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.stdout and "reliability" in result.stdout


def test_train_without_model_dir_makes_a_version_then_promote_and_rollback(home: Path, trained: Path) -> None:
    runner = CliRunner()
    settings = load_settings()
    assert classifiers.resolve_model_dir(settings) == BUNDLED_MODEL_DIR
    result = runner.invoke(app, ["train", "--data", str(FIXTURE), "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["version"]
    assert (home / "models" / first / "meta.json").is_file()
    # identical data -> the same version, not a second copy
    again = json.loads(runner.invoke(app, ["train", "--data", str(FIXTURE), "--json"]).stdout)["version"]
    assert again == first
    second = json.loads(runner.invoke(app, ["train", "--data", str(FIXTURE), "--seed", "1", "--json"]).stdout)["version"]
    assert second != first
    assert classifiers.resolve_model_dir(settings) == BUNDLED_MODEL_DIR  # trained, not promoted

    assert runner.invoke(app, ["models", "promote", first]).exit_code == 0
    assert classifiers.resolve_model_dir(settings) == home / "models" / first
    assert runner.invoke(app, ["models", "promote", second]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {v["version"]: v["promoted"] for v in listed} == {first: False, second: True}
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0 and first in result.stdout
    assert classifiers.resolve_model_dir(settings) == home / "models" / first
    # evaluate without --model-dir uses the promoted version
    out = json.loads(runner.invoke(app, ["evaluate", "--data", str(FIXTURE), "--json"]).stdout)
    assert out["kind"]["n"] == 48


def test_model_dir_setting_wins(home: Path, trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_MODEL_DIR", str(trained))
    assert classifiers.resolve_model_dir(load_settings()) == trained


def test_promote_unknown_version_fails(home: Path) -> None:
    result = CliRunner().invoke(app, ["models", "promote", "m-nope"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ModelError)


def test_console_script_reports_a_missing_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "evaluate", "--data", str(FIXTURE), "--model-dir", str(tmp_path / "none"), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == ExitCode.model_error
    assert "complaintdesk train" in result.stderr
