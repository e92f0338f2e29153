"""verify_originals and ``complaintdesk check``: originals deleted or changed in the blob store are found."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import storage
from pipeline.cli.app import app
from pipeline.core.errors import ExitCode
from pipeline.core.model import Channel, IntakeItem, PageText, Source


def keep(db: storage.Database, blobs: storage.BlobStore, name: str, data: bytes) -> str:
    """A case for ``data`` whose original is in ``blobs``, as a scan would store it."""
    body = data.decode()
    source = Source.from_bytes(Channel.slip, name, data, "image/png")
    blobs.put(data)
    with db.session() as session:
        case = storage.create_case(
            session, IntakeItem(source=source, text=body, language="en", pages=(PageText(1, body, 90.0),)),
            due_days=15, actor="test", originals=[(name, "image/png", "original", source.sha256, len(data))],
        )
        return case.reference


def damage(path: Path, data: bytes) -> None:
    os.chmod(path, 0o600)
    path.write_bytes(data)


def test_all_present_means_no_problems(db: storage.Database, tmp_path: Path) -> None:
    blobs = storage.BlobStore(tmp_path / "originals")
    keep(db, blobs, "a.png", b"slip a")
    keep(db, blobs, "b.png", b"slip b")
    with db.reader() as session:
        assert storage.verify_originals(session, blobs) == []
        assert len(storage.kept_originals(session)) == 2


def test_missing_and_damaged_originals_are_reported(db: storage.Database, tmp_path: Path) -> None:
    blobs = storage.BlobStore(tmp_path / "originals")
    fine = keep(db, blobs, "fine.png", b"slip that stays")
    gone = keep(db, blobs, "gone.png", b"slip that is deleted")
    changed = keep(db, blobs, "changed.png", b"slip that is overwritten")
    truncated = keep(db, blobs, "cut.png", b"slip that is truncated")
    blobs.path(storage.sha256_bytes(b"slip that is deleted")).unlink()
    damage(blobs.path(storage.sha256_bytes(b"slip that is overwritten")), b"slip that is 0verwritten")
    damage(blobs.path(storage.sha256_bytes(b"slip that is truncated")), b"slip that")
    with db.reader() as session:
        problems = storage.verify_originals(session, blobs)
    found = {p.original.reference: p for p in problems}
    assert fine not in found
    assert found[gone].status == storage.OriginalStatus.missing
    assert found[changed].status == storage.OriginalStatus.damaged
    assert found[truncated].status == storage.OriginalStatus.damaged
    assert "9 bytes" in found[truncated].detail
    assert found[gone].original.filename == "gone.png"
    assert len(problems) == 3


def test_a_blob_shared_by_two_cases_is_reported_for_both(db: storage.Database, tmp_path: Path) -> None:
    blobs = storage.BlobStore(tmp_path / "originals")
    data = b"one attachment sent twice"
    sha = storage.sha256_bytes(data)
    references = []
    for n in range(2):
        body = f"e-mail {n}"
        source = Source.from_bytes(Channel.email, f"<{n}@example.org>", body.encode(), "message/rfc822")
        with db.session() as session:
            references.append(storage.create_case(
                session, IntakeItem(source=source, text=body, language="en"), due_days=15, actor="test",
                originals=[("scan.png", "image/png", "attachment", sha, len(data))],
            ).reference)
    # the messages themselves were never kept either: each case lists two missing files
    with db.reader() as session:
        problems = storage.verify_originals(session, blobs)
    assert sorted({p.original.reference for p in problems if p.original.sha256 == sha}) == sorted(references)


@pytest.fixture
def home(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", db_url)
    return tmp_path / "home"


def test_check_command_exits_7_and_prints_json_when_an_original_is_missing(
    db: storage.Database, home: Path
) -> None:
    blobs = storage.BlobStore(home / "originals")
    keep(db, blobs, "kept.png", b"kept slip")
    reference = keep(db, blobs, "lost.png", b"lost slip")
    runner = CliRunner()
    clean = runner.invoke(app, ["check"])
    assert clean.exit_code == 0, clean.output
    assert "2 original(s) checked, 0 problem(s)" in clean.output
    blobs.path(storage.sha256_bytes(b"lost slip")).unlink()
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == ExitCode.storage_error, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows == [{"reference": reference, "filename": "lost.png",
                     "sha256": storage.sha256_bytes(b"lost slip"), "size": 9,
                     "status": "missing", "detail": "no file in the store"}]
    table = runner.invoke(app, ["check"])
    assert table.exit_code == ExitCode.storage_error
    assert reference in table.output and "missing" in table.output
