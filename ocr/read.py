"""Reading one document: open its pages, preprocess each, OCR it, retry the doubtful ones.

A page goes through the configured chain (``OcrSettings.preprocess``); if its mean word confidence
is below ``OcrSettings.retry_below_confidence`` it is read again through ``ALTERNATIVE_CHAIN`` (which
adds orientation, border cropping and lighting removal, and does not binarize) with another page
segmentation mode, and the better of the two readings is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ocr.formats import LoadedPage, load_pages
from ocr.preprocess import PageContext, check_chain, ink_blobs, run_chain
from ocr.tesseract import Recognition, detect_orientation, recognise
from pipeline.config import OcrSettings
from pipeline.model import OcrResult, PageText

#: the second try for a page read with low confidence
ALTERNATIVE_CHAIN: tuple[str, ...] = (
    "crop", "denoise", "upscale", "background", "orientation", "deskew", "binarize", "lines"
)
#: the chain bench/ocr.py measured best on clean, mild and hard slips
RECOMMENDED_CHAIN: tuple[str, ...] = ALTERNATIVE_CHAIN
#: Tesseract page segmentation modes: 3 = automatic layout, 11 = sparse text (forms, scattered words)
MAIN_PSM = 3
ALTERNATIVE_PSM = 11
#: OSD script confidence from which its script (Latin, Han) decides the page's language
MIN_SCRIPT_CONFIDENCE = 2.0
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
    pages = [read_page(page, settings) for page in load_pages(data, name, settings)]
    return OcrResult(tuple(pages))


def read_page(page: LoadedPage, settings: OcrSettings) -> PageText:
    """The text of one loaded page, from its text layer or by OCR."""
    if page.text is not None:
        return PageText(page.number, page.text, -1.0, "", "text-layer")
    image = _prepare(page, settings.preprocess, settings)
    best = _recognise_page(image, settings, MAIN_PSM)
    if best.confidence < settings.retry_below_confidence:
        # Same chain: reuse the prepared image and only change the page segmentation mode.
        if tuple(settings.preprocess) != ALTERNATIVE_CHAIN:
            image = _prepare(page, ALTERNATIVE_CHAIN, settings)
        alternative = _recognise_page(image, settings, ALTERNATIVE_PSM)
        if alternative.score > best.score:
            best = alternative
    return PageText(page.number, best.text, round(best.confidence, 1), best.language, "ocr")


@dataclass(frozen=True, slots=True)
class _Prepared:
    pixels: np.ndarray
    ctx: PageContext


def _prepare(page: LoadedPage, chain: Sequence[str], settings: OcrSettings) -> _Prepared:
    assert page.image is not None  # a LoadedPage has text or an image
    ctx = PageContext(dpi=page.dpi, timeout=settings.timeout_seconds, languages=settings.languages)
    return _Prepared(run_chain(page.image, chain, ctx), ctx)


def _recognise_page(image: _Prepared, settings: OcrSettings, psm: int) -> Recognition:
    language = choose_language(image.pixels, image.ctx, settings.languages)
    result = recognise(image.pixels, language, psm, settings.timeout_seconds)
    return _other_language_if_needed(image.pixels, result, settings, psm)


def choose_language(image: np.ndarray, ctx: PageContext, languages: str) -> str:
    """The Tesseract language for this page's first reading, from the configured ones ("eng+chi_sim").

    Tesseract's script detection (already run by the ``orientation`` step, or run here) picks
    Chinese for Han script and English for Latin script when it is sure; otherwise English goes
    first and ``_other_language_if_needed`` tries Chinese. One language at a time: Tesseract with
    ``eng+chi_sim`` together is slower and, on degraded slips, worse at both.
    """
    configured = [lang for lang in languages.split("+") if lang]
    if len(configured) <= 1:
        return languages
    osd = ctx.osd if ctx.osd_done else detect_orientation(image, ctx.timeout)
    ctx.osd, ctx.osd_done = osd, True
    if osd is not None and osd.script_confidence >= MIN_SCRIPT_CONFIDENCE:
        if osd.script in ("Han", "HanS", "HanT") and "chi_sim" in configured:
            return "chi_sim"
        if osd.script == "Latin" and "eng" in configured:
            return "eng"
    return configured[0]


def _other_language_if_needed(
    image: np.ndarray, result: Recognition, settings: OcrSettings, psm: int
) -> Recognition:
    # A doubtful reading may be the wrong language: read once with the other one, keep the better.
    configured = [lang for lang in settings.languages.split("+") if lang]
    if len(configured) <= 1:
        return result
    if result.confidence >= settings.retry_below_confidence and not _too_few_characters(image, result):
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
