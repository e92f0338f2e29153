"""Accounts and signed-in browsers: Argon2 password hashes, session tokens, CSRF tokens, login throttling.

A session cookie carries a random token; the database keeps its SHA-256 with a CSRF token for the
forms of that browser. A session idle longer than ``IDLE_TIMEOUT`` is ended. Failed sign-ins are
slowed: past ``FREE_FAILURES`` in a row, each one makes the account (or, for unknown names, the
client address) wait twice as long before the next attempt is even checked.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

import storage
from storage.models import User, utcnow

IDLE_TIMEOUT = timedelta(minutes=30)
MIN_PASSWORD = 8
#: how often a session's last-seen time is written (not on every request: readers stay readers)
TOUCH_EVERY = timedelta(minutes=1)
FREE_FAILURES = 3
FIRST_WAIT = 5.0
MAX_WAIT = 300.0
_hasher = PasswordHasher()
#: a hash to verify against when the user does not exist, so both answers take as long
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def wait_after(failures: int) -> float:
    """Seconds to wait before the next attempt after ``failures`` failed sign-ins in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT, FIRST_WAIT * 2.0 ** (failures - FREE_FAILURES))


class AddressThrottle:
    """Failed sign-ins per client address, for names that are not accounts (kept in this process)."""

    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def retry_in(self, address: str) -> float:
        with self._lock:
            count, at = self._failures.get(address, (0, 0.0))
        return max(0.0, at + wait_after(count) - time.monotonic())

    def failed(self, address: str) -> None:
        with self._lock:
            count, _ = self._failures.get(address, (0, 0.0))
            self._failures[address] = (count + 1, time.monotonic())

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


@dataclass(frozen=True)
class LoginResult:
    """A new session's token (set as the cookie) or why there is none; ``retry_in`` seconds when slowed."""

    token: str = ""
    retry_in: float = 0.0

    @property
    def ok(self) -> bool:
        return bool(self.token)


def log_in(db: storage.Database, name: str, password: str, address: str, throttle: AddressThrottle,
           *, now: datetime | None = None) -> LoginResult:
    """Check ``name`` and ``password``; on success start a session. Disabled users cannot sign in."""
    at = now or utcnow()
    with db.session() as s:
        user = storage.find_user(s, name)
        if user is None:
            wait = throttle.retry_in(address)
            if wait > 0:
                return LoginResult(retry_in=wait)
            verify_password(_DUMMY_HASH, password)
            throttle.failed(address)
            return LoginResult()
        if user.last_failed_at is not None:
            until = user.last_failed_at + timedelta(seconds=wait_after(user.failed_logins))
            wait = (until - at).total_seconds()
            if wait > 0:
                return LoginResult(retry_in=wait)
        if user.disabled or not verify_password(user.password_hash, password):
            user.failed_logins += 1
            user.last_failed_at = at
            return LoginResult()
        user.failed_logins = 0
        user.last_failed_at = None
        user.last_login_at = at
        token = secrets.token_urlsafe(32)
        storage.add_web_session(s, user, token_digest(token), secrets.token_urlsafe(32), now=at)
        storage.end_web_sessions(s, idle_before=at - IDLE_TIMEOUT)
    throttle.succeeded(address)
    return LoginResult(token=token)


@dataclass(frozen=True)
class SignedIn:
    """The user behind a request, detached from the database, and the CSRF token of their forms."""

    user_id: int
    name: str
    role: str
    department: str
    language: str
    csrf_token: str
    token_sha256: str


def current(db: storage.Database, token: str, *, now: datetime | None = None) -> SignedIn | None:
    """The signed-in user of a session cookie, or None (unknown, idle too long, or disabled since)."""
    if not token:
        return None
    at = now or utcnow()
    digest = token_digest(token)
    with db.reader() as s:
        row = storage.find_web_session(s, digest)
        if row is None:
            return None
        user: User = row.user
        signed = SignedIn(user.id, user.name, user.role, user.department, user.language, row.csrf_token,
                          digest)
        idle = at - row.last_seen_at
        disabled = user.disabled
    if idle > IDLE_TIMEOUT or disabled:
        log_out(db, digest)
        return None
    if idle > TOUCH_EVERY:
        with db.session() as s:
            found = storage.find_web_session(s, digest)
            if found is not None:
                found.last_seen_at = at
    return signed


def log_out(db: storage.Database, token_sha256: str) -> None:
    with db.session() as s:
        storage.end_web_sessions(s, token_sha256=token_sha256)


def csrf_ok(signed: SignedIn, submitted: str) -> bool:
    return bool(submitted) and secrets.compare_digest(signed.csrf_token, submitted)
