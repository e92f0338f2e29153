"""``complaintdesk check``: are the originals of every case still in the store, byte for byte?

``register(app)`` adds it to the main app (``pipeline.cli.app``). Exits 7 (``ExitCode.storage_error``)
when an original is missing, damaged or unreadable, so a cron job or monitoring can alert on it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pipeline.cli.output import console, safe
from pipeline.core.errors import ExitCode

if TYPE_CHECKING:
    from storage import OriginalProblem


def register(app: typer.Typer) -> None:
    """Add ``check`` to the main app."""
    app.command("check")(check)


def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per problem.")] = False,
) -> None:
    """Check that every case's originals are in the store and unchanged (SHA-256); exit 7 if not."""
    import storage
    from pipeline.cli.app import settings
    from pipeline.database import open_blobs, open_db
    from storage.integrity import problems_json

    s = settings()
    db = open_db(s)
    try:
        with db.reader() as session:  # rows first, hashing after: no snapshot held while reading files
            originals = storage.kept_originals(session)
    finally:
        db.dispose()
    problems = storage.check_originals(originals, open_blobs(s))
    if as_json:
        for row in problems_json(problems):
            print(json.dumps(row, ensure_ascii=False))
    else:
        _print(problems, checked=len(originals))
    if problems:
        raise typer.Exit(ExitCode.storage_error)


def _print(problems: list[OriginalProblem], *, checked: int) -> None:
    if problems:
        table = Table()
        for column in ("reference", "file", "sha256", "status", "detail"):
            table.add_column(column, overflow="fold")
        for p in problems:
            table.add_row(safe(p.original.reference), safe(p.original.filename), p.original.sha256[:16] + "…",
                          str(p.status), safe(p.detail))
        console.print(table)
    console.print(f"{checked} original(s) checked, {len(problems)} problem(s)")
