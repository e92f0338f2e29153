"""Turning scans into text: formats, preprocessing, Tesseract and the OCR process pool.

The public surface is the contract in ``docs/architecture.md``; the slip renderer used by tests
and benchmarks lives in ``ocr.synth`` and is not part of it.
"""

from __future__ import annotations

from ocr.formats import sniff_media_type
from ocr.parallel import ocr_many
from ocr.read import read_document
from ocr.tesseract import check_tesseract

__all__ = ["check_tesseract", "ocr_many", "read_document", "sniff_media_type"]
