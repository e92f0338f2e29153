"""Cases on SQLite and PostgreSQL: creation, references, duplicates, quarantine, lifecycle, audit, JSON
form."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import storage
from pipeline.core.model import (
    Channel,
    Classification,
    ExtractedField,
    IntakeItem,
    Label,
    PageText,
    ReviewRule,
    Source,
)

CONTRACT_KEYS = {
    "reference", "channel", "source", "sha256", "language", "text", "department", "department_confidence",
    "sentiment", "sentiment_confidence", "kind", "kind_confidence", "status", "model_version", "created_at",
    "ocr_confidence", "fields", "due_at", "needs_review", "labels", "subject", "sender", "pages",
}


def classification(
    department: str = "permits", confidence: float = 0.9, runner_up: float = 0.05
) -> Classification:
    return Classification(
        {
            "department": Label("department", department, confidence,
                                {department: confidence, "tax": runner_up}),
            "sentiment": Label("sentiment", "negative", 0.8,
                               {"negative": 0.8, "neutral": 0.15, "positive": 0.05}),
            "kind": Label("kind", "complaint", 0.7, {"complaint": 0.7, "suggestion": 0.3}),
        },
        model_version="test-v1",
    )


def item(body: str = "The queue at window 3 took two hours.", **kw: object) -> IntakeItem:
    data = body.encode()
    defaults: dict[str, object] = {
        "text": body,
        "language": "en",
        "pages": (PageText(1, body, 88.5),),
        "fields": (ExtractedField("window", "3", 21, 29),),
        "classification": classification(),
    }
    defaults.update(kw)
    source = Source.from_bytes(Channel.slip, f"scans/{abs(hash(body))}.png", data, "image/png")
    return IntakeItem(source=source, **defaults)  # type: ignore[arg-type]


def test_create_case_and_read_it_back(db: storage.Database) -> None:
    with db.session() as s:
        case = storage.create_case(s, item(), due_days=15, actor="test")
        reference = case.reference
    assert re.fullmatch(rf"{datetime.now(UTC).year}-\d{{6}}", reference)
    with db.session() as s:
        case = storage.get_case(s, reference)
        row = storage.case_to_dict(case)
    assert row.keys() >= CONTRACT_KEYS
    assert row["status"] == "new"
    assert row["department"] == "permits" and row["department_confidence"] == pytest.approx(0.9)
    assert row["sentiment"] == "negative" and row["kind"] == "complaint"
    assert row["labels"]["kind"]["scores"] == {"complaint": 0.7, "suggestion": 0.3}
    assert row["fields"] == [{"name": "window", "value": "3", "start": 21, "end": 29}]
    assert row["ocr_confidence"] == pytest.approx(88.5)
    assert row["model_version"] == "test-v1"
    assert row["needs_review"] is False
    assert row["source"].startswith("scans/") and row["channel"] == "slip"
    created = datetime.fromisoformat(row["created_at"])
    assert created.tzinfo is not None
    assert datetime.fromisoformat(row["due_at"]) - created == timedelta(days=15)
    assert row["documents"] == [{"sha256": row["sha256"], "filename": row["source"].split("/")[-1],
                                 "media_type": "image/png", "size": len(row["text"].encode()),
                                 "role": "original"}]


def test_pages_of_a_multi_page_scan_are_kept(db: storage.Database) -> None:
    two = (PageText(1, "The lift is broken.", 91.0, "eng"), PageText(2, "电梯坏了", 47.5, "chi_sim"))
    with db.session() as s:
        one_by_one = storage.create_case(s, item("The lift is broken.", pages=two), due_days=15,
                                         actor="test").reference
        (bulk,) = storage.create_cases(s, [item("Another two-page slip.", pages=two)], due_days=15,
                                       actor="test")
    with db.session() as s:
        for reference in (one_by_one, bulk.reference):
            pages = storage.case_to_dict(storage.get_case(s, reference))["pages"]
            assert [(p["number"], p["confidence"], p["language"], p["chars"]) for p in pages] == [
                (1, 91.0, "eng", 19), (2, 47.5, "chi_sim", 4)]


def test_references_are_sequential_per_year(db: storage.Database) -> None:
    refs = []
    for i in range(3):
        with db.session() as s:
            refs.append(storage.create_case(s, item(f"complaint {i}"), due_days=15, actor="t").reference)
    with db.session() as s:
        old = storage.create_case(s, item("last year"), due_days=15, actor="t",
                                  now=datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
        assert old.reference == "2025-000001"
    year = datetime.now(UTC).year
    assert refs == [f"{year}-000001", f"{year}-000002", f"{year}-000003"]


def test_rolled_back_case_leaves_no_gap(db: storage.Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        storage.create_case(s, item("rolled back"), due_days=15, actor="t")
        raise RuntimeError
    with db.session() as s:
        ref = storage.create_case(s, item("kept"), due_days=15, actor="t").reference
    assert ref.endswith("-000001")


def test_concurrent_reference_allocation_is_unique(db: storage.Database) -> None:
    per_thread, threads = 8, 4
    barrier = threading.Barrier(threads)
    refs: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with db.session() as s:
                    ref = storage.create_case(s, item(f"thread {n} case {i}"), due_days=15,
                                              actor=f"t{n}").reference
                with lock:
                    refs.append(ref)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    numbers = sorted(int(r.split("-")[1]) for r in refs)
    assert numbers == list(range(1, per_thread * threads + 1))


def test_same_sha256_is_found_and_refused(db: storage.Database) -> None:
    first = item("same bytes")
    with db.session() as s:
        reference = storage.create_case(s, first, due_days=15, actor="t").reference
    with db.session() as s:
        found = storage.find_case_by_sha256(s, first.source.sha256)
        assert found is not None and found.reference == reference
        assert storage.find_case_by_sha256(s, "0" * 64) is None
        with pytest.raises(storage.DuplicateCaseError):
            storage.create_case(s, first, due_days=15, actor="t")
        # the caller's transaction is still usable after the refused duplicate
        storage.create_case(s, item("other bytes"), due_days=15, actor="t")
    with db.session() as s:
        assert len(storage.list_cases(s)) == 2


def test_originals_listed_once_per_sha(db: storage.Database) -> None:
    it = item("with attachments")
    originals = [
        ("msg.eml", "message/rfc822", "original", it.source.sha256, 10),
        ("scan.png", "image/png", "attachment", "b" * 64, 20),
        ("scan-copy.png", "image/png", "attachment", "b" * 64, 20),
    ]
    with db.session() as s:
        case = storage.create_case(s, it, due_days=15, actor="t", originals=originals)
        docs = [(d.filename, d.role) for d in case.documents]
    assert docs == [("msg.eml", "original"), ("scan.png", "attachment")]


@pytest.mark.parametrize(
    ("cls", "thresholds", "expected"),
    [
        (classification(confidence=0.9, runner_up=0.05), None, False),
        (classification(confidence=0.45, runner_up=0.4), None, True),  # below default 0.5
        (classification(confidence=0.9, runner_up=0.05), {"department": ReviewRule(0.95)}, True),  # below it
        # the top two are close
        (classification(confidence=0.55, runner_up=0.5), {"department": ReviewRule(0.3)}, True),
        (classification(confidence=0.55, runner_up=0.5), {"department": ReviewRule(0.3, margin=0.02)}, False),
        (classification(confidence=0.9, runner_up=0.05), {"department": ReviewRule(0.5, margin=0.9)}, True),
        (None, None, True),  # not classified
    ],
)
def test_needs_review(db: storage.Database, cls: Classification | None, thresholds: dict | None,
                      expected: bool) -> None:
    with db.session() as s:
        case = storage.create_case(s, item(classification=cls), due_days=15, actor="t", thresholds=thresholds)
        assert case.needs_review is expected
        assert [c.reference for c in storage.list_cases(s, needs_review=expected)] == [case.reference]


def test_get_case_missing_says_how_to_list(db: storage.Database) -> None:
    with db.session() as s, pytest.raises(storage.CaseNotFoundError, match="complaintdesk cases list"):
        storage.get_case(s, "2026-999999")


def test_list_cases_filters_and_order(db: storage.Database) -> None:
    with db.session() as s:
        a = storage.create_case(s, item("a", classification=classification("permits")), due_days=15,
                                actor="t")
        b = storage.create_case(s, item("b", classification=classification("sanitation")), due_days=15,
                                actor="t")
        c = storage.create_case(s, item("c", classification=classification("permits")), due_days=15,
                                actor="t")
        storage.set_status(s, c, "triaged", actor="t")
    with db.session() as s:
        assert [x.reference for x in storage.list_cases(s)] == [c.reference, b.reference, a.reference]
        assert [x.reference for x in storage.list_cases(s, department="permits")] == [
            c.reference, a.reference]
        assert [x.reference for x in storage.list_cases(s, status="new")] == [b.reference, a.reference]
        assert [x.reference for x in storage.list_cases(s, status="new", department="permits")] == [
            a.reference]
        assert len(storage.list_cases(s, limit=2)) == 2
        with pytest.raises(storage.InvalidTransitionError, match="statuses are"):
            storage.list_cases(s, status="open")


def test_quarantine_is_idempotent_and_audited(db: storage.Database) -> None:
    source = Source.from_bytes(Channel.slip, "bad.pdf", b"%PDF-broken", "application/pdf")
    with db.session() as s:
        first = storage.quarantine(s, source, "truncated PDF", "UnreadableScanError", actor="scan")
    with db.session() as s:
        again = storage.quarantine(s, source, "another reason", "OtherError", actor="scan")
        assert again.id == first.id and again.reason == "truncated PDF"
        found = storage.find_quarantine_by_sha256(s, source.sha256)
        assert found is not None and found.error_type == "UnreadableScanError"
        assert [r.id for r in storage.list_quarantine(s)] == [first.id]
        events = s.scalars(select(storage.AuditEvent).where(storage.AuditEvent.action == "quarantined")).all()
        assert len(events) == 1 and events[0].detail["sha256"] == source.sha256 and events[0].actor == "scan"
        storage.resolve_quarantine(s, found, actor="clerk")
        assert storage.list_quarantine(s) == []
        assert len(storage.list_quarantine(s, include_resolved=True)) == 1


def test_status_lifecycle_and_audit(db: storage.Database) -> None:
    with db.session() as s:
        case = storage.create_case(s, item(), due_days=15, actor="scan")
        for status in ("triaged", "in_progress", "waiting_citizen", "in_progress", "resolved", "closed"):
            storage.set_status(s, case, status, actor="clerk", note=f"to {status}")
        assert case.closed_at is not None
        later = datetime.now(UTC) + timedelta(days=40)
        storage.set_status(s, case, "in_progress", actor="clerk", due_days=10, now=later)  # reopen
        assert case.closed_at is None and case.due_at == later + timedelta(days=10)
        storage.set_status(s, case, "rejected", actor="clerk")
        assert case.closed_at is not None
        reference = case.reference
    with db.session() as s:
        case = storage.get_case(s, reference)
        trail = storage.audit_trail(s, case)
    assert [e.action for e in trail] == ["created"] + ["status"] * 8
    assert trail[0].actor == "scan" and trail[0].detail["reference"] == reference
    assert [(e.detail["from"], e.detail["to"]) for e in trail[1:3]] == [
        ("new", "triaged"), ("triaged", "in_progress")]
    assert trail[1].detail["note"] == "to triaged" and trail[1].actor == "clerk"


@pytest.mark.parametrize(("path", "bad"), [((), "closed"), ((), "resolved"), (("rejected",), "closed"),
                                          (("triaged", "in_progress", "resolved", "closed"), "new")])
def test_invalid_transitions_are_refused(db: storage.Database, path: tuple[str, ...], bad: str) -> None:
    with db.session() as s:
        case = storage.create_case(s, item(), due_days=15, actor="t")
        for status in path:
            storage.set_status(s, case, status, actor="t")
        with pytest.raises(storage.InvalidTransitionError, match=f"{case.reference} is .*not {bad}"):
            storage.set_status(s, case, bad, actor="t")
        with pytest.raises(storage.InvalidTransitionError, match="unknown case status"):
            storage.set_status(s, case, "done", actor="t")


def test_setting_same_status_is_a_no_op(db: storage.Database) -> None:
    with db.session() as s:
        case = storage.create_case(s, item(), due_days=15, actor="t")
        storage.set_status(s, case, "new", actor="t")
        assert [e.action for e in storage.audit_trail(s, case)] == ["created"]


def test_every_transition_in_the_table_works(db: storage.Database) -> None:
    for i, (start, targets) in enumerate(storage.TRANSITIONS.items()):
        for j, target in enumerate(targets):
            with db.session() as s:
                case = storage.create_case(s, item(f"{i}-{j}"), due_days=15, actor="t")
                case.status = start  # put it there directly, then check the move
                storage.set_status(s, case, target, actor="t")
                assert case.status == target


def test_timestamps_are_utc_aware_after_reload(db: storage.Database) -> None:
    with db.session() as s:
        reference = storage.create_case(s, item(), due_days=15, actor="t").reference
    with db.session() as s:
        case = storage.get_case(s, reference)
        s.refresh(case)
        assert case.created_at.tzinfo is UTC and case.due_at is not None and case.due_at.tzinfo is UTC


WRITER = """
import sys
import storage
from pipeline.core.model import Channel, IntakeItem, Source
url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with storage.open_database(url) as db:
    for i in range(n):
        body = f"process {tag} complaint {i}"
        item = IntakeItem(source=Source.from_bytes(Channel.manual, "typed", body.encode()), text=body)
        with db.session() as s:
            print(storage.create_case(s, item, due_days=15, actor=tag).reference, flush=True)
"""


def test_two_processes_creating_cases_get_unique_references(db_url: str) -> None:
    import subprocess
    import sys

    n = 15
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, db_url, tag, str(n)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for tag in ("a", "b")]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    refs = [line for out, _ in outputs for line in out.split()]
    assert sorted(int(r.split("-")[1]) for r in refs) == list(range(1, 2 * n + 1))
