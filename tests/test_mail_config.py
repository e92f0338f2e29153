"""IMAP/SMTP settings: config file < environment < command line; the password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.errors import ConfigError
from pipeline.mail.settings import AfterStore, Security, load_imap_settings, load_smtp_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("COMPLAINTDESK_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(tmp_path))


def test_file_then_env_then_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[imap]\nhost = "file.example"\nport = 1143\nuser = "file-user"\nfolder = "INBOX"\nafter_store = "move"\n'
        '[smtp]\nack = true\nhost = "smtp.example"\nfrom_address = "desk@example.org"\n')
    monkeypatch.setenv("COMPLAINTDESK_IMAP_USER", "env-user")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_FOLDER", "INBOX, Complaints ,")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_PASSWORD", "hunter2-secret")
    s = load_imap_settings(port=2143, security=None)
    assert (s.host, s.port, s.user) == ("file.example", 2143, "env-user")
    assert s.folders == ["INBOX", "Complaints"] and s.after_store is AfterStore.move
    assert s.security is Security.ssl and s.mailbox_key == "env-user@file.example:2143"
    assert s.password_value() == "hunter2-secret"
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    smtp = load_smtp_settings()
    assert smtp.ack and smtp.resolved_port == 587


def test_password_file_and_missing_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_PASSWORD_FILE", str(secret))
    assert load_imap_settings(host="h", user="u").password_value() == "from-file"
    monkeypatch.delenv("COMPLAINTDESK_IMAP_PASSWORD_FILE")
    with pytest.raises(ConfigError, match="COMPLAINTDESK_IMAP_PASSWORD"):
        load_imap_settings(host="h", user="u").password_value()
    with pytest.raises(ConfigError, match="COMPLAINTDESK_IMAP_HOST"):
        load_imap_settings().check()


def test_invalid_values_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_IMAP_SECURITY", "tls-please")
    with pytest.raises(ConfigError, match="invalid imap configuration"):
        load_imap_settings()
    monkeypatch.delenv("COMPLAINTDESK_IMAP_SECURITY")
    with pytest.raises(ConfigError):
        load_imap_settings(batch_size=0)
