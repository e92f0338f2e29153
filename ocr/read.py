"""Reading one document: open its pages, preprocess each, OCR it, retry the doubtful ones.

A page goes through the configured chain (``OcrSettings.preprocess``); if its mean word confidence
is below ``OcrSettings.retry_below_confidence`` it is read again through ``ALTERNATIVE_CHAIN`` (which
adds orientation, border cropping and lighting removal, and does not binarize) with another page
segmentation mode, and the better of the two readings is kept.
"""

from __future__ import annotations

import numpy as np

from ocr.formats import LoadedPage, load_pages
from ocr.preprocess import PageContext, check_chain, run_chain
from ocr.tesseract import Recognition, detect_orientation, han_share, recognise
from pipeline.config import OcrSettings
from pipeline.model import OcrResult, PageText

#: the second try for a page read with low confidence
ALTERNATIVE_CHAIN: tuple[str, ...] = ("orientation", "crop", "upscale", "background", "denoise", "deskew")
#: Tesseract page segmentation modes: 3 = automatic layout, 11 = sparse text (forms, scattered words)
MAIN_PSM = 3
ALTERNATIVE_PSM = 11
#: a page whose text is at least this share Han characters is re-read with Chinese first
HAN_PAGE_SHARE = 0.3


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
    assert page.image is not None  # a LoadedPage has text or an image
    best = _read_with_chain(page, settings.preprocess, MAIN_PSM, settings)
    if best.confidence < settings.retry_below_confidence:
        alternative = _read_with_chain(page, ALTERNATIVE_CHAIN, ALTERNATIVE_PSM, settings)
        if alternative.score > best.score:
            best = alternative
    return PageText(page.number, best.text, round(best.confidence, 1), best.language, "ocr")


def _read_with_chain(page: LoadedPage, chain: tuple[str, ...] | list[str], psm: int, settings: OcrSettings) -> Recognition:
    assert page.image is not None
    ctx = PageContext(dpi=page.dpi, timeout=settings.timeout_seconds)
    image = run_chain(page.image, chain, ctx)
    language = choose_language(image, ctx, settings.languages)
    result = recognise(image, language, psm, settings.timeout_seconds)
    return _second_language_if_needed(image, result, settings, psm)


def choose_language(image: np.ndarray, ctx: PageContext, languages: str) -> str:
    """The Tesseract language string for this page, from the configured ones ("eng+chi_sim").

    With several languages configured, Tesseract's script detection (already run by the
    ``orientation`` step, or run here) picks Chinese-first for Han script and English alone for
    Latin script; running every language on every page would be slower and less accurate.
    """
    configured = [lang for lang in languages.split("+") if lang]
    if len(configured) <= 1:
        return languages
    osd = ctx.osd if ctx.osd_done else detect_orientation(image, ctx.timeout)
    ctx.osd, ctx.osd_done = osd, True
    if osd is None or osd.script_confidence < 1.0:
        return languages
    if osd.script in ("Han", "HanS", "HanT") and "chi_sim" in configured:
        return "+".join(["chi_sim"] + [lang for lang in configured if lang != "chi_sim"])
    if osd.script == "Latin" and "eng" in configured:
        return "eng"
    return languages


def _second_language_if_needed(
    image: np.ndarray, result: Recognition, settings: OcrSettings, psm: int
) -> Recognition:
    # OSD sometimes calls a Chinese slip Latin; a low-confidence English reading gets one Chinese try.
    configured = settings.languages.split("+")
    if result.language != "eng" or "chi_sim" not in configured:
        return result
    if result.confidence >= settings.retry_below_confidence and han_share(result.text) == 0:
        return result
    chinese_first = "+".join(["chi_sim"] + [lang for lang in configured if lang != "chi_sim"])
    other = recognise(image, chinese_first, psm, settings.timeout_seconds)
    return other if han_share(other.text) >= HAN_PAGE_SHARE and other.score > result.score else result
