"""The Tesseract boundary: the only module that imports pytesseract.

Every pytesseract exception is translated here (``raise ... from e``) so that no pytesseract type
escapes the package: a missing program or language pack becomes ``MissingDependencyError`` with an
install hint, a crash or a timeout becomes ``OcrError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytesseract
from PIL import Image

from ocr.engines import Recognition, Word
from pipeline.core.errors import MissingDependencyError, OcrError

INSTALL_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd"

# Han ideographs, CJK punctuation and full-width forms: Tesseract puts a space between every pair.
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}]) +(?=[{_CJK}])")
# A space between a Han character and a digit or punctuation is also an artefact ("7 号" -> "7号").
_CJK_DIGIT_GAP = re.compile(rf"(?<=[{_CJK}]) +(?=[0-9:;,.!?)])|(?<=[0-9(]) +(?=[{_CJK}])")
#: words read with less confidence are specks, stains and ruled lines, not text
MIN_WORD_CONFIDENCE = 15.0
_PLAIN_WORD = re.compile(r"[A-Za-z][a-z]+[.,;:!?]?|[A-Z]{2,}|\d+|[\u4e00-\u9fff]+")


@dataclass(frozen=True, slots=True)
class Orientation:
    """What Tesseract's orientation and script detection (OSD) said about a page."""

    rotate: int  # degrees clockwise to turn the page upright: 0, 90, 180 or 270
    confidence: float
    script: str  # "Latin", "Han", ...
    script_confidence: float


def check_tesseract(languages: str) -> None:
    """Fail early, with an install hint, if Tesseract or one of ``languages`` ("eng+chi_sim") is missing.

    Raises:
        MissingDependencyError: the program or a language pack is not installed.
    """
    try:
        pytesseract.get_tesseract_version()
        installed = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError as e:
        raise MissingDependencyError(f"the tesseract program is not installed; run: {INSTALL_HINT}") from e
    except (pytesseract.TesseractError, OSError) as e:
        raise MissingDependencyError(f"tesseract does not run ({e}); reinstall it: {INSTALL_HINT}") from e
    missing = [lang for lang in languages.split("+") if lang and lang not in installed]
    if missing:
        packages = " ".join("tesseract-ocr-" + lang.replace("_", "-") for lang in missing)
        raise MissingDependencyError(
            f"tesseract language data missing: {', '.join(missing)}; run: apt-get install {packages}"
        )


def recognise(image: np.ndarray, language: str, psm: int, timeout: float) -> Recognition:
    """OCR one grayscale or binary page image and keep the per-word confidences.

    Raises:
        MissingDependencyError: tesseract is not installed.
        OcrError: tesseract crashed or ran longer than ``timeout`` seconds.
    """
    # Our pages are dark text on light paper after preprocessing: skip Tesseract's per-line check
    # for inverted (white-on-black) text, which costs time on every line.
    config = f"--psm {psm} -c preserve_interword_spaces=0 -c tessedit_do_invert=0"
    data = _call(
        pytesseract.image_to_data,
        Image.fromarray(image),
        lang=language,
        config=config,
        output_type=pytesseract.Output.DICT,
        timeout=timeout,
    )
    words = tuple(_words(data))
    return Recognition(_join_lines(words), words, language, psm)


def detect_orientation(image: np.ndarray, timeout: float) -> Orientation | None:
    """Run Tesseract OSD; ``None`` when the page has too little text for it to decide.

    Raises:
        MissingDependencyError: tesseract or its ``osd`` data is not installed.
        OcrError: tesseract crashed or timed out.
    """
    try:
        osd = _call(
            pytesseract.image_to_osd,
            Image.fromarray(image),
            config="--psm 0",
            output_type=pytesseract.Output.DICT,
            timeout=timeout,
        )
    except _TooLittleText:
        return None
    return Orientation(
        rotate=int(osd.get("rotate", 0)) % 360,
        confidence=float(osd.get("orientation_conf", 0.0)),
        script=str(osd.get("script", "")),
        script_confidence=float(osd.get("script_conf", 0.0)),
    )


def tidy_cjk(text: str) -> str:
    """Remove the spaces Tesseract inserts between Chinese characters (and between them and digits)."""
    return _CJK_DIGIT_GAP.sub("", _CJK_GAP.sub("", text))


class _TooLittleText(Exception):
    """OSD could not decide: not enough characters on the page."""


def _call(function: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> dict[str, Any]:
    # One place turns every pytesseract failure into one of our errors.
    try:
        return function(*args, **kwargs)
    except pytesseract.TesseractNotFoundError as e:
        raise MissingDependencyError(f"the tesseract program is not installed; run: {INSTALL_HINT}") from e
    except pytesseract.TesseractError as e:
        message = str(e.message or e)
        if "Too few characters" in message or "Invalid resolution" in message:
            raise _TooLittleText(message) from e
        if "Failed loading language" in message or "osd.traineddata" in message:
            hint = f"tesseract language data missing ({message}); run: {INSTALL_HINT}"
            raise MissingDependencyError(hint) from e
        raise OcrError(f"tesseract failed: {message.strip()}") from e
    except RuntimeError as e:
        # pytesseract signals its timeout with a bare RuntimeError("Tesseract process timeout").
        if "timeout" in str(e).lower():
            raise OcrError(f"tesseract took longer than {kwargs.get('timeout')} s on one page") from e
        raise OcrError(f"tesseract failed: {e}") from e
    except OSError as e:
        raise OcrError(f"could not run tesseract: {e}") from e


def _words(data: dict[str, list[Any]]) -> list[Word]:
    words = []
    for i, raw in enumerate(data["text"]):
        text = str(raw).strip()
        confidence = float(data["conf"][i])
        if not text or confidence < 0:
            continue
        if confidence < MIN_WORD_CONFIDENCE and not _PLAIN_WORD.fullmatch(text):
            continue  # Tesseract sometimes gives a real word 0, so only odd-looking ones go
        if confidence < 50 and not any(c.isalnum() for c in text):
            continue  # specks and rules read as punctuation
        line = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        left, top = int(data["left"][i]), int(data["top"][i])
        box = (left, top, left + int(data["width"][i]), top + int(data["height"][i]))
        words.append(Word(text, confidence, line, box))
    return words


def _join_lines(words: tuple[Word, ...]) -> str:
    lines: list[list[str]] = []
    current: tuple[int, int, int] | None = None
    for word in words:
        if word.line != current:
            lines.append([])
            current = word.line
        lines[-1].append(word.text)
    return "\n".join(tidy_cjk(" ".join(line)) for line in lines)


@dataclass(frozen=True, slots=True)
class Tesseract:
    """Tesseract behind ``ocr.engines.Engine``: one language string, one segmentation mode."""

    psm: int = 3
    name: str = "tesseract"

    def read(self, image: np.ndarray, language: str, timeout: float) -> Recognition:
        return recognise(image, language, self.psm, timeout)
