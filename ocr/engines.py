"""What every OCR engine returns, and the interface an engine offers to the reader (``ocr.read``).

Two engines sit behind it: Tesseract (``ocr.tesseract``: fast, one language at a time) and PP-OCR
through RapidOCR (``ocr.ppocr``: slower, reads Chinese and English in one model, and handwriting).
Which one reads a page is decided in one place, ``ocr.read.read_page``, by ``OcrSettings.policy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

#: a word read with at least this confidence counts towards ``Recognition.score``
CONFIDENT_WORD = 60.0


@dataclass(frozen=True, slots=True)
class Word:
    """One word an engine found, with its confidence (0-100) and its line key."""

    text: str
    confidence: float
    line: tuple[int, int, int]  # (block, paragraph, line); PP-OCR: (0, 0, line)
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # left, top, right, bottom in the image's pixels


@dataclass(frozen=True, slots=True)
class Recognition:
    """The text of one image and the per-word confidences it was built from."""

    text: str
    words: tuple[Word, ...]
    language: str  # Tesseract's language string; PP-OCR: the script it found ("chi_sim", "eng")
    psm: int  # Tesseract's page segmentation mode; 0 for PP-OCR
    engine: str = "tesseract"  # the ``Engine.name`` that read it: recorded as ``PageText.method``

    @property
    def confidence(self) -> float:
        """Mean word confidence weighted by word length; 0 when no word was found."""
        total = sum(len(w.text) for w in self.words)
        if not total:
            return 0.0
        return sum(w.confidence * len(w.text) for w in self.words) / total

    @property
    def score(self) -> float:
        """The number of characters read with confidence: prefers results that read more, and better."""
        return float(sum(len(w.text) for w in self.words if w.confidence >= CONFIDENT_WORD))


class Engine(Protocol):
    """An OCR engine: reads a page image (grayscale or RGB, 8-bit) into words with boxes."""

    name: str

    def read(self, image: np.ndarray, language: str, timeout: float) -> Recognition:
        """Read the whole page; ``language`` is a Tesseract language string (an engine may ignore it).

        Raises:
            MissingDependencyError: the engine or its data is not installed.
            OcrError: the engine failed or ran longer than ``timeout`` seconds on this page.
        """
        ...


def han_count(text: str) -> int:
    """How many Han ideographs ``text`` has."""
    return sum(1 for c in text if "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff")
