"""Reading one document: open its pages, preprocess each, OCR it, retry the doubtful ones.

A page goes through the configured chain (``OcrSettings.preprocess``) and is read in one language
(``choose_language``; the other one is tried when the reading has too few characters for its ink).
If its mean word confidence is below ``OcrSettings.retry_below_confidence`` it is read again
through ``ALTERNATIVE_CHAIN`` (border cropping, denoising, lighting removal, orientation, deskew,
binarization, ruled-line removal) with the sparse-text segmentation mode, and then, if it still
reads badly, turned over (upside-down slips; tried before the alternative chain when the first
chain already knows the lines run horizontally); the reading with the most confident characters
wins. ``RECOMMENDED_CHAIN`` is what bench/ocr.py measured and the default ``ocr.preprocess``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ocr.engines import Recognition
from ocr.formats import LoadedPage, load_pages
from ocr.ppocr import ppocr_engine
from ocr.preprocess import PageContext, check_chain, ink_blobs, run_chain, turn_over
from ocr.script import Probe, probe
from ocr.settings import ALTERNATIVE_CHAIN, OcrSettings, effective_policy
from ocr.spaces import english, spaced
from ocr.tesseract import recognise
from pipeline.core.model import OcrResult, OcrWord, PageText

#: Tesseract page segmentation modes: 3 = automatic layout, 11 = sparse text (forms, scattered words)
MAIN_PSM = 3
ALTERNATIVE_PSM = 11
#: OSD script confidence from which its script (Latin, Han) decides the page's language
MIN_SCRIPT_CONFIDENCE = 2.0
#: "auto": of a doubtful Tesseract reading and PP-OCR's, PP-OCR's is kept when it has at least this
#: share of Tesseract's confident characters
KEEP_PPOCR_SHARE = 0.5
#: an English reading with fewer characters per ink blob than this is tried in Chinese too
MIN_CHARS_PER_BLOB = 0.7


def read_document(data: bytes, name: str, settings: OcrSettings) -> OcrResult:
    """OCR every page of an image or PDF file (a PDF page with a text layer uses that text).

    Raises:
        UnsupportedFormatError: not an image or PDF.
        UnreadableScanError: empty, truncated, corrupt, encrypted, too big or too many pages.
        DecompressionBombError: a page declares more pixels than ``settings.max_image_pixels``.
        MissingDependencyError: tesseract or a language pack is not installed.
        OcrError: tesseract failed on a readable page.
        ConfigError: ``settings.preprocess`` names an unknown step.
    """
    check_chain(settings.preprocess)
    check_chain(settings.ppocr_preprocess)
    pages = [read_page(page, settings) for page in load_pages(data, name, settings)]
    return OcrResult(tuple(pages))


def read_page(page: LoadedPage, settings: OcrSettings) -> PageText:
    """The text of one loaded page, from its text layer or by OCR with the engine the policy picks.

    ``PageText.method`` names the engine that read it ("tesseract", "ppocr"), or "text-layer".
    """
    if page.text is not None:
        return PageText(page.number, page.text, -1.0, "", "text-layer")
    policy = effective_policy(settings)
    if policy == "ppocr":
        image, _ = _probed(page, settings)
        best = _ppocr(image, settings)
    elif policy == "tesseract":
        best, image = _tesseract_page(page, _prepare(page, settings.preprocess, settings), settings)
    else:
        best, image = _auto(page, settings)
    height, width = image.pixels.shape[:2]
    return PageText(
        page.number, best.text, round(best.confidence, 1), best.language, best.engine,
        words=page_words(best), size=(width, height),
    )


def _auto(page: LoadedPage, settings: OcrSettings) -> tuple[Recognition, _Prepared]:
    # The script is decided before the first reading, per line: one Chinese line (content under
    # English headings) and PP-OCR, which reads both scripts, reads the page.
    light, found = _probed(page, settings)
    if found.han:
        return _ppocr(light, settings), light
    image = _prepare(page, settings.preprocess, settings)
    if found.upside_down:
        image = _Prepared(turn_over(image.pixels), image.ctx)
    first = _recognise_page(image, settings, MAIN_PSM, _latin_language(settings))
    if first.confidence >= settings.ppocr_below_confidence:
        return first, image
    # Doubtful (handwriting, a hard scan, upside down): PP-OCR reads these better than Tesseract's
    # retries do (its line classifier turns upside-down lines). Tesseract's reading stays only when
    # PP-OCR found much less: its junk lines read from stains carry characters, so ``score`` would
    # prefer them.
    second = _ppocr(light, settings)
    if second.score >= KEEP_PPOCR_SHARE * first.score:
        return second, light
    return first, image


def _probed(page: LoadedPage, settings: OcrSettings) -> tuple[_Prepared, Probe]:
    """The page prepared for PP-OCR, turned over when the probe finds it upside down, and the probe."""
    light = _prepare(page, settings.ppocr_preprocess, settings)
    found = probe(light.pixels, ppocr_engine(settings.threads))
    if found.upside_down:
        light = _Prepared(turn_over(light.pixels), light.ctx)
    return light, found


def _latin_language(settings: OcrSettings) -> str:
    configured = [lang for lang in settings.languages.split("+") if lang]
    return "eng" if "eng" in configured else configured[0]


def _ppocr(image: _Prepared, settings: OcrSettings) -> Recognition:
    result = ppocr_engine(settings.threads).read(image.pixels, "", image.ctx.timeout)
    # PP-OCR's lines become page text here: its English words run together are split (Tesseract's are not).
    return spaced(result, english()) if settings.ppocr_spaces else result


def _tesseract_page(
    page: LoadedPage, image: _Prepared, settings: OcrSettings
) -> tuple[Recognition, _Prepared]:
    """Tesseract alone: one reading, then retries of a doubtful one (turned over, other chain and layout)."""
    best = _recognise_page(image, settings, MAIN_PSM)
    turned_over = False
    if best.confidence < settings.retry_below_confidence and image.ctx.may_be_upside_down:
        # Upside down reads as junk with low confidence; turned over, it reads well. Tried first:
        # one read settles it, where the alternative chain and layout would be wasted on it.
        best, turned_over = _turned_over(image, best, settings), True
    if best.confidence < settings.retry_below_confidence:
        # Same chain: reuse the prepared image and only change what else might be wrong.
        if tuple(settings.preprocess) != ALTERNATIVE_CHAIN:
            image = _prepare(page, ALTERNATIVE_CHAIN, settings)
        best = max(best, _recognise_page(image, settings, ALTERNATIVE_PSM), key=_score)
        still_bad = best.confidence < settings.retry_below_confidence
        if still_bad and image.ctx.may_be_upside_down and not turned_over:
            best = _turned_over(image, best, settings)
    return best, image


def page_words(result: Recognition) -> tuple[OcrWord, ...]:
    """The reading's words with their boxes, their lines numbered 0, 1, 2... in reading order."""
    numbers: dict[tuple[int, int, int], int] = {}
    return tuple(
        OcrWord(w.text, w.confidence, w.box, numbers.setdefault(w.line, len(numbers))) for w in result.words
    )


