"""PP-OCR through RapidOCR: the only module that imports ``rapidocr``.

The detection and recognition models are the ones bundled in the installed ``rapidocr`` wheel
(PP-OCRv6 small: one recognition model for Chinese and English). They are passed by path, so
RapidOCR never looks for them elsewhere and never downloads anything; ``model_paths`` names them
and ``check_ppocr`` fails with an install hint when they are missing.

One ``PpOcr`` per process (``ppocr_engine``): its ONNX Runtime sessions are created on first use
and reused for every page the process reads, with ``[ocr] threads`` intra-op threads each (default
one: the pool runs one worker per core, like Tesseract with ``OMP_THREAD_LIMIT=1``).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ocr.engines import Recognition, Word, han_count
from ocr.tesseract import tidy_cjk
from pipeline.core.errors import MissingDependencyError, OcrError

INSTALL_HINT = "pip install rapidocr onnxruntime (or: make sync)"
#: the wheel's bundled models, by RapidOCR task
MODEL_FILES = {
    "Det": "PP-OCRv6_det_small.onnx",
    "Rec": "PP-OCRv6_rec_small.onnx",
    "Cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
#: detection input: the page's longest side scaled to this many pixels. RapidOCR's default (the
#: shortest side to 736) enlarges a slip 1.5-2x and makes detection most of the page's cost.
DET_SIDE = 960
# A word: one Han character (or CJK punctuation), or a run of other characters without a space.
_CJK = "\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
#: a line read with less confidence (0-1) is dropped: specks, stamps and ruled lines
MIN_LINE_SCORE = 0.5


def model_paths() -> dict[str, Path]:
    """The model files inside the installed ``rapidocr`` package, by task ("Det", "Rec", "Cls").

    Raises:
        MissingDependencyError: rapidocr is not installed or its wheel has no models.
    """
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(f"the PP-OCR engine (rapidocr) is not installed; run: {INSTALL_HINT}")
    folder = Path(spec.origin).parent / "models"
    paths = {task: folder / name for task, name in MODEL_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise MissingDependencyError(f"PP-OCR model files missing: {', '.join(missing)}; run: {INSTALL_HINT}")
    return paths


def check_ppocr() -> None:
    """Fail early, with an install hint, when rapidocr, onnxruntime or the bundled models are missing.

    Raises:
        MissingDependencyError: one of them is missing.
    """
    model_paths()
    if importlib.util.find_spec("onnxruntime") is None:
        raise MissingDependencyError(f"onnxruntime is not installed; run: {INSTALL_HINT}")


@dataclass(frozen=True, slots=True)
class LineReading:
    """One line image read on its own: its text, PP-OCR's confidence (0-1), and whether it was upside down."""

    text: str
    score: float
    upside_down: bool


