"""The queue's settings and JSON logs, without a database: the variable needs PostgreSQL, wherever
each of the two is set; ``--log-format json`` writes one valid, ASCII-escaped JSON object per line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from pipeline.cli.output import JsonFormatter
from pipeline.config import load_settings
from pipeline.core.errors import ConfigError

PG = "postgresql+psycopg://complaintdesk@db.internal/complaintdesk"


def test_the_queue_is_off_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COMPLAINTDESK_QUEUE", raising=False)
    assert load_settings().queue == ""


def test_the_queue_needs_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTDESK_QUEUE", "postgres")
    monkeypatch.delenv("COMPLAINTDESK_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="COMPLAINTDESK_QUEUE=postgres .* postgresql"):
        load_settings()
    with pytest.raises(ConfigError, match="queue"):
        load_settings(queue="redis", database_url=PG)


def test_the_queue_in_the_environment_and_the_url_in_the_file(
    monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "config.toml").write_text(f'database_url = "{PG}"\nqueue_heartbeat_seconds = 5\n')
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(isolated_home))
    monkeypatch.setenv("COMPLAINTDESK_QUEUE", "postgres")
    monkeypatch.setenv("COMPLAINTDESK_QUEUE_RETRY_DELAY_SECONDS", "2.5")
    s = load_settings()
    assert (s.queue, s.database_url, s.queue_heartbeat_seconds, s.queue_retry_delay_seconds) == (
        "postgres", PG, 5.0, 2.5)


def test_json_log_lines_are_valid_json_with_control_characters_escaped() -> None:
    record = logging.LogRecord("pipeline.worker", logging.WARNING, __file__, 1,
                               "intake item %d: %s", (7, "slip\x1b[31m\u202e 投诉.png"), None)
    line = JsonFormatter().format(record)
    assert line.isascii() and "\x1b" not in line and "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "intake item 7: slip\x1b[31m\u202e 投诉.png"
    assert (entry["level"], entry["logger"]) == ("WARNING", "pipeline.worker")


def test_queue_health_on_sqlite_says_there_is_no_queue(tmp_path: Path) -> None:
    import storage
    from pipeline.worker import queue_health

    url = f"sqlite:///{tmp_path / 'complaintdesk.db'}"
    storage.migrate(url)
    db = storage.open_database(url)
    try:
        health = queue_health(db)
    finally:
        db.dispose()
    assert not health.reachable and "needs PostgreSQL" in health.problem
