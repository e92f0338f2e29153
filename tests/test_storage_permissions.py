"""Data at rest is private to the service's user whatever the umask, and permission problems say so.

Each test runs under umask 0o000 (as some service managers leave it), restored afterwards.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

import storage
from pipeline.cli.app import app
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


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the file modes say")
def test_read_only_data_directory_still_lists_cases(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'complaintdesk.db'}"
    storage.migrate(url)
    home.chmod(0o500)
    try:
        with storage.open_database(url) as db, db.reader() as session:
            assert storage.list_cases(session) == []
    finally:
        home.chmod(0o700)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the file modes say")
def test_unreadable_database_is_a_permission_error_not_run_init(tmp_path: Path) -> None:
    home = tmp_path / "home"
    url = f"sqlite:///{home / 'complaintdesk.db'}"
    storage.migrate(url)
    home.chmod(0o000)
    try:
        with pytest.raises(storage.StorageError, match="permission denied") as raised:
            storage.open_database(url)
        assert "init" not in str(raised.value)
    finally:
        home.chmod(0o700)
