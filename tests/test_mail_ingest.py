"""E-mail into cases without IMAP: dedupe, noise, threading, quarantine, attachments, mbox/Maildir import."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import storage
from pipeline.context import RunContext
from pipeline.core.model import Classification
from pipeline.mail.ingest import Envelope, import_paths, ingest_messages, iter_envelopes
from tests.fakes import RecordingClassifier
from tests.mail_support import SAMPLES, bundled_model, case_count, complaint, make_context


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[RunContext]:
    context = make_context(db_url, tmp_path / "home", classifier=RecordingClassifier(bundled_model()))
    yield context
    context.db.dispose()


@pytest.fixture
def sqlite_ctx(tmp_path: Path) -> Iterator[RunContext]:
    context = make_context(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "home")
    yield context
    context.db.dispose()


def env(data: bytes, n: int = 0) -> Envelope:
    return Envelope(data, f"test#{n}", "box/INBOX", n)


def test_new_mail_becomes_cases_once(ctx: RunContext) -> None:
    msgs = [complaint(i) for i in range(5)]
    done = ingest_messages([env(m, i) for i, m in enumerate(msgs)], ctx)
    assert [d.outcome.kind for d in done] == ["created"] * 5
    assert isinstance(ctx.classifier, RecordingClassifier) and ctx.classifier.calls == [5]  # one batch
    case = done[0].outcome.case
    assert case is not None and case["channel"] == "email" and case["subject"].startswith("Complaint 0")
    assert case["sender"] == "citizen0@example.org" and case["department"] == "window_services"
    assert ctx.blobs.exists(case["sha256"])
    again = ingest_messages([env(m, i) for i, m in enumerate(msgs)], ctx)
    assert [d.outcome.kind for d in again] == ["matched"] * 5
    assert [d.outcome.reference for d in again] == [d.outcome.reference for d in done]
    assert case_count(ctx) == 5


def test_same_message_id_different_bytes_is_recognised(ctx: RunContext) -> None:
    first = complaint(1, mid="<same@example.org>")
    resent = b"Received: from relay by mx; Mon, 2 Nov 2026 09:00:00 +0000\r\n" + first
    ingest_messages([env(first)], ctx)
    (d,) = ingest_messages([env(resent)], ctx)
    assert d.outcome.kind == "matched" and case_count(ctx) == 1


def test_a_second_complaint_reusing_a_message_id_is_a_new_case(ctx: RunContext) -> None:
    # two citizens, or a broken mailer: the Message-ID alone does not make two messages one
    first = complaint(1, mid="<reused@example.org>", body="The lift in hall B is stuck on floor 2.")
    second = complaint(2, mid="<reused@example.org>", body="Window 7 closed an hour early today.")
    (a,) = ingest_messages([env(first, 1)], ctx)
    (b,) = ingest_messages([env(second, 2)], ctx)
    assert (a.outcome.kind, b.outcome.kind) == ("created", "created")
    assert a.outcome.reference != b.outcome.reference and case_count(ctx) == 2
    assert b.outcome.case is not None and "Window 7" in b.outcome.case["text"]
    both = ingest_messages([env(first, 3), env(second, 4)], ctx)  # fetched again: each matches its own case
    assert [d.outcome.reference for d in both] == [a.outcome.reference, b.outcome.reference]


def test_noise_is_ignored_with_reason(ctx: RunContext) -> None:
    data = (SAMPLES / "06-auto-reply.eml").read_bytes()
    (d,) = ingest_messages([env(data)], ctx)
    assert d.outcome.kind == "ignored" and "auto-submitted" in d.outcome.reason
    (d2,) = ingest_messages([env(data)], ctx)
    assert d2.outcome.kind == "ignored"
    with ctx.db.session() as s:
        assert storage.find_ignored(s, sha256=d.parsed.sha256).mailbox == "box/INBOX"  # type: ignore[union-attr]
    assert case_count(ctx) == 0


def test_reply_threads_by_reference_and_by_in_reply_to(ctx: RunContext) -> None:
    (orig,) = ingest_messages([env(complaint(1, mid="<orig@example.org>"))], ctx)
    ref = orig.outcome.reference
    by_ref = complaint(2, subject=f"Re: Complaint [Case #{ref}]", body="Any news?\n\nOn Mon wrote:\n> old")
    by_header = complaint(3, subject="Re: Complaint 1", body="Still waiting.",
                          In_Reply_To="<orig@example.org>")
    done = ingest_messages([env(by_ref, 2), env(by_header, 3)], ctx)
    assert [(d.outcome.kind, d.outcome.reference) for d in done] == [("matched", ref), ("matched", ref)]
    assert case_count(ctx) == 1
    with ctx.db.session() as s:
        texts = [m.text for m in storage.get_case(s, ref).messages]  # type: ignore[arg-type]
    assert texts == ["Any news?", "Still waiting."]
    # a reply seen again is not added twice
    assert ingest_messages([env(by_ref)], ctx)[0].outcome.kind == "matched"
    with ctx.db.session() as s:
        assert len(storage.get_case(s, ref).messages) == 2  # type: ignore[arg-type]


def test_reply_in_the_same_batch_as_its_original(ctx: RunContext) -> None:
    orig = complaint(1, mid="<o2@example.org>")
    reply = complaint(2, subject="Re: x", body="More detail.", References="<o2@example.org>")
    done = ingest_messages([env(orig, 1), env(reply, 2)], ctx)
    assert [d.outcome.kind for d in done] == ["created", "matched"]
    assert done[0].outcome.reference == done[1].outcome.reference


def test_malformed_and_empty_are_quarantined_with_bytes_kept(ctx: RunContext) -> None:
    bad = b"\x00\x01 this is not mail at all"
    empty_body = complaint(1, subject=" ", body=" ")
    done = ingest_messages([env(bad, 1), env(empty_body, 2), env(complaint(3), 3)], ctx)
    assert [d.outcome.kind for d in done] == ["quarantined", "quarantined", "created"]
    assert "headers" in done[0].outcome.reason and "no text" in done[1].outcome.reason
    assert ctx.blobs.exists(done[0].outcome.source.sha256)
    assert ingest_messages([env(bad)], ctx)[0].outcome.kind == "quarantined"


def test_oversized_message_is_quarantined(ctx: RunContext) -> None:
    (d,) = ingest_messages([Envelope(b"", "imap://x/INBOX;UID=9", "x/INBOX", 9, declared_size=10_000)], ctx,
                           max_message_bytes=1000)
    assert d.outcome.kind == "quarantined" and "over the limit of 1,000" in d.outcome.reason


def test_import_eml_mbox_and_maildir(tmp_path: Path, sqlite_ctx: RunContext) -> None:
    ctx = sqlite_ctx
    box = mailbox.mbox(tmp_path / "archive.mbox")
    for i in range(3):
        box.add(complaint(100 + i))
    box.close()
    md = mailbox.Maildir(tmp_path / "Maildir")
    for i in range(2):
        md.add(complaint(200 + i))
    (tmp_path / "one.eml").write_bytes(complaint(300))
    paths = [tmp_path / "archive.mbox", tmp_path / "Maildir", tmp_path / "one.eml"]
    assert len(list(iter_envelopes(paths))) == 6
    kinds = [o.kind for o in import_paths(paths, ctx, batch_size=4)]
    assert kinds == ["created"] * 6
    assert [o.kind for o in import_paths(paths, ctx)] == ["matched"] * 6


def test_import_bundled_samples(sqlite_ctx: RunContext) -> None:
    ctx = sqlite_ctx
    ctx.settings.ocr.languages = "eng"
    outcomes = {Path(o.source.name).name if o.source.name.endswith(".eml") else o.source.name: o
                for o in import_paths([SAMPLES], ctx)}
    kinds = sorted(o.kind for o in outcomes.values())
    assert kinds.count("ignored") == 2 and kinds.count("created") >= 4
    slip = outcomes["<slip-0005@center.example>"]
    assert slip.kind == "created" and "soap" in (slip.case or {})["text"].lower()
    assert (slip.case or {})["ocr_confidence"] is not None


class PoisonClassifier(RecordingClassifier):
    """The real model, except that a text containing "poison" gets its department label twice (under a
    second key): the database's unique (case, label set) constraint then really rejects that case."""

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        out = super().classify(texts)
        return [Classification({**c.labels, "department-again": c.labels["department"]}, c.model_version)
                if "poison" in text else c for text, c in zip(texts, out, strict=True)]


