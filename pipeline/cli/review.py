"""Review commands of the ``complaintdesk`` CLI, for scripts and for a desk without a browser:
``cases correct|accept|edit-text|status|assign|note|reply|history|original|queue|overdue`` and
``quarantine list|show|release``.

Glue only: parse options, open the review desk, call ``pipeline.review`` (the functions the web app
calls) and print. The CLI acts as a local supervisor named by ``--actor`` (default: the OS user name);
that name goes into every audit event and correction. ``register(app)`` adds the commands.
"""

from __future__ import annotations

import getpass
import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.cases import cases_app
from pipeline.cli.output import compact_table, console, err_console, label, safe, snippet
from pipeline.cli.params import STATUSES, choice
from pipeline.core.actor import Actor
from pipeline.core.errors import UsageError

if TYPE_CHECKING:
    from pipeline.review.desk import Desk

quarantine_app = typer.Typer(help="List, show and release inputs that could not become cases.",
                             no_args_is_help=True)

Reference = Annotated[str, typer.Argument(help="Case reference, e.g. 2026-000123.")]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Your name in the audit trail [default: the OS user name].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def cli_actor(name: str | None) -> Actor:
    """The person at the command line: a local supervisor (``--actor``, else the OS user name)."""
    return Actor.supervisor((name or getpass.getuser()).strip() or "cli")


@contextmanager
def cli_desk() -> Iterator[Desk]:
    """The review service's desk on the configured deployment, closed when the block ends."""
    from pipeline.cli.app import settings
    from pipeline.review.desk import open_desk

    with open_desk(settings()) as desk:
        yield desk


def _print_case(case: dict[str, Any], as_json: bool, what: str) -> None:
    if as_json:
        print(json.dumps(case, ensure_ascii=False, default=str))
        return
    console.print(f"{safe(case['reference'])}: {what} (status {safe(case['status'])}, department "
                  f"{safe(case['assigned_department'] or '-')}, assignee {safe(case['assignee'] or '-')})")


