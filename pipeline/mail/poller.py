"""The IMAP poller: watch folders, turn new mail into cases exactly once, survive outages.

Per folder and batch the order is what makes the effect exactly-once:

1. fetch a batch of messages with UIDs above the stored watermark (one UID FETCH);
2. store the batch in one transaction (cases, replies, ignored or quarantine records, and the
   acknowledgments to send, queued in the outbox);
3. only then apply the server-side action (flag / move / mark seen) to the batch;
4. then advance the watermark (``last_uid``) and refresh the lock, in one transaction;
5. then send the queued acknowledgments, marking each sent (pending ones are also sent when the
   poller starts and at every pass, so a crash between commit and send loses none).

With ``COMPLAINTDESK_QUEUE=postgres`` step 2 only accepts the batch: its intake rows and their jobs
commit together, and ``complaintdesk worker`` processes them (the poller sends the acknowledgments
the workers queue in its outbox at its next pass).

A crash anywhere replays at most the current batch, and a replayed message is recognised by its
content hash or Message-ID (``mailimport``), so nothing is lost and nothing is stored twice. The
same recognition makes a UIDVALIDITY change safe: the folder is simply read again from UID 1.

One poller per mailbox: a lease in the database (``storage.acquire_lock``), refreshed after each
batch and while waiting; a lease left by a poller that died on this host is taken over at once,
one left elsewhere after ``lock_ttl_seconds``. When the database is down at start, taking the lock
is retried with the same back-off as IMAP failures.

IDLE watches one folder. With several folders configured, the poller IDLEs on the first one and
polls the others at every pass (``every``), so mail in the first folder is picked up at once and
mail in the others within one interval.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import tenacity

import storage
from pipeline.context import RunContext
from pipeline.core.errors import MailboxError, StorageError
from pipeline.intake import RESUME_IDLE, queued, resume
from pipeline.mail.ack import AckError, send_ack, should_ack
from pipeline.mail.imap import MailboxLoginError, MailSource, RawEmail, connect
from pipeline.mail.ingest import Envelope, Ingested, ingest_messages
from pipeline.mail.parse import ParsedMessage
from pipeline.mail.settings import ImapSettings, SmtpSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")


#: an acknowledgment the relay refused this many times stays in the outbox unsent (see ``last_error``)
MAX_ACK_ATTEMPTS = 5


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


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with jitter: ``initial * 2**n``, capped at ``maximum``, times 0.5-1.0."""

    initial: float
    maximum: float

    def wait(self) -> tenacity.wait.wait_base:
        """The tenacity wait strategy: half the delay fixed, the other half random ("equal jitter"),
        so pollers that failed together spread out but none retries sooner than half the delay."""
        half_initial, half_maximum = self.initial / 2, self.maximum / 2
        fixed = tenacity.wait_exponential(multiplier=half_initial, max=half_maximum)
        return fixed + tenacity.wait_random_exponential(multiplier=half_initial, max=half_maximum)


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
        self._uidnext: dict[str, int] = {}  # folder -> UIDNEXT when it was last polled

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
        backoff = Backoff(self.imap.backoff_initial_seconds, self.imap.backoff_max_seconds)
        if not self._acquire_lock_retrying(backoff, once=once):
            return self.stats
        # Messages a crashed poller accepted but never stored are finished before new mail is fetched
        # (with the queue on, they have their jobs and the workers own them).
        if not queued(self.ctx):
            resume(self.ctx, idle_for=RESUME_IDLE,
                   acknowledge=self._wants_ack if self.smtp is not None else None)
        if self.imap.idle and len(self.imap.folders) > 1 and not once:
            log.info("IDLE watches folder %s; the other folders (%s) are polled every %.0fs",
                     self.imap.folders[0], ", ".join(self.imap.folders[1:]), every)
        try:
            while not self.stop.is_set():
                failures = self._poll_all_retrying(backoff, once=once)
                if failures is None:
                    break  # stopped while backing off
                if failures:
                    log.warning("mailbox %s reachable again after %d failed attempts", self.imap.mailbox_key,
                                failures)
                if once:
                    break
                self._wait(every, use_idle=True)
        finally:
            self._drop_source()
            self._release_lock()
        return self.stats

    def _poll_all_retrying(self, backoff: Backoff, *, once: bool) -> int | None:
        """``poll_all``, retried with back-off while the server or the database fails (a fresh
        back-off for every pass); the number of failed tries before it went through, None when
        stopped while waiting.

        Raises:
            MailboxBusyError: another poller took the lock (retrying cannot help).
            MailboxError, StorageError: with ``once``, still failing after ``once_attempts`` tries.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((MailboxError, StorageError))
            & tenacity.retry_if_not_exception_type(MailboxBusyError),
            wait=backoff.wait(),
            stop=tenacity.stop_after_attempt(self.imap.once_attempts) if once else tenacity.stop_never,
            # the lock is refreshed while waiting, and a stop request ends the wait
            sleep=lambda seconds: self._wait(seconds, use_idle=False),
            before_sleep=self._log_poll_failure,
            reraise=True,
        )
        for attempt in retrying:
            if self.stop.is_set():
                return None
            with attempt:  # a failure is kept in the attempt, and the loop retries or re-raises it
                self.poll_all()
                return attempt.retry_state.attempt_number - 1
        return None

    def _log_poll_failure(self, state: tenacity.RetryCallState) -> None:
        self._drop_source()
        error = state.outcome.exception() if state.outcome is not None else None
        login = isinstance(error, MailboxLoginError)
        hint = " (check COMPLAINTDESK_IMAP_USER and the password)" if login else ""
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s%s; retry %d in %.1fs", error, hint, state.attempt_number, delay)

    def poll_all(self) -> None:
        """One pass over every folder (connecting first if needed).

        Raises:
            MailboxError: the server failed; StorageError: the database failed.
        """
        self.send_pending_acks()
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
        self._uidnext[folder] = status.uidnext
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
        done = ingest_messages(envelopes, self.ctx, max_message_bytes=self.imap.max_message_bytes,
                               acknowledge=self._wants_ack if self.smtp is not None else None,
                               outbox=self.imap.mailbox_key,
                               ack_from=self.smtp.from_address if self.smtp is not None else "")
        for result in done:  # every result is committed by now
            self.stats.outcomes[str(result.outcome.kind)] += 1
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
        self.send_pending_acks()

    # -- acknowledgments ------------------------------------------------------------------------

    def _wants_ack(self, parsed: ParsedMessage) -> bool:
        return self.smtp is not None and should_ack(parsed, self.smtp)

    def send_pending_acks(self) -> int:
        """Send the acknowledgments queued in the outbox for this mailbox; returns how many went out.

        Each is marked sent (and recorded as an outgoing message of its case) right after the relay
        took it. When the relay fails, the rest wait for the next pass.

        Raises:
            StorageError: the database failed.
        """
        if self.smtp is None:
            return 0
        with self.ctx.db.session() as session:
            queued = storage.pending_acks(session, mailbox=self.imap.mailbox_key,
                                          max_attempts=MAX_ACK_ATTEMPTS)
        sent = 0
        for ack in queued:
            try:
                message_id = send_ack(ack.reference, ack.request, self.smtp)
            except AckError as e:
                with self.ctx.db.session() as session:
                    storage.mark_ack_failed(session, ack.id, str(e))
                left = MAX_ACK_ATTEMPTS - ack.attempts - 1
                log.warning("%s (%s)", e, f"retrying at the next pass, {left} attempts left" if left else
                            "giving up: the acknowledgment stays unsent in the outbox")
                break  # the relay is likely down: the others wait for the next pass
            with self.ctx.db.session() as session:
                if storage.mark_ack_sent(session, ack.id, message_id):
                    case = storage.get_case(session, ack.reference)
                    storage.add_message(session, case, message_id=message_id,
                                        in_reply_to=ack.request.in_reply_to, direction="out",
                                        sender=self.smtp.from_address,
                                        subject=f"[Case #{ack.reference}]", actor=self.ctx.actor)
            sent += 1
        self.stats.acks_sent += sent
        return sent

    # -- waiting --------------------------------------------------------------------------------

    def _wait(self, seconds: float, *, use_idle: bool) -> None:
        """Sleep (or IDLE) for ``seconds``, refreshing the lock often enough that it never goes stale."""
        deadline = time.monotonic() + seconds
        step = max(1.0, self.imap.lock_ttl_seconds / 3)
        if (use_idle and self._source is not None and len(self.imap.folders) > 1
                and self._news_in_first_folder()):
            return
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

    def _news_in_first_folder(self) -> bool:
        """Select the first folder again for IDLE; True if it got mail since it was polled."""
        first = self.imap.folders[0]
        assert self._source is not None
        try:
            status = self._source.open_folder(first)
        except MailboxError as e:
            log.warning("cannot select %s for IDLE (%s); reconnecting at the next poll", first, e)
            self._drop_source()
            return False
        return status.uidnext != self._uidnext.get(first, status.uidnext)

    # -- lock -----------------------------------------------------------------------------------

    def _acquire_lock_retrying(self, backoff: Backoff, *, once: bool) -> bool:
        """``_acquire_lock``, retried with back-off while the database cannot be reached.

        Raises:
            StorageError: with ``once``, the database still failed after ``once_attempts`` tries.
            MailboxBusyError: see ``_acquire_lock``.
        """
        taken = retry_while_database_down(self._acquire_lock, "take the mailbox lock", backoff, self.stop,
                                          attempts=self.imap.once_attempts if once else None)
        return bool(taken)

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
                raise MailboxBusyError(
                    f"{message}; this one exits. Use --wait-for-lock to wait for it instead")
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
            raise MailboxBusyError(
                f"lost the lock on mailbox {self.imap.mailbox_key} to another poller; stopping")

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


def retry_while_database_down(
    action: Callable[[], _T],
    doing: str,
    backoff: Backoff,
    stop: threading.Event,
    *,
    attempts: int | None = None,
) -> _T | None:
    """Run ``action``; while it fails with a ``StorageError`` (not a ``SchemaError``: retrying does
    not fix a schema), log and retry after waiting as ``backoff`` says.

    Returns None when ``stop`` is set while waiting.

    Raises:
        StorageError: still failing after ``attempts`` tries (None: retry until stopped).
    """

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # a stop request ends the wait early

    def log_failure(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("cannot %s, the database is unavailable (%s); retry %d in %.1fs", doing, error,
                    state.attempt_number, delay)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(StorageError)
        & tenacity.retry_if_not_exception_type(storage.SchemaError),
        wait=backoff.wait(),
        stop=tenacity.stop_after_attempt(attempts) if attempts is not None else tenacity.stop_never,
        sleep=sleep,
        before_sleep=log_failure,
        reraise=True,
    )
    for attempt in retrying:
        if stop.is_set():
            return None
        with attempt:
            return action()
    return None


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
