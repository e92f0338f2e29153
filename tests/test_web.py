"""The web app through FastAPI's TestClient: every route and role, sign-in, CSRF, headers, languages,
corrections stored, the case lifecycle, safe rendering of hostile e-mail, originals served safely."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

import storage
from classifiers.retrain import gate
from pipeline import review
from pipeline.cli.app import main
from pipeline.config import Settings
from pipeline.core.actor import Actor
from pipeline.core.model import Channel, Source
from review import i18n
from review.app import COOKIE, create_app
from storage.models import Correction, User, WebSession
from tests.mail_support import smtp_relay
from tests.web_support import PASSWORD, Web, signed_in

XSS_HTML = '<p>hi</p><script>alert("x")</script><img src=x onerror="alert(1)">'


def _web(url: str, home: Path) -> Iterator[tuple[Web, FastAPI]]:
    settings = Settings(home=home, database_url=url)
    app = create_app(settings)
    web = Web(settings, app.state.web.db)
    for name, role, department in (
        ("rita", "reviewer", ""),
        ("sam", "supervisor", ""),
        ("fay", "department", "facilities"),
        ("mo", "department", "medical"),
        ("sc", "scanner", ""),
    ):
        web.add_user(name, role, department)
    try:
        yield web, app
    finally:
        app.state.web.db.dispose()


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test (migrating takes seconds)."""
    path = tmp_path_factory.mktemp("template") / "complaintdesk.db"
    storage.migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def deployment(tmp_path: Path, migrated_sqlite: Path) -> Iterator[tuple[Web, FastAPI]]:
    """SQLite: the web layer's own behaviour."""
    shutil.copyfile(migrated_sqlite, tmp_path / "complaintdesk.db")
    yield from _web(f"sqlite:///{tmp_path / 'complaintdesk.db'}", tmp_path)


@pytest.fixture
def both(db_url: str, tmp_path: Path) -> Iterator[tuple[Web, FastAPI]]:
    """SQLite and PostgreSQL: what the pages write to the database."""
    yield from _web(db_url, tmp_path)


#: the routes anyone may use; every other one needs a session
PUBLIC = {("GET", "/healthz"), ("GET", "/login"), ("POST", "/login"), ("POST", "/language")}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def filled(path: str, ref: str, sha: str) -> str:
    return path.format(reference=ref, number=1, sha256=sha, record_id=1, name="rita")


def _documents(web: Web, reference: str) -> list[str]:
    with web.db.reader() as s:
        return [d.sha256 for d in storage.get_case(s, reference).documents]


def test_health_login_page_and_static_files_need_no_sign_in(deployment: tuple[Web, FastAPI]) -> None:
    client = TestClient(deployment[1])
    assert client.get("/healthz").text == "ok"
    assert client.get("/login").status_code == 200
    assert client.get("/static/htmx.min.js").status_code == 200
    assert "keydown" in client.get("/static/app.js").text


