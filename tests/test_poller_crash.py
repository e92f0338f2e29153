"""Crash safety: a poller process killed with SIGKILL mid-batch loses nothing and duplicates nothing;
and the poller survives any broken MIME (hypothesis) through the ``MailSource`` seam."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import storage
from pipeline.context import RunContext
from pipeline.mail.imap import FolderStatus, RawEmail
from pipeline.mail.poller import Poller
from pipeline.mail.settings import AfterStore, ImapSettings, Security
from tests.dovecot import Dovecot, dovecot  # noqa: F401  (fixture)
from tests.mail_support import case_count, complaint, make_context


def _child(db_url: str, home: str, imap: dict[str, object]) -> None:
    """The poller process: forked (so it starts without re-importing spaCy), then SIGKILLed."""
    real, real_many = storage.create_case, storage.create_cases

    def slow_create(*args: object, **kwargs: object) -> object:  # slow enough to be killed mid-batch
        time.sleep(0.02)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    def slow_create_many(session: object, items: Sequence[object], **kwargs: object) -> object:
        made = real_many(session, items, **kwargs)  # type: ignore[arg-type]
        time.sleep(0.02 * len(items))  # inside the batch transaction, after the INSERTs
        return made

    storage.create_case = slow_create  # type: ignore[assignment]
    storage.create_cases = slow_create_many  # type: ignore[assignment]
    ctx = make_context(db_url, Path(home))
    Poller(ctx, ImapSettings.model_validate(imap)).run(once=True)
    os._exit(0)  # skip the parent's atexit/pytest machinery


def _start(db_url: str, home: Path, imap: dict[str, object]) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(db_url, str(home), imap))
    proc.start()
    return proc


@pytest.mark.dovecot
def test_sigkill_mid_batch_loses_and_duplicates_nothing(dovecot: Dovecot, tmp_path: Path) -> None:  # noqa: F811
    total = 300  # 12 batches of 25; each run below gets killed after one or two of them
    dovecot.append([complaint(i) for i in range(total)], "INBOX")
    db_url, home = f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home"
    imap = {"host": "127.0.0.1", "port": dovecot.port, "user": dovecot.user, "password": dovecot.password,
            "security": "none", "folder": "INBOX", "batch_size": 25, "lock_ttl_seconds": 600}
    ctx = make_context(db_url, home)
    rng = random.Random(4)
    counts = []
    try:
        for _ in range(4):
            before = case_count(ctx)
            proc = _start(db_url, home, imap)
            deadline = time.monotonic() + 60
            while case_count(ctx) == before and proc.is_alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            # a batch of 25 takes >= 0.5 s: land anywhere in the next one (or between commit and flags)
            time.sleep(rng.uniform(0.0, 0.5))
            assert proc.pid is not None
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)
            assert proc.exitcode == -signal.SIGKILL
            counts.append(case_count(ctx))
        # the lock of the killed poller is taken over (its pid is gone), the rest is stored once
        proc = _start(db_url, home, imap)
        proc.join(120)
        assert proc.exitcode == 0
        assert counts == sorted(counts) and counts[-1] < total  # progress at every kill, never done early
        with ctx.db.session() as s:
            cases = storage.list_cases(s)
            subjects = Counter(c.subject for c in cases)
            state = storage.get_mailbox_state(s, f"{dovecot.user}@127.0.0.1:{dovecot.port}/INBOX")
        assert len(cases) == total and max(subjects.values()) == 1
        assert state is not None and state.last_uid == total
        flags = dovecot.uids("INBOX")
        assert len(flags) == total and all("$Complaintdesk" in f for f in flags.values())
    finally:
        ctx.db.dispose()


class FakeMailSource:
    """An in-memory mailbox at the ``MailSource`` seam: one folder, UIDs from 1."""

    def __init__(self, messages: Sequence[bytes], uidvalidity: int = 7) -> None:
        self.messages = {uid: data for uid, data in enumerate(messages, start=1)}
        self.uidvalidity = uidvalidity
        self.applied: list[int] = []

    def open_folder(self, folder: str) -> FolderStatus:
        return FolderStatus(folder, self.uidvalidity, len(self.messages) + 1, len(self.messages))

    def fetch_after(self, last_uid: int, batch_size: int, max_message_bytes: int) -> Iterator[list[RawEmail]]:
        uids = [u for u in sorted(self.messages) if u > last_uid]
        for i in range(0, len(uids), batch_size):
            yield [RawEmail("INBOX", u, self.messages[u], len(self.messages[u]))
                   for u in uids[i:i + batch_size]]

    def apply(self, uids: Sequence[int], action: AfterStore) -> None:
        self.applied.extend(uids)

    def wait_for_news(self, seconds: float, stop: threading.Event) -> bool:
        stop.wait(seconds)
        return False

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def fuzz_ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunContext]:
    folder = tmp_path_factory.mktemp("fuzz")
    ctx = make_context(f"sqlite:///{folder / 'db.sqlite'}", folder / "home")
    yield ctx
    ctx.db.dispose()


_parts = st.sampled_from([
    b"From: a@example.org\r\n", b"Subject: =?gb2312?B?broken?=\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"Content-Type: text/html; charset=big5\r\n", b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n", b"Message-ID: <fz@x>\r\n", b"In-Reply-To: <<<>\r\n",
    b"\r\n", b"--x\r\n", b"--x--\r\n", b"Content-Type: image/png\r\n", b"Content-Type: message/rfc822\r\n",
    b"Auto-Submitted: auto-replied\r\n", b"=E4=B8\r\n", b"\xd6\xd0\xce\xc4\r\n", b"<script>x</script>\r\n",
    b"iVBORw0KGgo=\r\n", b"Content-Disposition: attachment; filename*=gb2312''%D6\r\n",
])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.lists(_parts, max_size=25).map(b"".join), st.binary(max_size=300)),
                min_size=1, max_size=4))
def test_poller_survives_broken_mime(fuzz_ctx: RunContext, messages: list[bytes]) -> None:
    source = FakeMailSource(messages)
    # a mailbox of its own per example (hypothesis seeds ``random``, so not random.random())
    imap = ImapSettings(host="fake", user=f"fuzz-{uuid.uuid4().hex}", password="x",  # type: ignore[arg-type]
                        security=Security.none, batch_size=3)
    stats = Poller(fuzz_ctx, imap, source_factory=lambda _s: source).run(once=True)
    assert stats.total == len(messages)  # every message settled: case, reply, ignored or quarantined
    assert sorted(source.applied) == list(range(1, len(messages) + 1))