def test_a_message_the_store_chokes_on_is_quarantined_alone(ctx: RunContext) -> None:
    assert isinstance(ctx.classifier, RecordingClassifier)
    ctx.classifier = PoisonClassifier(ctx.classifier.inner)
    # the batch is written in bulk first; when the database rejects it, message by message
    msgs = [complaint(1), complaint(2, body="A poison pill of a complaint about window 3."), complaint(3)]
    done = ingest_messages([env(m, i) for i, m in enumerate(msgs)], ctx)
    assert [d.outcome.kind for d in done] == ["created", "quarantined", "created"]
    reason = done[1].outcome.reason
    assert "internal error while storing" in reason and "IntegrityError" in reason and "case_labels" in reason
    assert case_count(ctx) == 2
    with ctx.db.session() as s:
        assert storage.find_quarantine_by_sha256(s, done[1].outcome.source.sha256) is not None


def test_poison_header_does_not_stop_the_batch(tmp_path: Path, sqlite_ctx: RunContext) -> None:
    # issue 10: a bad base64 word raised HeaderParseError out of ingest_messages; nothing was stored
    poison = b"From: a@b.c\r\nSubject: =?utf-8?B?a?=\r\nMessage-ID: <p2@x>\r\n\r\nhello\r\n"
    # no subject, no body: nothing to read
    unusable = b"From: =?utf-8?B?a?=\r\nMessage-ID: <p3@x>\r\n\r\n\r\n"
    for name, data in [("1.eml", complaint(1)), ("2.eml", poison), ("3.eml", unusable),
                       ("4.eml", complaint(4))]:
        (tmp_path / name).write_bytes(data)
    outcomes = list(import_paths([tmp_path / f"{n}.eml" for n in range(1, 5)], sqlite_ctx))
    assert [o.kind for o in outcomes] == ["created", "created", "quarantined", "created"]
    assert (outcomes[1].case or {})["subject"] == "=?utf-8?B?a?="
    assert (outcomes[1].case or {})["sender"] == "a@b.c"
    assert "no text" in outcomes[2].reason
    assert sqlite_ctx.blobs.exists(outcomes[2].source.sha256)
    assert case_count(sqlite_ctx) == 3


