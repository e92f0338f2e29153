"""Turning scans into text: formats, preprocessing, the OCR engines (Tesseract, PP-OCR) and the process pool.

The public surface is the contract in ``docs/architecture.md``; the slip renderer used by tests
and benchmarks lives in ``ocr.synth`` and is not part of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# OpenCV and NumPy take a second to import; `complaintdesk --help` and `cases list` reach this
# package only for ``ocr.settings``, so the public names are imported on first use (PEP 562).
_WHERE = {"sniff_media_type": "formats", "ocr_many": "parallel", "OcrPool": "parallel",
          "read_document": "read", "check_tesseract": "tesseract", "check_engines": "checks"}

if TYPE_CHECKING:
    from ocr.checks import check_engines
    from ocr.formats import sniff_media_type
    from ocr.parallel import OcrPool, ocr_many
    from ocr.read import read_document
    from ocr.tesseract import check_tesseract


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'ocr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"ocr.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["OcrPool", "check_engines", "check_tesseract", "ocr_many", "read_document", "sniff_media_type"]
