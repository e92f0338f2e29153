"""The IMAP poller: watch folders, turn new mail into cases exactly once, survive outages.

Per folder and batch the order is what makes the effect exactly-once:

1. fetch a batch of messages with UIDs above the stored watermark (one UID FETCH);
2. store each message in its own transaction (case, reply, ignored or quarantine record);
3. only then apply the server-side action (flag / move / mark seen) to the batch;
4. then advance the watermark (``last_uid``) and refresh the lock, in one transaction.

A crash anywhere replays at most the current batch, and a replayed message is recognised by its
content hash or Message-ID (``mailimport``), so nothing is lost and nothing is stored twice. The
same recognition makes a UIDVALIDITY change safe: the folder is simply read again from UID 1.

One poller per mailbox: a lease in the database (``storage.acquire_lock``), refreshed after each
batch and while waiting; a lease left by a poller that died on this host is taken over at once,
one left elsewhere after ``lock_ttl_seconds``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import storage
from pipeline.ack import AckError, send_ack, should_ack
from pipeline.errors import MailboxError, StorageError
from pipeline.imap import MailboxLoginError, MailSource, RawEmail, connect
from pipeline.mail_config import ImapSettings, SmtpSettings
from pipeline.mailimport import Envelope, Ingested, ingest_messages
from pipeline.run import OutcomeKind, RunContext

log = logging.getLogger(__name__)


class MailboxBusyError(MailboxError):
    """Another poller works this mailbox (it holds the lock in the database)."""


@dataclass
class PollStats:
    """What the poller did since it started."""

    outcomes: Counter[str] = field(default_factory=Counter)
    acks_sent: int = 0
    cycles: int = 0
    reconnects: int = 0

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


class Backoff:
    """Exponential back-off with jitter: ``initial * 2**n``, capped at ``maximum``, times 0.5-1.0."""

    def __init__(self, initial: float, maximum: float, rng: Callable[[], float] = random.random) -> None:
        self.initial, self.maximum, self._rng = initial, maximum, rng
        self.attempt = 0

    def next(self) -> float:
        delay = min(self.maximum, self.initial * 2 ** min(self.attempt, 30))
        self.attempt += 1
        return delay * (0.5 + self._rng() / 2)

    def reset(self) -> None:
        self.attempt = 0


def holder_id() -> str:
    """Who holds the lock: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_here(holder: str) -> bool:
    """True when ``holder`` is a process of this host that no longer exists."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Poller:
    """Polls the folders of one mailbox into cases; ``run`` is the loop, ``stop`` ends it cleanly."""

    def __init__(
        self,
        ctx: RunContext,
        imap: ImapSettings,
        *,
        smtp: SmtpSettings | None = None,
        source_factory: Callable[[ImapSettings], MailSource] = connect,
        stop: threading.Event | None = None,
        on_result: Callable[[Ingested], None] | None = None,
    ) -> None:
        self.ctx, self.imap, self.smtp = ctx, imap, smtp
        self.stop = stop or threading.Event()
        self.stats = PollStats()
        self._factory = source_factory
        self._on_result = on_result
        self._source: MailSource | None = None
        self._holder = holder_id()
        self._lock_name = f"imap-poller:{imap.mailbox_key}"

    # -- the loop -------------------------------------------------------------------------------

    def run(self, *, once: bool = False, every: float = 300.0) -> PollStats:
        """Poll until stopped (or one pass with ``once``), reconnecting with back-off on failures.

        Raises:
            MailboxBusyError: another poller holds the mailbox lock (and ``wait_for_lock`` is off),
                or this poller lost it.
            MailboxError, StorageError: with ``once``, still failing after ``once_attempts`` tries.
            ConfigError: the settings are incomplete (no password...).
        """
        self.imap.check()
        if not self._acquire_lock():
            return self.stats
        backoff = Backoff(self.imap.backoff_initial_seconds, self.imap.backoff_max_seconds)
        failures = 0
        try:
            while not self.stop.is_set():
                try:
                    self.poll_all()
                except MailboxBusyError:
                    raise
                except (MailboxError, StorageError) as e:
                    self._drop_source()
                    failures += 1
                    if once and failures >= self.imap.once_attempts:
                        raise
                    delay = backoff.next()
                    hint = " (check COMPLAINTDESK_IMAP_USER and the password)" if isinstance(
                        e, MailboxLoginError) else ""
                    log.warning("%s%s; retry %d in %.1fs", e, hint, failures, delay)
                    self._wait(delay, use_idle=False)
                    continue
                if failures:
                    log.warning("mailbox %s reachable again after %d failed attempts", self.imap.mailbox_key,
                                failures)
                failures = 0
                backoff.reset()
                if once:
                    break
                self._wait(every, use_idle=True)
        finally:
            self._drop_source()
            self._release_lock()
        return self.stats

    def poll_all(self) -> None:
        """One pass over every folder (connecting first if needed).

        Raises:
            MailboxError: the server failed; StorageError: the database failed.
        """
        if self._source is None:
            self._source = self._factory(self.imap)
            self.stats.reconnects += 1
            log.info("connected to %s", self.imap.mailbox_key)
        for folder in self.imap.folders:
            if self.stop.is_set():
                break
            self._poll_folder(self._source, folder)
        self.stats.cycles += 1

    def _poll_folder(self, source: MailSource, folder: str) -> None:
        status = source.open_folder(folder)
        key = f"{self.imap.mailbox_key}/{folder}"
        with self.ctx.db.session() as session:
            state = storage.get_mailbox_state(session, key)
            last_uid = state.last_uid if state is not None else 0
            old_validity = state.uidvalidity if state is not None else None
        if old_validity is not None and old_validity != status.uidvalidity:
            log.warning(
                "UIDVALIDITY of %s changed (%s -> %s): reading the folder again from the start; "
                "messages already stored are recognised by Message-ID and content hash",
                key, old_validity, status.uidvalidity)
            last_uid = 0
        for batch in source.fetch_after(last_uid, self.imap.batch_size, self.imap.max_message_bytes):
            if batch:
                self._handle_batch(source, key, status.uidvalidity, batch)
            if self.stop.is_set():
                break

    def _handle_batch(self, source: MailSource, key: str, uidvalidity: int, batch: list[RawEmail]) -> None:
        envelopes = [Envelope(m.data, f"imap://{key};UID={m.uid}", key, m.uid, m.size if m.too_large else 0)
                     for m in batch]
        done = ingest_messages(envelopes, self.ctx, max_message_bytes=self.imap.max_message_bytes)
        for result in done:  # every result is committed by now
            self.stats.outcomes[str(result.outcome.kind)] += 1
            self._acknowledge(result)
            if self._on_result is not None:
                self._on_result(result)
        # Only now touch the server: an oversized message was not downloaded, so it stays as it is.
        source.apply([m.uid for m in batch if not m.too_large], self.imap.after_store)
        with self.ctx.db.session() as session:
            storage.set_mailbox_state(session, key, uidvalidity=uidvalidity, last_uid=batch[-1].uid)
            if not storage.refresh_lock(session, self._lock_name, self._holder):
                raise MailboxBusyError(f"lost the lock on mailbox {self.imap.mailbox_key} to another poller; "
                                       "stopping (the last batch is stored)")
        log.info("%s: stored UIDs %d-%d (%s)", key, batch[0].uid, batch[-1].uid,
                 ", ".join(f"{k} {v}" for k, v in sorted(Counter(str(d.outcome.kind) for d in done).items())))

    def _acknowledge(self, result: Ingested) -> None:
        outcome, parsed = result.outcome, result.parsed
        if self.smtp is None or parsed is None or outcome.kind is not OutcomeKind.created or not outcome.reference:
            return
        if not should_ack(parsed, self.smtp):
            return
        try:
            ack_id = send_ack(parsed, outcome.reference, self.smtp)
        except AckError as e:
            log.warning("%s", e)
            return
        self.stats.acks_sent += 1
        with self.ctx.db.session() as session:
            case = storage.get_case(session, outcome.reference)
            storage.add_message(session, case, message_id=ack_id, in_reply_to=parsed.message_id,
                                direction="out", sender=self.smtp.from_address,
                                subject=f"[Case #{outcome.reference}]", actor=self.ctx.actor)

    # -- waiting --------------------------------------------------------------------------------

    def _wait(self, seconds: float, *, use_idle: bool) -> None:
        """Sleep (or IDLE) for ``seconds``, refreshing the lock often enough that it never goes stale."""
        deadline = time.monotonic() + seconds
        step = max(1.0, self.imap.lock_ttl_seconds / 3)
        while not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            chunk = min(remaining, step)
            if use_idle and self._source is not None:
                try:
                    if self._source.wait_for_news(chunk, self.stop):
                        return  # IDLE announced new mail: poll now
                except MailboxError as e:
                    log.warning("IDLE failed (%s); reconnecting at the next poll", e)
                    self._drop_source()
                    self.stop.wait(chunk)
            else:
                self.stop.wait(chunk)
            self._refresh_lock()

    # -- lock -----------------------------------------------------------------------------------

    def _acquire_lock(self) -> bool:
        """Take the mailbox lock; False only when stopped while waiting for it.

        Raises:
            MailboxBusyError: another poller holds it and ``wait_for_lock`` is off.
        """
        stale_after = timedelta(seconds=self.imap.lock_ttl_seconds)
        while True:
            with self.ctx.db.session() as session:
                if storage.acquire_lock(session, self._lock_name, self._holder, stale_after=stale_after):
                    return True
            with self.ctx.db.session() as session:
                lock = storage.lock_holder(session, self._lock_name)
                other, beat = (lock.holder, lock.heartbeat_at) if lock is not None else ("?", None)
            if lock is not None and _dead_here(other):
                with self.ctx.db.session() as session:
                    if storage.acquire_lock(session, self._lock_name, self._holder, stale_after=timedelta(0)):
                        log.warning("took over the lock of poller %s, which is no longer running", other)
                        return True
            message = (f"another poller ({other}) is working mailbox {self.imap.mailbox_key} "
                       f"(last heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)" if beat else
                       f"another poller is working mailbox {self.imap.mailbox_key}")
            if not self.imap.wait_for_lock:
                raise MailboxBusyError(f"{message}; this one exits. Use --wait-for-lock to wait for it instead")
            log.warning("%s; waiting for it", message)
            if self.stop.wait(min(10.0, max(1.0, self.imap.lock_ttl_seconds / 4))):
                return False

    def _refresh_lock(self) -> None:
        try:
            with self.ctx.db.session() as session:
                held = storage.refresh_lock(session, self._lock_name, self._holder)
        except StorageError as e:
            log.warning("could not refresh the mailbox lock: %s", e)
            return
        if not held:
            raise MailboxBusyError(f"lost the lock on mailbox {self.imap.mailbox_key} to another poller; stopping")

    def _release_lock(self) -> None:
        try:
            with self.ctx.db.session() as session:
                storage.release_lock(session, self._lock_name, self._holder)
        except StorageError as e:
            log.warning("could not release the mailbox lock (it expires by itself): %s", e)

    def _drop_source(self) -> None:
        if self._source is not None:
            self._source.close()
            self._source = None


def parse_interval(text: str) -> float:
    """``"5m"``, ``"30s"``, ``"1h"``, ``"90"`` (seconds) -> seconds.

    Raises:
        ValueError: not a positive duration.
    """
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600}
    value = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    if value <= 0:
        raise ValueError(f"not a positive duration: {text!r}")
    return value
