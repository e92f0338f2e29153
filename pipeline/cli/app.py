"""The ``complaintdesk`` command: glue that parses options, builds settings and calls the library.

Exit codes are ``pipeline.core.errors.ExitCode``; ``main`` turns a ``ComplaintdeskError`` into a one-line
message and its exit code (the traceback only with ``--verbose``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sys
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.config import Settings, load_settings
from pipeline.core.errors import ComplaintdeskError, ExitCode

app = typer.Typer(
    name="complaintdesk",
    help="Turn scanned slips, e-mails and typed-in feedback into classified cases that get followed up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cases_app = typer.Typer(help="List, show and export cases.", no_args_is_help=True)
app.add_typer(cases_app, name="cases")

# Piped output (CI logs, `| less`) has no terminal width; rich would assume 80 columns and wrap every
# table cell over many lines, so use a wide fixed width unless COLUMNS says otherwise.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)
err_console = Console(stderr=True)
_state: dict[str, Any] = {"verbose": False, "overrides": {}}


@app.callback()
def _global_options(
    home: Annotated[Path | None, typer.Option(help="Data directory \\[env: COMPLAINTDESK_HOME].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL \\[env: COMPLAINTDESK_DATABASE_URL]; default SQLite in HOME.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details and show tracebacks.")] = False,
) -> None:
    _state["verbose"] = verbose
    _state["overrides"] = {"home": home, "database_url": database_url}
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def settings() -> Settings:
    """The settings for this invocation: file, environment, then global command-line options."""
    return load_settings(**_state["overrides"])


@app.command()
def init() -> None:
    """Create the database, or migrate it to the current schema."""
    import storage

    s = settings()
    s.home.mkdir(parents=True, exist_ok=True)
    storage.migrate(s.resolved_database_url)
    console.print(f"database ready: {_redact(s.resolved_database_url)}")


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per case or quarantined file.")] = False,
) -> None:
    """OCR, classify and store scanned slips (PNG, JPEG, TIFF, PDF); one case per distinct file.

    Exits 3 if any file was quarantined (unreadable, empty, corrupt or unsupported).
    """
    from pipeline.files import iter_files
    from pipeline.run import open_context, scan_files

    files = list(iter_files(paths))
    ctx = open_context(settings(), actor="scan")
    outcomes = []
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=as_json or not err_console.is_terminal,
    ) as progress:
        task = progress.add_task("scanning", total=len(files))
        try:
            # closing: on Ctrl-C the OCR pool is stopped now, not when the generator is collected
            with contextlib.closing(scan_files(files, ctx)) as results:
                for outcome in results:
                    progress.advance(task)
                    outcomes.append(outcome)
                    if as_json:
                        print(json.dumps(_outcome_json(outcome), ensure_ascii=False, default=str), flush=True)
        except KeyboardInterrupt:
            _interrupted(outcomes, len(files))
    if not as_json:
        _print_outcomes(outcomes)
    if any(o.kind == "quarantined" for o in outcomes):
        raise typer.Exit(ExitCode.quarantined)


def _interrupted(outcomes: list[Any], total: int) -> None:
    """Say what was stored before Ctrl-C (each outcome is already committed) and exit 130."""
    counts = Counter(str(o.kind) for o in outcomes)
    done = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing"
    stored = counts.get("created", 0)
    err_console.print(
        f"interrupted: stored {stored} case(s) before the interrupt ({done}; {total - len(outcomes)} of "
        f"{total} file(s) not done; scan again to finish them)"
    )
    raise typer.Exit(ExitCode.interrupted)


@app.command()
def submit(
    text: Annotated[str, typer.Argument(help="The complaint as typed in by staff; '-' reads standard input.")],
    channel: Annotated[str, typer.Option(help="manual (hotline, opinion book) or web.")] = "manual",
    as_json: Annotated[bool, typer.Option("--json", help="Print the case as JSON.")] = False,
) -> None:
    """Store a complaint typed in by staff (hotline call, opinion book entry) as a case."""
    from pipeline.core.model import Channel
    from pipeline.run import open_context, submit_text

    body = sys.stdin.read() if text == "-" else text
    ctx = open_context(settings(), actor="submit", need_ocr=False)
    outcome = submit_text(body, ctx, channel=Channel(channel))
    if as_json:
        print(json.dumps(_outcome_json(outcome), ensure_ascii=False, default=str))
    else:
        _print_outcomes([outcome])
    if outcome.kind == "quarantined":
        raise typer.Exit(ExitCode.quarantined)


@app.command()
def demo() -> None:
    """Scan the bundled sample slips (and import the sample e-mails) and print the cases."""
    from pipeline.run import open_context, scan_files

    s = settings()
    samples = resources.files("pipeline") / "samples"
    slips = sorted(Path(str(samples / "slips")).glob("*.*"))
    slips = [p for p in slips if p.suffix.lower() not in {".md", ".txt", ".json"}]
    ctx = open_context(s, actor="demo")
    console.print(f"scanning {len(slips)} bundled sample slips into {_redact(s.resolved_database_url)}")
    outcomes = list(scan_files(slips, ctx))
    outcomes += _demo_emails(ctx, Path(str(samples / "emails")))
    _print_outcomes(outcomes, show_text=True)


def _demo_emails(ctx: Any, folder: Path) -> list[Any]:
    try:
        from pipeline.mail.ingest import import_paths
    except ImportError:  # e-mail intake not installed in this build
        return []
    if not folder.is_dir():
        return []
    console.print(f"importing {len(list(folder.glob('*.eml')))} bundled sample e-mails")
    return list(import_paths([folder], ctx))


@cases_app.command("list")
def cases_list(
    status: Annotated[str | None, typer.Option(help="Only cases with this status.")] = None,
    department: Annotated[str | None, typer.Option(help="Only cases of this department.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many, newest first.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List cases, newest first."""
    import storage

    db = storage.open_database(settings().resolved_database_url)
    with db.session() as session:
        rows = [storage.case_to_dict(c) for c in storage.list_cases(session, status=status, department=department, limit=limit)]
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return
    console.print(_compact_table(
        ("reference", "status", "channel", "department", "sentiment", "kind", "due", "text"),
        [(row["reference"], row["status"], row["channel"], _label(row, "department"), _label(row, "sentiment"),
          _label(row, "kind"), str(row.get("due_at") or "")[:10], _snippet(row["text"], 80)) for row in rows],
    ))
    console.print(f"{len(rows)} case(s)")


