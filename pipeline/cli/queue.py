"""``complaintdesk worker`` and ``complaintdesk jobs``: the task queue's commands.

Both need ``COMPLAINTDESK_QUEUE=postgres`` (``pipeline.worker``, ``storage.queue``).

``register(app)`` adds them to the main app (``pipeline.cli``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli.output import console, safe
from pipeline.cli.params import MetricsAddr, MetricsPort, start_metrics


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("jobs")(jobs)


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs this worker runs at once.")] = 1,
    metrics_port: MetricsPort = None,
    metrics_addr: MetricsAddr = "127.0.0.1",
    drain: Annotated[bool, typer.Option("--drain", help="Exit once the queue is empty.")] = False,
) -> None:
    """Process queued inputs (COMPLAINTDESK_QUEUE=postgres); run one or more on each machine.

    A worker that is killed has its running jobs picked up by another after the heartbeat timeout
    (COMPLAINTDESK_QUEUE_HEARTBEAT_SECONDS, default 30). A failing job runs again after a growing
    wait; after 3 runs it is held as failed (see `complaintdesk jobs`). SIGTERM or Ctrl-C stops the
    worker after its running jobs.
    """
    from pipeline.cli.app import settings
    from pipeline.context import open_context
    from pipeline.worker import run_worker

    ctx = open_context(settings(), actor="worker")
    start_metrics(ctx.db, metrics_port, metrics_addr, queue=True)
    try:
        run_worker(ctx, concurrency=concurrency, drain=drain)
    finally:
        ctx.db.dispose()


def jobs(
    retry: Annotated[bool, typer.Option("--retry", help="Queue every failed job again.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the counts and failed jobs as JSON.")] = False,
) -> None:
    """Show the queue: jobs queued, running and failed, and intake items done; list the failed ones
    with their last error. --retry queues the failed ones again."""
    from pipeline.cli.app import settings
    from pipeline.cli.review import cli_actor, cli_desk
    from pipeline.core.errors import ConfigError
    from pipeline.review import jobs_view, retry_jobs
    from pipeline.review.jobs import NO_QUEUE

    if settings().queue != "postgres":  # before opening a database that may not exist yet
        raise ConfigError(NO_QUEUE)
    actor = cli_actor(None)
    with cli_desk() as desk:
        retried = retry_jobs(desk, actor) if retry else 0
        view = jobs_view(desk, actor)
    assert view.counts is not None  # the queue is on
    counts, failed = view.counts, view.failed
    if as_json:
        print(json.dumps({"queued": counts.queued, "running": counts.running, "failed": counts.failed,
                          "done": counts.done, "oldest_queued_seconds": round(counts.oldest_age, 1),
                          "retried": retried,
                          "failed_jobs": [{"job": f.job_id, "intake_id": f.intake_id, "source": f.source_name,
                                           "last_error": f.last_error} for f in failed]}, ensure_ascii=False))
        return
    if retry:
        console.print(f"queued {retried} failed job(s) again")
    console.print(f"queued {counts.queued}   running {counts.running}   failed {counts.failed}   "
                  f"done {counts.done}   oldest queued {counts.oldest_age:.0f}s")
    if failed:
        table = Table("job", "intake item", "source", "last error")
        for f in failed:
            table.add_row(str(f.job_id), str(f.intake_id), safe(f.source_name), safe(f.last_error))
        console.print(table)
        console.print("retry them with: complaintdesk jobs --retry")
