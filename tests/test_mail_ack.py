"""Acknowledgments go only to the sender's own valid address, and nothing in them spans two header lines.

The relay is a real SMTP server (aiosmtpd) that records the envelope: ``smtplib.send_message``
takes its recipients from the To/Cc/Bcc headers, so an injected ``Bcc:`` would show up there.
"""

from __future__ import annotations

import base64

import pytest

from pipeline.mail.ack import AckError, ack_request, build_ack, send_ack, should_ack
from pipeline.mail.parse import parse_message
from pipeline.mail.settings import Security, SmtpSettings
from storage import AckRequest
from tests.mail_support import Relay, relay  # noqa: F401  (fixture)

EVIL_NAME = base64.b64encode(b"line1\r\nBcc: evil@example.com").decode()
HOSTILE = (f"From: =?utf-8?B?{EVIL_NAME}?= <good@example.org>\r\nTo: desk@center.example\r\n"
           "Subject: =?utf-8?Q?lights=0D=0ABcc:_evil2@example.com?=\r\nMessage-ID: <h1@example.org>\r\n"
           "References: <r1@example.org>\r\n\r\nThe lights in hall B are out.\r\n").encode()


def smtp(port: int = 25) -> SmtpSettings:
    return SmtpSettings(ack=True, host="127.0.0.1", port=port, security=Security.none,
                        from_address="desk@center.example", timeout_seconds=3)


def header_lines(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in data else data.split(b"\n\n", 1)[0]
    return [line for line in head.decode().splitlines() if line and not line[0].isspace()]


def test_hostile_display_name_cannot_redirect_the_ack(relay: Relay) -> None:  # noqa: F811
    parsed = parse_message(HOSTILE)
    assert should_ack(parsed, smtp())
    send_ack("2026-000001", ack_request(parsed), smtp(relay.port))
    (got,) = relay.envelopes
    assert got.rcpt_tos == ["good@example.org"]  # was ["evil@example.com"]
    names = [line.split(":", 1)[0].lower() for line in header_lines(got.content)]
    assert "bcc" not in names and names.count("to") == 1
    assert "Subject: Re: lights Bcc: evil2@example.com [Case #2026-000001]" in header_lines(got.content)


def test_built_ack_has_one_line_headers() -> None:
    request = AckRequest("good@example.org", "Li\r\nBcc: evil@example.com",
                         "lights\r\nBcc: evil@example.com [Case #2026-000009]",
                         "<a@x>\r\nBcc: evil@example.com", "<r1@x> junk\r\nX-Evil: 1 <r2@x>")
    msg = build_ack("2026-000001", request, smtp())
    assert msg["To"] == "good@example.org"
    assert msg["Subject"] == "Re: lights Bcc: evil@example.com [Case #2026-000001]"
    assert (msg["In-Reply-To"], msg["References"]) == ("<a@x>", "<r1@x> <r2@x> <a@x>")
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    for name, value in msg.items():
        assert "\r" not in str(value) and "\n" not in str(value), name
    assert "Dear Li Bcc: evil@example.com," in msg.get_content()


@pytest.mark.parametrize("recipient", [
    "evil@example.com\r\nBcc: x@example.com", "a@b.c, evil@example.com", "Evil <evil@example.com>", "",
    "not-an-address", '"a b"@example.org', "a@[127.0.0.1]",
])
def test_ack_refuses_an_invalid_recipient(recipient: str) -> None:
    with pytest.raises(AckError, match="not a valid e-mail address"):
        build_ack("2026-000001", AckRequest(recipient), smtp())


def test_ack_refused_before_anything_is_sent(relay: Relay) -> None:  # noqa: F811
    with pytest.raises(AckError):
        send_ack("2026-000001", AckRequest("a@b.c\r\nBcc: evil@example.com"), smtp(relay.port))
    assert relay.received == []


def test_no_ack_without_a_valid_sender() -> None:
    only_encoded = base64.b64encode(b"evil@example.com").decode()
    parsed = parse_message(f"From: =?utf-8?B?{only_encoded}?=\r\nSubject: s\r\n\r\nhello".encode())
    assert parsed.sender == "" and not should_ack(parsed, smtp())


def test_long_subject_is_cut() -> None:
    msg = build_ack("2026-000001", AckRequest("a@example.org", subject="x" * 10_000), smtp())
    assert len(str(msg["Subject"])) < 250


def test_encoded_words_are_not_decoded_on_the_way_out() -> None:
    # EmailMessage decodes RFC 2047 words in the values it is given: a word the parser kept raw
    # (undecodable for it) must not turn into control characters in our headers
    request = AckRequest("a@example.org", subject="=?utf-8?B?DQpCY2M6IGV2aWxAeC55?=",
                         in_reply_to="<=?utf-8?B?DQo=?=@x>", references="<ok@x> <=?utf-8?Q?=0D=0A?=@y>")
    msg = build_ack("2026-000001", request, smtp())
    assert msg["Subject"] == "Re: = ?utf-8?B?DQpCY2M6IGV2aWxAeC55?= [Case #2026-000001]"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    with pytest.raises(AckError):
        build_ack("2026-000001", AckRequest("=?utf-8?B?ZXZpbA==?=@example.org"), smtp())
