"""The task queue as supervisors see it in the web app: counts, the failed jobs with their last error,
and a retry of them; what ``complaintdesk jobs [--retry]`` does on the command line.

Without a task queue (``COMPLAINTDESK_QUEUE`` unset) inputs are processed as they are accepted and there
is nothing to show: the view says so instead of failing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import storage
from pipeline.core.actor import Actor
from pipeline.core.errors import UsageError
from pipeline.review.access import require
from pipeline.review.desk import Desk

log = logging.getLogger(__name__)

#: what the page, ``retry_jobs`` and ``complaintdesk jobs`` say without a queue
NO_QUEUE = ("there is no task queue: inputs are processed as they are accepted "
            "(set COMPLAINTDESK_QUEUE=postgres to use workers)")


@dataclass(frozen=True)
class JobsView:
    """The queue's counts and its failed jobs; ``enabled`` is False when there is no task queue."""

    enabled: bool
    counts: storage.queue.QueueCounts | None = None
    failed: list[storage.queue.FailedJob] = field(default_factory=list)


def jobs_view(desk: Desk, actor: Actor) -> JobsView:
    """Jobs queued, running and failed, intake items done, and the failed jobs with their errors.

    Raises:
        AccessDeniedError: the actor is not a supervisor.
    """
    require(actor, "jobs")
    if desk.settings.queue != "postgres":
        return JobsView(False)
    with desk.db.reader() as session:
        return JobsView(True, storage.queue.counts(session), storage.queue.failed_jobs(session))


def retry_jobs(desk: Desk, actor: Actor) -> int:
    """Queue every failed job again (once what made them fail is fixed); returns how many.

    Raises:
        AccessDeniedError: the actor is not a supervisor.
        UsageError: there is no task queue.
    """
    require(actor, "jobs")
    if desk.settings.queue != "postgres":
        raise UsageError(NO_QUEUE)
    with desk.db.session() as session:
        retried = storage.queue.retry_failed(session)
    log.info("%s queued %d failed job(s) again", actor.name, retried)
    return retried
