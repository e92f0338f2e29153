"""Reading e-mail headers defensively: RFC 2047 words, addresses, one-line values.

Headers are attacker-controlled text, and two rules keep them harmless:

- A bad RFC 2047 word (``=?utf-8?B?a?=``: base64 of an impossible length, an unknown charset) keeps
  its raw text and is reported in a note; it never raises. The stdlib's ``decode_header`` raises
  ``HeaderParseError`` on such a word, which once let one message block a whole mailbox.
- Addresses are parsed from the *raw* header (``email.headerregistry``'s address parser), and only
  display names are decoded. Decoding the whole header first turned a display name such as
  ``=?utf-8?B?...?=`` (``line1\\r\\nBcc: evil@example.com``) into an address of the attacker's choice.

Every string returned here is one line: no CR, LF or other control character can reach a header
built from it.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from email.headerregistry import AddressHeader

from pipeline.mail.charsets import decode_text

#: An address header longer than this is not parsed: cutting it could yield a different address.
MAX_ADDRESS_HEADER = 4096

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_LABEL}(?:\.{_LABEL})+", re.ASCII)


def one_line(text: str) -> str:
    """``text`` with every control, line or paragraph separator character turned into a space, collapsed."""
    chars = [" " if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") else c for c in text]
    return re.sub(r"\s+", " ", "".join(chars)).strip()


def unescape_bytes(text: str) -> str:
    """Header text as read by ``email`` (raw 8-bit bytes kept as surrogates) turned into real text.

    Unencoded UTF-8 or GB18030 in headers is common in Chinese mail; decoding those bytes keeps the
    subject readable instead of a row of replacement characters.
    """
    if not any("\udc80" <= c <= "\udcff" for c in text):
        return text
    data = text.encode("utf-8", "surrogateescape")
    # a guess on a dozen bytes is often wrong (GB18030 read as Korean); our mail is UTF-8 or GB18030
    for charset in ("utf-8", "gb18030"):
        try:
            return data.decode(charset)
        except UnicodeDecodeError:
            continue
    return decode_text(data, None)[0]


def decode_header_text(value: object, where: str = "header") -> tuple[str, list[str]]:
    """Decode a header's RFC 2047 words into one line of text; (text, notes about what was wrong).

    A word that cannot be decoded keeps its raw text. Whitespace between two encoded words is
    dropped, as RFC 2047 says.
    """
    if value is None:
        return "", []
    text = _FOLD.sub("", unescape_bytes(str(value)))
    notes: list[str] = []
    out: list[str] = []
    pos, last_decoded = 0, False
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos:match.start()]
        decoded, note = _decode_word(match.group(1), match.group(2), match.group(3))
        if note:
            notes.append(f"{where}: encoded word {_shown(match.group(0))}: {note}")
        # a word kept raw is plain text, so the space next to it is kept too
        if not (last_decoded and decoded is not None and _BETWEEN_WORDS.fullmatch(between)):
            out.append(between)
        out.append(match.group(0) if decoded is None else decoded)
        pos, last_decoded = match.end(), decoded is not None
    out.append(text[pos:])
    return one_line("".join(out)), notes


def decode_header_value(value: object) -> str:
    """Decode RFC 2047 encoded words (``=?gb2312?B?...?=``) into one line of text; never raises."""
    return decode_header_text(value)[0]


def _decode_word(charset: str, encoding: str, payload: str) -> tuple[str | None, str]:
    """One encoded word's text (None when its bytes cannot be recovered: keep the raw word), and a note."""
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix: =?utf-8*en?Q?...?=
    if encoding in "bB":
        data = payload.encode("ascii", "replace")
        if len(data) % 4 == 1:
            return None, "base64 of impossible length, kept as it is"
        try:
            raw = base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None, "invalid base64, kept as it is"
    else:
        data = payload.encode("utf-8", "surrogateescape").replace(b"_", b" ")
        raw = _QP_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), data)
    return decode_text(raw, charset)


def parse_address(value: object, where: str = "from") -> tuple[str, str, list[str]]:
    """The first valid mailbox of an address header: (display name, address lower-cased, notes).

    The address comes from the raw header; an encoded word never becomes an address. ``("", "",
    notes)`` when no mailbox has a syntactically valid address.
    """
    if value is None:
        return "", "", []
    text = one_line(_FOLD.sub("", unescape_bytes(str(value))))
    if not text:
        return "", "", []
    if len(text) > MAX_ADDRESS_HEADER:
        return "", "", [f"{where}: the header is {len(text):,} characters long, not read"]
    try:
        mailboxes = AddressHeader.value_parser(text).mailboxes
        found = [(m.display_name or "", f"{m.local_part}@{m.domain}") for m in mailboxes]
    except Exception as e:  # noqa: BLE001 - the stdlib parser's failures on hostile text are not ours
        return "", "", [f"{where}: cannot parse {_shown(text)} ({type(e).__name__})"]
    for name, address in found:
        if valid_address(address):
            return one_line(name), address.lower(), []
    return "", "", [f"{where}: no valid address in {_shown(text)}"]


def valid_address(address: str) -> bool:
    """True for a plain ``local@domain.tld`` address (dot-atom local part, host-name domain), nothing else.

    Quoted local parts, IP literals and non-ASCII local parts are refused: this decides where an
    acknowledgment may be sent, so it errs on the side of sending none.
    """
    if not address or len(address) > 254 or "=?" in address:
        # "=?" is legal in a local part, but the email package decodes it as an RFC 2047 word when
        # the address is put in a header: the address we checked would not be the one used
        return False
    local, _, domain = address.rpartition("@")
    if not local or len(local) > 64 or not local.isascii():
        return False
    if not domain.isascii():
        domain = _to_idna(domain)
    return bool(_ADDRESS.fullmatch(f"{local}@{domain}"))


def _to_idna(domain: str) -> str:
    try:
        return domain.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return ""


def _shown(text: str, limit: int = 80) -> str:
    """``text`` quoted for a note, shortened."""
    short = one_line(text)
    return repr(short if len(short) <= limit else short[:limit] + "...")


__all__ = ["decode_header_text", "decode_header_value", "one_line", "parse_address", "unescape_bytes",
           "valid_address"]
