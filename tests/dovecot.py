"""A real Dovecot IMAP server for the tests, started from a config file written into a temp dir.

Each ``Dovecot`` gets its own directory and a free port on 127.0.0.1, so pytest-xdist workers
never share one. Mail is stored as Maildir owned by ``nobody`` (Dovecot refuses uid 0). The test
helpers talk to the server with the stdlib ``imaplib`` (only ``pipeline/imap.py`` imports
imapclient).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "desk@center.example"
PASSWORD = "s3cret-pass"

CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
{plaintext}
auth_mechanisms = plain login
auth_failure_delay = 0
mailbox_idle_check_interval = 1 secs
mail_location = maildir:{root}/mail/%n
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_plugins =
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def dovecot_available() -> bool:
    return Path(DOVECOT).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _version() -> tuple[int, ...]:
    out = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(x) for x in out.split()[0].split(".")[:2])


class Dovecot:
    """One Dovecot instance with one user; ``start``/``stop`` can be called repeatedly."""

    def __init__(self) -> None:
        # pytest's tmp dirs are 0700 root: the mail user must be able to reach its maildir.
        self.root = Path(tempfile.mkdtemp(prefix="cd-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.user, self.password = USER, PASSWORD
        nobody = pwd.getpwnam("nobody")
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        for sub in ("mail", "home", "state"):
            (self.root / sub).mkdir()
            os.chown(self.root / sub, self.uid, self.gid)
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        plaintext = "auth_allow_cleartext = yes" if _version() >= (2, 4) else "disable_plaintext_auth = no"
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(CONF.format(root=self.root, port=self.port, uid=self.uid, gid=self.gid,
                                         user="nobody", group="nogroup", plaintext=plaintext))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        # its own process group, so stop() takes the imap children down too (a real restart drops clients)
        self.proc = subprocess.Popen([DOVECOT, "-c", str(self.conf), "-F"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen on {self.port}\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)  # imap/log/stats children the master left behind
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        # wait until the port is free again so a restart can bind it
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                return

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    # -- client helpers (stdlib imaplib) ----------------------------------------------------------

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, messages: list[bytes], folder: str = "INBOX", flags: str = "") -> None:
        conn = self.client()
        try:
            conn.create(_q(folder))
            for data in messages:
                typ, resp = conn.append(_q(folder), flags or None, None, data)
                assert typ == "OK", resp
        finally:
            conn.logout()

    def uids(self, folder: str = "INBOX") -> dict[int, set[str]]:
        """UID -> flags of every message in ``folder``."""
        conn = self.client()
        try:
            typ, _ = conn.select(_q(folder))
            assert typ == "OK"
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            out: dict[int, set[str]] = {}
            for item in data:
                if not item:
                    continue
                text = item.decode() if isinstance(item, bytes) else item[0].decode()
                uid = int(text.split("UID ")[1].split()[0].rstrip(")"))
                flags = text.split("FLAGS (")[1].split(")")[0].split()
                out[uid] = set(flags)
            return out
        finally:
            conn.logout()

    def delete_folder(self, folder: str) -> None:
        conn = self.client()
        try:
            conn.delete(_q(folder))
        finally:
            conn.logout()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        conn = self.client()
        try:
            typ, data = conn.status(_q(folder), "(UIDVALIDITY)")
            return int(data[0].decode().split("UIDVALIDITY ")[1].rstrip(")"))
        finally:
            conn.logout()


def _q(folder: str) -> str:
    return f'"{folder}"'


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    """One Dovecot per test session (per xdist worker); tests use their own folders on it."""
    if not dovecot_available():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    server = Dovecot()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A Dovecot of the test's own, for tests that stop and start the server or need an empty INBOX."""
    if not dovecot_available():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    server = Dovecot()
    server.start()
    yield server
    server.cleanup()
