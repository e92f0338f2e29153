"""Parsing e-mail: raw RFC 5322 bytes -> a ``ParsedMessage`` with the text a case needs.

Real-world mail is messy: mislabelled charsets (``gb2312`` declared, ``gb18030`` sent), no charset
at all, RFC 2047 words in names and subjects, HTML-only bodies, replies that quote the whole
thread. And some of it is hostile. ``parse_message`` returns a ``ParsedMessage`` or raises
``MalformedMessageError``, nothing else, for any bytes: a bad header or a broken MIME part keeps
what can be read, and ``ParsedMessage.problems`` says what could not; only a message with nothing
usable is refused (and quarantined by the caller with its raw bytes). Headers are read by
``pipeline.mail.headers`` (no CR/LF in any field, addresses never taken from decoded text), parts
by ``pipeline.mail.mime``, charsets by ``pipeline.mail.charsets``.

The case text has quoted replies and signatures stripped; ``ParsedMessage.body`` keeps the full
text, and the raw bytes themselves are kept by the caller in the BlobStore.
"""

from __future__ import annotations

import email
import email.errors
import email.message
import hashlib
import mimetypes
import re
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

from pipeline.core.errors import MalformedMessageError
from pipeline.mail.charsets import decode_bytes, decode_text
from pipeline.mail.headers import (
    decode_header_text,
    decode_header_value,
    one_line,
    parse_address,
    unescape_bytes,
)
from pipeline.mail.mime import decode_payload, structure_notes

#: ``[Case #2026-000123]`` in a subject threads the message to that case.
CASE_REF_RE = re.compile(r"\[\s*case\s*#\s*(\d{4}-\d{4,})\s*\]", re.IGNORECASE)
# visible ASCII only: a Message-ID goes back out in the acknowledgment's In-Reply-To/References
_MSGID_RE = re.compile(r"<[!-;=?-~]+>")
#: a reason longer than this is cut: it is shown to people and stored
_MAX_REASON = 300

#: media types whose text joins the case through OCR
OCR_TYPES = frozenset({
    "image/png", "image/jpeg", "image/tiff", "image/webp", "image/bmp", "image/gif", "application/pdf",
})


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a message (or an inline image), kept byte for byte."""

    name: str
    media_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def wants_ocr(self) -> bool:
        return self.media_type in OCR_TYPES


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What complaintdesk needs from one e-mail."""

    sha256: str  # of the raw bytes, exactly as received
    size: int
    message_id: str  # "<...>" or "" when the message has none
    subject: str
    sender: str  # the From address, lower-cased
    sender_name: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    body: str  # the whole text body, quotes and signature included
    text: str  # the case text: quoted replies and signature stripped, forwarded content kept
    attachments: tuple[Attachment, ...]
    noise_reason: str = ""  # why this is an auto-reply, bounce or bulk mail; "" for real mail
    forwarded: bool = False
    html_only: bool = False
    #: what could not be read as sent, for people: a bad encoded word kept raw, a truncated attachment...
    problems: tuple[str, ...] = ()

    @property
    def case_reference(self) -> str | None:
        """The case reference in the subject (``[Case #2026-000123]``), if any."""
        match = CASE_REF_RE.search(self.subject)
        return match.group(1) if match else None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message answers, nearest first."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)

    @property
    def is_noise(self) -> bool:
        return bool(self.noise_reason)

    @property
    def dedupe_key(self) -> str:
        """Message-ID when present, else the content hash: what recognises a message seen before."""
        return self.message_id or f"sha256:{self.sha256}"


def parse_message(raw: bytes) -> ParsedMessage:
    """Parse one raw e-mail.

    Raises:
        MalformedMessageError: the bytes are not an e-mail we can read (empty, no headers, broken
            structure). No other exception escapes, whatever the bytes.
    """
    if not raw or not raw.strip():
        raise MalformedMessageError("the message is empty")
    try:
        msg = email.message_from_bytes(raw)
        _check_structure(msg, raw)
        return _parse(msg, raw)
    except MalformedMessageError:
        raise
    except (email.errors.MessageError, LookupError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, UnicodeError, AssertionError, RecursionError) as e:
        # The stdlib parser is lenient but its accessors are not; whatever it trips over on a
        # broken message is a property of the message.
        raise MalformedMessageError(_reason("cannot parse the message", e)) from e
    except Exception as e:  # one message must never stop a batch or the poller
        raise MalformedMessageError(_reason("unexpected error while parsing the message", e)) from e


def _reason(what: str, e: BaseException) -> str:
    return one_line(f"{what}: {type(e).__name__}: {e}")[:_MAX_REASON]


