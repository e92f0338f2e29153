"""End to end in a real browser: Debian's /usr/bin/chromium driven by Playwright (never a downloaded
browser), against the web app served by uvicorn on loopback, with a real SMTP server (aiosmtpd).

In both interface languages: sign in, work the queue with the keyboard alone and check each correction
is stored, move a case through its lifecycle, send a reply and see it arrive, see the audit trail; and
an e-mail carrying ``<script>`` and ``<img onerror>`` shows them as text while no dialog fires.

The tests share one browser (``browser``, module-scoped, in tests/web_support.py), and every browser
test is in one xdist group. ``COMPLAINTDESK_SCREENSHOTS=docs/screenshots`` saves the pages they pass
through there.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, expect
from sqlalchemy import select

import storage
from ocr.settings import OcrSettings
from pipeline import review
from pipeline.config import Settings
from pipeline.core.actor import Actor
from pipeline.review.desk import Desk
from review.app import create_app
from review.processing import Processor
from storage.models import Correction
from tests.mail_support import Relay, smtp_relay
from tests.web_support import (
    BROWSER_MARKS,
    LANGUAGES,
    Web,
    browser,  # noqa: F401  (fixture)
    free_port,
    open_page,
    png_page,
    reference_of,
    reference_of_url,
    shot,
    sign_in,
)

pytestmark = BROWSER_MARKS
XSS_SUBJECT = "<script>alert('subject')</script>"
XSS_BODY = 'Look: <img src=x onerror="alert(1)"> and <script>alert(2)</script>'


@dataclass
class Site:
    url: str
    web: Web
    relay: Relay
    uploads: Processor
    desk: Desk


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The app under uvicorn in a thread, on a fresh SQLite database, replies going to aiosmtpd."""
    home = tmp_path_factory.mktemp("site")
    url = f"sqlite:///{home / 'complaintdesk.db'}"
    storage.migrate(url)
    with smtp_relay() as relay:
        # uploads are read by Tesseract alone, in one worker: the quickest OCR there is
        settings = Settings(home=home, database_url=url, smtp=relay.settings, ocr=OcrSettings(
            languages="eng", engines=["tesseract"], policy="tesseract", workers=1))
        app = create_app(settings)
        web = Web(settings, app.state.web.db)
        web.add_user("rita", "reviewer")
        web.add_user("fay", "department", "facilities")
        web.add_user("sam", "supervisor")
        web.add_user("sc", "scanner")
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        try:
            yield Site(f"http://127.0.0.1:{port}", web, relay, app.state.web.uploads, app.state.web.desk)
        finally:
            server.should_exit = True
            thread.join(10)
            app.state.web.db.dispose()


