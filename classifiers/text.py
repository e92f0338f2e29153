"""Text clean-up for OCR output, and language detection by character ranges.

``normalize_text`` repairs what Tesseract typically breaks, without touching Chinese characters or
Chinese punctuation:

- full-width ASCII letters, digits and a few symbols (``Ｗｉｎｄｏｗ　７``) become half-width;
- words hyphenated across a line break are joined (``com-\\nplaint`` -> ``complaint``);
- lines broken inside a sentence are joined (with a space in English, without one between Chinese
  characters); lines that look like form fields (``Name: ...``, ``电话：...``) keep their own line;
- confusable characters are repaired inside words (``c0mplaint`` -> ``complaint``) and inside
  numbers (``2O26`` -> ``2026``, ``138 l234`` -> ``138 1234``);
- spaces that OCR inserts between Chinese characters are removed, other whitespace collapsed.
"""

from __future__ import annotations

import re
import unicodedata

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_PUNCT = "\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
_HAN_RE = re.compile(f"[{_HAN}]")
_LATIN_WORD_RE = re.compile(r"[A-Za-z]{2,}|[A-Za-z](?![A-Za-z])")

# Full-width forms converted to ASCII: letters, digits and symbols that never carry Chinese meaning.
_FULLWIDTH_KEEP = set("，。：；！？（）【】「」『』、《》“”‘’")
_FULLWIDTH_MAP = {
    cp: cp - 0xFEE0
    for cp in range(0xFF01, 0xFF5F)
    if chr(cp) not in _FULLWIDTH_KEEP and (chr(cp - 0xFEE0).isalnum() or chr(cp - 0xFEE0) in "@.-+/_#%&*=~$")
}
_FULLWIDTH_MAP[0x3000] = 0x20  # ideographic space
_TRANSLATE = {
    **_FULLWIDTH_MAP,
    0x00A0: 0x20,  # no-break space
    0x200B: None,  # zero-width space
    0x200C: None,
    0x200D: None,
    0xFEFF: None,
    0x00AD: None,  # soft hyphen
    0x2010: 0x2D,  # hyphen
    0x2011: 0x2D,
    0x2013: 0x2D,  # en dash
    0xFB01: "fi",
    0xFB02: "fl",
    0x2018: 0x27,
    0x2019: 0x27,
}

_HYPHEN_BREAK_RE = re.compile(r"([A-Za-z])-[ \t]*\n[ \t]*([a-z])")
_FIELD_LINE_RE = re.compile(rf"^\s*(?:[A-Za-z][A-Za-z .]{{0,20}}|[{_HAN}]{{1,8}})\s*[:：]")
_SENTENCE_END = ".!?。！？；;:：…"
_SPACED_HAN_RE = re.compile(rf"(?<=[{_HAN}{_CJK_PUNCT}]) +(?=[{_HAN}{_CJK_PUNCT}])")
# only words that mix letters (or "|") and digits can hold a confusable
# A whole alphanumeric run, then a separate test for a letter next to a digit: one regex doing both
# ("[A-Za-z0-9|]*(?:[A-Za-z|][0-9]|[0-9][A-Za-z|])[A-Za-z0-9|]*") backtracked quadratically, and a
# 200 KB e-mail made of one word held the importer for an hour (the result is the same).
_WORD_RE = re.compile(r"[A-Za-z0-9|]+")
_MIXED_RE = re.compile(r"[A-Za-z|][0-9]|[0-9][A-Za-z|]")
_DIGITISH = {"O": "0", "o": "0", "l": "1", "I": "1", "|": "1"}


def normalize_text(text: str) -> str:
    """Clean OCR output: widths, hyphenation, broken lines, confusables, whitespace.

    Idempotent, and Chinese characters and Chinese punctuation pass through unchanged.
    """
    text = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _HYPHEN_BREAK_RE.sub(r"\1\2", text)
    text = _join_broken_lines(text)
    text = _WORD_RE.sub(_fix_mixed_word, text)
    text = _SPACED_HAN_RE.sub("", text)
    text = re.sub(r"[ ]{2,}", " ", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def _join_broken_lines(text: str) -> str:
    """Join a line to the previous one unless it starts a paragraph or a form field, or follows a
    sentence end."""
    out: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        if not out or not line or not out[-1] or _FIELD_LINE_RE.match(line) or _FIELD_LINE_RE.match(out[-1]):
            out.append(line)
            continue
        prev = out[-1]
        if prev[-1] in _SENTENCE_END or (line[0].isupper() and prev[-1] not in ",-"):
            out.append(line)
        elif _HAN_RE.match(prev[-1]) and (_HAN_RE.match(line[0]) or line[0] in "，、"):
            out[-1] = prev + line
        else:
            out[-1] = f"{prev} {line}"
    # Empty lines mark paragraphs: keep one.
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def _fix_mixed_word(match: re.Match[str]) -> str:
    word = match.group(0)
    return _fix_confusables(word) if _MIXED_RE.search(word) else word


def _fix_confusables(word: str) -> str:
    """Repair ``0/O`` and ``1/l/I`` mistakes inside one alphanumeric word."""
    digits = sum(c.isdigit() for c in word)
    letters = sum(c.isalpha() for c in word)
    if not digits and "|" not in word:
        return word
    digitish = sum(c in _DIGITISH for c in word)
    # A number with a few letters that look like digits: 2O26, l0:30, 138l234.
    if digits >= 1 and letters == digitish - word.count("|") and 0 < digitish <= digits:
        return "".join(_DIGITISH.get(c, c) for c in word)
    # A word with digits that look like letters inside it: c0mplaint, he1p.
    inner = word[1:-1]
    if letters >= 3 and letters >= 3 * digits and all(c in "01" for c in word if c.isdigit()) and all(
        not c.isdigit() for c in (word[0], word[-1])
    ) and inner:
        upper = word.isupper()
        fixed = word.replace("0", "O" if upper else "o").replace("1", "I" if upper else "l")
        return fixed.replace("|", "l")
    return word


def detect_language(text: str) -> str:
    """``"zh"``, ``"en"``, ``"mixed"`` or ``""`` (no letters), from Han characters versus Latin words.

    Each Han character counts as one unit and each Latin word as one; a text is ``"mixed"`` when
    both make up at least 20% of the units.
    """
    han = len(_HAN_RE.findall(text))
    latin = len(_LATIN_WORD_RE.findall(text))
    if not han and not latin:
        return ""
    share = han / (han + latin)
    if share >= 0.8:
        return "zh"
    if share <= 0.2:
        return "en"
    return "mixed"