def _check_structure(msg: email.message.Message, raw: bytes) -> None:
    if not msg.keys():
        raise MalformedMessageError("the message has no headers")
    known = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type", "received",
             "return-path", "sender", "reply-to", "cc", "in-reply-to", "references"}
    if not any(k.lower() in known for k in msg):
        raise MalformedMessageError("no e-mail headers found (not an RFC 5322 message)")
    if msg.defects and not msg.is_multipart() and not msg.get_payload():
        names = ", ".join(type(d).__name__ for d in msg.defects)
        raise MalformedMessageError(f"the message has no body and is damaged ({names})")


def _parse(msg: email.message.Message, raw: bytes) -> ParsedMessage:
    problems = structure_notes(msg)
    subject, notes = decode_header_text(_header(msg, "Subject"), "subject")
    problems += notes
    sender_name, sender, notes = parse_address(_header(msg, "From"), "from")
    problems += notes
    body_text, html_only = _best_body(msg, problems)
    forwarded = _is_forward(subject, body_text)
    inner = _inner_messages(msg, problems)
    if inner:
        forwarded = True
        body_text = "\n\n".join(filter(None, [body_text, *inner]))
    return ParsedMessage(
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        message_id=_first_msgid(_header(msg, "Message-ID")),
        subject=subject,
        sender=sender,
        sender_name=sender_name,
        date=_date(_header(msg, "Date")),
        in_reply_to=_msgids(_header(msg, "In-Reply-To")),
        references=_msgids(_header(msg, "References")),
        body=body_text,
        text=case_text(body_text, forwarded=forwarded),
        attachments=tuple(_attachments(msg, problems)),
        noise_reason=noise_reason(msg, subject, sender),
        forwarded=forwarded,
        html_only=html_only,
        problems=tuple(dict.fromkeys(problems)),
    )


# -- headers ------------------------------------------------------------------------------------


def _header(msg: email.message.Message, name: str) -> str | None:
    """The first ``name`` header as received (8-bit bytes as surrogates), unlike ``msg.get``.

    ``msg.get`` turns a header with raw 8-bit bytes into a ``Header`` whose text is replacement
    characters; the raw value lets ``pipeline.mail.headers`` decode those bytes as UTF-8 or GB18030.
    """
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return value if isinstance(value, str) else str(value)
    return None


def _first_msgid(value: object) -> str:
    ids = _msgids(value)
    return ids[0] if ids else ""


def _msgids(value: object) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(dict.fromkeys(m.strip() for m in _MSGID_RE.findall(str(value))))


def _date(value: object) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(one_line(unescape_bytes(str(value))))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


# -- charsets -----------------------------------------------------------------------------------


def _part_text(part: email.message.Message, where: str, problems: list[str]) -> str:
    payload, note = decode_payload(part)
    if note:
        problems.append(f"{where}: {note}")
    if payload is None:
        return ""
    text, note = decode_text(payload, part.get_content_charset())
    if note:
        problems.append(f"{where}: {note}")
    return text


# -- bodies -------------------------------------------------------------------------------------


def _is_attachment(part: email.message.Message) -> bool:
    disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment":
        return True
    return bool(part.get_filename()) and part.get_content_maintype() != "text"


def _walk_outer(msg: email.message.Message) -> list[email.message.Message]:
    """The parts of this message, not descending into attached messages."""
    out: list[email.message.Message] = []
    stack = [msg]
    while stack:
        part = stack.pop(0)
        if part.get_content_type() == "message/rfc822" and part is not msg:
            out.append(part)
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack[0:0] = [p for p in payload if isinstance(p, email.message.Message)]
            continue
        out.append(part)
    return out


def _best_body(msg: email.message.Message, problems: list[str], where: str = "body") -> tuple[str, bool]:
    """text/plain when the message has it, else HTML turned into clean text; (text, html_only).

    A multipart whose boundary is missing is read as one text part rather than lost: the
    complaint is usually in it, next to some MIME debris.
    """
    plain: list[str] = []
    html: list[str] = []
    broken: list[email.message.Message] = []
    for part in _walk_outer(msg):
        if _is_attachment(part) or part.get_content_type() == "message/rfc822":
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" or (ctype == "text" and part is msg):
            plain.append(_part_text(part, where, problems))
        elif ctype == "text/html":
            html.append(_part_text(part, where, problems))
        elif part.get_content_maintype() == "multipart":
            broken.append(part)
    if not plain and not html:
        plain = [_part_text(part, where, problems) for part in broken]
    plain_text = "\n\n".join(t for t in (_normalize_newlines(p) for p in plain) if t.strip())
    if plain_text.strip():
        return plain_text.strip(), False
    if html:
        return "\n\n".join(html_to_text(h) for h in html).strip(), True
    return "", False


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


_BLOCK_TAGS = ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol",
               "section", "article", "header", "footer", "pre", "hr")


