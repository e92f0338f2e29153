"""The web app: one FastAPI application, built once from ``Settings`` by ``create_app``.

Every route but ``/login``, ``/static`` and ``/healthz`` needs a signed-in user (``SignedIn``); every
form post carries the session's CSRF token; every case read or write is checked with ``service.can``
(role and department). Responses carry a strict Content-Security-Policy (no inline script or style)
and the other security headers; complaint text is only ever rendered escaped (Jinja2 autoescape).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool

import classifiers
import storage
from pipeline import models
from pipeline.config import Settings
from pipeline.core.errors import ComplaintdeskError
from review import auth, i18n, originals, service
from storage.models import CASE_STATUSES, USER_ROLES, Case, utcnow

HERE = Path(__file__).resolve().parent
COOKIE = "cd_session"
LANG_COOKIE = "cd_lang"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@dataclass
class WebState:
    settings: Settings
    db: storage.Database
    blobs: storage.BlobStore
    label_sets: tuple[classifiers.LabelSet, ...]
    throttle: auth.AddressThrottle
    secure_cookies: bool


class NotSignedIn(Exception):
    """Raised by the ``user`` dependency; answered by a redirect to the sign-in page."""


def _signed_in(request: Request) -> auth.SignedIn:
    who = auth.current(request.app.state.web.db, request.cookies.get(COOKIE, ""))
    if who is None:
        raise NotSignedIn
    return who


User = Annotated[auth.SignedIn, Depends(_signed_in)]


async def _checked_form(request: Request, user: User) -> dict[str, str]:
    """The posted form, once its CSRF token (field ``csrf`` or header ``X-CSRF-Token``) is the session's."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not auth.csrf_ok(user, values.get("csrf", "") or request.headers.get("X-CSRF-Token", "")):
        raise HTTPException(403, "missing or wrong form token (CSRF); reload the page")
    return values


FormData = Annotated[dict[str, str], Depends(_checked_form)]


