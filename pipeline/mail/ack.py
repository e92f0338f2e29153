"""Acknowledgments: a short reply to the citizen with the case reference, sent over SMTP.

Off by default (``COMPLAINTDESK_SMTP_ACK=true`` turns it on). The reference goes in the subject as
``[Case #2026-000123]`` so the citizen's answer threads back onto the case. Our reply carries
``Auto-Submitted: auto-replied`` (RFC 3834) so well-behaved autoresponders do not answer it, and
noise, our own address and no-reply senders never get one: no mail loops.

The poller does not send from here directly: an ack is queued in the outbox (``storage.queue_ack``)
in the transaction that creates the case and sent after the commit (``Poller``), so a crash
between the two cannot lose it. Its Message-ID is derived from the case reference
(``<ack-2026-000123@domain>``), so should an ack ever go out twice (a crash after the relay took
it but before it was marked sent) both copies carry the same Message-ID and mail clients show one.

Everything in an ack but our own text comes from the citizen's message, so from whoever wrote it:
the recipient must be a syntactically valid single address (``headers.valid_address``, checked
when queued and again when built, since the outbox may hold rows queued by older versions), and
every header value is made one line, so no CR/LF can add a ``Bcc:`` or any other header.
"""

from __future__ import annotations

import logging
import re
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from pipeline.core.errors import MailboxError
from pipeline.mail.headers import one_line, valid_address
from pipeline.mail.parse import CASE_REF_RE, ParsedMessage
from pipeline.mail.settings import SmtpSettings
from pipeline.mail.smtp import send_message
from storage import AckRequest

log = logging.getLogger(__name__)

_NO_REPLY = ("noreply", "no-reply", "donotreply", "do-not-reply", "mailer-daemon", "postmaster", "bounce")
_MSGID_RE = re.compile(r"<[!-;=?-~]+>")  # visible ASCII, as ``parse`` keeps them
#: longest subject we echo back; a hostile one can be megabytes
_MAX_SUBJECT = 200

#: the signature delimiter is "-- " with its trailing space (RFC 3676), written ``--\x20`` below so
#: that editors and linters that strip trailing whitespace cannot break it
BODY = """\
Dear {name},

Thank you for contacting the service center. We have received your message and registered it
as case {reference}. We will come back to you as soon as possible.

If you write to us again about this matter, please keep [Case #{reference}] in the subject.

感谢您的来信。您的意见已登记，案件编号 {reference}。如需补充，请在邮件主题中保留 [Case #{reference}]。

--\x20
Service Center Complaints Desk
"""


class AckError(MailboxError):
    """The acknowledgment could not be sent (the case is stored all the same)."""


def should_ack(parsed: ParsedMessage, settings: SmtpSettings) -> bool:
    """True when this message may be answered: not noise, a real sender, not ourselves."""
    if not settings.ack or parsed.is_noise or not valid_address(parsed.sender):
        return False
    local = parsed.sender.split("@")[0]
    if any(marker in local for marker in _NO_REPLY):
        return False
    return parsed.sender != settings.from_address.lower()


def ack_request(parsed: ParsedMessage) -> AckRequest:
    """What the acknowledgment of ``parsed`` needs, as kept in the outbox."""
    return AckRequest(parsed.sender, parsed.sender_name, parsed.subject, parsed.message_id,
                      " ".join(parsed.references))


def ack_message_id(reference: str, settings: SmtpSettings) -> str:
    """The Message-ID of the acknowledgment of case ``reference``: the same every time it is built."""
    domain = settings.from_address.split("@")[-1] or "localhost"
    return f"<ack-{reference}@{domain}>"


def build_ack(reference: str, request: AckRequest, settings: SmtpSettings) -> EmailMessage:
    """The acknowledgment of case ``reference``, threaded to the citizen's message (In-Reply-To/References).

    Raises:
        AckError: the recipient is not a valid single address (nothing is sent to it).
    """
    recipient = request.recipient.strip()
    if not valid_address(recipient):
        raise AckError(f"no acknowledgment for case {reference}: {one_line(recipient)[:100]!r} "
                       "is not a valid e-mail address")
    msg = EmailMessage()
    msg["From"] = settings.from_address
    msg["To"] = recipient
    msg["Subject"] = f"{_subject(request.subject)} [Case #{reference}]"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = ack_message_id(reference, settings)
    in_reply_to = _msgids(request.in_reply_to)[:1]
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to[0]
        msg["References"] = " ".join(dict.fromkeys([*_msgids(request.references)[-20:], *in_reply_to]))
    msg["Auto-Submitted"] = "auto-replied"
    msg["X-Auto-Response-Suppress"] = "All"
    name = one_line(request.recipient_name)[:100] or "citizen"
    msg.set_content(BODY.format(name=name, reference=reference))
    return msg


def _subject(original: str) -> str:
    """``Re: <the citizen's subject>`` without any case reference, on one line and not too long."""
    subject = one_line(CASE_REF_RE.sub("", original))[:_MAX_SUBJECT].strip() or "your message"
    # a word the parser kept raw (it could not decode it) would be decoded by EmailMessage on the way out
    subject = subject.replace("=?", "= ?")
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _msgids(value: str) -> list[str]:
    """The Message-IDs in ``value``; anything else (spaces, CR/LF, stray text, RFC 2047 words) is dropped."""
    return [mid for mid in _MSGID_RE.findall(value) if "=?" not in mid]


def send_ack(reference: str, request: AckRequest, settings: SmtpSettings) -> str:
    """Send the acknowledgment of case ``reference`` and return its Message-ID.

    Raises:
        AckError: the relay refused or could not be reached; the password never appears in it.
    """
    msg = build_ack(reference, request, settings)
    host, port = settings.host, settings.resolved_port
    try:
        send_message(msg, settings)
    except (smtplib.SMTPException, OSError) as e:
        raise AckError(
            f"could not send the acknowledgment for case {reference} via {host}:{port}: {e}") from e
    log.info("acknowledgment for case %s sent to %s", reference, request.recipient)
    return str(msg["Message-ID"])
