"""How scans are turned into text: the OCR package's own settings and its tuned defaults.

The application's ``Settings`` embeds ``OcrSettings``; the OCR code receives only this part.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

#: the second try for a page read with low confidence
ALTERNATIVE_CHAIN: tuple[str, ...] = (
    "crop", "denoise", "upscale", "background", "orientation", "deskew", "binarize", "lines"
)
#: the chain bench/ocr.py measured best on clean, mild and hard slips; the default ``ocr.preprocess``.
#: ``binarize`` leaves small print (100 DPI faxes, FUNSD) grey: Sauvola broke its strokes. Slips
#: keep it, or grey ruled lines survive ``lines`` and read as rows of junk.
RECOMMENDED_CHAIN: tuple[str, ...] = ALTERNATIVE_CHAIN
#: what PP-OCR reads: the page cropped, turned upright and straightened, otherwise as scanned. Its
#: models were trained on photos and scans: binarizing and denoising, which help Tesseract, lose it
#: characters on hard Chinese slips.
PPOCR_CHAIN: tuple[str, ...] = ("crop", "orientation", "deskew")
#: OCR engines: "tesseract" (fast, named languages) and "ppocr" (RapidOCR's PP-OCR: Chinese,
#: English and handwriting in one model, slower)
EngineName = Literal["tesseract", "ppocr"]
ENGINES: tuple[EngineName, ...] = ("tesseract", "ppocr")
#: how a page's engine is chosen (``ocr.read.read_page``):
#: "auto": Han script found on the page, before reading -> PP-OCR; else Tesseract, and PP-OCR when
#:         Tesseract's confidence is below ``ppocr_below_confidence`` (hard scans, handwriting);
#: "tesseract": Tesseract only (its own retries and language fallback); "ppocr": PP-OCR only.
Policy = Literal["auto", "tesseract", "ppocr"]


class OcrSettings(BaseModel):
    """How scans are turned into text."""

    languages: str = "eng+chi_sim"
    #: the engines this deployment may use; ``policy`` says which reads a page
    engines: list[EngineName] = Field(default_factory=lambda: list(ENGINES))
    policy: Policy = "auto"
    #: named preprocessing steps for the pages PP-OCR reads (and the script probe looks at)
    ppocr_preprocess: list[str] = Field(default_factory=lambda: list(PPOCR_CHAIN))
    #: "auto": a page Tesseract reads with a mean word confidence below this is read by PP-OCR
    ppocr_below_confidence: float = 85.0
    #: split English words PP-OCR ran together ("floorhave" -> "floor have"; ``ocr.spaces``)
    ppocr_spaces: bool = True
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
    #: threads each OCR worker process gives Tesseract (``OMP_THREAD_LIMIT`` in its environment),
    #: OpenCV and PP-OCR (ONNX Runtime's ``intra_op_num_threads``). 1 (the default) with one process
    #: per core fills the cores without oversubscribing them; raise it only when fewer OCR processes
    #: than cores run at once (``workers`` below the cores, and one `complaintdesk worker` alone).
    #: Several `complaintdesk worker`s on one machine: keep 1 and ``workers = 1`` each.
    threads: int = Field(default=1, ge=1)
    timeout_seconds: float = 120.0
    #: wall-clock seconds of OCR one e-mail message may use for its attachments (300 tiny images once
    #: held the poller for minutes). Counted from its first attachment handed to the pool; once passed,
    #: its remaining attachments are not read and are listed on the case. Attachments already handed
    #: over still finish, so a message can overrun by what is in flight (each bounded by timeout_seconds).
    max_seconds_per_message: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _policy_has_its_engines(self) -> OcrSettings:
        # "auto" without PP-OCR is the Tesseract policy (``effective_policy``).
        needed = "ppocr" if self.policy == "ppocr" else "tesseract"
        if needed not in self.engines:
            raise ValueError(f"policy {self.policy!r} needs the engine {needed!r} in engines")
        return self


def effective_policy(settings: OcrSettings) -> str:
    """The policy in force: "auto" without the PP-OCR engine configured is "tesseract"."""
    if settings.policy == "auto" and "ppocr" not in settings.engines:
        return "tesseract"
    return settings.policy