@cases_app.command("correct")
def correct_cmd(
    reference: Reference,
    department: Annotated[str | None, typer.Option(help="The right department label.")] = None,
    sentiment: Annotated[str | None, typer.Option(help="The right sentiment label.")] = None,
    kind: Annotated[str | None, typer.Option(help="The right kind label.")] = None,
    labels: Annotated[list[str] | None, typer.Option(
        "--label", help="LABEL_SET=LABEL for any other label set (repeatable).")] = None,
    accept_rest: Annotated[bool, typer.Option(
        "--accept",
        help="Also confirm every other label as the model gave it (takes the case off the queue).")] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Correct (or confirm) a case's labels; each correction is training data for `retrain`."""
    from pipeline import review

    wanted = {k: v for k, v in (("department", department), ("sentiment", sentiment), ("kind", kind)) if v}
    for item in labels or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--label {item!r}: use LABEL_SET=LABEL")
        wanted[name.strip()] = value.strip()
    with cli_desk() as desk:
        case = review.correct(desk, cli_actor(actor), reference, wanted, accept_rest=accept_rest)
    _print_case(case, as_json, "labels " + ", ".join(
        f"{name} {label(case, name)}" for name in ("department", "sentiment", "kind")))


@cases_app.command("accept")
def accept_cmd(reference: Reference, actor: ActorOption = None, as_json: JsonOption = False) -> None:
    """Confirm every label of a case as the model gave it and take it off the review queue."""
    from pipeline import review

    with cli_desk() as desk:
        case = review.accept(desk, cli_actor(actor), reference)
    _print_case(case, as_json, "labels confirmed")


@cases_app.command("undo")
def undo_cmd(reference: Reference, actor: ActorOption = None, as_json: JsonOption = False) -> None:
    """Take back your latest correction (or accept) of a case: labels as they were, not training data."""
    from pipeline import review

    with cli_desk() as desk:
        case = review.undo(desk, cli_actor(actor), reference)
    _print_case(case, as_json, "labels " + ", ".join(
        f"{name} {label(case, name)}" for name in ("department", "sentiment", "kind")))


@cases_app.command("edit-text")
def edit_text_cmd(
    reference: Reference,
    text_file: Annotated[Path, typer.Option(
        "--file", help="UTF-8 file with the corrected text ('-': stdin).")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replace a case's text (fix OCR errors); the intake's text is kept and the change audited."""
    from pipeline import review

    text = sys.stdin.read() if str(text_file) == "-" else _read_text(text_file)
    with cli_desk() as desk:
        case = review.edit_text(desk, cli_actor(actor), reference, text)
    _print_case(case, as_json, "text replaced (the intake's text is kept)")


def _read_text(path: Path) -> str:
    from pipeline.cli.params import require_paths

    require_paths([path])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path} as UTF-8 text: {e}") from e


@cases_app.command("status")
def status_cmd(
    reference: Reference,
    status: Annotated[str, typer.Argument(help=f"The new status: {', '.join(STATUSES)}.")],
    note: Annotated[str, typer.Option(help="Why (required for rejected); kept in the audit trail.")] = "",
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move a case along its lifecycle; closed and rejected cases can be reopened to in_progress."""
    from pipeline import review

    choice("STATUS", status, STATUSES)
    with cli_desk() as desk:
        case = review.set_status(desk, cli_actor(actor), reference, status, note=note)
    _print_case(case, as_json, f"now {case['status']}, due {str(case.get('due_at') or '-')[:10]}")


@cases_app.command("assign")
def assign_cmd(
    reference: Reference,
    department: Annotated[str | None, typer.Option(help="Hand the case to this department.")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Assign it to this person ('' to unassign).")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Assign a case to a department (due dates follow its SLA) and/or a person."""
    from pipeline import review

    if department is None and to is None:
        raise UsageError("give --department, --to, or both")
    with cli_desk() as desk:
        case = review.assign(desk, cli_actor(actor), reference, department=department, assignee=to)
    _print_case(case, as_json, f"assigned, due {str(case.get('due_at') or '-')[:10]}")


@cases_app.command("note")
def note_cmd(
    reference: Reference,
    text: Annotated[str, typer.Argument(help="The note (internal: never sent to the citizen).")],
    actor: ActorOption = None,
) -> None:
    """Add an internal note to a case."""
    from pipeline import review

    with cli_desk() as desk:
        review.add_note(desk, cli_actor(actor), reference, text)
    console.print(f"note added to {safe(reference)}")


@cases_app.command("reply")
def reply_cmd(
    reference: Reference,
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="The reply text, put into the department's template.")] = None,
    text_file: Annotated[Path | None, typer.Option(
        "--file", help="Send this UTF-8 file as the whole reply (no template; '-': stdin).")] = None,
    method: Annotated[str, typer.Option(
        help="email (sent now over SMTP), or phone / letter (recorded: cases without an e-mail address).")
    ] = "email",
    language: Annotated[str | None, typer.Option(help="Template language: zh or en [default: the case's].")
                        ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the reply, send and record nothing.")
                       ] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Answer the citizen: an e-mail threaded onto the case, or a phone or letter reply recorded.

    The citizen's answer to the e-mail joins the case through the e-mail intake."""
    from pipeline import review

    if (message is None) == (text_file is None):
        raise UsageError("give the reply as --message (put into the template) or --file (sent as is)")
    who = cli_actor(actor)
    with cli_desk() as desk:
        if text_file is not None:
            text = sys.stdin.read() if str(text_file) == "-" else _read_text(text_file)
        else:
            text = review.draft(desk, who, reference, language=language, body=message or "")
        if dry_run:
            console.print(safe(text, keep_newlines=True))
            return
        sent = review.reply(desk, who, reference, text, method=method)
    if as_json:
        print(json.dumps(sent.to_json(), ensure_ascii=False))
        return
    how = f"sent to {safe(sent.recipient)} ({safe(sent.message_id)})" if sent.method == "email" else \
        f"recorded as a {sent.method} reply"
    console.print(f"{safe(sent.reference)}: reply {how}")


@cases_app.command("history")
def history_cmd(reference: Reference, actor: ActorOption = None, as_json: JsonOption = False) -> None:
    """The audit trail of a case, oldest first, with the messages it received and the replies sent."""
    from pipeline import review

    with cli_desk() as desk:
        entries = review.history(desk, cli_actor(actor), reference)
    if as_json:
        for entry in entries:
            print(json.dumps(entry.to_json(), ensure_ascii=False, default=str))
        return
    table = Table("when", "who", "what", "detail", box=None)
    for e in entries:
        table.add_row(e.at.isoformat(timespec="seconds"), safe(e.actor), safe(e.kind),
                      _detail(e.kind, e.detail))
    console.print(table)


def _detail(kind: str, detail: dict[str, Any]) -> str:
    if kind == "message":
        arrow = "<-" if detail.get("direction") == "in" else "->"
        head = f"{arrow} {detail.get('method', 'email')} {detail.get('subject') or ''}".strip()
        return safe(head) + "\n" + safe(detail.get("text", ""), keep_newlines=True)
    if kind == "note":
        return safe(detail.get("text", ""), keep_newlines=True)
    if kind == "text_edited":
        return f"{snippet(detail.get('old'), 40)} -> {snippet(detail.get('new'), 40)}"
    return safe(", ".join(f"{k}={v}" for k, v in detail.items()))


@cases_app.command("original")
def original_cmd(
    reference: Reference,
    output: Annotated[Path, typer.Option("--output", "-o", help="Write the original to this file.")],
    actor: ActorOption = None,
) -> None:
    """Save a case's original (the scan, or the e-mail as received) to a file."""
    from pipeline import review

    with cli_desk() as desk:
        found = review.case_original(desk, cli_actor(actor), reference)
    _save(found.path, output)
    console.print(f"wrote {safe(found.filename)} ({safe(found.media_type)}, {found.size} bytes) "
                  f"to {safe(output)}")


def _save(source: Path, output: Path) -> None:
    if output.exists() and output.is_dir():
        raise UsageError(f"--output {output} is a folder; name a file")
    shutil.copyfile(source, output)
    output.chmod(0o600)  # originals name citizens


@cases_app.command("queue")
def queue_cmd(
    limit: Annotated[int, typer.Option(help="Cases per page (1-500).")] = 20,
    after: Annotated[str | None, typer.Option(help="The page token printed under the previous page.")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """The review queue: most needed first, then soonest due, then oldest.

    Need: a label below its threshold, a close runner-up, a hard-to-read scan."""
    from pipeline import review

    with cli_desk() as desk:
        page = review.review_queue(desk, cli_actor(actor), limit=limit, after=after)
    if as_json:
        print(json.dumps({"cases": page.cases, "next": page.next}, ensure_ascii=False, default=str))
        return
    _print_list(page.cases)
    if page.next:
        console.print(f"next page: --after {page.next}")


@cases_app.command("overdue")
def overdue_cmd(
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open cases past their resolution or first-response due date, most overdue first."""
    from pipeline import review

    with cli_desk() as desk:
        found = review.overdue(desk, cli_actor(actor), limit=limit)
    if as_json:
        for row in found:
            print(json.dumps(row, ensure_ascii=False, default=str))
        return
    _print_list(found)


def _print_list(rows: list[dict[str, Any]]) -> None:
    console.print(compact_table(
        ("reference", "status", "department", "assignee", "due", "first answer due", "text"),
        [(safe(r["reference"]), safe(r["status"]), safe(r["assigned_department"] or "-"),
          safe(r["assignee"] or "-"), safe(str(r.get("due_at") or "")[:10]),
          safe("answered" if r.get("first_response_at") else str(r.get("first_response_due_at") or "")[:10]),
          snippet(r["text"], 60)) for r in rows]))
    console.print(f"{len(rows)} case(s)")


@quarantine_app.command("list")
def quarantine_list(
    all_records: Annotated[bool, typer.Option("--all", help="Include resolved records.")] = False,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Inputs that could not become cases, newest first, with the reason."""
    from pipeline import review

    with cli_desk() as desk:
        found = review.list_quarantine(desk, cli_actor(actor), include_resolved=all_records)
    if as_json:
        for row in found:
            print(json.dumps(row, ensure_ascii=False))
        return
    console.print(compact_table(
        ("id", "channel", "source", "when", "reason", "resolved"),
        [(str(r["id"]), safe(r["channel"]), safe(r["source"]), r["created_at"][:19],
          snippet(r["reason"], 60), (r["resolved_at"] or "")[:19]) for r in found]))
    console.print(f"{len(found)} record(s)")


@quarantine_app.command("show")
def quarantine_show(
    record_id: Annotated[int, typer.Argument(help="The id from `quarantine list`.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Save the input's bytes here.")] = None,
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """One quarantined input with its reason; --output saves its bytes for a look or a fix."""
    from pipeline import review

    with cli_desk() as desk:
        who = cli_actor(actor)
        record = review.show_quarantine(desk, who, record_id)
        if output is not None:
            _save(review.quarantine_original(desk, who, record_id).path, output)
    if as_json:
        print(json.dumps(record, ensure_ascii=False))
    else:
        table = Table(show_header=False, box=None)
        for key, value in record.items():
            table.add_row(f"[bold]{key}", safe(value if value is not None else ""))
        console.print(table)
    if output is not None:
        err_console.print(f"wrote the input to {safe(output)}")


@quarantine_app.command("release")
def quarantine_release(
    record_id: Annotated[int, typer.Argument(help="The id from `quarantine list`.")],
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run a quarantined input through the intake again after a fix (resolved if it becomes a case).

    Exits 3 if it is quarantined again (the new reason is printed).
    """
    from pipeline import review
    from pipeline.cli.app import settings
    from pipeline.cli.output import outcome_json
    from pipeline.context import open_context
    from pipeline.core.errors import ExitCode
    from pipeline.core.model import OutcomeKind

    ctx = open_context(settings(), actor=cli_actor(actor).name)
    with ctx.db:
        outcome = review.release(ctx, cli_actor(actor), record_id)
    if as_json:
        print(json.dumps(outcome_json(outcome), ensure_ascii=False, default=str))
    else:
        console.print(f"quarantine record {record_id}: {outcome.kind} "
                      f"{safe(outcome.reference or outcome.reason)}")
    if outcome.kind is OutcomeKind.quarantined:
        raise typer.Exit(int(ExitCode.quarantined))


def register(app: typer.Typer) -> None:
    """Add the ``quarantine`` group (the ``cases`` review commands are on ``cases_app`` already)."""
    app.add_typer(quarantine_app, name="quarantine")
