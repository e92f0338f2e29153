"""``complaintdesk poll`` and ``complaintdesk mail import``: the e-mail channel's commands.

``register(app)`` adds them to the main app (``pipeline.cli``). Options override the environment
(``COMPLAINTDESK_IMAP_*``), which overrides the config file's ``[imap]`` table; all of it is the one
``Settings`` object (``settings.imap``, ``settings.smtp``) built by ``pipeline.cli.app.settings``.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table

from pipeline.cli.output import console, err_console, outcome_json, print_outcomes, safe
from pipeline.cli.params import require_paths
from pipeline.core.errors import ConfigError, ExitCode, UsageError
from pipeline.mail.settings import Security

log = logging.getLogger(__name__)
mail_app = typer.Typer(help="Import e-mail from files (.eml, mbox, Maildir).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``poll`` and the ``mail`` group to the main app."""
    app.command("poll")(poll)
    app.add_typer(mail_app, name="mail")


def poll(
    once: Annotated[
        bool, typer.Option("--once", help="One pass over the folders, then exit (cron, timers).")
    ] = False,
    every: Annotated[str, typer.Option(help="Poll interval when running continuously: 30s, 5m, 1h.")] = "5m",
    host: Annotated[str | None, typer.Option(help="IMAP host \\[env: COMPLAINTDESK_IMAP_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="IMAP port \\[env: COMPLAINTDESK_IMAP_PORT].")] = None,
    user: Annotated[str | None, typer.Option(help="IMAP user \\[env: COMPLAINTDESK_IMAP_USER].")] = None,
    folder: Annotated[
        str | None, typer.Option(help="Folder(s), comma-separated \\[env: COMPLAINTDESK_IMAP_FOLDER].")
    ] = None,
    security: Annotated[
        Security | None, typer.Option(help="ssl, starttls or none \\[env: COMPLAINTDESK_IMAP_SECURITY].")
    ] = None,
    wait_for_lock: Annotated[bool | None, typer.Option(
        "--wait-for-lock/--no-wait-for-lock",
        help="Wait while another poller works the mailbox (default: exit).")] = None,
    ack: Annotated[bool | None, typer.Option(
        "--ack/--no-ack",
        help="Send acknowledgments over SMTP \\[env: COMPLAINTDESK_SMTP_ACK, default off].")] = None,
) -> None:
    """Poll the IMAP mailbox: new mail becomes cases, replies join their case, noise is ignored.

    The password comes from COMPLAINTDESK_IMAP_PASSWORD or COMPLAINTDESK_IMAP_PASSWORD_FILE (or the \\[imap]
    table of HOME/config.toml), never from an option.
    """
    from pipeline.cli.app import settings as cli_settings
    from pipeline.context import open_context
    from pipeline.mail.poller import Backoff, Poller, parse_interval, retry_while_database_down

    try:
        interval = parse_interval(every)
    except (ValueError, KeyError) as e:
        raise UsageError(f"--every: {e}; use a duration such as 30s, 5m or 1h") from e
    settings = cli_settings(
        imap={"host": host, "port": port, "user": user, "folder": folder, "security": security,
              "wait_for_lock": wait_for_lock},
        smtp={"ack": ack},
    )
    imap, smtp = settings.imap, settings.smtp
    imap.check()
    if smtp.ack and not (smtp.host and smtp.from_address):
        raise ConfigError("acknowledgments are on but COMPLAINTDESK_SMTP_HOST or "
                          "COMPLAINTDESK_SMTP_FROM_ADDRESS is unset")
    stop = threading.Event()
    with _stop_on_signals(stop):
        # a database that is down at start is waited for (with back-off), as the IMAP server is
        ctx = retry_while_database_down(
            lambda: open_context(settings, actor="poller"), "open the database",
            Backoff(imap.backoff_initial_seconds, imap.backoff_max_seconds), stop,
            attempts=imap.once_attempts if once else None)
        if ctx is None:
            return
        poller = Poller(ctx, imap, smtp=smtp if smtp.ack else None, stop=stop)
        mode = "once" if once else f"every {every}"
        err_console.print(
            safe(f"polling {imap.user}@{imap.host}:{imap.resolved_port} {imap.folders} ({mode})"))
        stats = poller.run(once=once, every=interval)
    _print_stats(stats.outcomes, stats.acks_sent, stopped=stop.is_set() and not once)
    if once and stats.outcomes.get("quarantined"):
        raise typer.Exit(ExitCode.quarantined)


@mail_app.command("import")
def import_(
    paths: Annotated[
        list[Path], typer.Argument(help=".eml files, mbox files, Maildir folders, or folders of them.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
) -> None:
    """Import e-mail from files into cases, exactly like the poller would (same dedupe and threading)."""
    from pipeline.cli.app import settings as cli_settings
    from pipeline.context import open_context
    from pipeline.mail.ingest import import_paths

    require_paths(paths)
    ctx = open_context(cli_settings(), actor="mail-import")
    outcomes = []
    for outcome in import_paths(paths, ctx):
        outcomes.append(outcome)
        if as_json:
            print(json.dumps(outcome_json(outcome), ensure_ascii=False, default=str), flush=True)
    if not as_json:
        print_outcomes(outcomes)
    if any(o.kind == "quarantined" for o in outcomes):
        raise typer.Exit(ExitCode.quarantined)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT: finish the current batch, then stop; a second signal stops at once."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s received: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _print_stats(outcomes: Any, acks: int, *, stopped: bool) -> None:
    table = Table(title="poll" + (" (stopped)" if stopped else ""))
    for name in ("created", "matched", "ignored", "quarantined"):
        table.add_column(name, justify="right")
    table.add_column("acks sent", justify="right")
    table.add_row(*(str(outcomes.get(k, 0)) for k in ("created", "matched", "ignored", "quarantined")),
                  str(acks))
    console.print(table)
