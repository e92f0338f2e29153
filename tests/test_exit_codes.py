"""One error tree, one exit code per kind of failure, the same for every command (``ExitCode``).

Each code is reached for real, in-process through ``main`` (real SQLite/PostgreSQL, real Tesseract, the
bundled model, a closed TCP port for the mailbox). OCR failure (10) and "other" (15) are not reachable
without breaking Tesseract, so the tree's mapping is checked for every class instead.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cli.app import report_error
from pipeline.cli.params import SUBMIT_CHANNELS, department_labels
from pipeline.core import errors
from pipeline.core.errors import ComplaintdeskError, ExitCode
from tests.cli_support import cli, deployment_env

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "ocr", "classifiers", "storage")
SLIP = ROOT / "pipeline" / "samples" / "slips"


def public_exception_classes() -> Iterator[tuple[str, str]]:
    """(module, class name) of every public class in the packages that looks like an exception."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                    continue
                bases = [ast.unparse(b) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) for b in [node.name, *bases]):
                    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                    yield module, node.name


def test_every_public_error_is_in_the_tree_drawn_in_the_docstring() -> None:
    found = list(public_exception_classes())
    assert len(found) >= 20, found  # the walk did find the tree
    for module, name in found:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, ComplaintdeskError), f"{module}.{name} is not a ComplaintdeskError"
        assert f" {name} " in errors.__doc__, f"{name} is not drawn in pipeline/core/errors.py's docstring"
        assert cls().message.strip(), f"{name} has no message for people"  # the docstring is the default


@pytest.mark.parametrize("cls", sorted(
    {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, ComplaintdeskError)},
    key=lambda c: c.__name__))
def test_main_maps_each_error_to_its_exit_code_and_one_escaped_line(
    cls: type[ComplaintdeskError], capsys: pytest.CaptureFixture[str]
) -> None:
    code = report_error(cls("bad [/] thing \x1b[2J in [red]x[/red]"))
    assert code == cls.exit_code
    err = capsys.readouterr().err
    assert "bad [/] thing \\x1b[2J in [red]x[/red]" in err and "\x1b" not in err


def test_exit_codes_are_distinct_and_documented() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"exit code {int(code)} is not in the README's table"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment with SQLite in ``home``, not initialised."""
    deployment_env(monkeypatch, tmp_path / "home", None)
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def deployed(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A deployment on an initialised SQLite or PostgreSQL database."""
    deployment_env(monkeypatch, tmp_path / "home", db_url)
    return tmp_path / "home"


def test_0_ok(deployed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "cases", "list")
    assert run.code == ExitCode.ok, run.err
    assert "0 case(s)" in run.out


@pytest.mark.parametrize(("args", "names"), [
    (["submit", "the bus was late", "--channel", "bogus"], SUBMIT_CHANNELS),  # was a traceback
    (["cases", "list", "--department", "police"], department_labels()),  # was an empty list
    (["cases", "list", "--status", "bogus"], ("new", "closed")),  # was exit 7
    (["cases", "list", "--channel", "fax"], ("slip", "email", "web", "manual")),
    (["cases", "export", "--format", "xml"], ("jsonl", "json", "csv")),
    (["cases", "list", "--since", "yesterday"], ("%Y-%m-%d",)),
    (["poll", "--once", "--every", "soon"], ("30s", "5m", "1h")),  # was exit 9
    (["scan"], ()),  # a missing argument
])
def test_2_bad_option_values_name_the_allowed_ones(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], names: tuple[str, ...]
) -> None:
    run = cli(capsys, *args)
    assert run.code == ExitCode.bad_args, run
    assert "Traceback" not in run.err
    for name in names:
        assert name in run.err, run.err


def test_3_quarantined(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SQLite only: `submit` leaves its database engine to the garbage collector (the intake rewrite
    # owns that), and an in-process PostgreSQL connection collected later fails another test
    assert cli(capsys, "init").code == ExitCode.ok
    run = cli(capsys, "submit", "   ")
    assert run.code == ExitCode.quarantined, run.err
    assert "quarantined" in run.out


@pytest.mark.parametrize("command", [["scan"], ["mail", "import"], ["evaluate", "--data"]])
def test_4_a_missing_path_is_the_same_code_for_every_command(
    home: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    run = cli(capsys, *command, str(home / "nope"))
    assert run.code == ExitCode.input_error, run  # scan gave 9 (config error) before
    assert str(home / "nope") in run.err


def test_5_missing_dependency(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config.toml").write_text('[ocr]\nlanguages = "eng+zzz_nonexistent"\n', encoding="utf-8")
    run = cli(capsys, "scan", str(SLIP))
    assert run.code == ExitCode.missing_dependency, run
    assert "zzz_nonexistent" in run.err


def test_6_model_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPLAINTDESK_MODEL_DIR", str(home / "no-model"))
    # the database is opened first (the model registry is in it)
    assert cli(capsys, "init").code == ExitCode.ok
    run = cli(capsys, "submit", "the lift is broken")
    assert run.code == ExitCode.model_error, run
    assert "no trained model" in run.err


def test_7_storage_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_initialised = cli(capsys, "cases", "list")
    assert not_initialised.code == ExitCode.storage_error and "complaintdesk init" in not_initialised.err
    assert cli(capsys, "init").code == ExitCode.ok
    missing = cli(capsys, "cases", "show", "1999-000001")
    assert missing.code == ExitCode.storage_error and "no case" in missing.err


def test_8_mailbox_error(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(capsys, "init").code == ExitCode.ok
    for name, value in {"HOST": "127.0.0.1", "PORT": "1", "USER": "u", "PASSWORD": "p", "SECURITY": "none",
                        "ONCE_ATTEMPTS": "1", "BACKOFF_INITIAL_SECONDS": "0.01"}.items():
        monkeypatch.setenv(f"COMPLAINTDESK_IMAP_{name}", value)
    run = cli(capsys, "poll", "--once")
    assert run.code == ExitCode.mailbox_error, run
    assert "127.0.0.1:1" in run.err


def test_9_config_error_for_a_port_that_is_not_a_number(home: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:abc/test")
    run = cli(capsys, "cases", "list")
    assert run.code == ExitCode.config_error, run  # was a raw ValueError
    assert "port" in run.err and "Traceback" not in run.err


def test_9_config_error_for_a_broken_config_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config.toml").write_text("due_days = [", encoding="utf-8")
    run = cli(capsys, "cases", "list")
    assert run.code == ExitCode.config_error, run
    assert "config.toml" in run.err
