"""The console script's e-mail commands, end to end: ``mail import`` and ``poll`` against real Dovecot."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import storage
from tests.dovecot import Dovecot, dovecot  # noqa: F401  (fixture)
from tests.mail_support import SAMPLES, complaint

EXE = str(Path(sys.executable).parent / "complaintdesk")
ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not (ROOT / "classifiers" / "model" / "meta.json").exists(),
                                reason="no trained model: run `make model`")


def base_env(tmp_path: Path) -> dict[str, str]:
    """A fresh home with a migrated SQLite database (in-process: faster than `complaintdesk init`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    env.update({"COMPLAINTDESK_HOME": str(tmp_path / "home"), "COLUMNS": "200"})
    (tmp_path / "home").mkdir()
    storage.migrate(db_url(tmp_path))
    return env


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'home' / 'complaintdesk.db').resolve()}"


def imap_env(env: dict[str, str], server: Dovecot, **extra: str) -> dict[str, str]:
    out = dict(env)
    out.update({"COMPLAINTDESK_IMAP_HOST": "127.0.0.1", "COMPLAINTDESK_IMAP_PORT": str(server.port),
                "COMPLAINTDESK_IMAP_USER": server.user, "COMPLAINTDESK_IMAP_SECURITY": "none",
                "COMPLAINTDESK_IMAP_BACKOFF_INITIAL_SECONDS": "0.1"})
    out.update(extra)
    return out


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], env=env, capture_output=True, text=True, timeout=300)


def test_mail_import_then_poll_once(dovecot: Dovecot, tmp_path: Path) -> None:  # noqa: F811
    env = base_env(tmp_path)
    first = run(env, "mail", "import", str(SAMPLES), "--json")
    assert first.returncode == 0, first.stderr
    rows = [json.loads(line) for line in first.stdout.splitlines() if line.strip()]
    assert len(rows) == len(list(SAMPLES.glob("*.eml")))
    assert sorted(r["outcome"] for r in rows).count("ignored") == 2
    # the same mail arriving over IMAP is recognised (Message-ID / hash): no new case
    password_file = tmp_path / "imap-password"
    password_file.write_text(dovecot.password + "\n")
    dovecot.append([(SAMPLES / "01-plain-en.eml").read_bytes(), complaint(1)])
    polled = run(imap_env(env, dovecot, COMPLAINTDESK_IMAP_PASSWORD_FILE=str(password_file)),
                 "poll", "--once")
    assert polled.returncode == 0, polled.stderr
    assert "created" in polled.stdout and dovecot.password not in polled.stdout + polled.stderr
    # created 1 (the new complaint), matched 1 (the sample imported before), ignored 0, quarantined 0
    assert re.search(r"│\s*1\s*│\s*1\s*│\s*0\s*│\s*0\s*│", polled.stdout), polled.stdout
    db = storage.open_database(db_url(tmp_path))
    with db.session() as s:
        assert len(storage.list_cases(s)) == len([r for r in rows if r["outcome"] == "created"]) + 1
    db.dispose()


def test_poll_every_stops_cleanly_on_sigterm(dovecot: Dovecot, tmp_path: Path) -> None:  # noqa: F811
    env = imap_env(base_env(tmp_path), dovecot, COMPLAINTDESK_IMAP_PASSWORD=dovecot.password)
    dovecot.append([complaint(i) for i in range(3)])
    proc = subprocess.Popen([EXE, "poll", "--every", "1s", "--folder", "INBOX"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = err = ""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all("$Complaintdesk" in f for f in dovecot.uids().values()):
            time.sleep(0.2)
        assert all("$Complaintdesk" in f for f in dovecot.uids().values()), proc.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "SIGTERM received" in err and "poll (stopped)" in out


def test_poll_wrong_password_exits_with_mailbox_error(dovecot: Dovecot, tmp_path: Path) -> None:  # noqa: F811
    env = imap_env(base_env(tmp_path), dovecot, COMPLAINTDESK_IMAP_PASSWORD="not-the-password",
                   COMPLAINTDESK_IMAP_ONCE_ATTEMPTS="2")
    proc = run(env, "poll", "--once")
    assert proc.returncode == 8, proc.stdout + proc.stderr
    assert "refused the login" in proc.stderr and "not-the-password" not in proc.stdout + proc.stderr


def test_poll_waits_for_the_database_then_gives_up_in_once_mode(dovecot: Dovecot, tmp_path: Path) -> None:  # noqa: F811
    from tests.dovecot import free_port

    down = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    env = imap_env(base_env(tmp_path), dovecot, COMPLAINTDESK_IMAP_PASSWORD=dovecot.password,
                   COMPLAINTDESK_IMAP_ONCE_ATTEMPTS="3", COMPLAINTDESK_DATABASE_URL=down)
    proc = run(env, "poll", "--once")
    assert proc.returncode == 7, proc.stdout + proc.stderr  # a storage error, after retrying
    assert "cannot open the database, the database is unavailable" in proc.stderr
    assert "retry 1 in" in proc.stderr and "retry 2 in" in proc.stderr and "retry 3 in" not in proc.stderr
