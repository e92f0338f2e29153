"""The review commands end to end through ``main``: corrections, the lifecycle, assignment, notes and
history on SQLite and PostgreSQL; a reply sent to a real SMTP server on loopback (aiosmtpd) whose
answer comes back through the real e-mail intake (``poll`` from a real Dovecot) and joins the case;
phone replies;
saving originals; and a quarantined scan released after its fix."""

from __future__ import annotations

import json
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

import storage
from pipeline.core.errors import ExitCode
from tests.cli_support import add_case, cli, deployment_env
from tests.dovecot import Dovecot, dovecot  # noqa: F401  (fixture)
from tests.mail_support import Relay, relay  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
SLIP = ROOT / "pipeline" / "samples" / "slips" / "en_police_praise.jpg"


@pytest.fixture
def deployed(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> storage.Database:
    deployment_env(monkeypatch, tmp_path / "home", db_url)
    (tmp_path / "home").mkdir()
    with storage.open_database(db_url) as db:
        yield db


def test_correct_status_assign_note_and_history(deployed: storage.Database,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ref = add_case(deployed, "The lift on floor 2 is broken", department="general", confidence=0.3)
    run = cli(capsys, "cases", "correct", ref, "--department", "facilities", "--actor", "rita", "--json")
    assert run.code == 0, run.err
    shown = json.loads(run.out)
    assert shown["department"] == "facilities" and shown["labels"]["department"]["confirmed_by"] == "rita"
    bad = cli(capsys, "cases", "correct", ref, "--department", "pol1ce")
    assert bad.code == ExitCode.bad_args and "pol1ce" in bad.err
    assert cli(capsys, "cases", "status", ref, "rejected").code == ExitCode.bad_args  # no reason
    wrong = cli(capsys, "cases", "status", ref, "closed")
    assert wrong.code == ExitCode.storage_error and "triaged, in_progress, rejected" in wrong.err
    assert cli(capsys, "cases", "status", ref, "in_progress", "--note", "on it").code == 0
    assign = cli(capsys, "cases", "assign", ref, "--department", "transport", "--to", "tom", "--json")
    assert json.loads(assign.out)["assignee"] == "tom"
    assert cli(capsys, "cases", "note", ref, "called the citizen \x1b[31m back").code == 0
    history = cli(capsys, "cases", "history", ref, "--json")
    events = [json.loads(line) for line in history.out.splitlines()]
    assert [e["kind"] for e in events] == ["created", "label_corrected", "reviewed", "status",
                                                "assigned", "note"]
    assert events[1]["actor"] == "rita" and events[1]["detail"]["new"] == "facilities"
    table = cli(capsys, "cases", "history", ref)
    assert "called the citizen" in table.out and "\x1b" not in table.out  # escaped, never run
    with deployed.reader() as session:
        (correction,) = storage.list_corrections(session)
        assert (correction.old_label, correction.new_label, correction.reviewer) == ("general", "facilities",
                                                                                      "rita")


def test_queue_and_overdue_commands(deployed: storage.Database, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import UTC, datetime, timedelta

    unsure = add_case(deployed, "unsure", confidence=0.2)
    old = add_case(deployed, "very old", confidence=0.95, created=datetime.now(UTC) - timedelta(days=40))
    page = json.loads(cli(capsys, "cases", "queue", "--json", "--limit", "1").out)
    assert [c["reference"] for c in page["cases"]] == [unsure] and page["next"] is None
    late = cli(capsys, "cases", "overdue", "--json")
    assert [json.loads(line)["reference"] for line in late.out.splitlines()] == [old]


def test_phone_reply_for_a_slip_and_original_saved(deployed: storage.Database, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ref = add_case(deployed, "no e-mail here", name="slip.png")
    refused = cli(capsys, "cases", "reply", ref, "-m", "hello")
    assert refused.code == ExitCode.bad_args and "phone or letter" in refused.err
    done = cli(capsys, "cases", "reply", ref, "-m", "We fixed it.", "--method", "phone", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["method"] == "phone"
    history = [json.loads(line) for line in cli(capsys, "cases", "history", ref, "--json").out.splitlines()]
    message = next(e for e in history if e["kind"] == "message")
    assert message["detail"]["method"] == "phone" and "We fixed it." in message["detail"]["text"]
    shown = json.loads(cli(capsys, "cases", "show", ref, "--json").out)
    assert shown["first_response_at"] is not None
    missing = cli(capsys, "cases", "original", ref, "-o", str(tmp_path / "x"))  # add_case stores no bytes
    assert missing.code == ExitCode.input_error and "complaintdesk check" in missing.err


def _eml(path: Path, *, subject: str, body: str, mid: str, in_reply_to: str = "") -> Path:
    m = EmailMessage()
    m["From"] = "Li Wei <li.wei@example.org>"
    m["To"] = "desk@center.example"
    m["Subject"] = subject
    m["Date"] = "Mon, 02 Nov 2026 09:00:00 +0800"
    m["Message-ID"] = mid
    if in_reply_to:
        m["In-Reply-To"] = in_reply_to
        m["References"] = in_reply_to
    m.set_content(body)
    path.write_bytes(m.as_bytes())
    return path


@pytest.mark.slow
def test_reply_goes_out_threaded_and_the_answer_joins_the_case(
        relay: Relay, dovecot: Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    deployment_env(monkeypatch, tmp_path / "home", None)
    for name, value in (("HOST", "127.0.0.1"), ("PORT", str(relay.port)), ("SECURITY", "none"),
                        ("FROM_ADDRESS", "desk@center.example")):
        monkeypatch.setenv(f"COMPLAINTDESK_SMTP_{name}", value)
    assert cli(capsys, "init").code == 0
    first = _eml(tmp_path / "first.eml", subject="Broken lift", mid="<first-1@example.org>",
                 body="The lift in hall B has been broken for a week. Please repair it.")
    imported = cli(capsys, "mail", "import", str(first), "--json")
    assert imported.code == 0, imported.err
    ref = json.loads(imported.out.splitlines()[0])["reference"]

    sent = cli(capsys, "cases", "reply", ref, "-m", "A technician comes on Monday.", "--language", "en",
               "--actor", "fay", "--json")
    assert sent.code == 0, sent.err
    reply_id = json.loads(sent.out)["message_id"]
    (raw,) = relay.received
    out = message_from_bytes(raw, policy=policy.default)
    assert out["To"] == "li.wei@example.org" and f"[Case #{ref}]" in out["Subject"]
    assert out["In-Reply-To"] == "<first-1@example.org>" and out["Message-ID"] == reply_id
    assert "A technician comes on Monday." in out.get_content() and ref in out.get_content()

    # the citizen answers without the reference in the subject, and the poller fetches it from the
    # mailbox (real Dovecot IMAP): the thread alone brings it home
    answer = _eml(tmp_path / "answer.eml", subject="Re: thanks", mid="<answer-2@example.org>",
                  body="Thank you, Monday is fine.", in_reply_to=reply_id)
    dovecot.append([answer.read_bytes()])
    (tmp_path / "imap-password").write_text(dovecot.password + "\n")
    for name, value in (("HOST", "127.0.0.1"), ("PORT", str(dovecot.port)), ("USER", dovecot.user),
                        ("SECURITY", "none"), ("PASSWORD_FILE", str(tmp_path / "imap-password"))):
        monkeypatch.setenv(f"COMPLAINTDESK_IMAP_{name}", value)
    polled = cli(capsys, "poll", "--once")
    assert polled.code == 0, polled.err
    history = [json.loads(line) for line in cli(capsys, "cases", "history", ref, "--json").out.splitlines()]
    messages = [(e["detail"]["direction"], e["detail"]["text"].strip())
                for e in history if e["kind"] == "message"]
    assert messages == [("out", out.get_content().replace("\r\n", "\n").strip()),
                        ("in", "Thank you, Monday is fine.")]
    assert [e["actor"] for e in history if e["kind"] == "reply"] == ["fay"]


@pytest.mark.slow
def test_quarantined_scan_is_shown_saved_and_released_after_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    deployment_env(monkeypatch, tmp_path / "home", None)
    assert cli(capsys, "init").code == 0
    monkeypatch.setenv("COMPLAINTDESK_OCR_MAX_IMAGE_PIXELS", "1000")  # too small for any slip
    assert cli(capsys, "scan", str(SLIP)).code == ExitCode.quarantined
    (record,) = [json.loads(line) for line in cli(capsys, "quarantine", "list", "--json").out.splitlines()]
    shown = cli(capsys, "quarantine", "show", str(record["id"]), "-o", str(tmp_path / "saved.jpg"))
    assert shown.code == 0 and (tmp_path / "saved.jpg").read_bytes() == SLIP.read_bytes()
    again = cli(capsys, "quarantine", "release", str(record["id"]))
    assert again.code == ExitCode.quarantined  # not fixed yet: still quarantined, still listed
    assert len(cli(capsys, "quarantine", "list", "--json").out.splitlines()) == 1
    monkeypatch.delenv("COMPLAINTDESK_OCR_MAX_IMAGE_PIXELS")  # the fix
    released = cli(capsys, "quarantine", "release", str(record["id"]), "--json")
    assert released.code == 0, released.err
    ref = json.loads(released.out)["reference"]
    assert cli(capsys, "quarantine", "list", "--json").out.strip() == ""
    saved = cli(capsys, "cases", "original", ref, "-o", str(tmp_path / "original.jpg"))
    assert saved.code == 0 and (tmp_path / "original.jpg").read_bytes() == SLIP.read_bytes()
    assert cli(capsys, "quarantine", "release", str(record["id"])).code == ExitCode.bad_args  # resolved
    assert cli(capsys, "quarantine", "show", "999").code == ExitCode.storage_error