def _with_attachments(n: int, body: str, attachments: list[tuple[str, bytes]],
                      subject: str = "Photos") -> bytes:
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"] = f"Citizen {n} <citizen{n}@example.org>"
    m["To"] = "desk@center.example"
    if subject:
        m["Subject"] = f"{subject} {n}"
    m["Message-ID"] = f"<att{n}@example.org>"
    m.set_content(body)
    for name, data in attachments:
        m.add_attachment(data, maintype="image", subtype="png", filename=name)
    return m.as_bytes()


def test_an_unreadable_attachment_is_recorded_on_the_case_which_needs_review(ctx: RunContext) -> None:
    msg = _with_attachments(1, "The ramp at the east entrance is blocked by bicycles every morning.",
                            [("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)])
    (d,) = ingest_messages([env(msg, 1)], ctx)
    assert d.outcome.kind == "created", d.outcome.reason
    case = d.outcome.case or {}
    assert case["needs_review"] is True
    assert any(p.startswith("attachment broken.png: not read") for p in case["problems"]), case["problems"]


def test_attachments_over_the_cap_are_listed_not_read(ctx: RunContext) -> None:
    from pipeline.mail.ingest import MAX_ATTACHMENTS_READ
    from tests.ocr_fixtures import png_bytes

    extra = 2
    files = [(f"p{i}.png", png_bytes(32 + i, 32)) for i in range(MAX_ATTACHMENTS_READ + extra)]
    (d,) = ingest_messages([env(_with_attachments(2, "The lift on floor 3 is broken again.", files), 2)], ctx)
    case = d.outcome.case or {}
    skipped = [p for p in case["problems"] if "over the limit of" in p]
    assert len(skipped) == extra and case["needs_review"] is True
    assert case_count(ctx) == 1


def test_nothing_readable_at_all_is_quarantined_with_its_reason(ctx: RunContext) -> None:
    msg = _with_attachments(3, "", [("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)], subject="")
    (d,) = ingest_messages([env(msg, 3)], ctx)
    assert d.outcome.kind == "quarantined"
    assert "attachment could not be read" in d.outcome.reason or "no text" in d.outcome.reason


def test_cases_show_prints_what_could_not_be_read(ctx: RunContext, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.cli_support import cli

    msg = _with_attachments(4, "The ramp at the west entrance is icy and nobody salts it.",
                            [("broken.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)])
    (d,) = ingest_messages([env(msg, 4)], ctx)
    monkeypatch.setenv("COMPLAINTDESK_HOME", str(ctx.settings.home))
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", ctx.settings.resolved_database_url)
    shown = cli(capsys, "cases", "show", d.outcome.reference or "")
    assert shown.code == 0, shown.err
    assert "not read" in shown.out and "broken.png" in shown.out


def test_attachments_past_the_messages_ocr_time_budget_are_listed_not_read(ctx: RunContext) -> None:
    import dataclasses
    import time

    from ocr.synth import CLEAN, make_slip

    budget = 1.0
    settings = ctx.settings.model_copy(
        update={"ocr": ctx.settings.ocr.model_copy(update={"max_seconds_per_message": budget})})
    small = dataclasses.replace(ctx, settings=settings)
    # each slip takes ~0.5 s of real OCR on the one test worker: six cannot all fit in one second
    files = [(f"slip{i}.png", make_slip(f"Bus {i} was late again at the north stop.", CLEAN, seed=i))
             for i in range(6)]
    msg = _with_attachments(5, "Photos of the timetable notices.", files)
    began = time.monotonic()
    (d,) = ingest_messages([env(msg, 5)], small)
    elapsed = time.monotonic() - began
    assert d.outcome.kind == "created", d.outcome.reason
    case = d.outcome.case or {}
    over = [p for p in case["problems"] if "OCR time budget of 1 s was used up" in p]
    read = [i for i in range(len(files)) if f"Bus {i} " in case.get("text", "")]
    assert over and read, (case["problems"], case.get("text"))
    assert len(over) + len(read) <= len(files)
    assert all(p.startswith("attachment slip") and ": not read, the message's" in p for p in over)
    assert case["needs_review"] is True
    assert elapsed < 6 * 0.5 + 30, elapsed  # generous: pool start-up, the classifier, the database
