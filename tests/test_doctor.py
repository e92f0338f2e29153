"""``complaintdesk doctor`` against real components: Tesseract, the database, the bundled model, the
store of originals, the PostgreSQL task queue and a real Dovecot; each problem is named with what to
fix, and the exit code says something is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import storage
from pipeline.intake import submit_text
from tests.cli_support import cli, deployment_env
from tests.db_fixtures import postgres_schema_url
from tests.dovecot import Dovecot, dovecot_server  # noqa: F401  (fixture)
from tests.fakes import FakeClassifier
from tests.mail_support import make_context


def findings(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, str]]]:
    run = cli(capsys, "doctor", "--json")
    return run.code, {row["check"]: row for row in map(json.loads, run.out.splitlines())}


def test_a_healthy_deployment_then_a_missing_original(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    ctx = make_context(db_url, home, classifier=FakeClassifier())
    submit_text("The lift is broken.", ctx)
    ctx.db.dispose()
    deployment_env(monkeypatch, home, db_url)
    code, found = findings(capsys)
    assert code == 0, found
    assert {name: row["status"] for name, row in found.items()} == {
        "tesseract": "ok", "database": "ok", "model": "ok", "queue": "ok", "originals": "ok",
        "mailbox": "skipped"}
    assert "1 original(s) present" in found["originals"]["detail"]
    assert storage.head_revision() in found["database"]["detail"]

    (blob,) = (home / "originals").glob("??/??/*")
    blob.chmod(0o600)
    blob.write_bytes(b"tampered")
    code, found = findings(capsys)
    assert code == 7
    assert found["originals"]["status"] == "FAILED" and "restore" in found["originals"]["fix"]
    assert "damaged" in found["originals"]["detail"] or "mismatch" in found["originals"]["detail"]


def test_no_database_missing_language_and_a_wrong_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    dovecot_server: Dovecot,
) -> None:
    deployment_env(monkeypatch, tmp_path / "home", None)  # a home without `init`
    monkeypatch.setenv("COMPLAINTDESK_OCR_LANGUAGES", "eng+xyz")
    for name, value in (("HOST", "127.0.0.1"), ("PORT", str(dovecot_server.port)), ("SECURITY", "none"),
                        ("USER", dovecot_server.user), ("PASSWORD", "not-the-password")):
        monkeypatch.setenv(f"COMPLAINTDESK_IMAP_{name}", value)
    code, found = findings(capsys)
    assert code == 5  # the first failure: Tesseract's missing language pack
    assert found["tesseract"]["status"] == "FAILED" and "tesseract-ocr-xyz" in found["tesseract"]["detail"]
    assert found["database"]["status"] == "FAILED" and "complaintdesk init" in found["database"]["fix"]
    assert found["originals"]["status"] == "skipped"
    assert found["model"]["status"] == "ok"  # the bundled model, without a database
    assert found["mailbox"]["status"] == "FAILED" and "[imap]" in found["mailbox"]["fix"]

    monkeypatch.setenv("COMPLAINTDESK_IMAP_PASSWORD", dovecot_server.password)
    monkeypatch.setenv("COMPLAINTDESK_OCR_LANGUAGES", "eng+chi_sim")
    code, found = findings(capsys)
    assert found["mailbox"]["status"] == "ok" and found["tesseract"]["status"] == "ok"
    assert code == 7  # still no database


@pytest.fixture(params=["postgresql"])  # the parameter marks the test "postgres" (tests/conftest.py)
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from postgres_schema_url()


def test_the_queue_depth_then_an_idle_queue_then_missing_queue_tables(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    ctx = make_context(pg_url, home, classifier=FakeClassifier())
    ctx.settings = ctx.settings.model_copy(update={"queue": "postgres"})
    try:
        assert submit_text("The lift is broken.", ctx).kind == "queued"
        deployment_env(monkeypatch, home, pg_url)
        monkeypatch.setenv("COMPLAINTDESK_QUEUE", "postgres")
        code, found = findings(capsys)
        assert code == 0, found
        assert found["queue"]["status"] == "ok"
        assert found["queue"]["detail"].startswith("PostgreSQL queue: 1 queued (oldest ")
        assert "0 running, 0 failed" in found["queue"]["detail"]

        with ctx.db.session() as session:  # the job has waited two minutes and no worker took it
            session.execute(text("UPDATE pgqueuer SET created = now() - interval '2 minutes'"))
        code, found = findings(capsys)
        assert code == 7 and found["queue"]["status"] == "FAILED"
        assert "(oldest 12" in found["queue"]["detail"] and "no worker" in found["queue"]["detail"]
        assert "complaintdesk worker" in found["queue"]["fix"]

        with ctx.db.session() as session:
            session.execute(text(storage.queue.uninstall_sql()))
        code, found = findings(capsys)
        assert code == 7 and found["queue"]["status"] == "FAILED"
        assert "pgqueuer" in found["queue"]["detail"] and "complaintdesk init" in found["queue"]["fix"]
        assert found["database"]["status"] == "ok"  # our own tables are fine
    finally:
        ctx.db.dispose()