class PpOcr:
    """PP-OCR behind ``ocr.engines.Engine``: detection, then recognition of each line found."""

    name = "ppocr"

    def __init__(self, threads: int = 1) -> None:
        paths = model_paths()
        from rapidocr import RapidOCR  # noqa: PLC0415 - a second of imports, only where it reads

        # RapidOCR logs every model it loads at INFO; a worker reading thousands of pages must not.
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        params: dict[str, Any] = {
            "Global.log_level": "error",
            # Pages are turned upright before they are read: sideways by the preprocessing chain,
            # upside down by the script probe's vote of the line orientation classifier over the
            # page's lines (``read_lines``). Per line, the classifier turns short lines ("stairs.")
            # upside down by mistake and they read as junk.
            "Global.use_cls": False,
            "Global.max_side_len": DET_SIDE,
            "Det.limit_type": "max",
            "Det.limit_side_len": DET_SIDE,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        params.update({f"{task}.model_path": str(path) for task, path in paths.items()})
        ocr: Any = RapidOCR(params=params)
        self._ocr = ocr
        # RapidOCR makes its sessions on first use; make them now, once for this process, so the
        # first page is not slower than the others and a missing model fails here.
        ocr._load_det_model()
        ocr._load_cls_model()
        ocr._load_rec_model()

    def read(self, image: np.ndarray, language: str = "", timeout: float = 0.0) -> Recognition:
        """Read the page: each detected line becomes words (English) or characters (Chinese) with boxes.

        ``language`` and ``timeout`` are not used: one model reads both scripts, and a page cannot
        be interrupted in-process (the pool kills a worker that hangs).

        Raises:
            OcrError: ONNX Runtime failed on this page.
        """
        try:
            out = self._ocr(_three_channels(image), return_word_box=True)
        except Exception as e:  # noqa: BLE001 - rapidocr and onnxruntime raise their own types
            raise OcrError(f"PP-OCR failed: {type(e).__name__}: {e}") from e
        boxes = getattr(out, "boxes", None)
        texts: Sequence[str] = getattr(out, "txts", None) or ()
        scores: Sequence[float] = getattr(out, "scores", None) or ()
        word_results: Sequence[Any] = getattr(out, "word_results", None) or ()
        if boxes is None or not texts:
            return Recognition("", (), "eng", 0, self.name)
        per_line_words = word_results if len(word_results) == len(texts) else [()] * len(texts)
        words: list[Word] = []
        kept: list[str] = []
        lines = zip(boxes, texts, scores, per_line_words, strict=True)
        for index, (quad, text, score, pieces) in enumerate(lines):
            if score < MIN_LINE_SCORE or not text.strip():
                continue
            words.extend(_line_words(index, text, float(score), _bounds(quad), pieces))
            kept.append(text.strip())
        # The line's own text: joining its words would put spaces between Han characters and digits.
        text = "\n".join(tidy_cjk(line) for line in kept)
        language = "chi_sim" if han_count(text) * 2 >= sum(c.isalpha() for c in text) else "eng"
        return Recognition(text, tuple(words), language, 0, self.name)

    def sessions(self) -> dict[str, tuple[Path, int]]:
        """The model file and the ONNX Runtime thread count of each session, by task."""
        parts = {"Det": self._ocr.text_det, "Cls": self._ocr.text_cls, "Rec": self._ocr.text_rec}
        out = {}
        for task, part in parts.items():
            session = part.session.session
            out[task] = (Path(session._model_path), session.get_session_options().intra_op_num_threads)
        return out

    def read_lines(self, crops: Sequence[np.ndarray]) -> list[LineReading]:
        """Recognise each image as one line of text (no detection), turned over first when upside down.

        Raises:
            OcrError: ONNX Runtime failed.
        """
        if not crops:
            return []
        try:
            upright, turns = self._ocr.cls_and_rotate([_three_channels(c) for c in crops])
            out = self._ocr.recognize_txt(upright)
        except Exception as e:  # noqa: BLE001 - rapidocr and onnxruntime raise their own types
            raise OcrError(f"PP-OCR failed: {type(e).__name__}: {e}") from e
        threshold = float(self._ocr.cfg.Cls.cls_thresh)
        turned = [("180" in label and score > threshold) for label, score in (turns.cls_res or ())]
        readings = zip(out.txts or (), out.scores or (), turned, strict=False)
        return [LineReading(str(t), float(s), bool(u)) for t, s, u in readings]


@functools.cache
def ppocr_engine(threads: int = 1) -> PpOcr:
    """This process's PP-OCR engine: its sessions are made once and reused for every page.

    ``threads``: ONNX Runtime's intra-op threads per session (``[ocr] threads``).

    Raises:
        MissingDependencyError: rapidocr, onnxruntime or the bundled models are missing.
    """
    check_ppocr()
    return PpOcr(threads)


def _three_channels(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    return image


def _bounds(quad: Any) -> tuple[int, int, int, int]:
    points = np.asarray(quad, dtype=np.float64).reshape(-1, 2)
    left, top = points.min(axis=0)
    right, bottom = points.max(axis=0)
    return int(left), int(top), int(round(right)), int(round(bottom))


def _line_words(
    index: int, text: str, score: float, box: tuple[int, int, int, int], pieces: Sequence[Any]
) -> list[Word]:
    """The line's words with their boxes: each Han character one word, each run of other characters one.

    RapidOCR gives English lines word by word and Chinese lines character by character (digits
    too: "1", "0", "4", "3"); the line's text says what belongs together.
    """
    key = (0, 0, index)
    characters: list[tuple[str, float, tuple[int, int, int, int]]] = []
    for piece_text, piece_score, piece_box in pieces:
        piece = str(piece_text).replace(" ", "")
        if not piece or piece_box is None:
            continue
        left, top, right, bottom = _bounds(piece_box)
        step = (right - left) / len(piece)
        for n, char in enumerate(piece):
            char_box = (int(left + n * step), top, int(round(left + (n + 1) * step)), bottom)
            characters.append((char, float(piece_score) * 100, char_box))
    if "".join(c for c, _, _ in characters) != text.replace(" ", ""):
        return _split_line(text, score, key, box)
    words, position = [], 0
    for token in _TOKEN.findall(text):
        chars = characters[position : position + len(token)]
        position += len(token)
        boxes = [b for _, _, b in chars]
        confidence = round(min(c for _, c, _ in chars), 1)
        lefts, tops, rights, bottoms = zip(*boxes, strict=True)
        union = (min(lefts), min(tops), max(rights), max(bottoms))
        words.append(Word(token, confidence, key, union))
    return words


def _split_line(
    text: str, score: float, key: tuple[int, int, int], box: tuple[int, int, int, int]
) -> list[Word]:
    # No usable word boxes: share the line's box among its words by their length.
    tokens = text.split()
    total = sum(len(t) for t in tokens) + max(len(tokens) - 1, 0)
    left, top, right, bottom = box
    width = right - left
    words, position = [], 0
    for token in tokens:
        start = left + width * position / max(total, 1)
        end = left + width * (position + len(token)) / max(total, 1)
        words.append(Word(token, round(score * 100, 1), key, (int(start), top, int(round(end)), bottom)))
        position += len(token) + 1
    return words
