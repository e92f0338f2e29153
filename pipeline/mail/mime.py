"""MIME parts of broken messages: keep whatever decodes, and say what did not.

The stdlib's ``get_payload(decode=True)`` hands back the *still encoded* bytes when base64 has an
impossible length, and nothing tells the caller: a truncated image attachment silently became a
file of base64 text. ``decode_payload`` keeps the valid prefix instead and returns a note for people.
"""

from __future__ import annotations

import base64
import binascii
import email.errors
import email.message
import re

from pipeline.mail.headers import one_line

_B64_ALPHABET = re.compile(rb"[A-Za-z0-9+/]+")
_B64_ANY = re.compile(rb"[^A-Za-z0-9+/=\s]")
_KNOWN = ("", "7bit", "8bit", "binary", "quoted-printable", "x-uuencode", "uuencode", "uue", "x-uue")

#: what a structural defect means for the people reading the case
_DEFECTS: dict[type[email.errors.MessageDefect], str] = {
    email.errors.NoBoundaryInMultipartDefect: "multipart without a boundary, read as one part",
    email.errors.StartBoundaryNotFoundDefect: "the MIME boundary never appears, read as one part",
    email.errors.CloseBoundaryNotFoundDefect:
        "the closing MIME boundary is missing (the message may be truncated)",
    email.errors.MultipartInvariantViolationDefect: "declared multipart but has no parts",
    email.errors.MissingHeaderBodySeparatorDefect:
        "a header line without a colon, read as the start of the body",
    email.errors.FirstHeaderLineIsContinuationDefect: "the first header line is a continuation line",
    email.errors.MisplacedEnvelopeHeaderDefect: "a 'From ' envelope line among the headers",
    email.errors.InvalidMultipartContentTransferEncodingDefect: "a multipart with a transfer encoding",
}


def decode_payload(part: email.message.Message) -> tuple[bytes | None, str]:
    """The decoded bytes of a leaf part and a note ("" when all went well); None for a container part."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return None, ""
    cte = str(part.get("Content-Transfer-Encoding", "") or "").strip().lower()
    if cte == "base64":
        # base64 is ASCII: any 8-bit byte the stdlib turned into U+FFFD is skipped as a foreign character
        return decode_base64(payload.encode("ascii", "replace"))
    # the stdlib is right for the rest: raw bytes for 7bit/8bit/binary and unknown encodings, lenient QP
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None, ""
    if cte in _KNOWN:
        return data, ""
    return data, f"unknown transfer encoding {one_line(cte)[:40]!r}, kept the bytes as they are"


def decode_base64(data: bytes) -> tuple[bytes, str]:
    """Decode base64 leniently: skip foreign characters, stop at the padding, keep a truncated tail's
    prefix."""
    notes: list[str] = []
    if _B64_ANY.search(data):
        notes.append("characters outside base64 skipped")
    body, pad, after = data.partition(b"=")
    clean = b"".join(_B64_ALPHABET.findall(body))
    if pad and _B64_ALPHABET.search(after):
        notes.append("data after the end of the base64 ignored")
    usable = len(clean) - (1 if len(clean) % 4 == 1 else 0)  # one dangling character holds no full byte
    try:
        decoded = base64.b64decode(clean[:usable] + b"=" * (-usable % 4))
    except (binascii.Error, ValueError):  # not expected after the cleaning above; stay total anyway
        return b"", "base64 that cannot be decoded, nothing kept"
    if usable != len(clean) or (not pad and len(clean) % 4):
        notes.insert(0, f"truncated base64, kept the first {len(decoded):,} bytes")
    return decoded, "; ".join(notes)


def structure_notes(msg: email.message.Message) -> list[str]:
    """One note per structural defect the parser found in the message or its parts."""
    notes: list[str] = []
    for n, part in enumerate(_parts(msg)):
        where = "message" if n == 0 else f"part {n} ({part.get_content_type()})"
        for defect in getattr(part, "defects", []):
            meaning = _DEFECTS.get(type(defect))
            if meaning is not None:
                notes.append(f"{where}: {meaning}")
    return list(dict.fromkeys(notes))


def _parts(msg: email.message.Message) -> list[email.message.Message]:
    """Every part, depth first, without recursion (nesting depth is attacker-controlled)."""
    out: list[email.message.Message] = []
    stack = [msg]
    while stack:
        part = stack.pop()
        out.append(part)
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, email.message.Message)]))
    return out


__all__ = ["decode_base64", "decode_payload", "structure_notes"]
