"""Helpers for the web app's tests: a deployment with users and cases, and a signed-in TestClient.

Web(settings, db)        the deployment; ``add_user``, ``add_slip``, ``add_email``, ``add_typed``
signed_in(app, name)     a TestClient with that user's session cookie, and its CSRF token
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import cache

from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw

import storage
from pipeline.config import Settings
from pipeline.core.model import Channel, Classification, IntakeItem, Label, PageText, ReviewRule, Source
from review.auth import hash_password

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


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


def signed_in(app: FastAPI, name: str, *, language: str = "en") -> tuple[TestClient, str]:
    """A client signed in as ``name`` (password ``PASSWORD``) and the CSRF token of its forms."""
    client = TestClient(app, headers={"Accept-Language": language}, follow_redirects=False)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "next": "/account"})
    assert response.status_code == 303, response.text
    page = client.get("/account")
    found = CSRF.search(page.text)
    assert found, page.text
    return client, found.group(1)
