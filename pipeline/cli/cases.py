"""``complaintdesk cases list|search|show|export``: finding cases and handing them to people and spreadsheets.

``register(app)`` adds the group to the main app (``pipeline.cli``). The filters are the same for
``list``, ``search`` and ``export``; a value outside the known statuses, channels or departments is a
usage error (exit 2) that names the allowed ones, instead of an empty list.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.output import compact_table, console, err_console, label, safe, snippet
from pipeline.cli.params import CHANNELS, STATUSES, choice, department_labels
from pipeline.config import Settings
from pipeline.core.errors import UsageError
from pipeline.database import open_db

cases_app = typer.Typer(help="List, search, show and export cases.", no_args_is_help=True)

#: what a spreadsheet program treats as the start of a formula (OWASP "CSV injection")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EXPORT_FORMATS = ("jsonl", "json", "csv")

StatusOption = Annotated[
    str | None, typer.Option(help=f"Only cases with this status: {', '.join(STATUSES)}.")
]
DepartmentOption = Annotated[
    str | None, typer.Option(help="Only cases of this department (a label of classifiers/labels.toml).")
]
ChannelOption = Annotated[str | None, typer.Option(help=f"Only cases that came in by {', '.join(CHANNELS)}.")]
ReviewOption = Annotated[
    bool | None,
    typer.Option("--needs-review/--reviewed",
                 help="Only cases queued for review, or only those that are not."),
]
SinceOption = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="Only cases created on or after this date (UTC)."),
]
AfterOption = Annotated[
    str | None,
    typer.Option("--after", metavar="REFERENCE",
                 help="Continue after this case (the last one of the previous page) with older ones."),
]
LimitOption = Annotated[int | None, typer.Option(help="At most this many, newest first.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def register(app: typer.Typer) -> None:
    """Add the ``cases`` group to the main app."""
    app.add_typer(cases_app, name="cases")


def _settings() -> Settings:
    from pipeline.cli.app import settings  # the module, not the Typer app `pipeline.cli.app` names

    return settings()


def _find_cases(
    *, status: str | None, department: str | None, channel: str | None, needs_review: bool | None,
    since: datetime | None, limit: int | None = None, make_row: Callable[[Any], dict[str, Any]] | None = None,
    after: str | None = None, search: str | None = None,
) -> list[dict[str, Any]]:
    """Check the filters, then run ``storage.list_cases``; each case becomes ``make_row(case)``
    (default ``storage.case_to_dict``) while the session is open.

    Raises:
        UsageError: a status, department or channel that does not exist, or a search with no words.
        CaseNotFoundError: no case ``after``.
    """
    choice("--status", status, STATUSES)
    choice("--channel", channel, CHANNELS)
    choice("--department", department, department_labels())
    import storage  # SQLAlchemy: only once the options are known to be good

    if search is not None:
        try:
            storage.query_terms(search)
        except ValueError as e:
            raise UsageError(f"QUERY: {e}") from e

    db = open_db(_settings())
    with db, db.reader() as session:
        found = storage.list_cases(session, status=status, department=department, channel=channel,
                                   needs_review=needs_review, limit=limit, after=after, search=search,
                                   since=since.replace(tzinfo=UTC) if since else None)
        return [(make_row or storage.case_to_dict)(c) for c in found]


@cases_app.command("list")
def cases_list(
    status: StatusOption = None,
    department: DepartmentOption = None,
    channel: ChannelOption = None,
    needs_review: ReviewOption = None,
    since: SinceOption = None,
    limit: LimitOption = None,
    after: AfterOption = None,
    as_json: JsonOption = False,
) -> None:
    """List cases, newest first; page with --limit and --after."""
    rows = _find_cases(status=status, department=department, channel=channel, needs_review=needs_review,
                       since=since, limit=limit, after=after)
    _print_cases(rows, as_json=as_json)


@cases_app.command("search")
def cases_search(
    query: Annotated[str, typer.Argument(
        help="Words and Chinese text to find in a case's text, subject or sender; every one must be there.")],
    status: StatusOption = None,
    department: DepartmentOption = None,
    channel: ChannelOption = None,
    needs_review: ReviewOption = None,
    since: SinceOption = None,
    limit: LimitOption = 50,
    after: AfterOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find cases by their words, newest first, with the filters of `cases list`.

    Words match whole (case-insensitive); Chinese matches by pairs of characters, so a query of two
    or more characters finds every case containing it (a single character finds it only on its own).
    """
    rows = _find_cases(status=status, department=department, channel=channel, needs_review=needs_review,
                       since=since, limit=limit, after=after, search=query)
    _print_cases(rows, as_json=as_json)