def create_app(settings: Settings, *, secure_cookies: bool = False) -> FastAPI:
    """The web app on the database and store of ``settings``; ``secure_cookies`` behind TLS."""
    app = FastAPI(title="complaintdesk review", docs_url=None, redoc_url=None, openapi_url=None)
    state = WebState(settings, storage.open_database(settings.resolved_database_url),
                     storage.BlobStore(settings.blob_dir), classifiers.load_label_sets(),
                     auth.AddressThrottle(), secure_cookies)
    app.state.web = state
    templates = Jinja2Templates(env=Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, extensions=["jinja2.ext.i18n"]))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path != "/healthz" and not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(NotSignedIn)
    async def to_login(request: Request, exc: NotSignedIn) -> Response:
        if request.method == "GET":
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return PlainTextResponse("sign in first", status_code=401)

    @app.exception_handler(ComplaintdeskError)
    async def domain_error(request: Request, exc: ComplaintdeskError) -> Response:
        status = 404 if isinstance(exc, storage.CaseNotFoundError) else 400
        return PlainTextResponse(str(exc), status_code=status)


    def language(request: Request, user: auth.SignedIn | None) -> str:
        saved = user.language if user else request.cookies.get(LANG_COOKIE, "")
        return i18n.choose(saved, request.headers.get("accept-language", ""))

    def page(request: Request, name: str, user: auth.SignedIn | None, code: int = 200,
             **context: Any) -> HTMLResponse:
        lang = language(request, user)
        tr = i18n.translations(lang)
        return templates.TemplateResponse(request, name, {
            "user": user, "lang": lang, "languages": i18n.LANGUAGE_NAMES, "_": tr.gettext,
            "gettext": tr.gettext, "ngettext": tr.ngettext, "fmt": i18n.Formatter(lang),
            "names": i18n.label_names(), "now": utcnow(), "csrf": user.csrf_token if user else "", **context,
        }, status_code=code)

    def require(user: auth.SignedIn, action: str, case: Case | None = None) -> None:
        if not service.can(user.role, user.department, action, case):
            raise HTTPException(403, "not allowed for your role or department")

    def load_case(user: auth.SignedIn, reference: str, action: str) -> Case:
        with state.db.reader() as s:
            case = storage.get_case(s, reference)
            require(user, action, case)
            return case

    # -- no sign-in needed ------------------------------------------------------------------------

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", None, next=_local(next))

    @app.post("/login")
    async def login(request: Request, name: Annotated[str, Form()], password: Annotated[str, Form()],
                    next: Annotated[str, Form()] = "/") -> Response:
        address = request.client.host if request.client else ""
        result = await run_in_threadpool(auth.log_in, state.db, name, password, address, state.throttle)
        if not result.ok:
            tr = i18n.translations(language(request, None))
            if result.retry_in > 0:
                message = tr.gettext("Too many failed sign-ins. Try again in %(seconds)d seconds.") % {
                    "seconds": int(result.retry_in) + 1}
                response: Response = page(request, "login.html", None, 429, next=_local(next), error=message)
                response.headers["Retry-After"] = str(int(result.retry_in) + 1)
                return response
            return page(request, "login.html", None, 401, next=_local(next),
                        error=tr.gettext("Wrong name or password."))
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(COOKIE, result.token, httponly=True, samesite="lax", secure=state.secure_cookies,
                            max_age=int(auth.IDLE_TIMEOUT.total_seconds()) * 16)
        return response

    @app.post("/language")
    async def set_language(request: Request, lang: Annotated[str, Form()],
                           back: Annotated[str, Form()] = "/") -> Response:
        # the only form allowed without a session (the sign-in page has one); it changes nothing stored
        # unless the CSRF token of a signed-in session comes with it
        lang = lang if lang in i18n.LANGUAGES else i18n.LANGUAGES[0]
        who = auth.current(state.db, request.cookies.get(COOKIE, ""))
        form = await request.form()
        if who is not None:
            if not auth.csrf_ok(who, str(form.get("csrf", ""))):
                raise HTTPException(403, "missing or wrong form token (CSRF); reload the page")
            with state.db.session() as s:
                storage.get_user(s, who.name).language = lang
        response = RedirectResponse(_local(back), status_code=303)
        response.set_cookie(LANG_COOKIE, lang, httponly=True, samesite="lax", secure=state.secure_cookies,
                            max_age=365 * 86400)
        return response

    # -- signed in --------------------------------------------------------------------------------

    @app.post("/logout")
    def logout(user: User, form: FormData) -> Response:
        auth.log_out(state.db, user.token_sha256)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/")
    def home(user: User) -> Response:
        start = {"supervisor": "/queue", "reviewer": "/queue", "department": "/cases"}
        target = start.get(user.role, "/account")
        return RedirectResponse(target, status_code=303)

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request, user: User) -> HTMLResponse:
        return page(request, "account.html", user)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, user: User) -> HTMLResponse:
        require(user, "correct")
        with state.db.reader() as s:
            cases = service.queue(s)
            return page(request, "queue.html", user, cases=cases)

    @app.get("/cases", response_class=HTMLResponse)
    def cases(request: Request, user: User, status: str = "") -> HTMLResponse:
        require(user, "read")
        department = user.department if user.role == "department" else None
        with state.db.reader() as s:
            found = storage.list_cases(s, status=status or None, department=department, limit=200)
            return page(request, "cases.html", user, cases=found, status=status, statuses=CASE_STATUSES)

    @app.get("/overdue", response_class=HTMLResponse)
    def overdue(request: Request, user: User) -> HTMLResponse:
        require(user, "read")
        with state.db.reader() as s:
            found = [c for c in service.overdue(s) if service.can(user.role, user.department, "read", c)]
            return page(request, "overdue.html", user, cases=found)

    @app.get("/cases/{reference}", response_class=HTMLResponse)
    def case_page(request: Request, user: User, reference: str) -> HTMLResponse:
        with state.db.reader() as s:
            case = storage.get_case(s, reference)
            require(user, "read", case)
            trail = storage.audit_trail(s, case)
            shown = None
            original = next((d for d in case.documents if d.role == "original"), None)
            if case.channel == "email" and original is not None and state.blobs.exists(original.sha256):
                shown = originals.show_email(state.blobs.read(original.sha256))
            next_ref = service.next_in_queue(s, case.reference)
            return page(request, "case.html", user, case=case, trail=trail, email=shown, original=original,
                        next_ref=next_ref, label_sets=state.label_sets,
                        transitions=storage.TRANSITIONS[case.status],
                        may_correct=service.can(user.role, user.department, "correct", case),
                        may_follow_up=service.can(user.role, user.department, "follow_up", case))

    @app.get("/cases/{reference}/pages/{number}.png")
    def page_image(user: User, reference: str, number: int) -> Response:
        case = load_case(user, reference, "read")
        original = next((d for d in case.documents if d.role == "original"), None)
        if original is None or case.channel == "email":
            raise HTTPException(404, "this case has no scan")
        png = originals.page_png(state.blobs.read(original.sha256), original.media_type, number)
        if png is None:
            raise HTTPException(404, "no such page")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/cases/{reference}/documents/{document_id}")
    def document(user: User, reference: str, document_id: int) -> Response:
        case = load_case(user, reference, "read")
        doc = next((d for d in case.documents if d.id == document_id), None)
        if doc is None:
            raise HTTPException(404, "no such document")
        inline = doc.media_type in originals.INLINE_TYPES
        filename = quote(doc.filename or f"{case.reference}-{doc.id}")
        disposition = "inline" if inline else "attachment"
        return Response(state.blobs.read(doc.sha256), media_type=doc.media_type if inline else
                        "application/octet-stream",
                        headers={"Content-Disposition": f"{disposition}; filename*=UTF-8''{filename}"})

    def back_to(reference: str, fragment: str = "") -> RedirectResponse:
        return RedirectResponse(f"/cases/{quote(reference)}{fragment}", status_code=303)

    @app.post("/cases/{reference}/labels")
    def correct(user: User, form: FormData, reference: str) -> Response:
        load_case(user, reference, "correct")
        service.correct(state.db, reference, form.get("label_set", ""), form.get("label", ""),
                        reviewer=user.name, label_sets=state.label_sets)
        return back_to(reference)

    @app.post("/cases/{reference}/accept")
    def accept(user: User, form: FormData, reference: str) -> Response:
        load_case(user, reference, "correct")
        service.accept(state.db, reference, reviewer=user.name)
        with state.db.reader() as s:
            following = service.next_in_queue(s, reference)
        return back_to(following) if following else RedirectResponse("/queue", status_code=303)

    @app.post("/cases/{reference}/undo")
    def undo(user: User, form: FormData, reference: str) -> Response:
        load_case(user, reference, "correct")
        service.undo(state.db, reference, reviewer=user.name)
        return back_to(reference)

    @app.post("/cases/{reference}/status")
    def status(user: User, form: FormData, reference: str) -> Response:
        load_case(user, reference, "follow_up")
        service.set_status(state.db, reference, form.get("status", ""), actor=user.name,
                           note=form.get("note", ""))
        return back_to(reference, "#follow-up")

    @app.post("/cases/{reference}/notes")
    def note(user: User, form: FormData, reference: str) -> Response:
        load_case(user, reference, "follow_up")
        text = form.get("text", "").strip()
        if text:
            service.add_note(state.db, reference, text, actor=user.name)
        return back_to(reference, "#follow-up")

    # -- supervisors --------------------------------------------------------------------------------

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, user: User) -> HTMLResponse:
        require(user, "supervise")
        with state.db.reader() as s:
            return page(request, "quarantine.html", user, records=storage.list_quarantine(s))

    @app.get("/models", response_class=HTMLResponse)
    def models_page(request: Request, user: User) -> HTMLResponse:
        require(user, "supervise")
        versions = models.list_versions(state.db, state.settings.models_root)
        with state.db.reader() as s:
            corrections = storage.list_corrections(s)
        changed = [c for c in corrections if c.old_label != c.new_label]
        most = _most_corrected(changed)
        return page(request, "models.html", user, versions=versions, corrections=len(corrections),
                    changed=len(changed), most=most, outcome=None)

    @app.post("/models/retrain", response_class=HTMLResponse)
    def retrain(request: Request, user: User, form: FormData) -> HTMLResponse:
        require(user, "supervise")
        outcome = models.retrain(state.db, state.settings.models_root, actor=user.name,
                                 model_dir=state.settings.model_dir, dry_run=form.get("dry_run") == "1")
        versions = models.list_versions(state.db, state.settings.models_root)
        return page(request, "models.html", user, versions=versions, corrections=outcome.corrections,
                    changed=None, most=[], outcome=outcome)

    @app.post("/models/promote")
    def promote(user: User, form: FormData) -> Response:
        require(user, "supervise")
        models.promote(state.db, state.settings.models_root, form.get("version", ""), actor=user.name)
        return RedirectResponse("/models", status_code=303)

    @app.post("/models/rollback")
    def rollback(user: User, form: FormData) -> Response:
        require(user, "supervise")
        models.rollback(state.db, state.settings.models_root, actor=user.name)
        return RedirectResponse("/models", status_code=303)

    @app.get("/users", response_class=HTMLResponse)
    def users(request: Request, user: User) -> HTMLResponse:
        require(user, "supervise")
        with state.db.reader() as s:
            return page(request, "users.html", user, users=storage.list_users(s), roles=USER_ROLES,
                        departments=_department_labels(state.label_sets))

    @app.post("/users")
    def add_user(user: User, form: FormData) -> Response:
        require(user, "supervise")
        with state.db.session() as s:
            storage.add_user(s, form.get("name", ""), auth.hash_password(form.get("password", "")),
                             role=form.get("role", ""), department=form.get("department", ""))
        return RedirectResponse("/users", status_code=303)

    @app.post("/users/{name}")
    def change_user(user: User, form: FormData, name: str) -> Response:
        require(user, "supervise")
        with state.db.session() as s:
            target = storage.get_user(s, name)
            if "role" in form:
                storage.check_role(form["role"])
                target.role = form["role"]
            if "department" in form:
                target.department = form["department"]
            if "disabled" in form:
                target.disabled = form["disabled"] == "1"
                if target.disabled:
                    storage.end_web_sessions(s, user=target)
        return RedirectResponse("/users", status_code=303)

    return app


def _local(target: str) -> str:
    """Only same-site paths as redirect targets (no ``//evil.example`` or ``https://...``)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _department_labels(label_sets: tuple[classifiers.LabelSet, ...]) -> tuple[str, ...]:
    return next((ls.label_ids for ls in label_sets if ls.name == "department"), ())


def _most_corrected(changed: list[Any]) -> list[tuple[str, str, int]]:
    counts: dict[tuple[str, str], int] = {}
    for c in changed:
        counts[(c.label_set, c.new_label)] = counts.get((c.label_set, c.new_label), 0) + 1
    return sorted(((s, lab, n) for (s, lab), n in counts.items()), key=lambda row: -row[2])[:10]
