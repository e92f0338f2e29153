"""Running the CLI in-process through ``main`` (exit codes and messages exactly as the console script
gives them), and writing cases straight into a real database for the commands to find."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

import storage
from pipeline.cli import main
from pipeline.core.model import Channel, Classification, ExtractedField, IntakeItem, Label, Source


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    """Run ``complaintdesk ARGS`` in this process; ``main`` always ends in SystemExit."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(list(args))
    captured = capsys.readouterr()
    code = ended.value.code
    return Run(int(code) if code is not None else 0, captured.out, captured.err)


def deployment_env(monkeypatch: pytest.MonkeyPatch, home: Path, db_url: str | None) -> None:
    """Point the CLI at ``home`` and ``db_url`` (None: SQLite in home), ignoring the caller's environment."""
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(home))
    if db_url is None:
        monkeypatch.delenv("COMPLAINTDESK_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", db_url)
    for name in ("COMPLAINTDESK_MODEL_DIR", "COMPLAINTDESK_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def add_case(
    db: storage.Database,
    text: str,
    *,
    channel: Channel = Channel.manual,
    name: str = "typed",
    department: str = "facilities",
    confidence: float = 0.9,
    created: datetime | None = None,
    subject: str = "",
    sender: str = "",
    fields: tuple[ExtractedField, ...] = (),
) -> str:
    """Store a case as the runner would, with a department label of ``confidence`` (below 0.5: review)."""
    label = Label("department", department, confidence, {department: confidence, "general": 1 - confidence})
    item = IntakeItem(
        source=Source.from_bytes(channel, name, f"{name}\n{text}\n{created}".encode()),
        text=text, language="en", subject=subject, sender=sender, fields=fields,
        classification=Classification({"department": label}, "m-test"),
    )
    with db.session() as session:
        return storage.create_case(session, item, due_days=15, actor="test", now=created).reference
