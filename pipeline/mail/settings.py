"""Settings for the e-mail channel: the IMAP mailbox the poller watches and the SMTP relay for acks.

Plain models embedded in ``pipeline.config.Settings`` as ``imap`` and ``smtp``; its one loader fills
them from the ``[imap]`` / ``[smtp]`` tables of the config file, ``COMPLAINTDESK_IMAP_*`` /
``COMPLAINTDESK_SMTP_*`` environment variables and command-line options. The password is a
``SecretStr`` (or a file named by ``PASSWORD_FILE``) and is never logged or printed.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

from pipeline.core.errors import ConfigError


class Security(StrEnum):
    """How the connection to the mail server is protected."""

    ssl = "ssl"  # TLS from the first byte (IMAPS 993, SMTPS 465)
    starttls = "starttls"  # plain connection upgraded with STARTTLS (143, 587)
    none = "none"  # plain text: only for loopback test servers


class AfterStore(StrEnum):
    """What the poller does to a message on the server once its case is committed."""

    flag = "flag"  # add the keyword ``ImapSettings.flag``
    move = "move"  # move it to ``ImapSettings.move_to``
    seen = "seen"  # mark it \\Seen
    none = "none"  # leave it alone (the UID watermark alone tracks progress)


def _secret(password: SecretStr | None, password_file: Path | None, what: str) -> str:
    if password is not None and password.get_secret_value():
        return password.get_secret_value()
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"cannot read the {what} password file {password_file}: {e.strerror}") from e
    return ""


class ImapSettings(BaseModel):
    """The mailbox the poller watches (``COMPLAINTDESK_IMAP_*``, the ``[imap]`` table)."""

    host: str = ""
    #: 0 picks the usual port for ``security`` (993 for ssl, 143 otherwise)
    port: int = Field(default=0, ge=0, le=65535)
    user: str = ""
    password: SecretStr | None = None
    password_file: Path | None = None
    #: folder(s) to watch; a comma-separated list is accepted from the environment
    folder: str = "INBOX"
    security: Security = Security.ssl
    after_store: AfterStore = AfterStore.flag
    flag: str = "$Complaintdesk"
    move_to: str = "Complaintdesk/Done"
    #: messages fetched per UID FETCH round trip
    batch_size: int = 200
    timeout_seconds: float = 60.0
    #: a message larger than this is quarantined without parsing
    max_message_bytes: int = 50 * 1024 * 1024
    #: wait with IMAP IDLE between polls in ``--every`` mode when the server supports it
    idle: bool = False
    #: reconnect back-off: first delay, cap, and the number of attempts ``--once`` makes
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    once_attempts: int = 5
    #: how long the poller's lock in the database lives without a refresh
    lock_ttl_seconds: float = 120.0
    #: the poller waits for the lock instead of exiting when another poller holds it
    wait_for_lock: bool = False

    @field_validator("batch_size")
    @classmethod
    def _positive_batch(cls, v: int) -> int:
        if not 1 <= v <= 5000:
            raise ValueError("batch_size must be between 1 and 5000")
        return v

    @property
    def folders(self) -> list[str]:
        return [f.strip() for f in self.folder.split(",") if f.strip()] or ["INBOX"]

    @property
    def resolved_port(self) -> int:
        return self.port or (993 if self.security is Security.ssl else 143)

    @property
    def mailbox_key(self) -> str:
        """Identifies the mailbox for the lock and the per-folder state: ``user@host:port``."""
        return f"{self.user}@{self.host}:{self.resolved_port}"

    def password_value(self) -> str:
        """The password, from ``PASSWORD`` or ``PASSWORD_FILE``.

        Raises:
            ConfigError: neither is set, or the file cannot be read.
        """
        value = _secret(self.password, self.password_file, "IMAP")
        if not value:
            raise ConfigError(
                "no IMAP password: set COMPLAINTDESK_IMAP_PASSWORD or COMPLAINTDESK_IMAP_PASSWORD_FILE"
            )
        return value

    def check(self) -> None:
        """Fail early with a clear message when the mailbox is not configured.

        Raises:
            ConfigError: host or user is missing.
        """
        if not self.host:
            raise ConfigError("no IMAP host: set COMPLAINTDESK_IMAP_HOST or pass --host")
        if not self.user:
            raise ConfigError("no IMAP user: set COMPLAINTDESK_IMAP_USER or pass --user")


class SmtpSettings(BaseModel):
    """The relay for acknowledgments (``COMPLAINTDESK_SMTP_*``, the ``[smtp]`` table); off by default."""

    #: send an acknowledgment with the case reference when a new case is created from an e-mail
    ack: bool = False
    host: str = ""
    #: 0 picks the usual port for ``security`` (465 for ssl, 587 for starttls, 25 otherwise)
    port: int = Field(default=0, ge=0, le=65535)
    user: str = ""
    password: SecretStr | None = None
    password_file: Path | None = None
    security: Security = Security.starttls
    from_address: str = ""
    timeout_seconds: float = 30.0

    @property
    def resolved_port(self) -> int:
        return self.port or {Security.ssl: 465, Security.starttls: 587, Security.none: 25}[self.security]

    def password_value(self) -> str:
        """The password ('' when the relay needs no login).

        Raises:
            ConfigError: the password file cannot be read.
        """
        return _secret(self.password, self.password_file, "SMTP")