def html_to_text(html: str) -> str:
    """Turn an HTML body into clean text: scripts, styles and head dropped; blockquotes marked ``> ``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "noscript", "template", "title", "meta", "object", "iframe"]):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    # Quoted parts of a reply: mark each line the way plain-text mailers do, so one stripper serves both.
    for quote in reversed(soup.find_all(["blockquote"])):
        inner = quote.get_text("\n")
        lines = [f"> {line}" for line in inner.splitlines() if line.strip()]
        quote.replace_with("\n" + "\n".join(lines) + "\n")
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    text = soup.get_text()
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# -- replies, signatures, forwards --------------------------------------------------------------

_FORWARD_SUBJECT_RE = re.compile(r"^\s*(fwd?|fw|转发|轉寄|转)\s*[:：]", re.IGNORECASE)
_FORWARD_MARKERS = re.compile(
    r"^\s*(-{2,}\s*(forwarded message|original message|转发的邮件|原始邮件)\s*-{2,}"
    r"|begin forwarded message:)\s*$",
    re.IGNORECASE,
)
_QUOTE_HEADERS = [
    re.compile(r"^\s*on\b.{0,300}\bwrote:\s*$", re.IGNORECASE | re.DOTALL),  # Gmail, Apple, Thunderbird
    re.compile(r"^\s*-{3,}\s*original message\s*-{3,}\s*$", re.IGNORECASE),  # Outlook
    re.compile(r"^\s*-{3,}\s*(原始邮件|原始郵件)\s*-{3,}\s*$"),
    re.compile(r"^\s*在.{0,300}写道\s*[:：]\s*$", re.DOTALL),  # Chinese Gmail / Foxmail
    re.compile(r"^\s*在.{0,300}寫道\s*[:：]\s*$", re.DOTALL),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook HTML->text separator line
]
_OUTLOOK_HEADER_RE = re.compile(r"^\s*(from|发件人|寄件者)\s*[:：]", re.IGNORECASE)
_OUTLOOK_NEXT_RE = re.compile(r"^\s*(sent|date|to|发送时间|收件人|日期)\s*[:：]", re.IGNORECASE)
_FORWARD_HEADER_LINE = re.compile(
    r"^\s*(from|date|sent|to|cc|subject|发件人|发送时间|日期|收件人|抄送|主题)\s*[:：]", re.IGNORECASE
)


def case_text(body: str, *, forwarded: bool = False) -> str:
    """The text a case should hold: quoted replies and the signature stripped.

    In a forwarded message the forwarded content *is* the complaint, so it is kept (without the
    forwarding header block); a reply's quoted history is dropped.
    """
    lines = _normalize_newlines(body).split("\n")
    if forwarded:
        lines = _unwrap_forward(lines)
    else:
        lines = _cut_quote(lines)
        lines = [line for line in lines if not line.lstrip().startswith(">")]
    lines = _cut_signature(lines)
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _cut_quote(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        # "On Mon, 1 Jan 2026 at 10:00, Someone <a@b>\nwrote:" is often wrapped over two lines
        two = f"{line} {lines[i + 1]}" if i + 1 < len(lines) else ""
        for pattern in (_QUOTE_HEADERS[0], _QUOTE_HEADERS[3], _QUOTE_HEADERS[4]):
            span = 1 if pattern.match(line) else 2 if two and pattern.match(two) else 0
            if span and _followed_by_quote(lines, i, span):
                return lines[:i]
        if any(p.match(line) for p in (_QUOTE_HEADERS[1], _QUOTE_HEADERS[2], _QUOTE_HEADERS[5])):
            return lines[:i]
        if _OUTLOOK_HEADER_RE.match(line) and i > 0 and any(
            _OUTLOOK_NEXT_RE.match(n) for n in lines[i + 1:i + 3]
        ):
            return lines[:i]
    return lines


def _followed_by_quote(lines: list[str], i: int, span: int) -> bool:
    """A "wrote:" line counts as a reply header only when quoted lines, or nothing, follow it."""
    rest = [line for line in lines[i + span:] if line.strip()]
    return not rest or rest[0].lstrip().startswith(">")


def _unwrap_forward(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _FORWARD_MARKERS.match(lines[i]) or _QUOTE_HEADERS[1].match(lines[i]):
            i += 1
            while i < len(lines) and (_FORWARD_HEADER_LINE.match(lines[i]) or not lines[i].strip()):
                i += 1
            out.append("")
            continue
        out.append(lines[i].lstrip(">").lstrip() if lines[i].lstrip().startswith(">") else lines[i])
        i += 1
    return out


def _cut_signature(lines: list[str]) -> list[str]:
    for i in range(len(lines) - 1, -1, -1):
        # only a trailing block counts: a signature is short
        if lines[i] in ("-- ", "--", "—— ", "-- \u00a0") and len(lines) - i <= 15:
            return lines[:i]
    return lines


def _is_forward(subject: str, body: str) -> bool:
    if _FORWARD_SUBJECT_RE.match(subject):
        return True
    head = body.split("\n", 12)[:12]
    return any(_FORWARD_MARKERS.match(line) for line in head)


def _inner_messages(msg: email.message.Message, problems: list[str]) -> list[str]:
    """The text of messages attached whole (forward as attachment), with their sender and subject."""
    texts: list[str] = []
    for part in _walk_outer(msg):
        if part.get_content_type() != "message/rfc822":
            continue
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, email.message.Message):
            continue
        body, _ = _best_body(inner, problems, "forwarded message")
        subject, notes = decode_header_text(_header(inner, "Subject"), "forwarded message subject")
        name, addr, more = parse_address(_header(inner, "From"), "forwarded message from")
        problems += notes + more
        header = f"Forwarded message from {name or addr}: {subject}".strip()
        texts.append(f"{header}\n{body}" if body else header)
    return texts


# -- attachments --------------------------------------------------------------------------------


def _attachments(msg: email.message.Message, problems: list[str]) -> list[Attachment]:
    """Every attachment, decoded as far as it goes; what could not be is in ``problems``, never dropped
    silently."""
    out: list[Attachment] = []
    for n, part in enumerate(_walk_outer(msg), start=1):
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            name = _filename(part, n, ".eml")
            data, note = _message_bytes(part)
            if note:
                problems.append(f"attachment {name}: {note}")
            out.append(Attachment(name, ctype, data))
            continue
        if not _is_attachment(part) and not (part.get_content_maintype() in ("image", "application")
                                             and part is not msg):
            continue
        name = _filename(part, n, _guess_ext(ctype))
        payload, note = decode_payload(part)
        if note:
            problems.append(f"attachment {name}: {note}")
        if payload is None:
            problems.append(f"attachment {name}: no content that can be decoded, not kept")
            continue
        out.append(Attachment(name, ctype, payload))
    return out


def _message_bytes(part: email.message.Message) -> tuple[bytes, str]:
    """An attached message as bytes, and a note when it had to be kept as its undecoded text."""
    payload = part.get_payload()
    try:
        if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
            return payload[0].as_bytes(), ""
        return part.as_bytes(), ""
    except (LookupError, ValueError, TypeError, UnicodeError, email.errors.MessageError) as e:
        # the generator re-encodes headers and can choke where the parser did not
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
        return data, _reason("cannot be rebuilt as a message, kept its raw text", e)


def _filename(part: email.message.Message, n: int, ext: str) -> str:
    name = part.get_filename() or part.get_param("name") or ""
    name = decode_header_value(name if isinstance(name, str) else "")
    name = name.replace("/", "_").replace("\\", "_").strip()[:200]
    return name or f"attachment-{n}{ext}"


def _guess_ext(ctype: str) -> str:
    return mimetypes.guess_extension(ctype) or ".bin"


# -- noise --------------------------------------------------------------------------------------

_AUTO_SUBJECT_RE = re.compile(
    r"^\s*(automatic reply|auto(matic)?[- ]?reply|out of (the )?office|autoreply|自动回复|自動回覆|休假)\b",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = ("mailer-daemon@", "postmaster@")


def noise_reason(msg: email.message.Message, subject: str = "", sender: str = "") -> str:
    """Why this message is not a complaint (auto-reply, bounce, bulk or list mail); "" if it may be one."""
    if msg.get_content_type() == "multipart/report":
        kind = one_line(str(msg.get_param("report-type") or "report"))[:60]
        return f"bounce or report (multipart/report; report-type={kind})"
    if sender.startswith(_BOUNCE_SENDERS):
        return f"bounce (from {sender.split('@')[0]})"
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and auto != "no":
        return f"auto-submitted: {one_line(auto.split(';')[0])[:60]}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Auto-Reply"):
        if msg.get(header) is not None:
            return f"auto-reply ({header})"
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if precedence in ("bulk", "list", "junk", "auto_reply"):
        return f"precedence: {precedence}"
    if msg.get("List-Id") is not None:
        return f"mailing list ({decode_header_value(_header(msg, 'List-Id'))[:200]})"
    if msg.get("List-Unsubscribe") is not None:
        return "bulk mail (List-Unsubscribe)"
    if _AUTO_SUBJECT_RE.match(subject):
        return "auto-reply (subject)"
    return ""


__all__ = ["CASE_REF_RE", "OCR_TYPES", "Attachment", "ParsedMessage", "case_text", "decode_bytes",
           "decode_header_value", "html_to_text", "noise_reason", "parse_message"]
