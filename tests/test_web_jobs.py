"""The supervisors' jobs page: the task queue's counts and failed jobs with their errors, and a retry,
on the real PostgreSQL queue; without a queue the page says there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage
from pipeline.context import RunContext
from pipeline.core.errors import MissingDependencyError
from pipeline.intake import accept_text
from pipeline.worker import run_worker
from review.app import create_app
from tests.db_fixtures import postgres_schema_url
from tests.mail_support import make_context, queue_context, queue_counts
from tests.web_support import Web, signed_in


def _failing(context: RunContext, intake_id: int) -> None:
    """A job body that fails as process() does when Tesseract is gone: error kept on the item, raised."""
    with context.db.session() as session:
        storage.start_attempt(session, [intake_id])
    with context.db.session() as session:
        storage.record_failure(session, intake_id, "MissingDependencyError: tesseract <vanished>")
    raise MissingDependencyError("tesseract vanished")


@pytest.mark.postgres
def test_supervisors_see_failed_jobs_with_their_errors_and_queue_them_again(tmp_path: Path) -> None:
    for url in postgres_schema_url():
        ctx = queue_context(url, tmp_path / "home")
        app = create_app(ctx.settings)
        web = Web(ctx.settings, app.state.web.db)
        web.add_user("sam", "supervisor")
        try:
            accept_text(ctx, "The ticket machine at window 4 prints blank tickets; please fix it.")
            run_worker(ctx, drain=True, job=_failing)  # retried, then held as failed
            client, token = signed_in(app, "sam", language="zh-CN")
            page = client.get("/jobs").text
            assert "失败的任务" in page and "tesseract &lt;vanished&gt;" in page  # the error, as text
            assert '<td>0</td><td>0</td><td>1</td><td>0</td>' in page  # queued, running, failed, done

            response = client.post("/jobs/retry", data={"csrf": token})
            assert response.status_code == 303 and response.headers["location"] == "/jobs?retried=1"
            assert "已将 1 个失败任务重新排队。" in client.get("/jobs?retried=1").text
            counts = queue_counts(ctx)
            assert (counts.queued, counts.failed) == (1, 0)

            run_worker(ctx, drain=True)  # fixed: the real job runs and makes the case
            assert (queue_counts(ctx).done, queue_counts(ctx).failed) == (1, 0)
            assert "没有失败的任务。" in client.get("/jobs").text
        finally:
            app.state.web.uploads.close()
            app.state.web.db.dispose()
            ctx.db.dispose()


def test_without_a_queue_the_jobs_page_says_there_is_none(tmp_path: Path) -> None:
    ctx = make_context(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home")
    app = create_app(ctx.settings)
    Web(ctx.settings, app.state.web.db).add_user("sam", "supervisor")
    try:
        client, token = signed_in(app, "sam")
        assert 'id="no-queue"' in client.get("/jobs").text
        assert client.post("/jobs/retry", data={"csrf": token}).status_code == 400
    finally:
        app.state.web.uploads.close()
        app.state.web.db.dispose()
        ctx.db.dispose()
