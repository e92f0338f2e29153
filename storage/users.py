"""Web app accounts and signed-in browsers: rows only; hashing passwords and deciding who may sign in
is the web app's (``review.auth``).

Functions take the caller's ``Session`` and never commit. A session's cookie token is never stored,
only its SHA-256, so a copy of the database does not sign anyone in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pipeline.core.errors import UsageError
from storage.models import USER_ROLES, User, WebSession, utcnow


def find_user(session: Session, name: str) -> User | None:
    return session.scalars(select(User).where(User.name == name)).one_or_none()


def get_user(session: Session, name: str) -> User:
    """The user called ``name``.

    Raises:
        UsageError: there is no such user.
    """
    user = find_user(session, name)
    if user is None:
        raise UsageError(f"no user called {name!r}; `complaintdesk users list` shows them")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def add_user(session: Session, name: str, password_hash: str, *, role: str, department: str = "") -> User:
    """A new user; ``password_hash`` is already hashed by the caller.

    Raises:
        UsageError: the name is empty or taken, or the role is unknown.
    """
    name = name.strip()
    if not name:
        raise UsageError("a user needs a name")
    check_role(role)
    if find_user(session, name) is not None:
        raise UsageError(f"there is already a user called {name!r}")
    user = User(name=name, password_hash=password_hash, role=role, department=department)
    session.add(user)
    session.flush()
    return user


def check_role(role: str) -> None:
    """Raises UsageError unless ``role`` is one of ``USER_ROLES``."""
    if role not in USER_ROLES:
        raise UsageError(f"unknown role {role!r}; allowed: {', '.join(USER_ROLES)}")


def add_web_session(session: Session, user: User, token_sha256: str, csrf_token: str,
                    *, now: datetime | None = None) -> WebSession:
    at = now or utcnow()
    row = WebSession(token_sha256=token_sha256, user_id=user.id, csrf_token=csrf_token, created_at=at,
                     last_seen_at=at)
    session.add(row)
    return row


def find_web_session(session: Session, token_sha256: str) -> WebSession | None:
    """The signed-in browser with that token hash, its user loaded."""
    return session.scalars(select(WebSession).where(WebSession.token_sha256 == token_sha256)).one_or_none()


def end_web_sessions(session: Session, *, token_sha256: str | None = None, user: User | None = None,
                     idle_before: datetime | None = None) -> int:
    """Delete one browser's session, all of a user's, or every one idle since before ``idle_before``."""
    statement = delete(WebSession)
    if token_sha256 is not None:
        statement = statement.where(WebSession.token_sha256 == token_sha256)
    if user is not None:
        statement = statement.where(WebSession.user_id == user.id)
    if idle_before is not None:
        statement = statement.where(WebSession.last_seen_at < idle_before)
    return int(session.execute(statement).rowcount or 0)  # type: ignore[attr-defined]
