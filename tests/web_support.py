"""Helpers for the web app's tests: a deployment with users and cases, a signed-in TestClient, and the
real browser of the end-to-end tests.

Web(settings, db)        the deployment; ``add_user``, ``add_slip``, ``add_email``, ``add_typed``
signed_in(app, name)     a TestClient with that user's session cookie, and its CSRF token
browser                  (fixture) Debian's /usr/bin/chromium through Playwright, one per test module
open_page, sign_in, shot a page in a fresh context, signing in with the keyboard, a screenshot when
                         ``COMPLAINTDESK_SCREENSHOTS`` names a folder
"""

from __future__ import annotations

import io
import os
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, sync_playwright

import storage
from pipeline.config import Settings
from pipeline.core.model import Channel, Classification, IntakeItem, Label, PageText, ReviewRule, Source
from review.auth import hash_password

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CHROMIUM = Path("/usr/bin/chromium")
#: the marks of every end-to-end test: one xdist group, so a worker's tests share its browser
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.xdist_group("browser"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (make system)"),
]
#: interface language -> the browser's locale (its Accept-Language)
LANGUAGES = {"en": "en-US", "zh_Hans": "zh-CN"}
SHOTS = os.environ.get("COMPLAINTDESK_SCREENSHOTS", "")


@cache
def password_hash() -> str:
    """``PASSWORD`` hashed once: Argon2 is slow on purpose, and every test adds several users."""
    return hash_password(PASSWORD)


def labels(
    department: str, confidence: float = 0.4, sentiment: str = "negative", kind: str = "complaint"
) -> Classification:
    """Labels whose department is below the review threshold (so the case is queued) by default."""
    return Classification(
        {
            "department": Label(
                "department", department, confidence, {department: confidence, "general": 1 - confidence}
            ),
            "sentiment": Label("sentiment", sentiment, 0.8, {sentiment: 0.8}),
            "kind": Label("kind", kind, 0.8, {kind: 0.8}),
        },
        "m-test",
    )


def png_page(text: str) -> bytes:
    image = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(image).text((20, 80), text, fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class Web:
    settings: Settings
    db: storage.Database
    blobs: storage.BlobStore = field(init=False)

    def __post_init__(self) -> None:
        self.blobs = storage.BlobStore(self.settings.blob_dir)

    def add_user(self, name: str, role: str, department: str = "") -> None:
        with self.db.session() as s:
            storage.add_user(s, name, password_hash(), role=role, department=department)

    def _store(
        self, item: IntakeItem, data: bytes, media_type: str, filename: str, created: datetime | None = None
    ) -> str:
        sha = self.blobs.put(data)
        with self.db.session() as s:
            return storage.create_case(
                s,
                item,
                due_days=15,
                actor="test",
                now=created,
                thresholds={"department": ReviewRule(0.5, 0.1)},
                originals=[(filename, media_type, "original", sha, len(data))],
            ).reference

    def add_slip(
        self,
        text: str,
        department: str = "facilities",
        confidence: float = 0.4,
        created: datetime | None = None,
    ) -> str:
        data = png_page(text)
        source = Source.from_bytes(Channel.slip, f"{text[:10]}.png", data, "image/png")
        item = IntakeItem(
            source=source,
            text=text,
            language="en",
            pages=(PageText(1, text, 63.5, "eng"),),
            classification=labels(department, confidence),
        )
        return self._store(item, data, "image/png", source.name, created)

    def add_email(self, subject: str, body: str, html: str = "", department: str = "facilities") -> str:
        message = EmailMessage()
        message["From"] = "Citizen <citizen@example.org>"
        message["To"] = "desk@example.org"
        message["Subject"] = subject
        message["Message-ID"] = f"<{abs(hash(subject + body))}@example.org>"
        message.set_content(body)
        if html:
            message.add_alternative(html, subtype="html")
        data = message.as_bytes()
        source = Source.from_bytes(Channel.email, message["Message-ID"], data, "message/rfc822")
        item = IntakeItem(
            source=source,
            text=body,
            language="en",
            subject=subject,
            sender="citizen@example.org",
            classification=labels(department),
        )
        return self._store(item, data, "message/rfc822", "message.eml")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed_in(app: FastAPI, name: str, *, language: str = "en") -> tuple[TestClient, str]:
    """A client signed in as ``name`` (password ``PASSWORD``) and the CSRF token of its forms."""
    client = TestClient(app, headers={"Accept-Language": language}, follow_redirects=False)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/account"})
    assert response.status_code == 303, response.text
    page = client.get("/account")
    found = CSRF.search(page.text)
    assert found, page.text
    return client, found.group(1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--no-first-run"],
        )
        yield launched
        launched.close()


@contextmanager
def open_page(browser: Browser, lang: str) -> Iterator[Page]:
    """A page in a fresh context whose browser asks for ``lang``; it records dialogs in ``page.dialogs``."""
    context = browser.new_context(locale=LANGUAGES[lang], viewport={"width": 1400, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        context.close()


def sign_in(page: Page, url: str, name: str, *, before_enter: str = "") -> None:
    """Sign in at ``url`` with the keyboard; ``before_enter`` names a screenshot of the filled-in form."""
    page.goto(f"{url}/")
    page.keyboard.type(name)  # the name field has focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    if before_enter:
        shot(page, before_enter)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: "/login" not in u)


def shot(page: Page, name: str, *, full_page: bool = False) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)


def reference_of_url(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1].split("#")[0]


def reference_of(page: Page) -> str:
    return reference_of_url(page.url)
