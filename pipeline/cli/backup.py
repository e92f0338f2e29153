"""``complaintdesk backup DEST`` and ``complaintdesk restore SRC``: the database and the originals.

``register(app)`` adds both to the main app. The work is ``storage.backup``; see the README's
"Backup and restore" section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.cli.output import console, redact, safe
from pipeline.core.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add ``backup`` and ``restore`` to the main app."""
    app.command("backup")(backup)
    app.command("restore")(restore)


def backup(
    dest: Annotated[Path, typer.Argument(help="A new (or empty) folder to write the backup to.")],
) -> None:
    """Back up the database and the originals into DEST, while the service keeps running."""
    from pipeline.cli.app import settings
    from pipeline.database import open_blobs
    from storage.backup import backup as run_backup

    s = settings()
    done = run_backup(s.resolved_database_url, open_blobs(s), dest)
    console.print(f"backed up {safe(redact(s.resolved_database_url))} (schema {done.revision}) and "
                  f"{done.originals} original(s) to {safe(dest)}")


def restore(
    src: Annotated[Path, typer.Argument(help="A folder written by `complaintdesk backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already has cases.")
    ] = False,
) -> None:
    """Restore the database and originals from SRC (made by `complaintdesk backup`), then migrate."""
    import storage
    from pipeline.cli.app import settings
    from pipeline.database import open_blobs
    from storage.backup import read_manifest
    from storage.backup import restore as run_restore

    s = settings()
    read_manifest(src)  # before touching anything: is it a backup at all?
    if not force and _has_cases(s.resolved_database_url):
        raise UsageError(f"the database at {redact(s.resolved_database_url)} already has cases; "
                         "restoring replaces them: add --force if that is what you want")
    done = run_restore(src, s.resolved_database_url, open_blobs(s))
    storage.migrate(s.resolved_database_url)  # a backup made by an older version is brought up to date
    console.print(f"restored {safe(src)} (schema {done.revision}) into "
                  f"{safe(redact(s.resolved_database_url))}, {done.originals} original(s) added to the store")


def _has_cases(url: str) -> bool:
    from sqlalchemy import func, inspect, select

    import storage

    if url.startswith("sqlite") and not Path(url.split("///", 1)[-1]).exists():
        return False
    with storage.open_database(url, check_schema=False) as db, db.reader() as session:
        if "cases" not in inspect(session.connection()).get_table_names():
            return False
        return bool(session.scalar(select(func.count()).select_from(storage.Case)))