@cases_app.command("show")
def cases_show(
    reference: Annotated[str, typer.Argument(help="Case reference, e.g. 2026-000123.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the case as JSON.")] = False,
) -> None:
    """Show one case with its labels, fields and text."""
    import storage

    db = storage.open_database(settings().resolved_database_url)
    with db.session() as session:
        row = storage.case_to_dict(storage.get_case(session, reference))
    if as_json:
        print(json.dumps(row, ensure_ascii=False, default=str, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key in ("reference", "status", "channel", "source", "sha256", "language", "created_at", "due_at",
                "model_version", "ocr_confidence", "needs_review"):
        table.add_row(f"[bold]{key}", str(row.get(key, "")))
    for name in ("department", "sentiment", "kind"):
        table.add_row(f"[bold]{name}", _label(row, name))
    for f in row.get("fields", []):
        table.add_row(f"[bold]field {f['name']}", str(f["value"]))
    console.print(table)
    console.print(row["text"])


EXPORT_COLUMNS = [
    "reference", "status", "channel", "source", "sha256", "language", "department", "department_confidence",
    "sentiment", "sentiment_confidence", "kind", "kind_confidence", "model_version", "ocr_confidence",
    "created_at", "due_at", "text",
]


@cases_app.command("export")
def cases_export(
    format: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write; default standard output.")] = None,
    status: Annotated[str | None, typer.Option(help="Only cases with this status.")] = None,
) -> None:
    """Export every case as JSON lines or CSV."""
    import storage

    if format not in ("jsonl", "csv"):
        raise typer.BadParameter("use jsonl or csv", param_hint="--format")
    db = storage.open_database(settings().resolved_database_url)
    with db.session() as session:
        rows = [storage.case_to_dict(c) for c in storage.list_cases(session, status=status)]
    out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if format == "jsonl":
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        else:
            writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    finally:
        if output:
            out.close()
    if output:
        err_console.print(f"wrote {len(rows)} case(s) to {output}")


def _outcome_json(outcome: Any) -> dict[str, Any]:
    if outcome.case is not None:
        return {"outcome": str(outcome.kind), **outcome.case}
    return {
        "outcome": str(outcome.kind), "reference": outcome.reference, "channel": str(outcome.source.channel),
        "source": outcome.source.name, "sha256": outcome.source.sha256, "reason": outcome.reason,
    }


def _print_outcomes(outcomes: list[Any], *, show_text: bool = False) -> None:
    rows = []
    for o in outcomes:
        row = o.case or {}
        conf = row.get("ocr_confidence")
        source = Path(o.source.name).name if o.source.channel == "slip" else o.source.name
        rows.append((
            _snippet(source, 28), str(o.kind), o.reference or "", _label(row, "department"), _label(row, "sentiment"),
            _label(row, "kind"), f"{conf:.0f}" if isinstance(conf, (int, float)) and conf >= 0 else "",
            _snippet(row.get("text", ""), 80 if show_text else 40) if row else (o.reason or ""),
        ))
    console.print(_compact_table(
        ("source", "outcome", "reference", "department", "sentiment", "kind", "OCR conf", "text / reason"), rows
    ))
    counts = Counter(str(o.kind) for o in outcomes)
    console.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do")


def _compact_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    """One line per row: every column keeps its full width except the last (free text), which is cut."""
    table = Table()
    # cell_len, not len: a Chinese file name is two terminal cells per character
    widths = [max([cell_len(header), *(cell_len(r[i]) for r in rows)]) for i, header in enumerate(headers[:-1])]
    for header, width in zip(headers, widths):
        table.add_column(header, no_wrap=True, width=width)
    free = console.width - sum(widths) - 3 * len(headers) - 1  # each column costs its width plus 3 for borders
    table.add_column(headers[-1], no_wrap=True, overflow="ellipsis", width=max(free, 12))
    for row in rows:
        table.add_row(*row)
    return table


def _label(row: dict[str, Any], name: str) -> str:
    label = row.get(name)
    if not label:
        return ""
    conf = row.get(f"{name}_confidence")
    return f"{label} ({conf:.2f})" if isinstance(conf, float) else str(label)


def _snippet(text: str, width: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def _register_optional_commands() -> None:
    """Add the command groups other modules own (models, mail) when they are present."""
    for module in ("pipeline.cli.models", "pipeline.cli.mail"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError as e:
            if e.name != module:
                raise
            continue
        mod.register(app)


_register_optional_commands()


def main() -> None:
    """Console-script entry point: run the app, mapping our errors to a message and an exit code."""
    try:
        app()
    except ComplaintdeskError as e:
        if _state["verbose"]:
            err_console.print_exception()
        err_console.print(f"[red]error:[/red] {e}")
        sys.exit(int(e.exit_code))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(int(ExitCode.interrupted))
