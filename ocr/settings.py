"""How scans are turned into text: the OCR package's own settings and its tuned defaults.

The application's ``Settings`` embeds ``OcrSettings``; the OCR code receives only this part.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

#: the second try for a page read with low confidence
ALTERNATIVE_CHAIN: tuple[str, ...] = (
    "crop", "denoise", "upscale", "background", "orientation", "deskew", "binarize", "lines"
)
#: the chain bench/ocr.py measured best on clean, mild and hard slips; the default ``ocr.preprocess``.
#: ``binarize`` leaves small print (100 DPI faxes, FUNSD) grey: Sauvola broke its strokes. Slips
#: keep it, or grey ruled lines survive ``lines`` and read as rows of junk.
RECOMMENDED_CHAIN: tuple[str, ...] = ALTERNATIVE_CHAIN


class OcrSettings(BaseModel):
    """How scans are turned into text."""

    languages: str = "eng+chi_sim"
    #: named preprocessing steps, in order (see ``ocr.preprocess.STEPS``)
    preprocess: list[str] = Field(default_factory=lambda: list(RECOMMENDED_CHAIN))
    #: a page whose mean word confidence is below this is retried with the alternative chain
    retry_below_confidence: float = 70.0
    #: pixels per page above which an image is treated as a decompression bomb
    max_image_pixels: int = 80_000_000
    #: pixels a page is reduced to, right after decoding (JPEG and PDF: while decoding), when it has
    #: more: about A4 at 350 DPI, or a 12 MP photo. Tesseract needs no more, and the preprocessing
    #: chain makes several full-size copies of the page (an 8900x8900 page cost 2.6 GB).
    max_ocr_pixels: int = 12_000_000
    #: memory one page may take while it is decoded at its declared size, before it is reduced
    #: (Pillow keeps 1-4 bytes per pixel; a progressive JPEG also buffers its coefficients)
    max_decode_bytes: int = 400 * 1024 * 1024
    max_file_bytes: int = 100 * 1024 * 1024
    max_pages: int = 50
    pdf_dpi: int = 300
    #: OCR worker processes; 0 means one per core
    workers: int = 0
    timeout_seconds: float = 120.0
    #: wall-clock seconds of OCR one e-mail message may use for its attachments (300 tiny images once
    #: held the poller for minutes). Counted from its first attachment handed to the pool; once passed,
    #: its remaining attachments are not read and are listed on the case. Attachments already handed
    #: over still finish, so a message can overrun by what is in flight (each bounded by timeout_seconds).
    max_seconds_per_message: float = Field(default=60.0, gt=0)
