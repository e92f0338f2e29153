"""The web app: one FastAPI application, built once from ``Settings`` by ``create_app``.

Every route but ``/login``, ``/static`` and ``/healthz`` needs a signed-in user (``SignedIn``); every
form post carries the session's CSRF token; every case read or write is checked with ``service.can``
(role and department). Responses carry a strict Content-Security-Policy (no inline script or style)
and the other security headers; complaint text is only ever rendered escaped (Jinja2 autoescape).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

import pipeline.review as service
import storage
from pipeline import models
from pipeline.config import Settings
from pipeline.context import RunContext, open_context
from pipeline.core.actor import Actor
from pipeline.core.errors import AccessDeniedError, ComplaintdeskError
from pipeline.review.desk import Desk, open_desk
from review import auth, i18n, originals
from review.processing import Processor
from storage.models import CASE_STATUSES, USER_ROLES, utcnow

HERE = Path(__file__).resolve().parent
#: what the upload form offers to choose (anything else sent is still accepted, and quarantined if unreadable)
UPLOAD_ACCEPT = ".png,.jpg,.jpeg,.tif,.tiff,.pdf,image/png,image/jpeg,image/tiff,application/pdf"
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
    desk: Desk
    throttle: auth.AddressThrottle
    secure_cookies: bool
    #: the embedded processing of uploads (and the run context they are accepted with)
    uploads: Processor

    @property
    def db(self) -> storage.Database:
        return self.desk.db

    @property
    def settings(self) -> Settings:
        return self.desk.settings


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


def actor_of(user: auth.SignedIn) -> Actor:
    return Actor(user.name, user.role, user.department)  # type: ignore[arg-type]


def create_app(settings: Settings, *, secure_cookies: bool = False) -> FastAPI:
    """The web app on the database and store of ``settings``; ``secure_cookies`` behind TLS."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(state.uploads.close)

    app = FastAPI(title="complaintdesk review", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    def run_context() -> RunContext:
        # with a task queue the workers OCR: this process only accepts, and needs no Tesseract
        return open_context(settings, actor="web", need_ocr=settings.queue != "postgres")

    state = WebState(open_desk(settings), auth.AddressThrottle(), secure_cookies, Processor(run_context))
    app.state.web = state
    desk = state.desk
    templates = Jinja2Templates(env=Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=True, extensions=["jinja2.ext.i18n"]))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    # SQLite has one writer: form posts of this process take turns here instead of meeting in
    # SQLite's busy handler, whose sleeps made concurrent corrections slow (bench/web.py)
    one_writer = asyncio.Lock() if state.db.dialect == "sqlite" else None

    @app.middleware("http")
    async def security_headers(request: Request,
                               call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        # an upload is left out: the lock would be held while its body arrives, however slow the
        # network; its writes are short, and SQLite's busy handler lets them take their turn
        if one_writer is not None and request.method == "POST" and request.url.path != "/upload":
            async with one_writer:
                response = await call_next(request)
        else:
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
        if isinstance(exc, AccessDeniedError):
            code = 403
        elif isinstance(exc, storage.CaseNotFoundError):
            code = 404
        elif isinstance(exc, service.ReplyError):
            code = 502
        else:
            code = 400
        return PlainTextResponse(str(exc), status_code=code)

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
            "names": i18n.label_names(), "reason": partial(i18n.reason, lang), "now": utcnow(),
            "csrf": user.csrf_token if user else "",
            "may_upload": user is not None and service.can(actor_of(user), "upload"), **context,
        }, status_code=code)

    def require(user: auth.SignedIn, action: str, case: dict[str, Any] | None = None) -> Actor:
        actor = actor_of(user)
        service.require(actor, action, case)
        return actor

    def next_in_queue(actor: Actor, after: str) -> str | None:
        found = service.review_queue(desk, actor, limit=2).cases
        return next((c["reference"] for c in found if c["reference"] != after), None)

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
        # the sign-in page has this form too: without a session it only sets a cookie; a signed-in
        # user's choice is stored with them, and then the form must carry the session's CSRF token
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
        start = {"supervisor": "/queue", "reviewer": "/queue", "department": "/cases", "scanner": "/upload"}
        return RedirectResponse(start.get(user.role, "/account"), status_code=303)

    @app.get("/account", response_class=HTMLResponse)
    def account(request: Request, user: User) -> HTMLResponse:
        return page(request, "account.html", user)

    @app.get("/queue", response_class=HTMLResponse)
    def queue(request: Request, user: User, after: str = "") -> HTMLResponse:
        found = service.review_queue(desk, actor_of(user), limit=50, after=after or None)
        return page(request, "queue.html", user, cases=found.cases, next_page=found.next)

    @app.get("/queue/next")
    def queue_next(user: User, after: str = "") -> Response:
        """The queue's first case other than ``after`` (the case page's next and skip links)."""
        following = next_in_queue(actor_of(user), after)
        return back_to(following) if following else RedirectResponse("/queue", status_code=303)

    @app.get("/cases", response_class=HTMLResponse)
    def cases(request: Request, user: User, status: str = "") -> HTMLResponse:
        found = service.list_cases(desk, require(user, "read"), status=status or None, limit=200)
        return page(request, "cases.html", user, cases=found, status=status, statuses=CASE_STATUSES)

    @app.get("/overdue", response_class=HTMLResponse)
    def overdue(request: Request, user: User) -> HTMLResponse:
        found = service.overdue(desk, require(user, "read"), limit=200)
        return page(request, "overdue.html", user, cases=found)

    @app.get("/cases/{reference}", response_class=HTMLResponse)
    def case_page(request: Request, user: User, reference: str) -> HTMLResponse:
        actor = actor_of(user)
        case = service.get_case(desk, actor, reference)
        trail = service.history(desk, actor, reference)
        shown = None
        if case["channel"] == "email" and case["documents"]:
            shown = originals.show_email(service.case_original(desk, actor, reference).path.read_bytes())
        may = {action: service.can(actor, action, case)
               for action in ("correct", "edit_text", "status", "assign", "note", "reply")}
        draft = service.draft(desk, actor, reference, language="zh" if language(request, user) == "zh_Hans"
                              else "en") if may["reply"] else ""
        return page(request, "case.html", user, case=case, trail=trail, email=shown,
                    in_queue=service.can(actor, "queue"), label_sets=desk.label_sets,
                    transitions=storage.TRANSITIONS[case["status"]], may=may, draft=draft,
                    can_email=service.can_email(case), departments=desk.departments)

    @app.get("/cases/{reference}/pages/{number}.png")
    def page_image(user: User, reference: str, number: int) -> Response:
        original = service.case_original(desk, actor_of(user), reference)
        if original.media_type == "message/rfc822":
            raise HTTPException(404, "this case has no scan")
        png = originals.page_png(original.path.read_bytes(), original.media_type, number)
        if png is None:
            raise HTTPException(404, "no such page")
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/cases/{reference}/documents/{sha256}")
    def document(user: User, reference: str, sha256: str) -> Response:
        doc = service.case_original(desk, actor_of(user), reference, sha256=sha256)
        inline = doc.media_type in originals.INLINE_TYPES
        filename = quote(doc.filename or reference)
        media_type = doc.media_type if inline else "application/octet-stream"
        disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{filename}"
        return Response(doc.path.read_bytes(), media_type=media_type,
                        headers={"Content-Disposition": disposition})

    def back_to(reference: str, fragment: str = "") -> RedirectResponse:
        return RedirectResponse(f"/cases/{quote(reference)}{fragment}", status_code=303)

    @app.post("/cases/{reference}/labels")
    def correct(user: User, form: FormData, reference: str) -> Response:
        service.correct(desk, actor_of(user), reference, {form.get("label_set", ""): form.get("label", "")})
        return back_to(reference)

    @app.post("/cases/{reference}/accept")
    def accept(user: User, form: FormData, reference: str) -> Response:
        actor = actor_of(user)
        service.accept(desk, actor, reference)
        following = next_in_queue(actor, reference)
        return back_to(following) if following else RedirectResponse("/queue", status_code=303)

    @app.post("/cases/{reference}/undo")
    def undo(user: User, form: FormData, reference: str) -> Response:
        service.undo(desk, actor_of(user), reference)
        return back_to(reference)

    @app.post("/cases/{reference}/text")
    def edit_text(user: User, form: FormData, reference: str) -> Response:
        service.edit_text(desk, actor_of(user), reference, form.get("text", ""))
        return back_to(reference)

    @app.post("/cases/{reference}/status")
    def status(user: User, form: FormData, reference: str) -> Response:
        service.set_status(desk, actor_of(user), reference, form.get("status", ""), note=form.get("note", ""))
        return back_to(reference, "#follow-up")

    @app.post("/cases/{reference}/assign")
    def assign(user: User, form: FormData, reference: str) -> Response:
        service.assign(desk, actor_of(user), reference, department=form.get("department") or None,
                       assignee=form.get("assignee"))
        return back_to(reference, "#follow-up")

    @app.post("/cases/{reference}/notes")
    def note(user: User, form: FormData, reference: str) -> Response:
        service.add_note(desk, actor_of(user), reference, form.get("text", ""))
        return back_to(reference, "#follow-up")

    @app.post("/cases/{reference}/reply")
    def reply(user: User, form: FormData, reference: str) -> Response:
        service.reply(desk, actor_of(user), reference, form.get("text", ""),
                      method=form.get("method", "email"))
        return back_to(reference, "#trail")

    # -- uploads (scanners, supervisors) ----------------------------------------------------------

    def uploads_page(request: Request, user: auth.SignedIn, code: int = 200, **context: Any) -> HTMLResponse:
        found = service.list_uploads(desk, actor_of(user))
        return page(request, "upload.html", user, code, uploads=found,
                    pending=any(u["status"] == "pending" for u in found), everyone=user.role == "supervisor",
                    limits=state.settings.web, accept=UPLOAD_ACCEPT, **context)

    @app.get("/upload", response_class=HTMLResponse)
    def upload_get(request: Request, user: User) -> HTMLResponse:
        require(user, "upload")
        return uploads_page(request, user)

    @app.post("/upload", response_class=HTMLResponse)
    async def upload_post(request: Request, user: User) -> Response:
        """Accept a batch of scans (multipart ``files``), then process them off the event loop."""
        actor = require(user, "upload")
        limits = state.settings.web
        tr = i18n.translations(language(request, user))
        # the size is checked before a byte is read: the server holds the body to its Content-Length
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            raise HTTPException(411, "an upload needs a Content-Length")
        if int(length) > limits.max_upload_bytes:
            message = tr.gettext(
                "The upload is too large: at most %(size)s at once. Send fewer files at a time.")
            return uploads_page(request, user, 413, error=message % {
                "size": i18n.Formatter(language(request, user)).size(limits.max_upload_bytes)})
        try:
            form = await request.form(max_files=limits.max_upload_files, max_fields=20)
        except StarletteHTTPException as e:
            if "Too many files" not in str(e.detail):
                raise
            message = tr.gettext("Too many files at once: at most %(count)d. Send fewer files at a time.")
            return uploads_page(request, user, 413, error=message % {"count": limits.max_upload_files})
        try:  # the spooled files are closed (and deleted) whatever happens
            if not auth.csrf_ok(user, str(form.get("csrf", "")) or request.headers.get("X-CSRF-Token", "")):
                raise HTTPException(403, "missing or wrong form token (CSRF); reload the page")
            files = [f for f in form.getlist("files")
                     if isinstance(f, StarletteUploadFile) and (f.filename or (f.size or 0) > 0)]
            if not files:
                message = tr.gettext("Choose one or more files to upload.")
                return uploads_page(request, user, 400, error=message)
            ctx = await run_in_threadpool(state.uploads.context)
            accepted = await run_in_threadpool(
                service.upload, ctx, actor, [(f.filename or "", f.file) for f in files])
        finally:
            await form.close()
        if settings.queue != "postgres":
            todo = [a.intake_id for a in accepted if a.new]
            if todo:
                state.uploads.submit(actor.name, todo)
        return RedirectResponse("/upload", status_code=303)

    # -- supervisors --------------------------------------------------------------------------------

    @app.get("/quarantine", response_class=HTMLResponse)
    def quarantine(request: Request, user: User) -> HTMLResponse:
        records = service.list_quarantine(desk, actor_of(user))
        return page(request, "quarantine.html", user, records=records)

    @app.post("/quarantine/{record_id}/release")
    def release(user: User, form: FormData, record_id: int) -> Response:
        from pipeline.context import open_context

        actor = require(user, "quarantine")
        ctx = open_context(state.settings, actor=actor.name)
        try:
            service.release(ctx, actor, record_id)
        finally:
            ctx.db.dispose()
        return RedirectResponse("/quarantine", status_code=303)

    @app.get("/jobs", response_class=HTMLResponse)
    def jobs(request: Request, user: User, retried: int | None = None) -> HTMLResponse:
        view = service.jobs_view(desk, actor_of(user))
        return page(request, "jobs.html", user, view=view, retried=retried)

    @app.post("/jobs/retry")
    def retry_jobs(user: User, form: FormData) -> Response:
        retried = service.retry_jobs(desk, require(user, "jobs"))
        return RedirectResponse(f"/jobs?retried={retried}", status_code=303)

    def models_page(request: Request, user: auth.SignedIn, outcome: Any = None) -> HTMLResponse:
        actor = require(user, "models")
        versions = models.list_versions(state.db, state.settings.models_root)
        report = service.corrections_report(desk, actor)
        return page(request, "models.html", user, versions=versions, report=report, outcome=outcome)

    @app.get("/models", response_class=HTMLResponse)
    def models_get(request: Request, user: User) -> HTMLResponse:
        return models_page(request, user)

    @app.post("/models/retrain", response_class=HTMLResponse)
    def retrain(request: Request, user: User, form: FormData) -> HTMLResponse:
        actor = require(user, "models")
        outcome = models.retrain(state.db, state.settings.models_root, actor=actor.name,
                                 model_dir=state.settings.model_dir)
        service.record_retrain(desk, actor, outcome)
        return models_page(request, user, outcome)

    @app.post("/models/promote")
    def promote(user: User, form: FormData) -> Response:
        actor = require(user, "models")
        models.promote(state.db, state.settings.models_root, form.get("version", ""), actor=actor.name)
        return RedirectResponse("/models", status_code=303)

    @app.post("/models/rollback")
    def rollback(user: User, form: FormData) -> Response:
        actor = require(user, "models")
        models.rollback(state.db, state.settings.models_root, actor=actor.name)
        return RedirectResponse("/models", status_code=303)

    @app.get("/users", response_class=HTMLResponse)
    def users(request: Request, user: User) -> HTMLResponse:
        require(user, "users")
        with state.db.reader() as s:
            return page(request, "users.html", user, users=storage.list_users(s), roles=USER_ROLES,
                        departments=desk.departments)

    @app.post("/users")
    def add_user(user: User, form: FormData) -> Response:
        require(user, "users")
        password = form.get("password", "")
        if len(password) < auth.MIN_PASSWORD:
            raise HTTPException(400, f"a password needs at least {auth.MIN_PASSWORD} characters")
        with state.db.session() as s:
            storage.add_user(s, form.get("name", ""), auth.hash_password(password),
                             role=form.get("role", ""), department=form.get("department", ""))
        return RedirectResponse("/users", status_code=303)

    @app.post("/users/{name}")
    def change_user(user: User, form: FormData, name: str) -> Response:
        require(user, "users")
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
