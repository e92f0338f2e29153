"""Backup and restore on SQLite and PostgreSQL: a backup taken while a batch is running restores to a
consistent database whose cases all have their originals (the CLI, in-process)."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

import storage
from pipeline.intake import submit_text
from tests.cli_support import cli, deployment_env
from tests.fakes import FakeClassifier
from tests.mail_support import make_context


def counts(db: storage.Database) -> tuple[int, int]:
    with db.reader() as s:
        return (s.scalar(select(func.count()).select_from(storage.Case)) or 0,
                s.scalar(select(func.count()).select_from(storage.IntakeRecord)) or 0)


def drop_everything(db_url: str, home: Path) -> None:
    """Lose the deployment: the database's tables (or file) and the originals."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        Path(url.database or "").unlink()
    else:
        schema = str(url.query["options"]).removeprefix("-csearch_path=")
        libpq = url.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for blob in (home / "originals").glob("??/??/*"):
        blob.chmod(0o600)
        blob.unlink()


@pytest.mark.slow
def test_backup_during_a_batch_restores_consistently(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    ctx = make_context(db_url, home, classifier=FakeClassifier())
    deployment_env(monkeypatch, home, db_url)
    stop = threading.Event()
    written: list[int] = []

    def batch() -> None:  # the intake path: original first, then intake row, then case
        n = 0
        while not stop.is_set() or n < 20:
            submit_text(f"complaint {n}: the lift on floor {n % 7} is broken again", ctx)
            n += 1
        written.append(n)

    worker = threading.Thread(target=batch)
    worker.start()
    try:
        while counts(ctx.db)[0] < 10:  # well into the batch
            stop.wait(0.05)
        run = cli(capsys, "backup", str(tmp_path / "backup"))
    finally:
        stop.set()
        worker.join()
    assert run.code == 0, run.err
    assert "original(s)" in run.out
    at_end = counts(ctx.db)
    ctx.db.dispose()
    drop_everything(db_url, home)

    again = cli(capsys, "restore", str(tmp_path / "backup"))
    assert again.code == 0, again.err
    with storage.open_database(db_url) as db:
        cases, intakes = counts(db)
        assert 10 <= cases <= at_end[0] and cases < written[0]  # the snapshot was taken mid-batch
        with db.reader() as s:
            assert storage.verify_originals(s, storage.BlobStore(home / "originals")) == []
            refs = [c.reference for c in storage.list_cases(s, search="lift broken")]
        assert len(refs) == cases  # the search index came back with the cases
        if db.dialect == "postgresql":  # pg_restore brings no planner statistics back: restore gathers them
            with db.reader() as s:
                analyzed = s.scalar(text("SELECT last_analyze FROM pg_stat_user_tables"
                                         " WHERE relname = 'cases' AND schemaname = current_schema()"))
                assert analyzed is not None
    check = cli(capsys, "check")
    assert check.code == 0, check.out
    assert cli(capsys, "restore", str(tmp_path / "backup")).code == 2  # it has cases now: --force needed
    assert cli(capsys, "restore", "--force", str(tmp_path / "backup")).code == 0


def test_backup_refuses_a_folder_in_use_and_restore_a_non_backup(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deployment_env(monkeypatch, tmp_path / "home", db_url)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    run = cli(capsys, "backup", str(tmp_path / "full"))
    assert run.code != 0 and "not empty" in run.err
    run = cli(capsys, "restore", str(tmp_path))
    assert run.code != 0 and "not a complaintdesk backup" in run.err
