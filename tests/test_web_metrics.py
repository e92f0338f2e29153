"""``complaintdesk serve --metrics-port``: the web app's Prometheus metrics, on a port of their own.

The real command runs in a subprocess (uvicorn, the app's upload processing, the OCR pool: Tesseract
only, one worker, to keep it quick); a scanner signs in and uploads a slip and a corrupt file through
the app over HTTP, and the metrics endpoint, scraped over HTTP, counts the case, the quarantined file
and their OCR seconds. The endpoint needs no session, and the app gains no ``/metrics`` route. On
PostgreSQL with the task queue, the app only accepts: the endpoint shows the upload's queued job.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

import storage
from tests.db_fixtures import postgres_schema_url
from tests.ocr_fixtures import SAMPLES
from tests.web_support import CSRF, PASSWORD, password_hash

EXE = str(Path(sys.executable).parent / "complaintdesk")
SLIP = SAMPLES / "en_toilets_complaint.png"
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"not really a picture" * 20
OCR_CONFIG = '[ocr]\nlanguages = "eng"\nengines = ["tesseract"]\npolicy = "tesseract"\nworkers = 1\n'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(home: Path, url: str, *, queue: bool = False) -> Iterator[tuple[str, str]]:
    """``complaintdesk serve --metrics-port`` on a migrated database with a scanner ``sc``; yields the
    app's and the metrics endpoint's base URLs."""
    storage.migrate(url)
    with storage.open_database(url) as db, db.session() as s:
        storage.add_user(s, "sc", password_hash(), role="scanner")
    (home / "config.toml").write_text(OCR_CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env |= {"COMPLAINTDESK_HOME": str(home), "COMPLAINTDESK_DATABASE_URL": url}
    if queue:
        env["COMPLAINTDESK_QUEUE"] = "postgres"
    port, metrics_port = _free_port(), _free_port()
    proc = subprocess.Popen([EXE, "serve", "--port", str(port), "--metrics-port", str(metrics_port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    app, endpoint = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "serve exited"
            try:
                httpx.get(f"{app}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.2)
        yield app, endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _upload(app: str, *files: tuple[str, bytes]) -> None:
    with httpx.Client(base_url=app, follow_redirects=False, timeout=30) as client:
        signed = client.post("/login", data={"name": "sc", "password": PASSWORD, "next": "/upload"})
        assert signed.status_code == 303, signed.text
        token = CSRF.search(client.get("/upload").text)
        assert token, "no CSRF token on the upload page"
        parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
        sent = client.post("/upload", data={"csrf": token.group(1)}, files=parts)
        assert sent.status_code == 303, sent.text


def _sample(body: str, name: str) -> float | None:
    found = re.search(rf"^{re.escape(name)} (\S+)$", body, re.MULTILINE)
    return float(found.group(1)) if found else None


def _scrape(endpoint: str) -> str:
    response = httpx.get(f"{endpoint}/metrics", timeout=10)  # no session: Prometheus has none
    assert response.status_code == 200
    return response.text


def test_serve_counts_the_cases_and_quarantines_of_its_uploads(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with _serve(home, f"sqlite:///{home / 'complaintdesk.db'}") as (app, endpoint):
        before = _scrape(endpoint)
        assert _sample(before, "complaintdesk_cases_created_total") == 0
        assert _sample(before, "complaintdesk_quarantined_total") == 0
        assert _sample(before, "complaintdesk_ocr_seconds_count") == 0
        assert "complaintdesk_queue_up" not in before  # no task queue on the embedded default
        not_here = httpx.get(f"{app}/metrics", timeout=10, follow_redirects=False)  # not a route of the app
        assert not_here.status_code != 200 and "complaintdesk_" not in not_here.text

        _upload(app, ("toilets.png", SLIP.read_bytes()), ("broken.png", CORRUPT))
        deadline = time.monotonic() + 180
        while (_sample(body := _scrape(endpoint), "complaintdesk_ocr_seconds_count") or 0) < 2:
            assert time.monotonic() < deadline, f"the uploads were not counted in time:\n{body}"
            time.sleep(0.5)
        assert _sample(body, "complaintdesk_cases_created_total") == 1
        assert _sample(body, "complaintdesk_quarantined_total") == 1
        assert (_sample(body, "complaintdesk_ocr_seconds_sum") or 0) > 0
        assert "complaintdesk_queue_up" not in body


@pytest.fixture(params=["postgresql"])  # the parameter marks the test "postgres" (tests/conftest.py)
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from postgres_schema_url()


def test_serve_on_the_queue_shows_the_uploads_jobs(pg_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with _serve(home, pg_url, queue=True) as (app, endpoint):
        assert _sample(_scrape(endpoint), 'complaintdesk_queue_depth{state="queued"}') == 0
        _upload(app, ("broken.png", CORRUPT))
        body = _scrape(endpoint)
        assert _sample(body, "complaintdesk_queue_up") == 1
        assert _sample(body, 'complaintdesk_queue_depth{state="queued"}') == 1  # a worker's job now
        assert _sample(body, "complaintdesk_quarantined_total") == 0  # nothing processed in the app
