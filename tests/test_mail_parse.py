"""Parsing unit tests: one per charset and message shape, the bundled samples, hostile headers and
broken MIME.

The property-based tests are in ``test_mail_fuzz.py``.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path

import pytest

from pipeline.core.errors import MalformedMessageError
from pipeline.mail.parse import case_text, decode_bytes, html_to_text, parse_message

SAMPLES = Path(__file__).resolve().parent.parent / "pipeline" / "samples" / "emails"
ZH = "我在三号窗口排队等了两个小时，工作人员态度很差。"


def raw(headers: dict[str, str], body: bytes, ctype: str = "text/plain", cte: str = "8bit") -> bytes:
    head = {"From": "a@example.org", "To": "desk@example.org", "Subject": "s",
            "Message-ID": "<m1@example.org>", "MIME-Version": "1.0", "Content-Type": ctype,
            "Content-Transfer-Encoding": cte, **headers}
    lines = [f"{k}: {v}" for k, v in head.items() if v]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def b2047(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


# -- samples --------------------------------------------------------------------------------------


def test_bundled_samples_parse() -> None:
    parsed = {p.name: parse_message(p.read_bytes()) for p in sorted(SAMPLES.glob("*.eml"))}
    assert len(parsed) >= 7
    assert parsed["01-plain-en.eml"].text.endswith("138-0013-8000.")  # signature gone
    assert "Sent from my phone" in parsed["01-plain-en.eml"].body  # but kept in the body
    assert parsed["02-chinese-gb2312.eml"].subject == "投诉：三号窗口排队太久"
    assert parsed["02-chinese-gb2312.eml"].sender_name == "张伟"
    assert "三号窗口" in parsed["02-chinese-gb2312.eml"].text
    assert parsed["03-html-only.eml"].html_only and "alert" not in parsed["03-html-only.eml"].text
    reply = parsed["04-reply-quoted.eml"]
    assert reply.case_reference == "2026-000123" and "we received" not in reply.text
    assert "we received" in reply.body
    assert [a.name for a in parsed["05-scanned-slip.eml"].attachments] == ["slip.png"]
    assert parsed["05-scanned-slip.eml"].attachments[0].wants_ocr
    assert parsed["06-auto-reply.eml"].noise_reason.startswith("auto-submitted")
    assert "multipart/report" in parsed["07-bounce.eml"].noise_reason
    for name in ("01-plain-en.eml", "02-chinese-gb2312.eml", "03-html-only.eml", "05-scanned-slip.eml"):
        assert not parsed[name].is_noise, name


# -- charsets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["gb2312", "gbk", "gb18030", "big5", "utf-8"])
def test_declared_charsets(charset: str) -> None:
    text = ZH if charset != "big5" else "我在三號窗口排隊等了兩個小時。"
    msg = parse_message(raw({}, base64.encodebytes(text.encode(charset)), f'text/plain; charset="{charset}"',
                            "base64"))
    assert msg.text == text


def test_gb2312_label_with_gb18030_bytes() -> None:
    text = "䶮先生投诉：窗口€排队"  # 䶮 and € are outside GB2312 and GBK's original table
    msg = parse_message(raw({}, text.encode("gb18030"), 'text/plain; charset="gb2312"'))
    assert msg.text == text


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_no_charset_label_is_guessed(encoding: str) -> None:
    body = (ZH * 3).encode(encoding)
    msg = parse_message(raw({}, body, "text/plain"))
    assert msg.text == ZH * 3


def test_unknown_charset_label_falls_back() -> None:
    msg = parse_message(raw({}, ZH.encode("utf-8"), 'text/plain; charset="x-unknown-1"'))
    assert msg.text == ZH


def test_big5_mislabelled_as_utf8_is_guessed() -> None:
    text = "我在三號窗口排隊等了兩個小時，工作人員態度很差。" * 3
    assert decode_bytes(text.encode("big5"), "utf-8") == text


def test_rfc2047_subject_and_name() -> None:
    subject = f"{b2047('投诉', 'gb2312')} window =?utf-8?Q?caf=C3=A9?="
    msg = parse_message(raw({"Subject": subject, "From": f"{b2047('王芳', 'gbk')} <Wang@Example.CN>"}, b"hi"))
    assert msg.subject == "投诉 window café"
    assert (msg.sender_name, msg.sender) == ("王芳", "wang@example.cn")


def test_quoted_printable_body() -> None:
    body = b"caf=C3=A9 and a soft=\r\n break"
    msg = parse_message(raw({}, body, 'text/plain; charset="utf-8"', "quoted-printable"))
    assert msg.text == "café and a soft break"


# -- shapes -------------------------------------------------------------------------------------


def test_multipart_alternative_prefers_plain() -> None:
    m = EmailMessage()
    m["From"], m["Subject"], m["Message-ID"] = "a@b.org", "alt", "<alt@b.org>"
    m.set_content("the plain version")
    m.add_alternative("<p>the html version</p>", subtype="html")
    assert parse_message(m.as_bytes()).text == "the plain version"


def test_multipart_related_html_only_with_inline_image() -> None:
    m = EmailMessage()
    m["From"], m["Subject"] = "a@b.org", "rel"
    m.set_content("<html><body><style>.x{}</style><p>Dirty <i>toilets</i></p>"
                  "<img src='cid:i1'></body></html>", subtype="html")
    m.add_related(b"\x89PNG\r\n\x1a\nfake", maintype="image", subtype="png", cid="<i1>")
    msg = parse_message(m.as_bytes())
    assert msg.text == "Dirty\ntoilets" or msg.text.replace("\n", " ") == "Dirty toilets"
    assert [a.media_type for a in msg.attachments] == ["image/png"]


def test_html_to_text_drops_scripts_and_marks_quotes() -> None:
    text = html_to_text("<div>New text</div><script>var x=1</script><blockquote><p>old</p></blockquote>")
    assert text.splitlines()[0] == "New text" and "> old" in text and "var x" not in text


def test_attachments_listed_and_archives_not_unpacked() -> None:
    m = EmailMessage()
    m["From"], m["Subject"] = "a@b.org", "files"
    m.set_content("see attached")
    m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="form.pdf")
    m.add_attachment(b"PK\x03\x04zip", maintype="application", subtype="zip",
                     filename="=?utf-8?q?r=C3=A9sum=C3=A9?=.zip")
    m.add_attachment(b"a,b\n", maintype="text", subtype="csv", filename="data.csv")
    msg = parse_message(m.as_bytes())
    assert msg.text == "see attached"
    assert [(a.name, a.media_type, a.size) for a in msg.attachments] == [
        ("form.pdf", "application/pdf", 13), ("résumé.zip", "application/zip", 7),
        ("data.csv", "text/csv", 4)]
    assert [a.wants_ocr for a in msg.attachments] == [True, False, False]


# -- replies, signatures, forwards ----------------------------------------------------------------


@pytest.mark.parametrize("quote", [
    "On Mon, 2 Nov 2026 at 09:00, Desk <desk@center.example> wrote:\n> old text\n> more",
    "On Mon, 2 Nov 2026 at 09:00, Complaints Desk of the Service Center\n"
    "<desk@center.example> wrote:\n\n> old",
    "-----Original Message-----\nFrom: Desk\nSent: Monday\nSubject: x\n\nold text",
    "From: Desk <desk@center.example>\nSent: Monday, 2 November 2026 09:00\nTo: me\nSubject: x\n\nold text",
    "在 2026年11月2日 09:00，投诉中心 <desk@center.example> 写道：\n> old text",
    "> old text\n> more old text",
])
def test_quoted_reply_is_stripped(quote: str) -> None:
    body = f"Still no answer about my case.\n\n{quote}\n"
    assert case_text(body) == "Still no answer about my case."


def test_wrote_in_a_sentence_is_not_a_quote() -> None:
    body = "On Monday the officer at window 3 wrote:\nthat my form was wrong, but it was not."
    assert case_text(body) == body


def test_signature_stripped() -> None:
    assert case_text("The lights are broken.\n\n-- \nJane\n+86 138 0000 0000") == "The lights are broken."


def test_forwarded_inline_keeps_the_complaint() -> None:
    body = ("FYI, citizen complaint below.\n\n---------- Forwarded message ---------\n"
            "From: Li Lei <li@example.cn>\nDate: Mon, 2 Nov 2026\nSubject: parking\n"
            "To: info@center.example\n\n"
            "The bus bay is always blocked by parked cars.\n")
    msg = parse_message(raw({"Subject": "Fwd: parking"}, body.encode()))
    assert msg.forwarded
    assert "bus bay is always blocked" in msg.text and "From: Li Lei" not in msg.text


def test_forwarded_as_attachment() -> None:
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "Li Lei <li@example.cn>", "parking"
    inner.set_content("The bus bay is always blocked.")
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "staff@center.example", "Fw: parking"
    outer.set_content("forwarding")
    outer.add_attachment(inner)
    msg = parse_message(outer.as_bytes())
    assert msg.forwarded and "bus bay is always blocked" in msg.text
    assert msg.attachments[0].media_type == "message/rfc822"


# -- noise and threading ------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "reason"), [
    ({"Auto-Submitted": "auto-replied"}, "auto-submitted"),
    ({"X-Autoreply": "yes"}, "X-Autoreply"),
    ({"X-Autorespond": "yes"}, "X-Autorespond"),
    ({"Precedence": "bulk"}, "precedence: bulk"),
    ({"Precedence": "junk"}, "precedence: junk"),
    ({"List-Id": "<news.example.org>"}, "mailing list"),
    ({"From": "MAILER-DAEMON@mx.example.org"}, "bounce"),
    ({"Subject": "Out of Office: back on Monday"}, "auto-reply"),
])
def test_noise(headers: dict[str, str], reason: str) -> None:
    assert reason in parse_message(raw(headers, b"body")).noise_reason


def test_auto_submitted_no_is_not_noise() -> None:
    assert parse_message(raw({"Auto-Submitted": "no"}, b"body")).noise_reason == ""


def test_threading_headers() -> None:
    msg = parse_message(raw({"Subject": "RE: RE: lights [case #2026-000042]", "In-Reply-To": "<b@x>",
                             "References": "<a@x> <b@x>"}, b"thanks"))
    assert msg.case_reference == "2026-000042"
    assert msg.thread_ids == ("<b@x>", "<a@x>")


# -- malformed ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"   \r\n", b"just some bytes without any header", b"\x00\xff\xfe" * 10])
def test_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        parse_message(data)


# -- hostile headers (issue 10) -------------------------------------------------------------------

POISON = b"From: a@b.c\r\nSubject: =?utf-8?B?a?=\r\nMessage-ID: <p2@x>\r\n\r\nhello\r\n"


def test_bad_base64_word_in_subject_keeps_its_raw_text() -> None:
    msg = parse_message(POISON)  # raised email.errors.HeaderParseError before
    assert (msg.subject, msg.sender, msg.text, msg.message_id) == (
        "=?utf-8?B?a?=", "a@b.c", "hello", "<p2@x>")
    assert msg.problems == (
        "subject: encoded word '=?utf-8?B?a?=': base64 of impossible length, kept as it is",)


def test_bad_word_in_the_from_name_keeps_the_address() -> None:
    msg = parse_message(raw({"From": "=?utf-8?B?a?= <Citizen@Example.org>"}, b"hello"))
    assert (msg.sender, msg.text) == ("citizen@example.org", "hello")


def test_good_words_decode_around_a_bad_one() -> None:
    subject = f"{b2047('投诉', 'utf-8')} {b2047('窗口', 'gbk')} =?utf-8?B?@@@?= =?x-nonsense?Q?caf=C3=A9?="
    msg = parse_message(raw({"Subject": subject}, b"hello"))
    assert msg.subject == "投诉窗口 =?utf-8?B?@@@?= café"
    assert [p.split(":")[0] for p in msg.problems] == ["subject", "subject"]
    assert "unknown charset 'x-nonsense'" in msg.problems[1]


def test_raw_8bit_headers_are_decoded() -> None:
    data = ("From: 张伟 <zhang@example.cn>\r\nSubject: 投诉：三号窗口\r\n\r\nhello").encode()
    msg = parse_message(data)
    assert (msg.subject, msg.sender_name, msg.sender) == ("投诉：三号窗口", "张伟", "zhang@example.cn")
    gb = ("From: z@example.cn\r\nSubject: 投诉：三号窗口排队太久\r\n\r\nhello").encode("gb18030")
    assert parse_message(gb).subject == "投诉：三号窗口排队太久"


def test_display_name_with_crlf_cannot_choose_the_sender() -> None:
    evil = base64.b64encode(b"line1\r\nBcc: evil@example.com").decode()
    msg = parse_message(raw({"From": f"=?utf-8?B?{evil}?= <good@example.org>"}, b"hello"))
    assert msg.sender == "good@example.org"  # was evil@example.com
    assert msg.sender_name == "line1 Bcc: evil@example.com"


@pytest.mark.parametrize("header", [
    f"=?utf-8?B?{base64.b64encode(b'evil@example.com').decode()}?=",  # an address only after decoding
    "=?utf-8?Q?evil=40example.com?=",
    '"evil@example.com"',
    "undisclosed-recipients:;",
    "<>",
    "a@b.c\tBcc: evil@example.com",
    '"a b"@example.org',
    "x" * 5000 + " <a@example.org>",
])
def test_no_valid_address_gives_no_sender(header: str) -> None:
    msg = parse_message(raw({"From": header}, b"hello"))
    assert msg.sender == ""
    assert msg.text == "hello" and any(p.startswith("from: ") for p in msg.problems)


def test_first_valid_mailbox_wins() -> None:
    msg = parse_message("From: nobody, Li <LI@例子.中国>, b@example.org\r\nSubject: s\r\n\r\nhello".encode())
    assert (msg.sender_name, msg.sender) == ("Li", "li@例子.中国")


def test_message_ids_are_visible_ascii_only() -> None:
    msg = parse_message(
        raw({"Message-ID": "<a\x01b@x>", "References": "<ok@x> <bad\x7f@x> <also-ok@y>"}, b"hi"))
    assert msg.message_id == "" and msg.references == ("<ok@x>", "<also-ok@y>")


# -- broken MIME bodies keep what decodes ---------------------------------------------------------


def _with_attachment(encoded: bytes, cte: str = "base64") -> bytes:
    return (b"From: a@example.org\r\nSubject: photo\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nthe lift is broken\r\n"
            b'--b\r\nContent-Type: image/png; name="x.png"\r\n'
            b'Content-Disposition: attachment; filename="x.png"\r\n'
            b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n" + encoded + b"\r\n--b--\r\n")


def test_truncated_base64_attachment_keeps_the_valid_prefix_and_says_so() -> None:
    data = bytes(range(256)) * 8
    encoded = base64.b64encode(data)[:1001]  # cut mid-quantum: 1001 = 4 * 250 + 1
    msg = parse_message(_with_attachment(encoded))
    (att,) = msg.attachments
    assert att.data == data[:750]  # the stdlib handed back the base64 text itself
    assert msg.text == "the lift is broken"
    assert msg.problems == ("attachment x.png: truncated base64, kept the first 750 bytes",)


def test_base64_with_junk_keeps_what_decodes() -> None:
    encoded = base64.encodebytes(b"\x89PNG data")[:-1] + b"\xff\x00!!"
    msg = parse_message(_with_attachment(encoded))
    assert msg.attachments[0].data == b"\x89PNG data"
    assert msg.problems == ("attachment x.png: characters outside base64 skipped",)


def test_unknown_transfer_encoding_is_kept_and_noted() -> None:
    msg = parse_message(_with_attachment(b"rawbytes", cte="x-rot13"))
    assert msg.attachments[0].data == b"rawbytes"
    assert msg.problems == (
        "attachment x.png: unknown transfer encoding 'x-rot13', kept the bytes as they are",)


def test_undecodable_body_charset_is_noted() -> None:
    msg = parse_message(raw({}, ZH.encode("utf-8"), 'text/plain; charset="x-unknown-1"'))
    assert msg.text == ZH and msg.problems == ("body: unknown charset 'x-unknown-1', decoded as utf-8",)


def test_multipart_without_its_boundary_is_read_as_text() -> None:
    data = (b'From: a@example.org\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary="nope"\r\n\r\n'
            b"--other\r\nContent-Type: text/plain\r\n\r\nthe lights in hall B are out\r\n")
    msg = parse_message(data)
    assert "the lights in hall B are out" in msg.text
    assert "message: the MIME boundary never appears, read as one part" in msg.problems


def test_truncated_multipart_says_so() -> None:
    data = _with_attachment(base64.b64encode(b"\x89PNG")).rsplit(b"--b--", 1)[0]
    msg = parse_message(data)
    assert msg.attachments[0].data == b"\x89PNG"
    assert "message: the closing MIME boundary is missing (the message may be truncated)" in msg.problems


def test_clean_messages_have_no_problems() -> None:
    for path in sorted(SAMPLES.glob("*.eml")):
        assert parse_message(path.read_bytes()).problems == (), path.name
