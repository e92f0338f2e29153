"""Hostile and broken e-mail, generated (hypothesis): the parser returns or refuses, nothing else.

Properties, for any bytes:

- ``parse_message`` returns a ``ParsedMessage`` or raises ``MalformedMessageError``, and never for
  a reason of ours ("unexpected error" means a bug in complaintdesk, not in the message);
- ``sender`` is "" or one syntactically valid address;
- no field an outgoing header could be built from holds CR, LF or another control character,
  and an acknowledgment built from the message has one-line headers and goes to ``sender`` only;
- parsing is deterministic.

Kept under ~20 s: modest ``max_examples``, small sizes.
"""

from __future__ import annotations

import base64
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.errors import MalformedMessageError
from pipeline.mail.ack import ack_request, build_ack
from pipeline.mail.headers import valid_address
from pipeline.mail.parse import ParsedMessage, parse_message
from pipeline.mail.settings import Security, SmtpSettings

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMTP = SmtpSettings(ack=True, host="127.0.0.1", port=25, security=Security.none,
                    from_address="desk@center.example")

# -- strategies: headers ----------------------------------------------------------------------------

_CHARSETS = st.sampled_from(["utf-8", "UTF-8", "gb2312", "gbk", "gb18030", "big5", "iso-8859-1", "us-ascii",
                             "x-bogus", "rot13", "zlib", "unicode_escape", "utf-7", "idna", "utf-8*en", "",
                             "utf\x00-8", "\u00e9"])
_TEXT = st.text(max_size=30)


@st.composite
def encoded_words(draw: st.DrawFn) -> str:
    """An RFC 2047 word, well or badly formed: wrong length, foreign characters, bad charset, CR/LF inside."""
    charset = draw(_CHARSETS)
    if draw(st.booleans()):
        data = draw(st.one_of(_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
                              st.binary(max_size=30)))
        payload = base64.b64encode(data).decode()
        payload = draw(st.sampled_from(
            [payload, payload[:-1], payload[:-2], payload + "=", payload.rstrip("=")]))
        kind = draw(st.sampled_from("Bb"))
    else:
        payload = draw(st.from_regex(r"[A-Za-z0-9_=\-.@:<>]{0,30}", fullmatch=True))
        kind = draw(st.sampled_from("Qq"))
    payload = draw(st.sampled_from([payload, payload + "@", "a", "@@@", payload + "%0D%0A"]))
    return f"=?{charset}?{kind}?{payload}?="


_ADDRESS_BITS = st.sampled_from([
    "a@b.c", "<good@example.org>", "Evil <evil@example.com>", "evil@example.com",
    ",", ";", ":", "<", ">", '"',
    "undisclosed-recipients:;", "(comment)", "@", "\\", "\r\n", "\r\nBcc: evil@example.com", "\x00", "张伟",
    "a@[127.0.0.1]", '"a b"@c.d', "a@例子.中国", "..@x.y", "a@-x-.y",
])
_HEADER_VALUES = st.one_of(
    st.binary(max_size=60),
    st.lists(st.one_of(encoded_words(), _ADDRESS_BITS, _TEXT), max_size=6).map(lambda parts: " ".join(parts)),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "=?utf-8?B?YQ==?= ", "a@b.c, ", "\t"]),
              st.integers(0, 3000)),  # very long lines
)
_HEADER_NAMES = st.sampled_from(["Subject", "From", "To", "Reply-To", "Message-ID", "In-Reply-To",
                                 "References", "Date", "Content-Type", "Content-Transfer-Encoding",
                                 "Content-Disposition",
                                 "List-Id", "Auto-Submitted", "X-Junk"])


def header_bytes(name: str, value: str | bytes) -> bytes:
    data = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return name.encode() + b": " + data + b"\r\n"


# -- strategies: MIME structure ---------------------------------------------------------------------

_LEAF_TYPES = st.sampled_from([
    "text/plain", 'text/plain; charset="gb2312"', "text/plain; charset=x-bogus", "text/html; charset=utf-8",
    'image/png; name="x.png"', "application/pdf", "application/octet-stream", "message/rfc822", "text",
    "multipart/mixed", "", "text/plain; charset=rot13",
])
_CTES = st.sampled_from(["", "7bit", "8bit", "binary", "base64", "BASE64 ", "quoted-printable", "x-uuencode",
                         "bogus", "base64\x00"])


