"""The IMAP side of the e-mail channel: the only module that imports imapclient.

``MailSource`` is the seam the poller depends on; ``ImapMailSource`` implements it with
imapclient, and unit tests pass a fake. Every imapclient, socket and TLS error is translated to
``MailboxError`` (``MailboxLoginError`` for a refused login) where it enters.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from pipeline.core.errors import MailboxError
from pipeline.mail.settings import AfterStore, ImapSettings, Security

log = logging.getLogger(__name__)

_T = TypeVar("_T")
#: a FETCH round trip carries at most this many bytes of messages, whatever the batch size
MAX_BATCH_BYTES = 64 * 1024 * 1024


class MailboxLoginError(MailboxError):
    """The IMAP server refused the user name or password."""


@dataclass(frozen=True, slots=True)
class RawEmail:
    """One message as fetched: its folder, UID and bytes exactly as the server holds them.

    ``size`` is the server's RFC822.SIZE; ``data`` is empty when the message was over the size
    limit and was not downloaded (the poller quarantines it with that reason).
    """

    folder: str
    uid: int
    data: bytes
    size: int

    @property
    def too_large(self) -> bool:
        return not self.data and self.size > 0


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What SELECT says about a folder."""

    folder: str
    uidvalidity: int
    uidnext: int
    exists: int


class MailSource(Protocol):
    """Where the poller reads mail from; one folder is open at a time."""

    def open_folder(self, folder: str) -> FolderStatus: ...

    def fetch_after(
        self, last_uid: int, batch_size: int, max_message_bytes: int
    ) -> Iterator[list[RawEmail]]: ...

    def apply(self, uids: Sequence[int], action: AfterStore) -> None: ...

    def wait_for_news(self, seconds: float, stop: threading.Event) -> bool: ...

    def close(self) -> None: ...


def _translate(what: str, fn: Callable[[], _T]) -> _T:
    try:
        return fn()
    except LoginError as e:
        raise MailboxLoginError(f"{what}: the server refused the login ({_text(e)})") from e
    except IMAPClientError as e:  # includes the "connection went away" abort
        raise MailboxError(f"{what}: {_text(e)}") from e
    except TimeoutError as e:
        raise MailboxError(f"{what}: timed out") from e
    except OSError as e:  # refused, reset, DNS, TLS handshake (ssl.SSLError is an OSError)
        raise MailboxError(f"{what}: {e.strerror or e}") from e


def _text(e: Exception) -> str:
    msg = e.args[0] if e.args else e
    return msg.decode("utf-8", "replace") if isinstance(msg, bytes) else str(msg)