def test_every_other_route_refuses_without_sign_in(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_slip("The lift is broken")
    sha = _documents(web, ref)[0]
    client = TestClient(app, follow_redirects=False)
    routes = app_routes(app) - PUBLIC
    assert len(routes) >= 25  # the walk found the app's routes
    for method, path in sorted(routes):
        response = client.request(
            method, filled(path, ref, sha), data={"csrf": "x", "label_set": "kind", "label": "praise"}
        )
        if method == "GET":
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next="), path
        else:
            assert response.status_code == 401, path
    with web.db.reader() as s:
        assert s.scalars(select(Correction)).all() == []


def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(deployment: tuple[Web, FastAPI]) -> None:
    _, app = deployment
    client = TestClient(app, follow_redirects=False)
    response = client.post("/login", data={"name": "rita", "password": PASSWORD, "next": "//evil.example/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert client.get("/queue").status_code == 200
    token = client.get("/account").text.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    client.cookies.set(COOKIE, response.cookies[COOKIE])  # a copy of the old cookie does not come back
    assert client.get("/queue").status_code == 303


def test_secure_cookie_behind_tls(tmp_path: Path, migrated_sqlite: Path) -> None:
    shutil.copyfile(migrated_sqlite, tmp_path / "c.db")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    app = create_app(Settings(home=tmp_path, database_url=url), secure_cookies=True)
    Web(app.state.web.settings, app.state.web.db).add_user("rita", "reviewer")
    response = TestClient(app, follow_redirects=False).post(
        "/login", data={"name": "rita", "password": PASSWORD}
    )
    assert "Secure" in response.headers["set-cookie"]
    app.state.web.db.dispose()


def test_repeated_failed_sign_ins_are_slowed(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    client = TestClient(app, follow_redirects=False)
    for _ in range(3):
        assert client.post("/login", data={"name": "rita", "password": "wrong"}).status_code == 401
    # past three failures the account must wait: even the right password is not checked
    slowed = client.post("/login", data={"name": "rita", "password": PASSWORD})
    assert slowed.status_code == 429 and int(slowed.headers["retry-after"]) >= 1
    with web.db.reader() as s:
        user = storage.get_user(s, "rita")
        assert user.failed_logins == 3
    # once the wait is over the right password works and the count starts again
    with web.db.session() as s:
        user = storage.get_user(s, "rita")
        assert user.last_failed_at is not None
        user.last_failed_at -= timedelta(seconds=10)
    assert client.post("/login", data={"name": "rita", "password": PASSWORD}).status_code == 303
    with web.db.reader() as s:
        assert storage.get_user(s, "rita").failed_logins == 0


def test_unknown_names_are_slowed_by_address(deployment: tuple[Web, FastAPI]) -> None:
    client = TestClient(deployment[1], follow_redirects=False)
    codes = [
        client.post("/login", data={"name": f"nobody{i}", "password": "x"}).status_code for i in range(5)
    ]
    assert codes[:3] == [401, 401, 401] and 429 in codes[3:]


def test_disabled_user_cannot_sign_in(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    with web.db.session() as s:
        storage.get_user(s, "rita").disabled = True
    response = TestClient(app, follow_redirects=False).post(
        "/login", data={"name": "rita", "password": PASSWORD}
    )
    assert response.status_code == 401


def test_idle_session_is_ended(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    client, _ = signed_in(app, "rita")
    with web.db.session() as s:
        for row in s.scalars(select(WebSession)):
            row.last_seen_at -= timedelta(hours=2)
    assert client.get("/queue").status_code == 303
    with web.db.reader() as s:
        assert s.scalars(select(WebSession)).all() == []


def test_security_headers_on_every_page(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_slip("noise")
    client, _ = signed_in(app, "sam")
    for path in ("/login", "/queue", f"/cases/{ref}", "/healthz"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


def test_form_posts_without_the_csrf_token_are_refused(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_slip("The lift is broken")
    client, token = signed_in(app, "sam")
    sha = _documents(web, ref)[0]
    for method, path in sorted(app_routes(app) - PUBLIC):
        if method != "POST":
            continue
        for data in ({}, {"csrf": "forged"}):
            response = client.post(
                filled(path, ref, sha),
                data={**data, "label_set": "kind", "label": "praise", "status": "triaged", "text": "x"},
            )
            assert response.status_code == 403, path
    with web.db.reader() as s:
        assert s.scalars(select(Correction)).all() == []
        assert storage.get_case(s, ref).status == "new"
    # the same post with the token goes through
    assert (
        client.post(
            f"/cases/{ref}/labels", data={"csrf": token, "label_set": "kind", "label": "praise"}
        ).status_code
        == 303
    )


@pytest.mark.parametrize("role_user", ["rita", "fay", "sc"])
def test_only_supervisors_open_supervisor_pages(deployment: tuple[Web, FastAPI], role_user: str) -> None:
    _, app = deployment
    client, token = signed_in(app, role_user)
    for path in ("/models", "/users", "/quarantine", "/jobs"):
        assert client.get(path).status_code == 403, path
    for path in ("/models/retrain", "/models/rollback", "/users", "/jobs/retry"):
        assert (
            client.post(
                path, data={"csrf": token, "name": "evil", "password": "x" * 10, "role": "supervisor"}
            ).status_code
            == 403
        )
    supervisor, _ = signed_in(app, "sam")
    for path in ("/models", "/users", "/quarantine"):
        assert supervisor.get(path).status_code == 200, path


def test_scanner_reads_no_case(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_slip("The lift is broken")
    client, _ = signed_in(app, "sc")
    assert client.get("/").headers["location"] == "/upload"
    for path in ("/queue", "/cases", f"/cases/{ref}", f"/cases/{ref}/pages/1.png"):
        assert client.get(path).status_code == 403, path


def test_department_staff_only_reach_their_own_department(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ours = web.add_slip("The toilets are dirty", department="facilities")
    theirs = web.add_slip("No first aid kit", department="medical")
    client, token = signed_in(app, "fay")
    listing = client.get("/cases").text
    assert ours in listing and theirs not in listing
    assert client.get(f"/cases/{ours}").status_code == 200
    [their_doc] = _documents(web, theirs)
    their_paths = ("", "/pages/1.png", f"/documents/{their_doc}")
    for path in (f"/cases/{theirs}{tail}" for tail in their_paths):
        assert client.get(path).status_code == 403, path
    for route in ("/cases/{ref}/status", "/cases/{ref}/notes", "/cases/{ref}/labels"):
        response = client.post(
            route.format(ref=theirs),
            data={"csrf": token, "status": "triaged", "text": "x", "label_set": "kind", "label": "praise"},
        )
        assert response.status_code == 403, route
    with web.db.reader() as s:
        case = storage.get_case(s, theirs)
        assert case.status == "new" and [e.action for e in storage.audit_trail(s, case)] == ["created"]
    # their own case: status and notes yes, label corrections are the reviewers'
    assert client.post(f"/cases/{ours}/status", data={"csrf": token, "status": "triaged"}).status_code == 303
    assert (
        client.post(
            f"/cases/{ours}/labels", data={"csrf": token, "label_set": "kind", "label": "praise"}
        ).status_code
        == 403
    )


def test_queue_and_case_pages_in_chinese_and_english(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_slip("The lift is broken", department="facilities")
    zh, token = signed_in(app, "rita", language="zh-CN,zh;q=0.9")
    page = zh.get("/queue").text
    assert "审核队列" in page and ref in page and "设施" in page
    case = zh.get(f"/cases/{ref}").text
    assert "操作记录" in case and "第 1 页" in case and "Facilities · 设施" in case and "2026年" in case
    en, _ = signed_in(app, "rita", language="en-US")
    assert "Review queue" in en.get("/queue").text
    # the choice is kept with the user, whatever the browser says next time
    assert zh.post("/language", data={"csrf": token, "lang": "en", "back": "/queue"}).status_code == 303
    again, _ = signed_in(app, "rita", language="zh-CN")
    assert "Review queue" in again.get("/queue").text
    with web.db.reader() as s:
        assert storage.get_user(s, "rita").language == "en"
    # before sign-in: the browser's language, or the one picked on the sign-in page
    anonymous = TestClient(app, headers={"Accept-Language": "zh-CN"}, follow_redirects=False)
    assert "登录" in anonymous.get("/login").text
    anonymous.post("/language", data={"lang": "en", "back": "/login"})
    assert "Sign in" in anonymous.get("/login").text


def test_corrections_accept_and_undo_are_stored(both: tuple[Web, FastAPI]) -> None:
    web, app = both
    first = web.add_slip("The toilets are dirty", department="medical")
    second = web.add_slip("The lift is broken", department="facilities")
    client, token = signed_in(app, "rita")
    assert (
        client.post(
            f"/cases/{first}/labels", data={"csrf": token, "label_set": "department", "label": "facilities"}
        ).headers["location"]
        == f"/cases/{first}"
    )
    with web.db.reader() as s:
        [correction] = s.scalars(select(Correction)).all()
        assert (
            correction.label_set,
            correction.old_label,
            correction.new_label,
            correction.reviewer,
            correction.model_version,
        ) == ("department", "medical", "facilities", "rita", "m-test")
    client.post(f"/cases/{first}/undo", data={"csrf": token})
    with web.db.reader() as s:
        assert storage.get_case(s, first).label("department").label == "medical"
    client.post(
        f"/cases/{first}/labels", data={"csrf": token, "label_set": "department", "label": "facilities"}
    )
    accepted = client.post(f"/cases/{first}/accept", data={"csrf": token})
    assert accepted.headers["location"] == f"/cases/{second}"  # on to the next case of the queue
    with web.db.reader() as s:
        case = storage.get_case(s, first)
        assert not case.needs_review
        assert {lab.label_set: (lab.label, lab.confirmed_by) for lab in case.labels} == {
            "department": ("facilities", "rita"),
            "sentiment": ("negative", "rita"),
            "kind": ("complaint", "rita"),
        }
        actions = [e.action for e in storage.audit_trail(s, case)]
    # correct, undo (the correction taken back, not training data), correct again, accept the rest
    assert actions.count("label_corrected") == 2 and "corrections_undone" in actions
    queue = client.get("/queue").text
    assert first not in queue and second in queue
    bad = client.post(
        f"/cases/{second}/labels", data={"csrf": token, "label_set": "department", "label": "nope"}
    )
    assert bad.status_code == 400 and "allowed" in bad.text


def test_case_lifecycle_notes_and_audit_trail(both: tuple[Web, FastAPI]) -> None:
    web, app = both
    ref = web.add_slip("The toilets are dirty", department="facilities")
    client, token = signed_in(app, "fay")
    for status in ("triaged", "in_progress", "waiting_citizen", "resolved", "closed", "in_progress"):
        response = client.post(f"/cases/{ref}/status", data={"csrf": token, "status": status})
        assert response.status_code == 303, status
    wrong = client.post(f"/cases/{ref}/status", data={"csrf": token, "status": "new"})
    assert wrong.status_code == 400 and "can move to" in wrong.text
    client.post(f"/cases/{ref}/status", data={"csrf": token, "status": "rejected", "note": "duplicate of 7"})
    client.post(f"/cases/{ref}/notes", data={"csrf": token, "text": "called the cleaners"})
    page = client.get(f"/cases/{ref}").text
    assert "duplicate of 7" in page and "called the cleaners" in page and "fay" in page
    with web.db.reader() as s:
        case = storage.get_case(s, ref)
        assert case.status == "rejected"
        assert [e.action for e in storage.audit_trail(s, case)].count("status") == 7


def test_hostile_email_is_shown_as_text(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_email("<script>alert(2)</script>", 'Look <img src=x onerror="alert(1)">', html=XSS_HTML)
    client, _ = signed_in(app, "rita")
    page = client.get(f"/cases/{ref}").text
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert "citizen@example.org" in page  # the headers as sent


def test_originals_download_unless_images(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    slip = web.add_slip("The lift is broken")
    mail = web.add_email("Lift", "It is broken")
    client, _ = signed_in(app, "sam")
    image = client.get(f"/cases/{slip}/pages/1.png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert client.get(f"/cases/{slip}/pages/2.png").status_code == 404
    [slip_doc], [mail_doc] = _documents(web, slip), _documents(web, mail)
    shown = client.get(f"/cases/{slip}/documents/{slip_doc}")
    assert shown.headers["content-disposition"].startswith("inline")
    saved = client.get(f"/cases/{mail}/documents/{mail_doc}")
    assert saved.headers["content-disposition"].startswith("attachment")
    assert saved.headers["content-type"] == "application/octet-stream"
    unknown = client.get(f"/cases/{slip}/documents/{'0' * 64}")
    assert unknown.status_code == 400 and "has no document" in unknown.text
    assert client.get("/cases/2026-999999").status_code == 404


def test_overdue_and_quarantine_lists(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    late = web.add_slip("Old complaint", created=datetime.now(UTC) - timedelta(days=30))
    fresh = web.add_slip("New complaint")
    with web.db.session() as s:
        storage.quarantine(
            s,
            Source.from_bytes(Channel.slip, "broken<b>.pdf", b"%PDF-broken"),
            "not a PDF",
            "UnreadableScanError",
            actor="test",
        )
    client, _ = signed_in(app, "sam")
    overdue = client.get("/overdue").text
    assert late in overdue and fresh not in overdue and 'class="overdue"' in overdue
    assert "broken&lt;b&gt;.pdf" in client.get("/quarantine").text


def test_models_page_shows_versions_and_corrections(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    ref = web.add_slip("The toilets are dirty", department="medical")
    client, token = signed_in(app, "sam")
    client.post(
        f"/cases/{ref}/labels", data={"csrf": token, "label_set": "department", "label": "facilities"}
    )
    page = client.get("/models").text
    assert "1 labels changed by reviewers, 0 confirmed as they were." in page and "Facilities · 设施" in page
    before = SimpleNamespace(label_sets={"department": SimpleNamespace(macro_f1=0.851)})
    after = SimpleNamespace(label_sets={"department": SimpleNamespace(macro_f1=0.819)})
    outcome: Any = SimpleNamespace(
        result=SimpleNamespace(current_report=before, candidate_report=after, eval_rows=40), current="m-1",
        candidate="m-2", promoted=False, dry_run=False, corrections=1,
        reason="department macro-F1 would drop by 0.0320 (more than 0.02)")
    review.record_retrain(app.state.web.desk, Actor.supervisor("sam"), outcome)
    chinese, _ = signed_in(app, "sam", language="zh_Hans")
    last = chinese.get("/models").text.split('id="last-retrain"')[1].split("</p>")[0]
    assert "未启用 · Department · 部门 的宏平均 F1 会下降 0.0320（超过 0.02）" in last


def test_the_gates_reasons_are_said_in_the_readers_language() -> None:
    """The retrain policy keeps its reasons as English sentences; the models page finds each one and
    says it in Chinese, label set names too; anything else is shown as it is."""
    def scores(**f1: float) -> Any:
        return SimpleNamespace(label_sets={name: SimpleNamespace(macro_f1=v) for name, v in f1.items()})

    reasons = [
        gate(scores(department=0.80, kind=0.80), scores(department=0.82, kind=0.81)).reason,  # passes
        gate(scores(department=0.80, kind=0.80), scores(department=0.70, kind=0.80)).reason,  # mean drops
        gate(scores(department=0.90, kind=0.70), scores(department=0.85, kind=0.80)).reason,  # one set drops
        gate(scores(department=0.80), scores(kind=0.80)).reason,  # nothing to compare
        # pipeline/models.py's reasons for not retraining
        "no reviewer corrections yet",
        "no new corrections: m-20261202-1a650afcb7 was already trained on these 7 corrected cases",
    ]
    chinese = [i18n.reason("zh_Hans", r) for r in reasons]
    for english, said in zip(reasons, chinese, strict=True):
        assert said != english and not re.search(r"would|drop|mean|corrections|common", said), said
    assert chinese[2] == "Department · 部门 的宏平均 F1 会下降 0.0500（超过 0.02）"
    assert "m-20261202-1a650afcb7" in chinese[5] and "7" in chinese[5]
    assert i18n.reason("en", reasons[0]) == reasons[0] == "mean macro-F1 0.8000 -> 0.8150"
    other = "the candidate is the current model"
    assert i18n.reason("zh_Hans", other) == other


def test_supervisor_manages_users(deployment: tuple[Web, FastAPI]) -> None:
    web, app = deployment
    client, token = signed_in(app, "sam")
    rita, _ = signed_in(app, "rita")
    assert (
        client.post(
            "/users",
            data={"csrf": token, "name": "new", "password": PASSWORD, "role": "reviewer", "department": ""},
        ).status_code
        == 303
    )
    assert client.post("/users/rita", data={"csrf": token, "disabled": "1"}).status_code == 303
    assert rita.get("/queue").status_code == 303  # signed out at once
    assert client.post("/users/new", data={"csrf": token, "role": "emperor"}).status_code == 400
    page = client.get("/users").text
    assert "new" in page and 'class="disabled"' in page
    signed_in(app, "new")


def test_users_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))

    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_:
            main(["--home", str(home), *args])
        return int(exit_.value.code or 0)

    assert run("init") == 0
    assert (
        run("users", "add", "lin", "--role", "department", "--department", "medical", "--password-stdin") == 0
    )
    assert run("users", "add", "lin", "--role", "king") == 2
    assert run("users", "set-role", "lin", "supervisor") == 0
    assert run("users", "set-department", "lin", "facilities") == 0
    assert run("users", "disable", "lin") == 0
    assert run("users", "set-role", "ghost", "reviewer") == 2
    capsys.readouterr()
    assert run("users", "list") == 0
    out = capsys.readouterr().out
    assert "lin" in out and "supervisor" in out and "facilities" in out and "disabled" in out
    with storage.open_database(f"sqlite:///{home / 'complaintdesk.db'}") as db, db.reader() as s:
        user = s.scalars(select(User)).one()
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_text_edit_assignment_and_replies(tmp_path: Path, migrated_sqlite: Path) -> None:
    shutil.copyfile(migrated_sqlite, tmp_path / "complaintdesk.db")
    with smtp_relay() as relay:
        settings = Settings(
            home=tmp_path, database_url=f"sqlite:///{tmp_path / 'complaintdesk.db'}", smtp=relay.settings
        )
        app = create_app(settings)
        web = Web(settings, app.state.web.db)
        web.add_user("rita", "reviewer")
        web.add_user("fay", "department", "facilities")
        mail = web.add_email("Broken lift", "The lift in hall B is broken.")
        slip = web.add_slip("The toilets are dirty")
        rita, token = signed_in(app, "rita")
        rita.post(f"/cases/{slip}/text", data={"csrf": token, "text": "The toilets are very dirty"})
        rita.post(
            f"/cases/{slip}/assign", data={"csrf": token, "department": "facilities", "assignee": "fay"}
        )
        assert rita.post(f"/cases/{mail}/reply", data={"csrf": token, "text": "x"}).status_code == 403
        fay, token = signed_in(app, "fay")
        page = fay.get(f"/cases/{mail}").text
        assert "citizen@example.org" in page and 'name="method" value="email"' in page
        sent = fay.post(
            f"/cases/{mail}/reply",
            data={"csrf": token, "method": "email", "text": "We have called the technician."},
        )
        assert sent.status_code == 303
        [message] = relay.received
        assert b"We have called the technician." in message and f"[Case #{mail}]".encode() in message
        assert b"In-Reply-To:" in message
        assert "no e-mail address" in fay.get(f"/cases/{slip}").text
        assert (
            fay.post(
                f"/cases/{slip}/reply",
                data={"csrf": token, "method": "phone", "text": "Called back: cleaned."},
            ).status_code
            == 303
        )
        page = fay.get(f"/cases/{slip}").text
        assert "The toilets are very dirty" in page and "Called back: cleaned." in page
        with web.db.reader() as s:
            case = storage.get_case(s, slip)
            assert case.assignee == "fay" and case.original_text == "The toilets are dirty"
            assert case.first_response_at is not None
        app.state.web.db.dispose()
