"""Data at rest is private to the service's user whatever the umask, and permission problems say so.

Each test runs under umask 0o000 (as some service managers leave it), restored afterwards.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

import storage
from pipeline.cli.app import app
from pipeline.core.errors import ExitCode
from storage.db import create_database_engine, translate_error


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o000)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_the_home_and_database_private(tmp_path: Path) -> None:
    home = tmp_path / "service" / "home"
    result = CliRunner().invoke(app, ["--home", str(home), "init"], env={"COMPLAINTDESK_DATABASE_URL": ""})
    assert result.exit_code == 0, result.output
    database = home / "complaintdesk.db"
    assert mode(home) == 0o700
    assert mode(database) == 0o600
    with storage.open_database(f"sqlite:///{database}") as db, db.session() as session:
        storage.find_quarantine_by_sha256(session, "e" * 64)  # a connection is open: -wal and -shm exist
        for sidecar in ("complaintdesk.db-wal", "complaintdesk.db-shm"):
            assert mode(home / sidecar) == 0o600, sidecar


def test_migrate_tightens_a_world_readable_database(tmp_path: Path) -> None:
    database = tmp_path / "complaintdesk.db"
    storage.migrate(f"sqlite:///{database}")
    database.chmod(0o644)  # as versions before this one left it
    storage.migrate(f"sqlite:///{database}")
    assert mode(database) == 0o600


def test_blob_store_folders_and_files_are_private(tmp_path: Path) -> None:
    root = tmp_path / "home" / "originals"
    store = storage.BlobStore(root)
    sha = store.put(b"a scanned slip naming a citizen")
    blob = store.path(sha)
    assert mode(blob) == 0o400
    for folder in (blob.parent, blob.parent.parent, root, root.parent):
        assert mode(folder) == 0o700, folder
    assert store.read(sha) == b"a scanned slip naming a citizen"


def test_blob_kept_world_readable_by_an_older_version_is_tightened(tmp_path: Path) -> None:
    store = storage.BlobStore(tmp_path)
    sha = store.put(b"old original")
    store.path(sha).chmod(0o444)
    assert store.put(b"old original") == sha
    assert mode(store.path(sha)) == 0o400


def test_immutable_database_reads_and_refuses_writes_with_a_reason(tmp_path: Path) -> None:
    """How a database in a folder this user may not write is opened (``open_database`` picks it)."""
    url = f"sqlite:///{tmp_path / 'complaintdesk.db'}"
    storage.migrate(url)
    db = storage.Database(create_database_engine(url, immutable=True))
    try:
        with db.reader() as session:
            assert storage.list_cases(session) == []
        with pytest.raises(storage.StorageError, match="may only read it") as raised, db.session() as session:
            session.add(storage.QuarantineRecord(channel="slip", source_name="x", sha256="f" * 64, reason="r",
                                                 error_type="E"))
        assert "init" not in str(raised.value)
    finally:
        db.dispose()
    assert not (tmp_path / "complaintdesk.db-wal").exists()


@pytest.mark.parametrize("detail", ["unable to open database file", "attempt to write a readonly database"])
def test_permission_errors_say_so_and_do_not_suggest_init(detail: str) -> None:
    error = translate_error(OperationalError("SELECT 1", {}, Exception(detail)), "sqlite:////srv/cd/complaintdesk.db")
    assert "init" not in str(error)
    assert "this user" in str(error)


EXE = str(Path(sys.executable).parent / "complaintdesk")
#: root reads and writes whatever the modes say; without these capabilities it obeys them like anyone
DROP_OVERRIDES = [
    "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"
]


def as_plain_user(home: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI on ``home`` as a user that file modes apply to."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: file modes cannot be made to apply")
        prefix = [setpriv, *DROP_OVERRIDES]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update(COMPLAINTDESK_HOME=str(home), COLUMNS="200", **env_extra)
    return subprocess.run(
        [*prefix, EXE, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def said(result: subprocess.CompletedProcess[str]) -> str:
    """Standard error with rich's line wrapping undone."""
    return " ".join(result.stderr.split())


def test_read_only_data_directory_still_lists_cases_and_refuses_writes_with_the_reason(
    tmp_path: Path
) -> None:
    home = tmp_path / "home"
    storage.migrate(f"sqlite:///{home / 'complaintdesk.db'}")
    home.chmod(0o500)
    try:
        listed = as_plain_user(home, "cases", "list", "--json")
        submitted = as_plain_user(home, "submit", "The lift is broken")
    finally:
        home.chmod(0o700)
    assert listed.returncode == 0, listed.stderr
    assert submitted.returncode == ExitCode.storage_error, submitted.stderr
    # the original is written first, so its folder is what is refused
    assert "Permission denied" in said(submitted) and "init" not in said(submitted)
    assert not (home / "complaintdesk.db-wal").exists()


def test_unreadable_data_directory_is_a_permission_error_not_run_init(tmp_path: Path) -> None:
    home = tmp_path / "home"
    storage.migrate(f"sqlite:///{home / 'complaintdesk.db'}")
    config = tmp_path / "config.toml"
    config.write_text("")
    home.chmod(0o000)
    try:
        default_config = as_plain_user(home, "cases", "list")  # the config file in the home is read first
        own_config = as_plain_user(home, "cases", "list", COMPLAINTDESK_CONFIG=str(config))
    finally:
        home.chmod(0o700)
    assert default_config.returncode == ExitCode.config_error, default_config.stderr
    assert own_config.returncode == ExitCode.storage_error, own_config.stderr
    for result in (default_config, own_config):
        assert "ermission denied" in said(result) and "init" not in said(result)
