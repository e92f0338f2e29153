"""``complaintdesk serve`` and ``complaintdesk users add|list|disable|set-role|set-department``.

``register(app)`` adds them to the main app (``pipeline.cli``); passwords are read from a prompt (or
standard input with ``--password-stdin``), never from the command line, where ``ps`` would show them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pipeline.cli.output import compact_table, console, safe
from pipeline.cli.params import MetricsAddr, MetricsPort, choice, department_labels, start_metrics
from pipeline.config import Settings
from pipeline.core.actor import ROLES as USER_ROLES

users_app = typer.Typer(help="Accounts of the web app (complaintdesk serve).", no_args_is_help=True)



def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``users`` group to the main app."""
    app.command()(serve)
    app.add_typer(users_app, name="users")


def _settings() -> Settings:
    from pipeline.cli.app import settings

    return settings()


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    secure_cookies: Annotated[bool, typer.Option(
        "--secure-cookies", help="Mark the session cookie Secure: set it behind a TLS proxy.")] = False,
    metrics_port: MetricsPort = None,
    metrics_addr: MetricsAddr = "127.0.0.1",
) -> None:
    """Run the reviewer web app (uploads, review queue, cases, models, users) until Ctrl-C.

    With --metrics-port, Prometheus metrics (cases created and quarantined by this app's uploads, OCR
    seconds; with COMPLAINTDESK_QUEUE=postgres the queue's depth) are served on that port of their
    own, without a sign-in, as the worker serves them: the app's own pages all need one.
    """
    import uvicorn

    from review.app import create_app

    settings = _settings()
    app = create_app(settings, secure_cookies=secure_cookies)
    start_metrics(app.state.web.db, metrics_port, metrics_addr, queue=settings.queue == "postgres")
    console.print(f"serving on http://{safe(host)}:{port}/ (Ctrl-C stops)")
    if metrics_port is not None:
        console.print(f"metrics on http://{safe(metrics_addr)}:{metrics_port}/metrics")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=secure_cookies)


def _read_password(from_stdin: bool) -> str:
    from review.auth import MIN_PASSWORD

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        from pipeline.core.errors import UsageError

        raise UsageError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def _department(value: str) -> str:
    if value:
        choice("--department", value, department_labels())
    return value


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The sign-in name.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(USER_ROLES)}.")] = "reviewer",
    department: Annotated[str, typer.Option(help="For department staff: a department label.")] = "",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input.")] = False,
) -> None:
    """Add a user; the password is asked for (twice) unless --password-stdin."""
    import storage
    from review.auth import hash_password

    choice("--role", role, USER_ROLES)
    _department(department)
    password = _read_password(password_stdin)
    with storage.open_database(_settings().resolved_database_url) as db, db.session() as s:
        storage.add_user(s, name, hash_password(password), role=role, department=department)
    console.print(f"added {safe(name)} ({role})")


@users_app.command("list")
def list_() -> None:
    """The users, their roles, departments and whether they are disabled."""
    import storage

    with storage.open_database(_settings().resolved_database_url) as db, db.reader() as s:
        rows = [(safe(u.name), u.role, safe(u.department), "disabled" if u.disabled else "active",
                 u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "")
                for u in storage.list_users(s)]
    console.print(compact_table(("name", "role", "department", "state", "last sign-in"), rows))


def _change(name: str, **changes: object) -> None:
    import storage

    with storage.open_database(_settings().resolved_database_url) as db, db.session() as s:
        user = storage.get_user(s, name)
        for key, value in changes.items():
            setattr(user, key, value)
        if changes.get("disabled"):
            storage.end_web_sessions(s, user=user)  # signed out everywhere at once


@users_app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="The sign-in name.")],
    enable: Annotated[bool, typer.Option("--enable", help="Enable the user again instead.")] = False,
) -> None:
    """Stop a user signing in (and end their sessions); --enable undoes it."""
    _change(name, disabled=not enable)
    console.print(f"{safe(name)}: {'enabled' if enable else 'disabled'}")


@users_app.command("set-role")
def set_role(name: Annotated[str, typer.Argument()],
             role: Annotated[str, typer.Argument(help=f"One of {', '.join(USER_ROLES)}.")]) -> None:
    """Change a user's role."""
    choice("role", role, USER_ROLES)
    _change(name, role=role)
    console.print(f"{safe(name)}: role {role}")


@users_app.command("set-department")
def set_department(
    name: Annotated[str, typer.Argument()],
    department: Annotated[str, typer.Argument(help="A department label, or '' for none.")],
) -> None:
    """Change the department of a user (department staff see only its cases)."""
    _change(name, department=_department(department))
    console.print(f"{safe(name)}: department {safe(department) or '(none)'}")
