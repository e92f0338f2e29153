"""IMAP/SMTP settings (``settings.imap``/``settings.smtp``): config file < environment < command line;
the password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_settings
from pipeline.core.errors import ConfigError
from pipeline.mail.settings import AfterStore, Security


def test_file_then_env_then_overrides(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> None:
    (isolated_home / "config.toml").write_text(
        '[imap]\nhost = "file.example"\nport = 1143\nuser = "file-user"\nfolder = "INBOX"\n'
        'after_store = "move"\n'
        '[smtp]\nack = true\nhost = "smtp.example"\nfrom_address = "desk@example.org"\n')
    monkeypatch.setenv("COMPLAINTDESK_IMAP_USER", "env-user")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_FOLDER", "INBOX, Complaints ,")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_PASSWORD", "hunter2-secret")
    settings = load_settings(imap={"port": 2143, "security": None})
    s = settings.imap
    assert (s.host, s.port, s.user) == ("file.example", 2143, "env-user")
    assert s.folders == ["INBOX", "Complaints"] and s.after_store is AfterStore.move
    assert s.security is Security.ssl and s.mailbox_key == "env-user@file.example:2143"
    assert s.password_value() == "hunter2-secret"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert "hunter2" not in settings.model_dump_json()
    smtp = settings.smtp
    assert smtp.ack and smtp.resolved_port == 587 and smtp.host == "smtp.example"


def test_password_file_and_missing_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    monkeypatch.setenv("COMPLAINTDESK_IMAP_PASSWORD_FILE", str(secret))
    assert load_settings(imap={"host": "h", "user": "u"}).imap.password_value() == "from-file"
    monkeypatch.delenv("COMPLAINTDESK_IMAP_PASSWORD_FILE")
    with pytest.raises(ConfigError, match="COMPLAINTDESK_IMAP_PASSWORD"):
        load_settings(imap={"host": "h", "user": "u"}).imap.password_value()
    with pytest.raises(ConfigError, match="COMPLAINTDESK_IMAP_HOST"):
        load_settings().imap.check()


def test_invalid_values_are_config_errors_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_IMAP_SECURITY", "tls-please")
    with pytest.raises(ConfigError, match=r"COMPLAINTDESK_IMAP_SECURITY \(imap\.security\).*'tls-please'"):
        load_settings()
    monkeypatch.delenv("COMPLAINTDESK_IMAP_SECURITY")
    with pytest.raises(ConfigError, match=r"command line: imap\.batch_size"):
        load_settings(imap={"batch_size": 0})
    monkeypatch.setenv("COMPLAINTDESK_SMTP_PORT", "587x")
    with pytest.raises(ConfigError, match=r"COMPLAINTDESK_SMTP_PORT \(smtp\.port\)"):
        load_settings()


def test_a_malformed_password_is_never_echoed(isolated_home: Path) -> None:
    (isolated_home / "config.toml").write_text('[imap]\npassword = ["hunter2-secret"]\n')
    with pytest.raises(ConfigError, match=r"imap\.password") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)
