"""``complaintdesk doctor``: is everything a deployment needs in place, and if not, what to do.

Each check is a small function returning a ``Finding``; ``run_checks`` runs them in order and never
stops at the first problem, so one run lists everything to fix. A check that needs what an earlier one
found missing (the originals need the database) is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.core.errors import ComplaintdeskError, ExitCode

if TYPE_CHECKING:
    from pipeline.worker import QueueHealth

#: queued jobs waiting this long with none running mean that no worker is taking them
IDLE_QUEUE_SECONDS = 60.0


class Status(StrEnum):
    ok = "ok"
    failed = "FAILED"
    skipped = "skipped"


@dataclass(frozen=True)
class Finding:
    """The result of one check: what was looked at, what was found, and what to do about it."""

    name: str
    status: Status
    detail: str
    fix: str = ""
    exit_code: int = ExitCode.ok


@dataclass
class _State:
    settings: Settings
    db: Any = None  # the storage.Database once the database check opened it


def run_checks(settings: Settings, *, queue_health: Callable[[Any], QueueHealth] | None = None,
               ) -> list[Finding]:
    """Every check, in order: Tesseract, database, model, queue, originals, mailbox.

    ``queue_health`` reads the task queue's state from the opened ``storage.Database`` when one is
    configured (``pipeline.worker.queue_health``, passed in by the CLI); without it the queue is the
    embedded, in-process one and needs no check.
    """
    state = _State(settings)
    try:
        return [
            _guard("tesseract", _tesseract, state),
            _guard("database", _database, state),
            _guard("model", _model, state),
            _queue(state, queue_health) if queue_health else
            Finding("queue", Status.ok, "embedded (no queue configured): items are processed in-process"),
            _guard("originals", _originals, state),
            _guard("mailbox", _mailbox, state),
        ]
    finally:
        if state.db is not None:
            state.db.dispose()


def exit_code(findings: list[Finding]) -> int:
    """0 if every check passed or was skipped, else the exit code of the first failure."""
    return next((f.exit_code for f in findings if f.status is Status.failed), int(ExitCode.ok))


#: what to do when a check fails, beside the error's own message
FIXES = {
    "tesseract": "install Tesseract and the language packs the message names (`make system` on Debian)",
    "database": "check --database-url / COMPLAINTDESK_DATABASE_URL and that the server runs, then run "
                "`complaintdesk init` (creates the tables or migrates them to the current schema)",
    "model": "train one (`make model`, or `complaintdesk train --data DIR`), or point "
             "COMPLAINTDESK_MODEL_DIR at a trained model",
    "mailbox": "check host, port, user and password in [imap] (COMPLAINTDESK_IMAP_*) and that the server "
               "answers (`complaintdesk poll --once` shows the server's own message)",
}


def _guard(name: str, check: Callable[[_State], Finding], state: _State) -> Finding:
    """Run one check; our own errors become a failed finding with the message and what to do."""
    try:
        return check(state)
    except ComplaintdeskError as e:
        return Finding(name, Status.failed, str(e), FIXES.get(name, ""), int(e.exit_code))


def _tesseract(state: _State) -> Finding:
    import pytesseract

    import ocr

    languages = state.settings.ocr.languages
    ocr.check_tesseract(languages)
    return Finding("tesseract", Status.ok,
                   f"tesseract {pytesseract.get_tesseract_version()} with {languages.replace('+', ', ')}")


def _database(state: _State) -> Finding:
    from pipeline.database import open_db
    from storage import head_revision

    state.db = open_db(state.settings)  # checks the schema is at head; SchemaError says to run init
    return Finding("database", Status.ok, f"{state.db.url}: schema at revision {head_revision()} (current)")


def _model(state: _State) -> Finding:
    import classifiers
    from pipeline.models import current_model_dir

    settings = state.settings
    if state.db is not None:
        model_dir = current_model_dir(state.db, settings.models_root, model_dir=settings.model_dir)
    else:  # no database: the promoted model is unknown; check the one that would be used without it
        model_dir = classifiers.resolve_model_dir(settings.model_dir, None)
    model = classifiers.load_model(model_dir)
    sets = ", ".join(ls.name for ls in model.label_sets)
    return Finding("model", Status.ok, f"{model_dir} loads (label sets: {sets})")


def _queue(state: _State, health_of: Callable[[Any], QueueHealth]) -> Finding:
    """The task queue: reachable, its depth and oldest job's age, and whether jobs failed or wait idle."""
    if state.db is None:
        return Finding("queue", Status.skipped, "needs the database (see above)")
    health = health_of(state.db)
    if not health.reachable:
        fix = ("unset COMPLAINTDESK_QUEUE, or point COMPLAINTDESK_DATABASE_URL at PostgreSQL"
               if "needs PostgreSQL" in health.problem else
               "run `complaintdesk init` (creates the queue's tables in the database)")
        return Finding("queue", Status.failed, health.problem, fix, int(ExitCode.storage_error))
    detail = (f"PostgreSQL queue: {health.depth} queued (oldest {health.oldest_age:.0f}s), "
              f"{health.running} running, {health.failed} failed")
    if health.failed:
        return Finding("queue", Status.failed, detail,
                       "`complaintdesk jobs` lists the failed jobs with their errors; fix the cause, then "
                       "`complaintdesk jobs --retry`", int(ExitCode.storage_error))
    if health.depth and not health.running and health.oldest_age > IDLE_QUEUE_SECONDS:
        return Finding("queue", Status.failed, f"{detail}: no worker is taking jobs",
                       "start a worker (`complaintdesk worker`) on a machine with Tesseract and the "
                       "same COMPLAINTDESK_DATABASE_URL and COMPLAINTDESK_HOME", int(ExitCode.storage_error))
    return Finding("queue", Status.ok, detail)


def _originals(state: _State) -> Finding:
    from pipeline.database import open_blobs
    from storage import check_originals, kept_originals

    if state.db is None:
        return Finding("originals", Status.skipped, "needs the database (see above)")
    with state.db.reader() as session:
        originals = kept_originals(session)
    problems = check_originals(originals, open_blobs(state.settings))
    if not problems:
        return Finding("originals", Status.ok, f"{len(originals)} original(s) present, SHA-256 matching")
    kinds = ", ".join(sorted({str(p.status) for p in problems}))
    return Finding(
        "originals", Status.failed, f"{len(problems)} of {len(originals)} original(s) {kinds}",
        "`complaintdesk check` lists them; put the files back from a backup (`complaintdesk restore`)",
        int(ExitCode.storage_error),
    )


def _mailbox(state: _State) -> Finding:
    imap = state.settings.imap
    if not imap.host:
        return Finding("mailbox", Status.skipped, "no IMAP mailbox configured ([imap] host)")
    from pipeline.mail.imap import connect

    with connect(imap):
        pass
    return Finding("mailbox", Status.ok, f"logged in to {imap.mailbox_key}")
