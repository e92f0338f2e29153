"""The model commands: train, evaluate, models list|promote|rollback, and model resolution."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import storage
from pipeline import models as service
from pipeline.cli.app import app
from pipeline.config import BUNDLED_MODEL_DIR, load_settings
from pipeline.core.errors import ExitCode, ModelError
from pipeline.core.model import Channel, IntakeItem, Source

FIXTURE = Path(__file__).parent / "resources" / "classify" / "fixture.jsonl"
CONSOLE_SCRIPT = Path(sys.executable).parent / "complaintdesk"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment with a database (``complaintdesk init``): the model registry lives there."""
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COMPLAINTDESK_MODEL_DIR", raising=False)
    monkeypatch.delenv("COMPLAINTDESK_CONFIG", raising=False)
    monkeypatch.delenv("COMPLAINTDESK_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return tmp_path / "home"


def squeezed(text: str) -> str:
    """``text`` without whitespace and box drawing: rich wraps long lines and frames usage errors."""
    return re.sub(r"[\s\u2500-\u257f]+", "", text)


def current_dir() -> Path:
    """The model the deployment of this test's settings uses now."""
    settings = load_settings()
    with storage.open_database(settings.resolved_database_url) as db:
        return service.current_model_dir(db, settings.models_root, model_dir=settings.model_dir)


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
    result = CliRunner().invoke(
        app, ["evaluate", "--data", str(FIXTURE), "--model-dir", str(trained), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    cases = out.pop("cases_auto_accepted")
    assert 0.0 <= cases["share"] <= 1.0 and cases["n"] <= 48
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
    assert current_dir() == BUNDLED_MODEL_DIR
    result = runner.invoke(app, ["train", "--data", str(FIXTURE), "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["version"]
    assert (home / "models" / first / "meta.json").is_file()
    # identical data -> the same version, not a second copy
    again = json.loads(runner.invoke(app, ["train", "--data", str(FIXTURE), "--json"]).stdout)["version"]
    assert again == first
    second = json.loads(
        runner.invoke(app, ["train", "--data", str(FIXTURE), "--seed", "1", "--json"]).stdout)["version"]
    assert second != first
    assert current_dir() == BUNDLED_MODEL_DIR  # trained, not promoted

    assert runner.invoke(app, ["models", "promote", first]).exit_code == 0
    assert current_dir() == home / "models" / first
    assert runner.invoke(app, ["models", "promote", second]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {v["version"]: v["promoted"] for v in listed} == {first: False, second: True}
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0 and first in result.stdout
    assert current_dir() == home / "models" / first
    # evaluate without --model-dir uses the promoted version
    out = json.loads(runner.invoke(app, ["evaluate", "--data", str(FIXTURE), "--json"]).stdout)
    assert out["kind"]["n"] == 48


def test_model_dir_setting_wins(home: Path, trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_MODEL_DIR", str(trained))
    assert current_dir() == trained


def test_promote_unknown_version_fails(home: Path) -> None:
    result = CliRunner().invoke(app, ["models", "promote", "m-nope"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ModelError)


def test_console_script_reports_a_missing_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "evaluate", "--data", str(FIXTURE), "--model-dir", str(tmp_path / "none"),
         "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == ExitCode.model_error
    assert "complaintdesk train" in result.stderr


def test_rolling_back_the_first_promotion_returns_to_the_bundled_model(home: Path) -> None:
    runner = CliRunner()
    version = json.loads(runner.invoke(app, ["train", "--data", str(FIXTURE), "--json"]).stdout)["version"]
    assert runner.invoke(app, ["models", "promote", version]).exit_code == 0
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0 and "nopromotedversionleft" in squeezed(result.stdout)
    assert current_dir() == BUNDLED_MODEL_DIR
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert [(v["version"], v["status"]) for v in listed] == [(version, "retired")]
    again = runner.invoke(app, ["models", "rollback"])
    assert again.exit_code != 0 and isinstance(again.exception, ModelError)


def _install_copy(trained: Path, root: Path, version: str) -> Path:
    """``trained`` copied under ``root`` as ``version`` (as an older deployment would have it)."""
    target = root / version
    shutil.copytree(trained, target)
    meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
    (target / "meta.json").write_text(json.dumps(meta | {"version": version}), encoding="utf-8")
    return target


def test_an_old_registry_json_is_imported_once(home: Path, trained: Path) -> None:
    root = home / "models"
    _install_copy(trained, root, "m-20261101-aaaaaaaaaa")
    _install_copy(trained, root, "m-20261102-bbbbbbbbbb")
    _install_copy(trained, root, "m-20261103-cccccccccc")  # trained, never promoted
    (root / "registry.json").write_text(json.dumps(
        {"promoted": "m-20261102-bbbbbbbbbb", "history": ["m-20261101-aaaaaaaaaa", "m-20261102-bbbbbbbbbb"]}))
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    assert {v["version"]: v["status"] for v in listed} == {
        "m-20261101-aaaaaaaaaa": "retired", "m-20261102-bbbbbbbbbb": "promoted",
        "m-20261103-cccccccccc": "candidate"}
    assert not (root / "registry.json").exists() and (root / "registry.json.imported").is_file()
    assert current_dir() == root / "m-20261102-bbbbbbbbbb"
    # the old promotion history is kept: rollback goes to the version promoted before
    result = runner.invoke(app, ["models", "rollback"])
    assert result.exit_code == 0 and "m-20261101-aaaaaaaaaa" in result.stdout
    # ... and nothing is imported a second time (that would promote b again)
    assert current_dir() == root / "m-20261101-aaaaaaaaaa"
    with storage.open_database(load_settings().resolved_database_url) as db, db.session() as s:
        assert len(storage.list_model_versions(s)) == 3


def _typed_case(text: str) -> str:
    settings = load_settings()
    with storage.open_database(settings.resolved_database_url) as db, db.session() as s:
        item = IntakeItem(source=Source.from_bytes(Channel.manual, "typed", text.encode()), text=text)
        return storage.create_case(s, item, due_days=15, actor="test").reference


def test_correct_accepts_only_the_label_sets_labels(home: Path) -> None:
    reference = _typed_case("The police desk lost my passport application.")
    runner = CliRunner()
    bad = runner.invoke(app, ["correct", reference, "--label-set", "department", "--label", "pol1ce_typo",
                              "--reviewer", "ana"])
    assert bad.exit_code == ExitCode.bad_args, bad.output
    assert all(word in squeezed(bad.output) for word in ("'pol1ce_typo'", "public_security", "--label"))
    bad_set = runner.invoke(app, ["correct", reference, "--label-set", "departement", "--label", "medical",
                                  "--reviewer", "ana"])
    assert bad_set.exit_code == ExitCode.bad_args and "sentiment" in squeezed(bad_set.output)
    with storage.open_database(load_settings().resolved_database_url) as db, db.session() as s:
        assert storage.list_corrections(s) == []
    good = runner.invoke(app, ["correct", reference, "--label-set", "department",
                               "--label", "public_security", "--reviewer", "ana"])
    assert good.exit_code == 0, good.output
    with storage.open_database(load_settings().resolved_database_url) as db, db.session() as s:
        assert storage.confirmed_labels(storage.get_case(s, reference)) == {"department": "public_security"}


def test_console_script_exits_2_for_an_unknown_label(home: Path) -> None:
    reference = _typed_case("Nobody answers the phone at the medical office.")
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "correct", reference, "--label-set", "department", "--label", "pol1ce_typo",
         "--reviewer", "ana"], capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == ExitCode.bad_args, result.stderr
    assert "public_security" in squeezed(result.stderr)