def _turned_over(image: _Prepared, best: Recognition, settings: OcrSettings) -> Recognition:
    flipped = _Prepared(turn_over(image.pixels), image.ctx)
    return max(best, _recognise_page(flipped, settings, MAIN_PSM, best.language), key=_score)


def _score(result: Recognition) -> float:
    return result.score


@dataclass(frozen=True, slots=True)
class _Prepared:
    pixels: np.ndarray
    ctx: PageContext


def _prepare(page: LoadedPage, chain: Sequence[str], settings: OcrSettings) -> _Prepared:
    assert page.image is not None  # a LoadedPage has text or an image
    ctx = PageContext(
        dpi=page.dpi,
        timeout=settings.timeout_seconds,
        languages=settings.languages,
        max_pixels=settings.max_ocr_pixels,
    )
    return _Prepared(run_chain(page.image, chain, ctx), ctx)


def _recognise_page(image: _Prepared, settings: OcrSettings, psm: int, language: str = "") -> Recognition:
    language = language or choose_language(image.ctx, settings.languages)
    result = recognise(image.pixels, language, psm, settings.timeout_seconds)
    return _other_language_if_needed(image.pixels, result, settings, psm)


def choose_language(ctx: PageContext, languages: str) -> str:
    """The Tesseract language for this page's first reading, from the configured ones ("eng+chi_sim").

    When the ``orientation`` step ran Tesseract's script detection and it is sure, Han script
    means Chinese and Latin script English; otherwise the first configured language goes first
    and ``_other_language_if_needed`` tries the other. One language at a time: Tesseract with
    ``eng+chi_sim`` together is slower and, on degraded slips, worse at both.
    """
    configured = [lang for lang in languages.split("+") if lang]
    if len(configured) <= 1:
        return languages
    osd = ctx.osd
    if osd is not None and osd.script_confidence >= MIN_SCRIPT_CONFIDENCE:
        if osd.script in ("Han", "HanS", "HanT") and "chi_sim" in configured:
            return "chi_sim"
        if osd.script == "Latin" and "eng" in configured:
            return "eng"
    return configured[0]


def _other_language_if_needed(
    image: np.ndarray, result: Recognition, settings: OcrSettings, psm: int
) -> Recognition:
    # A reading with too few characters may be the wrong language: read once with the other one.
    configured = [lang for lang in settings.languages.split("+") if lang]
    if len(configured) <= 1:
        return result
    if not _too_few_characters(image, result):
        return result
    others = [lang for lang in configured if lang != result.language]
    other = recognise(image, others[0], psm, settings.timeout_seconds)
    return other if other.score > result.score else result


def _too_few_characters(image: np.ndarray, result: Recognition) -> bool:
    # Latin text gives about one character per ink blob. The English model reads a line of Han
    # characters (several blobs each) as a few confident capitals, so few characters per blob
    # means the page is probably not in the language it was read in.
    if result.language != "eng":
        return False
    blobs = ink_blobs(image)
    characters = sum(len(w.text) for w in result.words)
    return blobs >= 10 and characters < MIN_CHARS_PER_BLOB * blobs