@pytest.fixture(params=list(LANGUAGES))
def lang(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_work_the_queue_with_the_keyboard_alone(browser: Browser, site: Site, lang: str) -> None:
    for i in range(3):  # the queue always has work (earlier runs leave skipped cases first)
        site.web.add_slip(f"Queue {lang} {i}: the lift in hall B is broken", department="medical")
    with open_page(browser, lang) as page:
        sign_in(page, site.url, "rita")
        expect(page.locator("h1")).to_have_text("审核队列" if lang == "zh_Hans" else "Review queue")
        shot(page, f"{lang}-queue")
        page.keyboard.press("?")
        expect(page.locator("#shortcuts")).to_be_visible()
        shot(page, f"{lang}-shortcuts")
        page.keyboard.press("Escape")
        page.keyboard.press("j")
        page.wait_for_url("**/cases/*")
        first = reference_of(page)
        # d, then the digit of the label shown second: the department changes
        digit_two = page.locator('#set-department option[data-digit="2"]').get_attribute("value")
        page.keyboard.press("d")
        page.keyboard.press("2")
        page.wait_for_load_state()
        expect(page.locator('[data-confirmed="department"]')).to_be_visible()
        # s, then a label's first letter: the sentiment changes to positive
        page.keyboard.press("s")
        page.keyboard.press("p")
        expect(page.locator('[data-confirmed="sentiment"]')).to_be_visible()
        # e: fix the OCR text, Ctrl+Enter saves it
        page.keyboard.press("e")
        page.keyboard.press("End")
        page.keyboard.type(" (fixed)")
        page.keyboard.press("Control+Enter")
        expect(page.locator("#case-text")).to_contain_text("(fixed)")
        shot(page, f"{lang}-case")
        # u undoes the last label change; then a accepts all and moves on
        page.keyboard.press("u")
        expect(page.locator('#set-sentiment select')).to_have_value("negative")
        page.keyboard.press("a")
        page.wait_for_url(lambda u: reference_of_url(u) != first)
        second = reference_of(page)
        page.keyboard.press("x")  # skip
        page.wait_for_url(lambda u: reference_of_url(u) != second)
        assert not page.dialogs  # type: ignore[attr-defined]
    with site.web.db.reader() as s:
        case = storage.get_case(s, first)
        assert case.label("department").label == digit_two
        assert case.label("department").confirmed_by == "rita"
        assert case.label("sentiment").label == "negative"  # undone
        assert not case.needs_review and case.text.endswith("(fixed)")
        rows = s.scalars(select(Correction).where(Correction.case_id == case.id)
                         .order_by(Correction.id)).all()
        changes = [(c.label_set, c.old_label, c.new_label, c.reviewer) for c in rows]
        # the undone sentiment change is gone (not training data); accepting confirmed the rest
        assert changes[0] == ("department", "medical", digit_two, "rita")
        assert ("sentiment", "negative", "positive", "rita") not in changes
        assert ("sentiment", "negative", "negative", "rita") in changes
        assert all(c.model_version == "m-test" for c in rows)
        untouched = storage.get_case(s, second)
        assert untouched.needs_review  # skipped, still in the queue


def test_lifecycle_reply_and_audit_trail(browser: Browser, site: Site, lang: str) -> None:
    ref = site.web.add_email(f"Lift {lang}", "The lift in hall B is broken.", department="facilities")
    before = len(site.relay.received)
    with open_page(browser, lang) as page:
        sign_in(page, site.url, "fay")
        page.goto(f"{site.url}/cases/{ref}")
        for status in ("triaged", "in_progress"):
            page.select_option("#status-select", status)
            page.click("#status-form button")
            page.wait_for_load_state()
        page.fill("#note-form textarea", "Technician called")
        page.click("#note-form button")
        page.wait_for_load_state()
        page.fill("#reply-form textarea", "We have called the technician.")
        page.click("#send-reply")
        page.wait_for_load_state()
        for status in ("resolved", "closed"):
            page.select_option("#status-select", status)
            page.click("#status-form button")
            page.wait_for_load_state()
        trail = page.locator("#trail")
        expect(trail).to_contain_text("We have called the technician.")
        expect(trail).to_contain_text("Technician called")
        expect(page.locator("#status")).to_have_text("已关闭" if lang == "zh_Hans" else "closed")
        shot(page, f"{lang}-lifecycle")
    assert len(site.relay.received) == before + 1
    sent = site.relay.received[-1]
    assert b"We have called the technician." in sent and f"[Case #{ref}]".encode() in sent
    with site.web.db.reader() as s:
        case = storage.get_case(s, ref)
        actions = [e.action for e in storage.audit_trail(s, case)]
        assert case.status == "closed" and actions.count("status") == 4 and "reply" in actions


def test_hostile_email_is_shown_as_text_and_runs_nothing(browser: Browser, site: Site) -> None:
    ref = site.web.add_email(XSS_SUBJECT, XSS_BODY, html=f"<p>{XSS_BODY}</p><script>alert(3)</script>")
    with open_page(browser, "en") as page:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        sign_in(page, site.url, "sam")
        page.goto(f"{site.url}/cases/{ref}")
        expect(page.locator("#email-body")).to_contain_text('<img src=x onerror="alert(1)">')
        expect(page.locator("#email-body")).to_contain_text("<script>alert(2)</script>")
        expect(page.locator("table.headers")).to_contain_text(XSS_SUBJECT)
        assert page.locator("#email-body img").count() == 0 and page.locator("main script").count() == 0
        page.wait_for_timeout(300)
        assert errors == []
        assert page.dialogs == []  # type: ignore[attr-defined]
        shot(page, "en-hostile-email")


def test_models_page_and_chinese_switch(browser: Browser, site: Site) -> None:
    # a correction of its own, so the test does not depend on the queue tests running first
    reference = site.web.add_slip("The clinic's waiting room has no seats", department="facilities")
    review.correct(site.desk, Actor("sam", "supervisor"), reference, {"department": "medical"})
    with open_page(browser, "en") as page:
        sign_in(page, site.url, "sam")
        page.goto(f"{site.url}/models")
        page.click("#lang-zh_Hans")
        page.wait_for_load_state()
        expect(page.locator("h1")).to_have_text("模型")
        expect(page.locator("#most-corrected")).to_contain_text("医务室")
        shot(page, "zh_Hans-models")
    with site.web.db.reader() as s:
        assert storage.get_user(s, "sam").language == "zh_Hans"



def test_scanner_uploads_two_scans_in_chinese_and_sees_them_listed(
    browser: Browser, site: Site, tmp_path: Path
) -> None:
    scans = [tmp_path / "slip-one.png", tmp_path / "slip-two.png"]
    for number, path in enumerate(scans, start=1):
        path.write_bytes(png_page(f"Upload {number}: the lift in hall C is broken"))
    with open_page(browser, "en") as page:
        sign_in(page, site.url, "sc")  # a scanner's home is the upload page
        expect(page.locator("h1")).to_have_text("Upload scans")
        page.click("#lang-zh_Hans")
        page.wait_for_load_state()
        expect(page.locator("h1")).to_have_text("上传扫描件")
        page.set_input_files("#files", [str(p) for p in scans])
        page.click("#upload-button")
        page.wait_for_url(f"{site.url}/upload")
        rows = page.locator("#uploads tbody tr")
        expect(rows).to_have_count(2)
        expect(page.locator("#uploads")).to_contain_text("slip-one.png")
        expect(page.locator("#uploads")).to_contain_text("slip-two.png")
        assert site.uploads.wait_idle(120)
        page.reload()
        expect(page.locator("main h2")).to_have_text("我的上传")
        for row in rows.all():  # each one read: a case, or quarantined with its reason; none pending
            expect(row).not_to_contain_text("待处理")
        shot(page, "zh_Hans-upload")
    with site.web.db.reader() as s:
        uploads = storage.list_uploads(s, uploaded_by="sc")
    assert {u.filename for u in uploads} == {"slip-one.png", "slip-two.png"}
