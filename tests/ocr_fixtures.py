"""Helpers and fixtures for the OCR tests: hand-built PDFs, crafted image headers, rendered slips."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from ocr.settings import RECOMMENDED_CHAIN, OcrSettings

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "pipeline" / "samples" / "slips"


@pytest.fixture
def ocr_settings() -> OcrSettings:
    """The settings the OCR tests read with: both languages, the recommended chain."""
    return OcrSettings(languages="eng+chi_sim", preprocess=list(RECOMMENDED_CHAIN), workers=2)


def build_pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF with the given objects (1-based; object 1 must be the catalog) and a correct xref."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R " % (len(objects) + 1) + trailer_extra + b">>\n")
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def text_layer_pdf(lines: list[str]) -> bytes:
    """A one-page PDF whose text is real text (Helvetica), as a word processor would export it."""
    commands = [b"BT /F1 14 Tf 72 720 Td 18 TL"]
    for line in lines:
        escaped = line.encode("latin-1").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
        commands.append(b"(" + escaped + b") Tj T*")
    commands.append(b"ET")
    stream = b"\n".join(commands)
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ])


def encrypted_pdf() -> bytes:
    """A PDF under the standard security handler whose user password is not empty.

    The /U entry does not match the empty password, so a reader must ask for one; that is all an
    encrypted slip looks like to us.
    """
    return build_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
            b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 "
            b"/O <" + b"6a" * 32 + b"> /U <" + b"5b" * 32 + b"> >>",
        ],
        trailer_extra=b"/Encrypt 4 0 R "
        b"/ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>] ",
    )


def png_bytes(width: int = 64, height: int = 64) -> bytes:
    """A small valid grayscale PNG."""
    buffer = io.BytesIO()
    Image.new("L", (width, height), 200).save(buffer, "PNG")
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels but holds almost no data: a bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, ignoring whitespace (Levenshtein distance / reference length)."""
    ref, hyp = "".join(reference.split()), "".join(hypothesis.split())
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))
