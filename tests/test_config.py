"""One ``Settings`` object and one loader: defaults < config file < environment < options, ``--home``
everywhere, the per-user data directory by default, clear errors, and a copy for worker processes."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import platformdirs
import pytest

from pipeline.config import Settings, default_home, load_settings
from pipeline.core.errors import ConfigError

EXE = str(Path(sys.executable).parent / "complaintdesk")


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # COMPLAINTDESK_HOME and XDG_DATA_HOME come from the autouse ``isolated_home`` fixture
    return subprocess.run([EXE, *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")
    return home


def test_home_option_finds_its_config_file_imap_table_included(isolated_home: Path, tmp_path: Path) -> None:
    """The reproduced bug of issue 9: the IMAP/SMTP loader read the config file of COMPLAINTDESK_HOME
    (or ./.complaintdesk), never the one under ``--home``."""
    write_config(isolated_home, '[imap]\nhost = "env-home.example"\n')
    other = write_config(tmp_path / "other",
                         'due_days = 30\n[imap]\nhost = "option-home.example"\nport = 1993\n'
                         '[smtp]\nhost = "relay.example"\n[ocr]\nlanguages = "eng"\n')
    s = load_settings(home=other)
    assert s.home == other and s.due_days == 30
    assert (s.imap.host, s.imap.port, s.smtp.host, s.ocr.languages) == (
        "option-home.example", 1993, "relay.example", "eng")
    assert load_settings().imap.host == "env-home.example"


def test_poll_reads_the_imap_table_of_the_home_given_on_the_command_line(tmp_path: Path) -> None:
    home = write_config(tmp_path / "elsewhere", '[imap]\nhost = "imap.example"\n')
    proc = run("--home", str(home), "poll", "--once")
    # the host came from the file, so the first thing missing is the user, not the host
    assert proc.returncode == 9, proc.stderr
    assert "no IMAP user" in proc.stderr and "Traceback" not in proc.stderr


def test_each_layer_beats_the_one_before(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(isolated_home,
                 'due_days = 20\nmodel_dir = "/from/file"\n'
                 '[imap]\nhost = "file"\nuser = "file"\nport = 1\n[ocr]\nworkers = 3\npdf_dpi = 150\n')
    monkeypatch.setenv("COMPLAINTDESK_DUE_DAYS", "25")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_USER", "env")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_PORT", "2")
    monkeypatch.setenv("COMPLAINTDESK_OCR_WORKERS", "4")
    monkeypatch.setenv("COMPLAINTDESK_OCR_PREPROCESS", '["crop", "deskew"]')
    s = load_settings(imap={"port": 3, "user": None}, model_dir=None)
    assert s.due_days == 25 and s.model_dir == Path("/from/file")
    assert (s.imap.host, s.imap.user, s.imap.port) == ("file", "env", 3)
    # one key of a table from the environment keeps the file's other keys of that table
    assert (s.ocr.workers, s.ocr.pdf_dpi, s.ocr.preprocess) == (4, 150, ["crop", "deskew"])
    assert load_settings(due_days=7).due_days == 7


def test_the_default_home_is_the_per_user_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("COMPLAINTDESK_HOME")
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.home == default_home() == platformdirs.user_data_path("complaintdesk")
    assert s.home == Path(os.environ["XDG_DATA_HOME"]) / "complaintdesk"  # the fixture's, never the real one
    assert s.resolved_database_url == f"sqlite:///{s.home / 'complaintdesk.db'}"
    assert "per-user" in s.location_hint()


def test_a_relative_home_is_made_absolute_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(home=Path("data"))
    monkeypatch.chdir("/")
    assert s.home == tmp_path / "data" and s.blob_dir == tmp_path / "data" / "originals"


def test_one_database_whatever_the_current_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Issue 9: `init` in one folder and `cases list` in another used to see two different databases."""
    monkeypatch.delenv("COMPLAINTDESK_HOME")
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    assert run("init", cwd=first).returncode == 0
    proc = run("cases", "list", cwd=second)
    assert proc.returncode == 0, proc.stderr
    assert "0 case(s)" in proc.stdout
    assert (Path(os.environ["XDG_DATA_HOME"]) / "complaintdesk" / "complaintdesk.db").is_file()
    assert not list(first.iterdir()) and not list(second.iterdir())