class ImapMailSource:
    """A logged-in IMAP connection (imapclient), used by one poller."""

    def __init__(self, settings: ImapSettings) -> None:
        """Connect and log in.

        Raises:
            MailboxLoginError: the login was refused.
            MailboxError: the server cannot be reached or answered something unexpected.
            ConfigError: no password is configured.
        """
        self.settings = settings
        password = settings.password_value()
        where = f"IMAP {settings.host}:{settings.resolved_port}"
        context = ssl.create_default_context()
        self._client: IMAPClient = _translate(f"connecting to {where}", lambda: IMAPClient(
            settings.host, port=settings.resolved_port, ssl=settings.security is Security.ssl,
            ssl_context=context, timeout=settings.timeout_seconds))
        try:
            if settings.security is Security.starttls:
                _translate(f"STARTTLS with {where}", lambda: self._client.starttls(context))
            _translate(f"logging in to {where} as {settings.user}",
                       lambda: self._client.login(settings.user, password))
        except MailboxError:
            self._shutdown()
            raise
        self._folder = ""
        self._moved_to_ready = False

    def open_folder(self, folder: str) -> FolderStatus:
        """SELECT ``folder`` read-write and return its UIDVALIDITY and UIDNEXT.

        Raises:
            MailboxError: the folder does not exist or the connection failed.
        """
        info = _translate(f"selecting folder {folder!r}", lambda: self._client.select_folder(folder))
        self._folder = folder
        return FolderStatus(folder, int(info.get(b"UIDVALIDITY", 0)), int(info.get(b"UIDNEXT", 0)),
                            int(info.get(b"EXISTS", 0)))

    def fetch_after(self, last_uid: int, batch_size: int, max_message_bytes: int) -> Iterator[list[RawEmail]]:
        """Yield the messages with a UID above ``last_uid``, oldest first, in batches.

        One UID FETCH of ``BODY.PEEK[]`` per batch (PEEK leaves \\Seen alone); batches are also cut
        at ``MAX_BATCH_BYTES``. A message over ``max_message_bytes`` is yielded without its bytes.

        Raises:
            MailboxError: the connection failed.
        """
        folder = self._folder
        uids = sorted(u for u in _translate(
            f"searching {folder!r}", lambda: self._client.search(["UID", f"{last_uid + 1}:*"]))
            if u > last_uid)
        if not uids:
            return
        sizes: dict[int, int] = {}
        for chunk in _chunks(uids, 5000):
            answer = _translate(f"reading sizes in {folder!r}",
                                functools.partial(self._client.fetch, chunk, ["RFC822.SIZE"]))
            sizes.update({uid: int(v.get(b"RFC822.SIZE", 0)) for uid, v in answer.items()})
        for batch in _size_batches(uids, sizes, batch_size, max_message_bytes):
            wanted = [u for u in batch if sizes.get(u, 0) <= max_message_bytes]
            answer = _translate(
                f"fetching {len(wanted)} messages from {folder!r}",
                functools.partial(self._client.fetch, wanted, ["BODY.PEEK[]"])) if wanted else {}
            out = []
            for uid in batch:
                if uid in answer:
                    data = answer[uid].get(b"BODY[]") or b""
                    out.append(RawEmail(folder, uid, bytes(data), sizes.get(uid, len(data))))
                elif sizes.get(uid, 0) > max_message_bytes:
                    out.append(RawEmail(folder, uid, b"", sizes[uid]))
                # else: expunged between SEARCH and FETCH; nothing to do
            yield out

    def apply(self, uids: Sequence[int], action: AfterStore) -> None:
        """Apply the after-store action to messages of the open folder.

        Raises:
            MailboxError: the server refused or the connection failed.
        """
        if not uids or action is AfterStore.none:
            return
        uids = list(uids)
        folder = self._folder
        if action is AfterStore.flag:
            _translate(f"flagging in {folder!r}", lambda: self._client.add_flags(uids, [self.settings.flag]))
        elif action is AfterStore.seen:
            _translate(f"marking seen in {folder!r}", lambda: self._client.add_flags(uids, [b"\\Seen"]))
        elif action is AfterStore.move:
            self._move(uids)

    def _move(self, uids: list[int]) -> None:
        target = self.settings.move_to
        if not self._moved_to_ready:
            exists = _translate(f"checking folder {target!r}", lambda: self._client.folder_exists(target))
            if not exists:
                _translate(f"creating folder {target!r}", lambda: self._client.create_folder(target))
            self._moved_to_ready = True
        if self._client.has_capability("MOVE"):
            _translate(f"moving to {target!r}", lambda: self._client.move(uids, target))
            return
        _translate(f"copying to {target!r}", lambda: self._client.copy(uids, target))
        _translate("marking moved messages deleted", lambda: self._client.add_flags(uids, [b"\\Deleted"]))
        if self._client.has_capability("UIDPLUS"):
            _translate("expunging moved messages", lambda: self._client.uid_expunge(uids))
        else:
            _translate("expunging moved messages", lambda: self._client.expunge())

    def wait_for_news(self, seconds: float, stop: threading.Event) -> bool:
        """Wait up to ``seconds`` for new mail: IMAP IDLE when enabled and supported, else a plain sleep.

        Returns True when IDLE announced new mail; returns early when ``stop`` is set (checked every
        second during IDLE).

        Raises:
            MailboxError: the connection failed during IDLE.
        """
        if not (self.settings.idle and self._folder and self._client.has_capability("IDLE")):
            stop.wait(seconds)
            return False
        deadline = time.monotonic() + seconds
        _translate("starting IDLE", self._client.idle)
        try:
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                responses = _translate("waiting in IDLE",
                                       functools.partial(self._client.idle_check, min(remaining, 1.0)))
                if any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT")
                       for r in responses):
                    log.info("new mail announced by IDLE in %s", self._folder)
                    return True
        finally:
            _translate("ending IDLE", self._client.idle_done)
        return False

    def close(self) -> None:
        """Log out; errors on the way out are logged, not raised (the connection may be gone already)."""
        try:
            _translate("logging out", self._client.logout)
        except MailboxError as e:
            log.debug("logout failed: %s", e)
        self._shutdown()

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError, IMAPClientError):
            self._client.shutdown()

    def __enter__(self) -> ImapMailSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunks(items: list[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _size_batches(uids: list[int], sizes: dict[int, int], batch_size: int, max_message_bytes: int,
                  ) -> Iterator[list[int]]:
    batch: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0) if sizes.get(uid, 0) <= max_message_bytes else 0
        if batch and (len(batch) >= batch_size or total + size > MAX_BATCH_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(uid)
        total += size
    if batch:
        yield batch


def connect(settings: ImapSettings) -> ImapMailSource:
    """Open a logged-in ``ImapMailSource``; see ``ImapMailSource.__init__`` for what it raises."""
    return ImapMailSource(settings)
