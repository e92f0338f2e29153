"""``complaintdesk doctor``: check Tesseract, the database, the model, the queue, the originals and the
mailbox, and say what to fix (``pipeline.doctor``). ``register(app)`` adds it to the main app."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.output import console, safe


def register(app: typer.Typer) -> None:
    """Add ``doctor`` to the main app."""
    app.command("doctor")(doctor)


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per check.")] = False,
) -> None:
    """Check everything a deployment needs and say what to fix; exits non-zero if something is wrong."""
    from pipeline import doctor as checks
    from pipeline.cli.app import settings

    s = settings()
    if s.queue == "postgres":  # the worker module reads the queue; the embedded default has none
        from pipeline.worker import queue_health

        findings = checks.run_checks(s, queue_health=queue_health)
    else:
        findings = checks.run_checks(s)
    if as_json:
        for f in findings:
            print(json.dumps({"check": f.name, "status": str(f.status), "detail": f.detail, "fix": f.fix},
                             ensure_ascii=False))
    else:
        table = Table()
        for column in ("check", "status", "detail", "fix"):
            table.add_column(column, overflow="fold")
        colour = {checks.Status.ok: "green", checks.Status.failed: "red", checks.Status.skipped: "yellow"}
        for f in findings:
            table.add_row(f.name, f"[{colour[f.status]}]{f.status}", safe(f.detail), safe(f.fix))
        console.print(table)
    code = checks.exit_code(findings)
    if code:
        raise typer.Exit(code)
