"""Rows of words: the lines of print and handwriting on a page, rebuilt from the OCR's word boxes.

Tesseract's own lines follow its layout analysis: a printed number at the right of a title joins
the title, and a Chinese line can come out as several pieces. Form parsing wants visual rows: words
whose boxes share a vertical band, left to right, split where a wide gap separates two columns.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.core.model import OcrWord, PageText

#: a horizontal gap wider than this many word heights separates two columns of one band (a label
#: whose other-language half did not read leaves a gap of about five before its value)
COLUMN_GAP = 10.0
_HAN = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
_KEEP = re.compile(r"[0-9a-z\u4e00-\u9fff]+")


@dataclass(frozen=True, slots=True)
class Row:
    """One visual row of words (or one line of a text layer, which has no boxes)."""

    words: tuple[OcrWord, ...]
    text: str
    top: int
    bottom: int
    confidence: float  # mean word confidence, 0-100 (-1 for a text layer)

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def key(self) -> str:
        return normalize(self.text)


def normalize(text: str) -> str:
    """Lower-case letters, digits and Han characters only: how print is compared across OCR noise."""
    return "".join(_KEEP.findall(text.lower()))


def join_words(words: Sequence[str]) -> str:
    """Words as a line: spaces between Latin words, none between Han characters and digits ("7号窗口")."""
    out = ""
    for word in words:
        left, right = out[-1:], word[0]
        joined = (_HAN.match(left) or left.isdigit()) and (_HAN.match(right) or right.isdigit())
        if out and not (joined and (_HAN.match(left) or _HAN.match(right))):  # "7号窗口", as Tesseract has it
            out += " "
        out += word
    return out


def rows_of(page: PageText) -> list[Row]:
    """The page's rows, top to bottom; a page without word boxes gives one row per line of its text."""
    if not page.words:
        lines = [line.strip() for line in page.text.splitlines() if line.strip()]
        return [Row((), line, n, n, page.confidence) for n, line in enumerate(lines)]
    words = [w for w in page.words if w.text.strip() and not _speckle(w)]
    if not words:
        return []
    height = statistics.median(w.box[3] - w.box[1] for w in words) or 1
    bands: list[list[OcrWord]] = []
    for word in sorted(words, key=_centre):
        if bands and abs(_centre(word) - statistics.fmean(_centre(w) for w in bands[-1])) < height * 0.55:
            bands[-1].append(word)
        else:
            bands.append([word])
    rows: list[Row] = []
    for band in bands:
        band.sort(key=lambda w: w.box[0])
        start = 0
        for n in range(1, len(band) + 1):
            if n == len(band) or band[n].box[0] - band[n - 1].box[2] > COLUMN_GAP * height:
                rows.append(_row(band[start:n]))
                start = n
    rows.sort(key=lambda r: (r.top, r.words[0].box[0]))
    return rows


def _speckle(word: OcrWord) -> bool:
    # a box's edge or a speck of dirt reads as one or two unsure letters (digits may be a number's end)
    return len(word.text) <= 2 and word.confidence < 50 and word.text.isalpha() and not _HAN.search(word.text)


def _centre(word: OcrWord) -> float:
    return (word.box[1] + word.box[3]) / 2


def _row(words: Sequence[OcrWord]) -> Row:
    return Row(tuple(words), join_words([w.text for w in words]), min(w.box[1] for w in words),
               max(w.box[3] for w in words), statistics.fmean(w.confidence for w in words))
