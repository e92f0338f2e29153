"""Backing up and restoring a deployment: the database and the store of originals, into one folder.

A backup folder holds ``manifest.json``, the database (``database.sqlite``, made with SQLite's online
backup API, or ``database.dump``, made by ``pg_dump --format=custom``) and ``originals/`` (a blob store
with the same layout as the live one). Both database copies are one consistent snapshot taken while
the service keeps running.

Order makes it consistent with a batch running: the database snapshot is taken first, the originals
copied after. An original is always stored before the row that names it is committed (``accept``
writes the blob, then the intake row) and is never deleted, so every original the snapshot names is
in the store by the time it is copied.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url

from storage.blobs import Blobs, BlobStore
from storage.db import head_revision, open_database, redact
from storage.errors import StorageError
from storage.private import make_private_dir

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite"
POSTGRES_FILE = "database.dump"
ORIGINALS = "originals"
#: pg_dump/pg_restore come from Debian's postgresql-client (the Makefile's system step installs it)
PG_HINT = "install the PostgreSQL client programs (Debian: apt-get install postgresql-client)"


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore copied."""

    folder: Path
    backend: str
    revision: str
    originals: int


def backup(url: str, blobs: Blobs, dest: Path) -> BackupResult:
    """Back the database at ``url`` and the originals in ``blobs`` up into the new folder ``dest``.

    Raises:
        StorageError: ``dest`` exists and is not empty, the database cannot be read, ``pg_dump`` is
            missing or failed, or an original cannot be copied.
    """
    if dest.exists() and any(dest.iterdir()):
        raise StorageError(f"the backup folder {dest} is not empty; give a new folder")
    make_private_dir(dest)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _sqlite_copy(_sqlite_file(parsed), dest / SQLITE_FILE)
    else:
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", *_schema_args(parsed),
              f"--file={dest / POSTGRES_FILE}", "--dbname", _libpq(parsed)], parsed)
    # after the snapshot: every original it names is in the store already (see the module docstring)
    copied = _copy_blobs(blobs, BlobStore(dest / ORIGINALS))
    revision = head_revision()
    manifest = {"format": FORMAT, "backend": backend, "revision": revision, "originals": copied,
                "created_at": datetime.now(UTC).isoformat(), "database": redact(parsed)}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return BackupResult(dest, backend, revision, copied)


def restore(src: Path, url: str, blobs: Blobs) -> BackupResult:
    """Put the backup in ``src`` back: replace the database at ``url`` and add its originals to ``blobs``.

    The database must be of the same kind (SQLite or PostgreSQL) as the one backed up.

    Raises:
        StorageError: ``src`` is not a backup, of another backend, ``pg_restore`` failed, or an
            original in it does not match its SHA-256.
    """
    manifest = read_manifest(src)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if manifest["backend"] != backend:
        raise StorageError(
            f"{src} is a backup of a {manifest['backend']} database; {redact(parsed)} is {backend}"
        )
    if backend == "sqlite":
        target = _sqlite_file(parsed)
        make_private_dir(target.parent)
        _sqlite_copy(src / SQLITE_FILE, target)
    else:
        _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", "--dbname", _libpq(parsed), str(src / POSTGRES_FILE)], parsed)
        # pg_restore brings no planner statistics back: until autovacuum runs, queries guess their plans
        with open_database(url, check_schema=False) as db:
            db.analyze()
    copied = _copy_blobs(BlobStore(src / ORIGINALS), blobs)
    return BackupResult(src, backend, str(manifest["revision"]), copied)


def read_manifest(src: Path) -> dict[str, object]:
    """The manifest of the backup in ``src``.

    Raises:
        StorageError: there is none, or it is not one this version can restore.
    """
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise StorageError(f"{src} is not a complaintdesk backup (no readable {MANIFEST}: {e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise StorageError(f"{src / MANIFEST} is not a backup manifest of format {FORMAT}")
    return manifest


def _sqlite_copy(source: Path, target: Path) -> None:
    """Copy one SQLite database onto another with the online backup API: one step, one snapshot."""
    if not source.is_file():
        raise StorageError(f"no SQLite database at {source}")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # pages=-1: the whole database in one step, from one read snapshot
            finally:
                dst.close()
        finally:
            src.close()
        os.chmod(target, 0o600)
    except (sqlite3.Error, OSError) as e:
        raise StorageError(f"cannot copy the SQLite database {source} to {target}: {e}") from e


def _copy_blobs(source: Blobs, target: Blobs) -> int:
    """Copy every original of ``source`` that ``target`` lacks, checking each one's SHA-256; the count."""
    copied = 0
    for sha in source.shas():
        if target.exists(sha):
            continue
        with source.open(sha) as f:
            stored, _size = target.put_stream(f)
        if stored != sha:
            raise StorageError(
                f"the original {sha} in {source.location} is damaged (its bytes hash to {stored})"
            )
        copied += 1
    return copied


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise StorageError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _schema_args(url: URL) -> list[str]:
    """``--schema=S`` when the URL confines the database to one schema (``options=-csearch_path=S``)."""
    options = unquote(str(url.query.get("options", "")))
    for part in options.split():
        if part.startswith("-csearch_path="):
            return [f"--schema={part.removeprefix('-csearch_path=').split(',')[0]}"]
    return []


def _libpq(url: URL) -> str:
    """The URL as libpq takes it, without the password (that goes in the environment, not in ``ps``)."""
    return url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise StorageError(f"{name} is not installed; {PG_HINT}")
    return path


def _run(command: list[str], url: URL) -> None:
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as e:
        raise StorageError(f"cannot run {command[0]}: {e}; {PG_HINT}") from e
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise StorageError(
            f"{Path(command[0]).name} failed for {redact(url)} (exit {done.returncode}): "
            f"{detail[-1] if detail else 'no message'}"
        )
