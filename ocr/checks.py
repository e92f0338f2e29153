"""Start-up checks of the OCR engines, apart from the code that reads pages.

The process that checks (a queue worker's main process, ``scan``) hands its pages to the OCR pool
and never reads one itself; importing ``ocr.read`` here would load OpenCV, pypdfium2 and the
preprocessing chain into it for nothing (about 30 MB resident in every `complaintdesk worker`).
"""

from __future__ import annotations

from ocr.ppocr import check_ppocr
from ocr.settings import OcrSettings, effective_policy
from ocr.tesseract import check_tesseract


def check_engines(settings: OcrSettings) -> None:
    """Fail early, with an install hint, when an engine the settings use is missing.

    Raises:
        MissingDependencyError: Tesseract, a language pack, rapidocr or its models are missing.
    """
    if "tesseract" in settings.engines:
        check_tesseract(settings.languages)
    if effective_policy(settings) != "tesseract":
        check_ppocr()