def _print_cases(rows: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return
    console.print(compact_table(
        ("reference", "status", "review", "channel", "department", "sentiment", "kind", "due", "text"),
        [(safe(row["reference"]), safe(row["status"]), "yes" if row["needs_review"] else "",
          safe(row["channel"]), label(row, "department"), label(row, "sentiment"), label(row, "kind"),
          safe(str(row.get("due_at") or "")[:10]), snippet(row["text"], 80)) for row in rows],
    ))
    console.print(f"{len(rows)} case(s)")


@cases_app.command("show")
def cases_show(
    reference: Annotated[str, typer.Argument(help="Case reference, e.g. 2026-000123.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the case as JSON.")] = False,
) -> None:
    """Show one case with its labels, fields and text."""
    import storage

    db = open_db(_settings())
    with db, db.reader() as session:
        row = storage.case_to_dict(storage.get_case(session, reference))
    if as_json:
        print(json.dumps(row, ensure_ascii=False, default=str, indent=2))
        return
    table = Table(show_header=False, box=None)
    for key in ("reference", "status", "channel", "source", "subject", "sender", "sha256", "language",
                "created_at", "due_at", "model_version", "ocr_confidence", "needs_review"):
        value = row.get(key)
        if value not in (None, ""):
            table.add_row(f"[bold]{key}", safe(value))
    for name in ("department", "sentiment", "kind"):
        table.add_row(f"[bold]{name}", label(row, name))
    for f in row.get("fields", []):
        table.add_row(f"[bold]field {safe(f['name'])}", safe(f["value"]))
    for problem in row.get("problems", []):  # what could not be read of the input: a reviewer must look
        table.add_row("[bold yellow]not read", safe(problem))
    console.print(table)
    console.print(safe(row["text"], keep_newlines=True))


@cases_app.command("export")
def cases_export(
    format: Annotated[
        str, typer.Option("--format", help="jsonl (one case per line), json (one array) or csv.")
    ] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write; default standard output.")
    ] = None,
    status: StatusOption = None,
    department: DepartmentOption = None,
    channel: ChannelOption = None,
    needs_review: ReviewOption = None,
    since: SinceOption = None,
) -> None:
    """Export cases, newest first, as JSON lines, a JSON array, or CSV for spreadsheet programs.

    CSV is UTF-8 with a byte-order mark (so Chinese text opens correctly), one column per extracted
    field name, and cells that a spreadsheet would run as a formula (starting with = + - @, tab or
    carriage return) get a leading apostrophe; JSON keeps the text exactly as stored.
    """
    choice("--format", format, EXPORT_FORMATS)
    import storage

    found = _find_cases(status=status, department=department, channel=channel, needs_review=needs_review,
                        since=since, make_row=storage.export_row if format == "csv" else None)
    with _open_output(output, bom=format == "csv") as out:
        if format == "csv":
            write_csv(found, out)
        elif format == "json":
            json.dump(found, out, ensure_ascii=False, default=str, indent=2)
            out.write("\n")
        else:
            for row in found:
                out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    if output:
        err_console.print(f"wrote {len(found)} case(s) to {safe(output)}")


@contextmanager
def _open_output(output: Path | None, *, bom: bool) -> Iterator[IO[str]]:
    """The file, or standard output, as UTF-8 whatever the locale says (and with a BOM for CSV)."""
    encoding = "utf-8-sig" if bom else "utf-8"
    if output is not None:
        with output.open("w", encoding=encoding, newline="") as out:
            yield out
        return
    sys.stdout.flush()
    out = io.TextIOWrapper(sys.stdout.buffer, encoding=encoding, newline="", write_through=True)
    try:
        yield out
    finally:
        out.flush()
        out.detach()  # leave sys.stdout open


def write_csv(rows: Sequence[dict[str, Any]], out: IO[str]) -> None:
    """Write ``storage.export_row`` rows as CSV, every text cell made safe for spreadsheet programs."""
    import storage

    writer = csv.DictWriter(out, fieldnames=storage.export_columns(rows), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: spreadsheet_cell(value) for key, value in row.items()})


def spreadsheet_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` if a spreadsheet program would run it as a formula (OWASP rule).

    Only text is changed: numbers, booleans and empty cells are written by us, never by the public.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
