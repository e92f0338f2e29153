"""Answering the citizen: reply templates, replies sent over SMTP threaded onto the case, and replies made
by phone or letter recorded on the case.

A reply by e-mail goes to the case's sender through the acknowledgment relay (``Settings.smtp``) with
``[Case #<reference>]`` in the subject and In-Reply-To/References pointing at the citizen's last
message, so the citizen's answer joins the case through the e-mail intake (by thread or by
reference). Its Message-ID is stored with the case too, so an answer whose client dropped the subject
still threads. Cases from slips or the hotline have no e-mail address: their replies are recorded
with the method ``phone`` or ``letter``.

Templates are ``string.Template`` text (``$reference``, ``$name``, ``$subject``, ``$created``,
``$department``, ``$status``, ``$body``): no expression in a template or a case field can run. A
deployment puts its own in ``HOME/replies/<department>.<language>.txt`` or
``HOME/replies/default.<language>.txt``; the bundled ones are ``templates/reply.<language>.txt``.

The message is sent first and stored after: if the relay refuses, nothing is recorded and the
person sees the error; the store is one short transaction after the relay took the message.
"""

from __future__ import annotations

import re
import smtplib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from string import Template
from typing import Any

import storage
from classifiers import label_names
from pipeline.core.actor import Actor
from pipeline.core.errors import ConfigError, MailboxError, UsageError
from pipeline.mail.headers import one_line, valid_address
from pipeline.mail.parse import CASE_REF_RE
from pipeline.mail.smtp import send_message
from pipeline.review.access import require
from pipeline.review.desk import Desk
from storage.models import REPLY_METHODS

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("zh", "en")
#: how many Message-IDs of the thread go into References (RFC 5322 suggests trimming long ones)
MAX_REFERENCES = 20
_MSGID_RE = re.compile(r"<[!-;=?-~]+>")  # visible ASCII, as ``parse`` keeps them


class ReplyError(MailboxError):
    """The reply could not be sent to the citizen; nothing was recorded on the case."""


@dataclass(frozen=True)
class Reply:
    """A reply as stored with the case."""

    reference: str
    method: str  # email | phone | letter
    message_id: str  # "" for phone and letter
    recipient: str
    subject: str
    text: str
    author: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "method": self.method, "message_id": self.message_id,
                "recipient": self.recipient, "subject": self.subject, "text": self.text,
                "author": self.author, "at": self.at.isoformat()}


def can_email(case: dict[str, Any]) -> bool:
    """True when the case (``case_to_dict``) has an address a reply can go to."""
    return valid_address(str(case.get("sender") or "").strip())