def test_no_database_names_the_full_path_and_how_to_point_elsewhere(tmp_path: Path) -> None:
    home = tmp_path / "empty-home"
    proc = run("--home", str(home), "cases", "list")
    assert proc.returncode == 7, proc.stderr
    assert f"no database at {home / 'complaintdesk.db'}" in proc.stderr
    assert f"data directory {home} (from --home)" in proc.stderr
    assert "COMPLAINTDESK_HOME" in proc.stderr and "COMPLAINTDESK_DATABASE_URL" in proc.stderr
    from_env = run("cases", "list", env={"COMPLAINTDESK_HOME": str(home)})
    assert "(from COMPLAINTDESK_HOME)" in from_env.stderr


def test_a_non_numeric_port_in_the_database_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"command line: database_url: .*port.*'abc'"):
        load_settings(database_url="postgresql+psycopg://user@db.example:abc/cases")
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", "postgresql://user@db.example:99999/cases")
    with pytest.raises(ConfigError, match=r"COMPLAINTDESK_DATABASE_URL \(database_url\): .*port"):
        load_settings()
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", "complaintdesk.db")
    with pytest.raises(ConfigError, match="expected a URL"):
        load_settings()


def test_a_bad_port_on_the_command_line_is_exit_9_without_a_traceback() -> None:
    proc = run("--database-url", "postgresql://user@db.example:abc/cases", "cases", "list")
    assert proc.returncode == 9, proc.stderr
    assert "database_url" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_values_in_the_file_name_the_file_and_the_setting(isolated_home: Path) -> None:
    config = write_config(isolated_home, '[ocr]\nworkers = "many"\n') / "config.toml"
    with pytest.raises(ConfigError, match=rf"in {config}: ocr\.workers: .*'many'"):
        load_settings()
    config.write_text("[imap\nhost = 1\n")
    with pytest.raises(ConfigError, match=f"cannot read config file {config}"):
        load_settings()
    config.write_text('due_days = 0\n')
    with pytest.raises(ConfigError, match=r"due_days"):
        load_settings()


def test_a_list_in_the_environment_must_be_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_OCR_PREPROCESS", "crop,deskew")
    with pytest.raises(ConfigError, match=r"environment.*\"ocr\".*JSON"):
        load_settings()


def test_the_config_variable_names_another_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = write_config(tmp_path / "etc", '[smtp]\nack = true\n')
    monkeypatch.setenv("COMPLAINTDESK_CONFIG", str(elsewhere / "config.toml"))
    assert load_settings().smtp.ack


def secrets_in_worker(dumped: dict[str, object]) -> tuple[str, str, Path]:
    settings = Settings.model_validate(dumped)
    return settings.imap.password_value(), settings.imap.host, settings.home


def test_settings_survive_the_trip_to_a_worker_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("COMPLAINTDESK_IMAP_PASSWORD", "imap-secret")
    monkeypatch.setenv("COMPLAINTDESK_SMTP_PASSWORD", "smtp-secret")
    s = load_settings(imap={"host": "imap.example"}, home=tmp_path / "h", due_days=9)
    assert Settings.model_validate(s.model_dump()) == s
    assert pickle.loads(pickle.dumps(s)) == s
    assert s.model_dump()["smtp"]["password"].get_secret_value() == "smtp-secret"
    # the worker's own environment must not leak in: the copy is exactly the parent's settings
    monkeypatch.setenv("COMPLAINTDESK_IMAP_HOST", "not-this.example")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(secrets_in_worker, s.model_dump()).result() == (
            "imap-secret", "imap.example", tmp_path / "h")


def test_the_hint_points_at_a_database_in_the_old_default_place(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("COMPLAINTDESK_HOME")
    monkeypatch.chdir(tmp_path)
    assert "old default place" not in load_settings().location_hint()
    (tmp_path / ".complaintdesk").mkdir()
    (tmp_path / ".complaintdesk" / "complaintdesk.db").write_bytes(b"")
    assert f"old default place: --home {tmp_path / '.complaintdesk'}" in load_settings().location_hint()
