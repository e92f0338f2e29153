"""The upload page through FastAPI's TestClient: who may upload, CSRF, a real slip becoming a case, a
corrupt file quarantined and listed with its reason, a re-upload matched, each scanner's own list, limits,
and uploads queued for the workers with the PostgreSQL task queue on.

Processing runs as in production: the app's own thread, the intake service, the OCR pool (Tesseract
only, one worker, to keep it quick) and the bundled model. Only one test OCRs a real slip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import storage
from ocr.settings import OcrSettings
from pipeline.config import Settings, WebSettings
from pipeline.worker import run_worker
from review.app import create_app
from tests.db_fixtures import postgres_schema_url
from tests.mail_support import queue_context, queue_counts
from tests.ocr_fixtures import SAMPLES
from tests.web_support import Web, signed_in

SLIP = SAMPLES / "en_toilets_complaint.png"
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"not really a picture" * 20


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "complaintdesk.db"
    storage.migrate(f"sqlite:///{path}")
    return path


def _deployment(home: Path, template: Path, web: WebSettings | None = None) -> Iterator[tuple[Web, FastAPI]]:
    shutil.copyfile(template, home / "complaintdesk.db")
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'complaintdesk.db'}",
                        ocr=OcrSettings(languages="eng", engines=["tesseract"], policy="tesseract",
                                        workers=1), web=web or WebSettings())
    app = create_app(settings)
    site = Web(settings, app.state.web.db)
    for name, role, department in (("sc", "scanner", ""), ("sc2", "scanner", ""), ("sam", "supervisor", ""),
                                   ("rita", "reviewer", ""), ("fay", "department", "facilities")):
        site.add_user(name, role, department)
    try:
        yield site, app
    finally:
        app.state.web.uploads.close()
        app.state.web.db.dispose()


@pytest.fixture
def deployment(tmp_path: Path, migrated_sqlite: Path) -> Iterator[tuple[Web, FastAPI]]:
    yield from _deployment(tmp_path, migrated_sqlite)


def _upload(client: TestClient, token: str, *files: tuple[str, bytes]) -> int:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    response = client.post("/upload", data={"csrf": token}, files=parts)
    return response.status_code


def _settle(app: FastAPI) -> None:
    assert app.state.web.uploads.wait_idle(120), "uploads were not processed in time"


def _rows(web: Web, who: str | None = None) -> list[storage.UploadRow]:
    with web.db.reader() as s:
        return storage.list_uploads(s, uploaded_by=who)


def _cases(web: Web) -> int:
    with web.db.reader() as s:
        return int(s.scalar(select(func.count()).select_from(storage.Case)) or 0)


def test_scanners_and_supervisors_upload_others_are_refused(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/upload").headers["location"] == "/login?next=/upload"
    assert anonymous.post("/upload", files=[("files", ("a.png", CORRUPT))]).status_code == 401
    for name in ("rita", "fay"):
        client, token = signed_in(app, name)
        assert client.get("/upload").status_code == 403, name
        assert _upload(client, token, ("a.png", CORRUPT)) == 403, name
        assert 'href="/upload"' not in client.get("/account").text
    for name in ("sc", "sam"):
        client, token = signed_in(app, name)
        page = client.get("/upload")
        assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text, name
        assert 'href="/upload"' in page.text  # the nav link
        # without the form's token, or with a forged one: refused, nothing recorded
        assert client.post("/upload", files=[("files", ("a.png", CORRUPT))]).status_code == 403
        assert _upload(client, "forged", ("a.png", CORRUPT)) == 403
    assert _rows(web) == []
    scanner, _ = signed_in(app, "sc")
    assert scanner.get("/").headers["location"] == "/upload"


def test_a_scanned_slip_becomes_a_case_and_uploading_it_again_finds_that_case(
    deployment: tuple[Web, FastAPI],
) -> None:
    web, app = deployment
    client, token = signed_in(app, "sc")
    assert _upload(client, token, ("toilets.png", SLIP.read_bytes())) == 303
    _settle(app)
    (first,) = _rows(web, "sc")
    assert (first.state, first.outcome, first.new) == ("done", "created", True)
    assert first.reference and _cases(web) == 1
    with web.db.reader() as s:
        case = storage.get_case(s, first.reference)
        assert case.channel == "slip" and "soap" in case.text.lower()
        assert [e.actor for e in storage.audit_trail(s, case)][:1] == ["sc"]
    # the same paper uploaded again, under another name: its case, not a second one
    assert _upload(client, token, ("again.png", SLIP.read_bytes())) == 303
    _settle(app)
    assert _cases(web) == 1
    page = client.get("/upload").text
    again, _ = _rows(web, "sc")
    assert (again.filename, again.reference, again.new) == ("again.png", first.reference, False)
    assert 'class="upload-matched"' in page and 'class="upload-created"' in page
    assert page.count(first.reference) == 2
    assert f'href="/cases/{first.reference}"' not in page  # a scanner cannot open cases


def test_corrupt_files_are_quarantined_listed_and_never_stop_the_batch(
    deployment: tuple[Web, FastAPI],
) -> None:
    web, app = deployment
    client, token = signed_in(app, "sc")
    hostile_name = "../../" + "x" * 300 + "/..\\..\\broken\u202e<b>.png"  # a path, a bidi override
    files = ((hostile_name, CORRUPT), ("empty.pdf", b""), ("notes.docx", b"PK\x03\x04"))
    assert _upload(client, token, *files) == 303
    _settle(app)
    rows = _rows(web, "sc")
    assert len(rows) == 3 and {r.outcome for r in rows} == {"quarantined"}
    assert all(r.reason for r in rows)
    assert {r.filename for r in rows} == {"broken<b>.png", "empty.pdf", "notes.docx"}
    assert not any(p.name.startswith("broken") for p in web.settings.home.rglob("*"))  # never a path
    page = client.get("/upload").text
    assert page.count('class="upload-quarantined"') == 3 and "broken&lt;b&gt;.png" in page
    assert "broken&lt;b&gt;.png: looks like image/png but the image is corrupt" in page  # its reason
    supervisor, _ = signed_in(app, "sam")
    assert "broken&lt;b&gt;.png" in supervisor.get("/quarantine").text


def test_each_scanner_sees_only_their_own_uploads_and_supervisors_see_all(
    deployment: tuple[Web, FastAPI],
) -> None:
    web, app = deployment
    a, token_a = signed_in(app, "sc")
    b, token_b = signed_in(app, "sc2")
    assert _upload(a, token_a, ("from-a.png", CORRUPT + b"a")) == 303
    assert _upload(b, token_b, ("from-b.png", CORRUPT + b"b")) == 303
    _settle(app)
    page_a, page_b = a.get("/upload").text, b.get("/upload").text
    assert "from-a.png" in page_a and "from-b.png" not in page_a
    assert "from-b.png" in page_b and "from-a.png" not in page_b
    supervisor, _ = signed_in(app, "sam")
    everyone = supervisor.get("/upload").text
    assert "from-a.png" in everyone and "from-b.png" in everyone and ">sc2<" in everyone


def test_uploads_over_the_limits_are_refused_clearly(tmp_path: Path, migrated_sqlite: Path) -> None:
    limits = WebSettings(max_upload_bytes=4096, max_upload_files=2)
    for web, app in _deployment(tmp_path, migrated_sqlite, limits):
        client, token = signed_in(app, "sc", language="zh-CN")
        response = client.post("/upload", data={"csrf": token}, files=[("files", ("big.png", b"x" * 5000))])
        assert response.status_code == 413 and "上传的文件太大" in response.text
        response = client.post("/upload", data={"csrf": token},
                               files=[("files", (f"{n}.png", b"x")) for n in range(3)])
        assert response.status_code == 413 and "最多 2 个" in response.text
        response = client.post("/upload", data={"csrf": token}, files=[("files", ("", b""))])
        assert response.status_code == 400 and "请选择" in response.text
        assert _rows(web) == []


@pytest.mark.postgres
def test_with_the_queue_on_uploads_are_queued_and_a_worker_turns_them_into_cases(tmp_path: Path) -> None:
    # COMPLAINTDESK_QUEUE=postgres: the upload commits each file's intake row with its job; the app
    # processes nothing itself, the workers do
    for url in postgres_schema_url():
        ctx = queue_context(url, tmp_path / "home")
        ctx.settings = ctx.settings.model_copy(update={"ocr": OcrSettings(
            languages="eng", engines=["tesseract"], policy="tesseract", workers=1)})
        app = create_app(ctx.settings)
        web = Web(ctx.settings, app.state.web.db)
        web.add_user("sc", "scanner")
        try:
            client, token = signed_in(app, "sc")
            assert _upload(client, token, ("toilets.png", SLIP.read_bytes()), ("broken.png", CORRUPT)) == 303
            assert (queue_counts(ctx).queued, _cases(web)) == (2, 0)
            assert {r.state for r in _rows(web, "sc")} == {"received"}
            assert client.get("/upload").text.count('class="upload-pending"') == 2

            run_worker(ctx, drain=True)
            counts = queue_counts(ctx)
            assert (counts.queued, counts.running, counts.failed, counts.done) == (0, 0, 0, 2)
            rows = {r.filename: r for r in _rows(web, "sc")}
            assert (rows["toilets.png"].outcome, rows["broken.png"].outcome) == ("created", "quarantined")
            assert _cases(web) == 1 and rows["toilets.png"].reference
            page = client.get("/upload").text
            assert 'class="upload-created"' in page and 'class="upload-quarantined"' in page
        finally:
            app.state.web.uploads.close()
            app.state.web.db.dispose()
            ctx.db.dispose()
