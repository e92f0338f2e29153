"""The ``complaintdesk`` command: glue that parses options, builds settings and calls the library.

Exit codes are ``pipeline.core.errors.ExitCode``; ``main`` turns a ``ComplaintdeskError`` into a one-line
message and its exit code (the traceback only with ``--verbose``).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.cli.output import (
    configure_logging,
    console,
    err_console,
    outcome_json,
    print_outcomes,
    redact,
    safe,
)
from pipeline.cli.params import SUBMIT_CHANNELS, choice, require_paths
from pipeline.config import Settings, default_home, load_settings
from pipeline.core.errors import ComplaintdeskError, ExitCode

app = typer.Typer(
    name="complaintdesk",
    help="Turn scanned slips, e-mails and typed-in feedback into classified cases that get followed up.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
_state: dict[str, Any] = {"verbose": False, "overrides": {}, "settings": None}


@app.callback()
def _global_options(
    home: Annotated[Path | None, typer.Option(help=(
        "Data directory: database, originals, models, config.toml \\[env: COMPLAINTDESK_HOME; "
        f"default: {default_home()}]."))] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="SQLAlchemy URL \\[env: COMPLAINTDESK_DATABASE_URL]; default SQLite in HOME."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details and show tracebacks.")
    ] = False,
    log_format: Annotated[str | None, typer.Option(
        help="Log lines as 'text' or 'json' (one object a line) \\[env: COMPLAINTDESK_LOG_FORMAT].")] = None,
) -> None:
    if log_format is not None:
        choice("--log-format", log_format, ("text", "json"))
    _state["verbose"] = verbose
    _state["overrides"] = {"home": home, "database_url": database_url, "log_format": log_format}
    configure_logging(verbose, log_format or "text")


def settings(**options: Any) -> Settings:
    """The settings for this invocation: file, environment, then the global and the command's ``options``.

    ``options`` are what ``load_settings`` takes (``imap={"host": ...}``); ``None`` means not given.
    """
    built = load_settings(**_state["overrides"], **options)
    _state["settings"] = built  # for the hint `main` adds to a "no database" error
    if built.log_format != "text":  # set in the environment or the config file, not on the command line
        configure_logging(_state["verbose"], built.log_format)
    return built


@app.command()
def init() -> None:
    """Create the database, or migrate it to the current schema."""
    import storage

    s = settings()
    s.home.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: cases name citizens
    storage.migrate(s.resolved_database_url)
    console.print(f"database ready: {safe(redact(s.resolved_database_url))}")


@app.command()
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (searched recursively).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per case, quarantined or skipped entry.")
    ] = False,
    follow_symlinks: Annotated[
        bool, typer.Option("--follow-symlinks", help="Follow symbolic links that leave the scanned folders.")
    ] = False,
    split: Annotated[str | None, typer.Option(
        "--split", help="auto: one case per slip (a form header or new slip number starts one); "
                        "none: one case per file; pages: one case per page. Default: forms.split (auto).")
    ] = None,
) -> None:
    """OCR, classify and store scanned slips (PNG, JPEG, TIFF, PDF); one case per slip.

    A batch file holding several slips becomes one case per slip; a continuation sheet with the
    same slip number continues its slip; a slip whose printed number is already a case's (the same
    paper scanned again) is reported as matched. The case text is what the citizen wrote on the form.

    Every entry of a folder is reported: other files (.docx, .txt), FIFOs, devices, unreadable files
    and folders, link loops and links leaving the folder are "skipped" with a reason. Exits 3 if any
    file was quarantined (empty, corrupt or unsupported) or any entry was skipped.
    """
    from pipeline.context import open_context
    from pipeline.files import iter_files
    from pipeline.intake import scan_files

    require_paths(paths)
    files = list(iter_files(paths, follow_symlinks=follow_symlinks))
    mode = choice("--split", split, ("auto", "none", "pages"))
    s = settings(forms={"split": mode})
    # with the queue, the workers OCR: the machine that scans needs no Tesseract
    ctx = open_context(s, actor="scan", need_ocr=s.queue != "postgres")
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
                        print(json.dumps(outcome_json(outcome), ensure_ascii=False, default=str), flush=True)
        except KeyboardInterrupt:
            _interrupted(outcomes, len(files))
    if not as_json:
        print_outcomes(outcomes)
    if any(o.kind in ("quarantined", "skipped") for o in outcomes):
        raise typer.Exit(ExitCode.quarantined)


@app.command()
def resume(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per finished item.")] = False,
) -> None:
    """Finish every accepted input that a crash or a stop left unprocessed (scan and poll do this too).

    Exits 3 if any of them was quarantined.
    """
    from pipeline.context import open_context
    from pipeline.intake import resume as resume_items

    ctx = open_context(settings(), actor="resume")
    outcomes = resume_items(ctx)
    if as_json:
        for outcome in outcomes:
            print(json.dumps(outcome_json(outcome), ensure_ascii=False, default=str), flush=True)
    elif outcomes:
        print_outcomes(outcomes)
    else:
        console.print("nothing to resume: every accepted input is finished")
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
    text: Annotated[
        str, typer.Argument(help="The complaint as typed in by staff; '-' reads standard input.")
    ],
    channel: Annotated[str, typer.Option(help="manual (hotline, opinion book) or web.")] = "manual",
    as_json: Annotated[bool, typer.Option("--json", help="Print the case as JSON.")] = False,
) -> None:
    """Store a complaint typed in by staff (hotline call, opinion book entry) as a case."""
    from pipeline.context import open_context
    from pipeline.core.model import Channel
    from pipeline.intake import submit_text

    choice("--channel", channel, SUBMIT_CHANNELS)
    body = sys.stdin.read() if text == "-" else text
    ctx = open_context(settings(), actor="submit", need_ocr=False)
    outcome = submit_text(body, ctx, channel=Channel(channel))
    if as_json:
        print(json.dumps(outcome_json(outcome), ensure_ascii=False, default=str))
    else:
        print_outcomes([outcome])
    if outcome.kind == "quarantined":
        raise typer.Exit(ExitCode.quarantined)


@app.command()
def demo() -> None:
    """Scan the bundled sample slips (and import the sample e-mails) and print the cases."""
    from pipeline.context import open_context
    from pipeline.intake import scan_files

    s = settings()
    samples = resources.files("pipeline") / "samples"
    slips = sorted(Path(str(samples / "slips")).glob("*.*"))
    slips = [p for p in slips if p.suffix.lower() not in {".md", ".txt", ".json"}]
    ctx = open_context(s, actor="demo")
    console.print(f"scanning {len(slips)} bundled sample slips into {safe(redact(s.resolved_database_url))}")
    outcomes = list(scan_files(slips, ctx))
    outcomes += _demo_emails(ctx, Path(str(samples / "emails")))
    print_outcomes(outcomes, show_text=True)


def _demo_emails(ctx: Any, folder: Path) -> list[Any]:
    try:
        from pipeline.mail.ingest import import_paths
    except ImportError:  # e-mail intake not installed in this build
        return []
    if not folder.is_dir():
        return []
    console.print(f"importing {len(list(folder.glob('*.eml')))} bundled sample e-mails")
    return list(import_paths([folder], ctx))


def _register_optional_commands() -> None:
    """Add the command groups other modules own (cases, models, mail, check) when they are present."""
    for module in ("pipeline.cli.cases", "pipeline.cli.models", "pipeline.cli.mail", "pipeline.cli.check",
                   "pipeline.cli.backup", "pipeline.cli.doctor", "pipeline.cli.review", "review.cli",
                   "pipeline.cli.queue", "pipeline.cli.forms"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ImportError as e:
            if e.name != module:
                raise
            continue
        mod.register(app)


_register_optional_commands()


def _is_schema_error(error: ComplaintdeskError) -> bool:
    """No database, or one without our tables or at another schema (``storage.SchemaError``)."""
    storage_errors = sys.modules.get("storage.errors")  # only loaded if a command opened a database
    return storage_errors is not None and isinstance(error, storage_errors.SchemaError)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, mapping our errors to a message and an exit code.

    ``argv`` defaults to ``sys.argv[1:]``; tests pass their own. Always ends in ``SystemExit``.
    """
    try:
        app(args=argv, prog_name="complaintdesk")
    except ComplaintdeskError as e:
        code = report_error(e, verbose=_state["verbose"])
        if _state["settings"] is not None and _is_schema_error(e):
            # the usual cause is looking in the wrong place, not a missing `init`: say where we looked
            err_console.print(
                f"  {safe(_state['settings'].location_hint())}", highlight=False, soft_wrap=True
            )
        sys.exit(code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(int(ExitCode.interrupted))


def report_error(error: ComplaintdeskError, *, verbose: bool = False) -> int:
    """Print ``error`` for people on standard error (with its traceback if ``verbose``); its exit code."""
    if verbose:
        err_console.print_exception()
    # soft_wrap: one line per message however narrow the terminal, so scripts can grep it
    err_console.print(f"[red]error:[/red] {safe(error, keep_newlines=True)}", soft_wrap=True)
    return int(error.exit_code)