def template_text(home: Path, department: str, language: str) -> str:
    """The reply template for ``department`` in ``language`` (``zh``/``en``): the deployment's own,
    else its default, else the bundled one.

    Raises:
        UsageError: ``language`` is not one of ``LANGUAGES``.
    """
    if language not in LANGUAGES:
        raise UsageError(f"reply language {language!r}: use one of {', '.join(LANGUAGES)}")
    own = [home / "replies" / f"{department}.{language}.txt"] if department else []
    for path in (*own, home / "replies" / f"default.{language}.txt", TEMPLATES / f"reply.{language}.txt"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise ConfigError(f"no reply template for {language}")  # the bundled ones are missing: a broken install


def fill_template(template: str, case: dict[str, Any], body: str = "", *, language: str = "en") -> str:
    """``template`` (in ``language``) with the case's fields filled in; ``$name`` is the extracted
    name, else "citizen" in that language."""
    names = [f["value"] for f in case.get("fields", []) if f.get("name") == "name"]
    department = str(case.get("assigned_department") or case.get("department") or "")
    values = {
        "reference": case["reference"],
        "name": one_line(names[0]) if names else ("市民" if language == "zh" else "citizen"),
        "subject": one_line(str(case.get("subject") or "")),
        "created": str(case.get("created_at") or "")[:10],
        # the department's name in the letter's language, never its id ("transport")
        "department": label_names().label_in("department", department, language) if department else "",
        "status": case.get("status", ""),
        "body": body,
        "space": " ",  # the signature delimiter's trailing space, which editors like to strip
    }
    return Template(template).safe_substitute(values)


def draft(desk: Desk, actor: Actor, reference: str, *, language: str | None = None, body: str = "") -> str:
    """The reply template of the case's department in ``language`` (default: the case's language,
    Chinese unless it is English), filled in; what the web page pre-fills and ``cases reply`` sends.

    Raises:
        CaseNotFoundError, AccessDeniedError, UsageError.
    """
    with desk.db.reader() as session:
        case = storage.get_case(session, reference)
        require(actor, "reply", case, reference=case.reference)
        data = storage.case_to_dict(case)
    lang = language or ("en" if data.get("language") == "en" else "zh")
    department = data.get("assigned_department") or ""
    return fill_template(template_text(desk.settings.home, department, lang), data, body, language=lang)


def reply(desk: Desk, actor: Actor, reference: str, text: str, *, method: str = "email",
          subject: str | None = None) -> Reply:
    """Answer the citizen: by e-mail (sent now, threaded onto the case), or record a reply made by
    ``phone`` or ``letter``. Stored with the case as an outgoing message and in the audit trail; the
    first one sets the case's first response.

    Raises:
        UsageError: empty text, an unknown method, or e-mail to a case without an e-mail address
            (the message says to record a phone or letter reply instead).
        ConfigError: no SMTP relay or From address is configured.
        ReplyError: the relay refused or could not be reached (nothing is recorded).
        CaseNotFoundError, AccessDeniedError.
    """
    if not text.strip():
        raise UsageError("the reply is empty")
    if method not in REPLY_METHODS:
        raise UsageError(f"reply method {method!r}: use one of {', '.join(REPLY_METHODS)}")
    with desk.db.reader() as session:
        case = storage.get_case(session, reference)
        require(actor, "reply", case, reference=case.reference)
        data = storage.case_to_dict(case)
        thread = _thread(case)
    recipient = str(data.get("sender") or "").strip()
    title = f"{one_line(subject) if subject else _re(data.get('subject') or '')} [Case #{data['reference']}]"
    message_id = ""
    if method == "email":
        if not can_email(data):
            raise UsageError(f"case {data['reference']} has no e-mail address (it came in by "
                             f"{data['channel']}): record a reply made by phone or letter instead")
        msg = _message(desk, data["reference"], recipient, title, text, thread)
        message_id = str(msg["Message-ID"])
        smtp = desk.settings.smtp
        try:
            send_message(msg, smtp)
        except (smtplib.SMTPException, OSError) as e:
            raise ReplyError(f"could not send the reply to case {data['reference']} via "
                             f"{smtp.host}:{smtp.resolved_port}: {e}") from e
    at = datetime.now(UTC)
    with desk.db.session() as session:
        case = storage.get_case(session, reference)
        stored = storage.add_message(
            session, case, message_id=message_id, in_reply_to=thread[-1] if thread else "",
            references=thread, direction="out", sender=desk.settings.smtp.from_address, subject=title,
            text=text, received_at=at, actor=actor.name)
        stored.method, stored.author = method, actor.name
        storage.mark_first_response(case, at)
        storage.record_event(session, "reply", actor=actor.name, case=case, at=at, detail={
            "method": method, "message_id": message_id, "recipient": recipient if method == "email" else ""})
    return Reply(data["reference"], method, message_id, recipient if method == "email" else "", title, text,
                 actor.name, at)


def _thread(case: storage.Case) -> list[str]:
    """The Message-IDs of the case's e-mail thread, oldest first: the original, then every message."""
    ids = [case.source_name] if case.channel == "email" else []
    ids += [m.message_id for m in case.messages]
    found = (mid for mid in _MSGID_RE.findall(" ".join(ids)) if "=?" not in mid)
    return list(dict.fromkeys(found))[-MAX_REFERENCES:]


def _re(subject: str) -> str:
    """``Re: <the case's subject>`` without any case reference (that is added once), on one line."""
    subject = one_line(CASE_REF_RE.sub("", subject))[:200].strip().replace("=?", "= ?") or "your message"
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _message(desk: Desk, reference: str, recipient: str, subject: str, text: str,
             thread: list[str]) -> EmailMessage:
    smtp = desk.settings.smtp
    if not smtp.host or not valid_address(smtp.from_address):
        raise ConfigError("replies go through the acknowledgment relay: set smtp.host and smtp.from_address "
                          "(COMPLAINTDESK_SMTP_HOST, COMPLAINTDESK_SMTP_FROM_ADDRESS)")
    domain = smtp.from_address.split("@")[-1]
    msg = EmailMessage()
    msg["From"] = smtp.from_address
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<reply-{reference}-{uuid.uuid4().hex[:16]}@{domain}>"
    if thread:
        msg["In-Reply-To"] = thread[-1]
        msg["References"] = " ".join(thread)
    msg.set_content(text)
    return msg
