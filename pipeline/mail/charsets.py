"""Text bytes of e-mail into ``str``: the declared charset, its common superset, else a guess; never failing.

Mailers often label GB18030 text as GB2312, send no label at all, or name a charset that does not
exist. ``decode_text`` always returns text and says, in a note for people, when it had to depart
from the declared label or replace undecodable bytes.
"""

from __future__ import annotations

import codecs

import charset_normalizer

#: labels that are commonly used for bytes of a superset encoding
_CHARSET_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "ascii": "utf-8",
    "us-ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "ks_c_5601-1987": "cp949",
}


def decode_text(data: bytes, declared: str | None) -> tuple[str, str]:
    """Decode text bytes; (text, note) where the note is "" when the declared label (or none) worked.

    ``gb2312`` and ``gbk`` labels are decoded as ``gb18030``, a superset of both. Without a usable
    label, UTF-8 is tried first, then charset-normalizer guesses; as a last resort undecodable
    bytes become U+FFFD.
    """
    if not data:
        return "", ""
    label = (declared or "").strip().strip('"').lower()
    known = bool(label) and _lookup(_CHARSET_SUPERSETS.get(label, label))
    candidates: list[str] = []
    if known:
        candidates.append(_CHARSET_SUPERSETS.get(label, label))
        if candidates[0] != label and _lookup(label):
            candidates.append(label)
    if "utf-8" not in candidates:
        candidates.append("utf-8")
    for name in candidates:
        try:
            text = data.decode(name)
        except (LookupError, UnicodeError, ValueError):
            continue
        return text, _departure(label, known, name)
    best = charset_normalizer.from_bytes(data).best()
    if best is not None:
        return str(best), _departure(label, known, f"{best.encoding} (guessed)")
    name = candidates[0]
    return (data.decode(name, errors="replace"),
            f"undecodable bytes, decoded as {name} with replacement characters")


def decode_bytes(data: bytes, declared: str | None) -> str:
    """``decode_text`` without the note."""
    return decode_text(data, declared)[0]


def _departure(label: str, known: bool, used: str) -> str:
    """The note when ``used`` is not what the label asked for; "" when it is (or there was no label)."""
    if not label:
        return ""
    if not known:
        return f"unknown charset {label[:40]!r}, decoded as {used}"
    if used in (label, _CHARSET_SUPERSETS.get(label, label)):
        return ""
    return f"not valid {label}, decoded as {used}"


def _lookup(name: str) -> bool:
    """True when ``name`` is a text codec Python knows (``rot13`` or ``zlib`` labels are not charsets)."""
    try:
        codecs.lookup(name)
        b"".decode(name)  # refuses non-text codecs with LookupError
    except (LookupError, ValueError, TypeError):
        return False
    return True


__all__ = ["decode_bytes", "decode_text"]