@st.composite
def leaf(draw: st.DrawFn) -> bytes:
    """One part: a body that is valid, truncated or junk for its declared transfer encoding."""
    cte = draw(_CTES)
    data = draw(st.one_of(st.binary(max_size=200), _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))))
    if cte.strip().lower().startswith("base64"):
        body = base64.encodebytes(data)
        body = (body[:draw(st.integers(0, len(body)))]
                + draw(st.sampled_from([b"", b"=", b"\xff", b"==junk", b"!"])))
    elif cte == "quoted-printable":
        body = draw(st.sampled_from([b"caf=C3=A9", b"=E4=B8=AD=", b"=\r\n", b"=ZZ", b"="])) + data
    else:
        body = data
    head = b""
    if draw(st.booleans()):
        head += header_bytes("Content-Type", draw(_LEAF_TYPES))
    if cte:
        head += header_bytes("Content-Transfer-Encoding", cte)
    if draw(st.booleans()):
        name = draw(st.one_of(encoded_words(),
                              st.sampled_from(["x.png", "a/../b.pdf", "", "%E4", "\r\nX: y"])))
        head += header_bytes("Content-Disposition", f'attachment; filename="{name}"')
    if draw(st.booleans()):
        head += header_bytes("Content-Length", str(draw(st.integers(0, 10**15))))  # a huge declared part
    return head + b"\r\n" + body


def multipart(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A multipart around some parts: right, missing, wrong or unterminated boundaries; or a whole message."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        parts = draw(st.lists(children, max_size=4))
        boundary = draw(st.sampled_from(["b", "b1", "=_x", "", "a b", "b\x00"]))
        declared = draw(st.sampled_from([boundary, "other", None]))
        subtype = draw(st.sampled_from(["mixed", "alternative", "related", "report", "digest"]))
        if draw(st.integers(0, 4)) == 0:  # forwarded as an attachment: message/rfc822 around a message
            return (header_bytes("Content-Type", "message/rfc822") + b"\r\n" + b"From: x@y.z\r\n"
                    + b"".join(parts))
        ctype = f"multipart/{subtype}" + (f'; boundary="{declared}"' if declared is not None else "")
        body = b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
        if draw(st.booleans()):
            body += b"--" + boundary.encode() + b"--\r\n"  # else: truncated, no closing boundary
        return (header_bytes("Content-Type", ctype) + b"\r\n"
                + draw(st.sampled_from([b"", b"preamble\r\n"])) + body)

    return build()


_MIME = st.recursive(leaf(), multipart, max_leaves=8)

# -- properties -------------------------------------------------------------------------------------


def parse(data: bytes) -> ParsedMessage | None:
    """Parse ``data``; None when refused. Fails the test on any other exception or on a bug of ours."""
    try:
        return parse_message(data)
    except MalformedMessageError as e:
        assert "unexpected error" not in str(e), str(e)
        assert "\n" not in str(e) and "\r" not in str(e)
        return None


def single_line(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text)


def check(data: bytes) -> None:
    msg = parse(data)
    again = parse(data)
    assert msg == again  # deterministic
    if msg is None:
        return
    assert msg.sender == "" or (valid_address(msg.sender) and msg.sender == msg.sender.lower())
    header_fields = [msg.subject, msg.sender, msg.sender_name, msg.message_id, *msg.in_reply_to,
                     *msg.references, msg.noise_reason, *(a.name for a in msg.attachments)]
    for value in header_fields:
        assert single_line(value), repr(value)
    for problem in msg.problems:
        assert "\n" not in problem and "\r" not in problem, repr(problem)
    assert isinstance(msg.text, str) and isinstance(msg.body, str)
    _ = (msg.case_reference, msg.thread_ids, msg.dedupe_key, [a.wants_ocr for a in msg.attachments])
    if msg.sender:
        ack = build_ack("2026-000001", ack_request(msg), SMTP)
        assert ack["To"] == msg.sender and ack["Bcc"] is None and ack["Cc"] is None
        for name, value in ack.items():
            assert single_line(str(value)), (name, value)
        ack.as_bytes()  # the message can be serialised: no header the policy refuses


@FUZZ
@given(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=10), st.binary(max_size=100))
def test_arbitrary_header_bytes(headers: list[tuple[str, str | bytes]], body: bytes) -> None:
    check(b"".join(header_bytes(name, value) for name, value in headers) + b"\r\n" + body)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["From", "Reply-To", "Subject"]),
                          st.lists(st.one_of(encoded_words(), _ADDRESS_BITS), min_size=1, max_size=5)
                          .map(" ".join)), min_size=1, max_size=3))
def test_hostile_addresses_and_words(headers: list[tuple[str, str]]) -> None:
    check(b"".join(header_bytes(name, value) for name, value in headers) + b"\r\nThe lights are out.\r\n")


@FUZZ
@given(_MIME, st.sampled_from([b"", header_bytes("MIME-Version", "1.0")]))
def test_broken_mime_structure(mime: bytes, version: bytes) -> None:
    check(b"From: Li <li@example.cn>\r\nSubject: s\r\nMessage-ID: <f@x>\r\n" + version + mime)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)
