"""The intake service: accept writes a row and keeps the original; process is idempotent and resumable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import storage
from pipeline.context import RunContext
from pipeline.core.model import OutcomeKind
from pipeline.intake import MAX_ATTEMPTS, accept_file, accept_text, process, resume, scan_files, start
from pipeline.store import store_case
from tests.mail_support import make_context

TEXT = "The queue number screen at window 3 has been broken for a week and nobody can see their turn."


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[RunContext]:
    context = make_context(db_url, tmp_path / "home")
    yield context
    context.db.dispose()


def _rows(ctx: RunContext) -> list[storage.IntakeRecord]:
    with ctx.db.reader() as session:
        rows = list(session.scalars(select(storage.IntakeRecord).order_by(storage.IntakeRecord.id)))
        session.expunge_all()
        return rows


def _case_count(ctx: RunContext) -> int:
    with ctx.db.reader() as session:
        return int(session.scalar(select(func.count()).select_from(storage.Case)) or 0)


def test_accept_keeps_the_original_and_writes_a_received_row(ctx: RunContext) -> None:
    accepted = accept_text(ctx, TEXT)
    (row,) = _rows(ctx)
    assert (row.id, row.state, row.outcome, row.attempts) == (accepted.intake_id, "received", "", 0)
    assert ctx.blobs.read(row.sha256).decode() == TEXT
    assert _case_count(ctx) == 0  # nothing slow, nothing classified at accept


def test_process_stores_once_and_running_it_again_changes_nothing(ctx: RunContext) -> None:
    accepted = accept_text(ctx, TEXT)
    first = process(ctx, accepted.intake_id)
    again = process(ctx, accepted.intake_id)
    assert first.kind is OutcomeKind.created and first.reference
    assert (again.kind, again.reference) == (OutcomeKind.created, first.reference)
    (row,) = _rows(ctx)
    assert (row.state, row.outcome, row.attempts) == ("done", "created", 1)
    assert row.case_id is not None and _case_count(ctx) == 1


def test_a_store_racing_a_finished_item_writes_nothing(ctx: RunContext) -> None:
    accepted = accept_text(ctx, TEXT)
    first = process(ctx, accepted.intake_id)
    from pipeline.core.model import IntakeItem

    late = store_case(ctx, accepted.intake_id, IntakeItem(source=accepted.source, text=TEXT), [])
    assert (late.kind, late.reference) == (OutcomeKind.matched, first.reference)
    assert _case_count(ctx) == 1


def test_resume_finishes_accepted_items_and_then_has_nothing_to_do(ctx: RunContext) -> None:
    ids = [accept_text(ctx, f"{TEXT} Ticket {n}.").intake_id for n in range(3)]
    outcomes = resume(ctx)
    assert sorted(o.intake_id or 0 for o in outcomes) == ids
    assert {o.kind for o in outcomes} == {OutcomeKind.created}
    assert resume(ctx) == []
    assert [r.state for r in _rows(ctx)] == ["done"] * 3


def test_resume_with_idle_time_leaves_fresh_items_to_their_owner(ctx: RunContext) -> None:
    from datetime import timedelta

    accept_text(ctx, TEXT)
    assert resume(ctx, idle_for=timedelta(minutes=10)) == []
    assert len(resume(ctx)) == 1


def test_an_item_interrupted_too_often_is_quarantined_not_retried_forever(ctx: RunContext) -> None:
    accepted = accept_text(ctx, TEXT)
    for _ in range(MAX_ATTEMPTS):  # each start is an attempt that a crash ended
        start(ctx, [accepted.intake_id])
    outcome = process(ctx, accepted.intake_id)
    assert outcome.kind is OutcomeKind.quarantined
    assert f"interrupted {MAX_ATTEMPTS} times" in outcome.reason
    (row,) = _rows(ctx)
    assert (row.state, row.outcome) == ("done", "quarantined")


def test_the_same_file_twice_is_one_row_and_a_rescan_is_a_match(ctx: RunContext, tmp_path: Path) -> None:
    scan = tmp_path / "a.txt"
    scan.write_bytes(b"not an image")
    a = accept_file(ctx, scan)
    b = accept_file(ctx, scan)
    assert a.new and not b.new and a.intake_id == b.intake_id
    assert len(_rows(ctx)) == 1


def test_an_unreadable_entry_is_skipped_with_its_reason_and_the_batch_goes_on(
    ctx: RunContext, tmp_path: Path
) -> None:
    folder_named_as_a_file = tmp_path / "scan.png"
    folder_named_as_a_file.mkdir()
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    outcomes = list(scan_files([folder_named_as_a_file, empty], ctx))
    assert [o.kind for o in outcomes] == [OutcomeKind.skipped, OutcomeKind.quarantined]
    assert "scan.png" in outcomes[0].reason and outcomes[1].reason
    # nothing kept of the skipped
    assert [(r.source_name, r.state) for r in _rows(ctx)] == [(str(empty), "done")]
    again = list(scan_files([folder_named_as_a_file, empty], ctx))
    assert [o.kind for o in again] == [OutcomeKind.skipped, OutcomeKind.quarantined]
    assert len(_rows(ctx)) == 1  # recognised, not accepted twice


def test_two_callers_with_the_same_words_are_two_cases(ctx: RunContext) -> None:
    from pipeline.core.model import Channel
    from pipeline.intake import submit_text

    first = submit_text(TEXT, ctx)
    second = submit_text(TEXT, ctx)
    web = submit_text(TEXT, ctx, channel=Channel.web)
    assert [o.kind for o in (first, second, web)] == [OutcomeKind.created] * 3
    assert len({first.reference, second.reference, web.reference}) == 3
    assert _case_count(ctx) == 3


def test_a_rescan_restores_an_original_missing_from_the_store(ctx: RunContext, tmp_path: Path) -> None:
    scan = tmp_path / "a.pdf"
    scan.write_bytes(b"%PDF-1.4 not really a pdf")
    (first,) = scan_files([scan], ctx)
    blob = ctx.blobs.path(first.source.sha256)
    blob.unlink()
    (again,) = scan_files([scan], ctx)
    assert again.kind == first.kind and blob.is_file()
    assert ctx.blobs.read(first.source.sha256) == scan.read_bytes()


def test_an_error_that_stops_a_batch_is_kept_on_its_unfinished_rows(ctx: RunContext) -> None:
    from pipeline.core.errors import ModelError

    class BrokenClassifier:
        version, label_sets = "broken", ctx.classifier.label_sets

        def classify(self, texts: object) -> list[object]:
            raise ModelError("the model directory vanished")

    ctx.classifier = BrokenClassifier()  # type: ignore[assignment]  # a fake through the protocol's shape
    accepted = accept_text(ctx, TEXT)
    with pytest.raises(ModelError):
        process(ctx, accepted.intake_id)
    (row,) = _rows(ctx)
    assert (row.state, row.attempts) == ("received", 1)
    assert row.last_error == "ModelError: the model directory vanished"


def test_a_file_over_the_size_limit_is_quarantined_with_its_original_kept(
    ctx: RunContext, tmp_path: Path
) -> None:
    ocr_settings = ctx.settings.ocr.model_copy(update={"max_file_bytes": 100})
    ctx.settings = ctx.settings.model_copy(update={"ocr": ocr_settings})
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(500))
    (outcome,) = scan_files([big], ctx)
    assert outcome.kind is OutcomeKind.quarantined
    assert "over the limit of 100" in outcome.reason and "original is kept" in outcome.reason
    assert ctx.blobs.read(outcome.source.sha256) == big.read_bytes()
