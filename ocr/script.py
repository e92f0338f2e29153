"""Which script a page is written in, decided before it is read, line by line.

Tesseract's script detection is unsure on raw slips (about 1.3 for "Han" where it needs 2), and a
reading in the wrong language cannot tell: on a bilingual form the printed English headings give
an English reading enough characters to look right while every Chinese character is lost. So the
page's text lines are found by their ink (``text_bands``) and each is recognised, alone, by
PP-OCR's recogniser, one model for Chinese and English: a line whose reading is mostly Han is a
Chinese line, whatever the rest of the page says. Recognising a dozen line images costs a fraction
of a page read (detection is the expensive part of PP-OCR, and the probe needs none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from ocr.engines import han_count
from ocr.ppocr import LineReading
from ocr.preprocess import sauvola

#: lines probed per page (the tallest first): enough to find Chinese content under English headings
MAX_BANDS = 10
#: of each line only its start is read, this many times as wide as the line is tall (about ten Han
#: characters or twenty letters): enough to tell the script, and the probe's cost grows with width
PROBE_WIDTH = 10
#: a band is a text line when it is at least this tall (px) and this much wider than tall
MIN_BAND_HEIGHT = 8
MIN_BAND_ASPECT = 1.5
#: a line read by the probe is Chinese when it has this many Han characters, and they are at least
#: this share of its letters (a stray misread character on an English line is not enough)
MIN_HAN = 2
MIN_HAN_SHARE = 0.3


class LineReader(Protocol):
    """Recognises single-line images (``ocr.ppocr.PpOcr.read_lines``)."""

    def read_lines(self, crops: Sequence[np.ndarray]) -> Sequence[LineReading]: ...


@dataclass(frozen=True, slots=True)
class LineScript:
    """One probed line: where it is (top, bottom in pixels), what the probe read, and its script."""

    top: int
    bottom: int
    text: str
    han: bool
    upside_down: bool


@dataclass(frozen=True, slots=True)
class Probe:
    """What the probe found on a page: its lines, whether any is Chinese, whether it is upside down."""

    lines: tuple[LineScript, ...]

    @property
    def han(self) -> bool:
        return any(line.han for line in self.lines)

    @property
    def upside_down(self) -> bool:
        # Most lines upside down: the page is (the line classifier errs on a line or two).
        return 2 * sum(line.upside_down for line in self.lines) > len(self.lines)


def probe(image: np.ndarray, reader: LineReader) -> Probe:
    """The script of each text line of a grayscale page, top to bottom, and the page's way up."""
    bands = text_bands(image)
    crops = [image[top:bottom, left : min(right, left + PROBE_WIDTH * (bottom - top))]
             for top, bottom, left, right in bands]
    readings = reader.read_lines(crops)
    return Probe(tuple(
        LineScript(top, bottom, reading.text, _is_han(reading.text), reading.upside_down)
        for (top, bottom, _, _), reading in zip(bands, readings, strict=False)
    ))


def text_bands(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(top, bottom, left, right)`` of horizontal bands of ink that look like lines of text.

    Rows with ink, grouped: on a deskewed page with ruled lines removed (the preprocessing chain)
    each group is a line of text. Long ruled lines left over are not ink of letters, so rows whose
    ink is one long run are not counted. At most ``MAX_BANDS``, the tallest, in page order.
    """
    # Sauvola, not one global threshold: a shadow across a phone photo would swallow its lines.
    ink = _without_rules((sauvola(image) < 128).astype(np.uint8))
    rows = ink.sum(axis=1)
    threshold = max(2, int(0.002 * image.shape[1]))
    has_ink = np.concatenate(([False], rows >= threshold, [False]))
    edges = np.flatnonzero(np.diff(has_ink.astype(np.int8)))
    bands = []
    for top, bottom in zip(edges[::2], edges[1::2], strict=True):
        height = int(bottom - top)
        if height < MIN_BAND_HEIGHT:
            continue
        columns = np.flatnonzero(ink[top:bottom].any(axis=0))
        left, right = int(columns[0]), int(columns[-1]) + 1
        if right - left < MIN_BAND_ASPECT * height:
            continue
        pad = max(2, height // 6)
        bands.append((max(0, int(top) - pad), min(image.shape[0], int(bottom) + pad),
                      max(0, left - pad), min(image.shape[1], right + pad)))
    tallest = sorted(bands, key=lambda b: b[1] - b[0], reverse=True)[:MAX_BANDS]
    return sorted(tallest)


def _without_rules(ink: np.ndarray) -> np.ndarray:
    # Ruled lines and box borders join the lines above and below into one band: erase them.
    length = max(40, ink.shape[1] // 8)
    rules = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)))
    keep: np.ndarray = (rules == 0) & (vertical == 0)
    return np.where(keep, ink, 0).astype(np.uint8)


def _is_han(text: str) -> bool:
    han = han_count(text)
    letters = sum(1 for c in text if c.isalpha())
    return han >= MIN_HAN and han >= MIN_HAN_SHARE * letters
