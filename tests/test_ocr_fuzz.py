"""Fuzzing image and PDF headers: ``read_document`` returns text or raises an ``InputError``, nothing else.

Mutated PNG, JPEG, TIFF and PDF files (declared sizes, truncated data, bad chunk lengths, many
TIFF pages, corrupted directories, page boxes) must never raise any other exception, never hang,
and never quote the file's bytes in their reason. Small limits keep each example fast: the code
paths are the same as with the defaults.
"""

from __future__ import annotations

import io
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

import ocr
from ocr.settings import OcrSettings
from pipeline.core.errors import InputError
from pipeline.core.model import OcrResult
from tests.ocr_fixtures import build_pdf

#: put into every seed file; a reason that contains it quotes the file
MARKER = b"Zq7Marker"
SETTINGS = OcrSettings(
    languages="eng", preprocess=[], max_image_pixels=2_000_000, max_ocr_pixels=250_000,
    max_decode_bytes=16 * 2**20, max_pages=4, timeout_seconds=10,
)
#: seconds one example may take before it counts as a hang
EXAMPLE_SECONDS = 15
FUZZ = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_seed() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", MARKER.decode())
    buffer = io.BytesIO()
    Image.new("L", (40, 30), 230).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def _jpeg_seed() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (230, 230, 230)).save(buffer, "JPEG", comment=MARKER)
    return buffer.getvalue()


def _tiff_seed() -> bytes:
    buffer = io.BytesIO()
    frames = [Image.new("L", (24, 16), 200 + i) for i in range(3)]
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:], description=MARKER.decode())
    return buffer.getvalue()


def _pdf_seed() -> bytes:
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 60 40] /Contents 4 0 R >>",
        b"<< /Length 18 >>\nstream\n% " + MARKER + b"  0 g\nendstream",
    ])


@st.composite
def _mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few byte-level edits, mostly in its first few hundred bytes (the headers)."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        reach = len(data) if draw(st.booleans()) else min(len(data), 300)
        at = draw(st.integers(0, max(0, reach - 1)))
        edit = draw(st.sampled_from(["overwrite", "truncate", "insert", "delete", "number"]))
        if edit == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif edit == "truncate":
            del data[at:]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:  # a plausible but wrong number: a size, an offset, a length, a count
            value = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, len(data), 50_000]))
            data[at : at + 4] = struct.pack(draw(st.sampled_from([">I", "<I"])), value)
    return bytes(data)


@st.composite
def _png_declaring(draw: st.DrawFn) -> bytes:
    """A PNG with a valid checksum on any header: declared size, bit depth, colour type, interlace."""
    width = draw(st.integers(0, 2**31 - 1) | st.integers(1, 3000))
    height = draw(st.integers(0, 2**31 - 1) | st.integers(1, 3000))
    depth = draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0]))
    colour = draw(st.sampled_from([0, 2, 3, 4, 6, 5]))
    interlace = draw(st.sampled_from([0, 1, 2]))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    pixels = zlib.compress(draw(st.binary(max_size=64)))
    body = _png_chunk(b"IHDR", header) + _png_chunk(b"tEXt", b"Comment\0" + MARKER)
    if colour == 3 and draw(st.booleans()):
        body += _png_chunk(b"PLTE", bytes(range(48)))
    idat = _png_chunk(b"IDAT", pixels)
    if draw(st.booleans()):  # a chunk length that runs past the end of the file
        idat = struct.pack(">I", draw(st.integers(len(pixels) + 1, 2**31 - 1))) + idat[4:]
    return b"\x89PNG\r\n\x1a\n" + body + idat + _png_chunk(b"IEND", b"")


@st.composite
def _tiff_pages(draw: st.DrawFn) -> bytes:
    """A TIFF with many pages, or whose chain of directories loops back or points outside the file."""
    buffer = io.BytesIO()
    count = draw(st.integers(1, 12))
    frames = [Image.new("L", (8 + i, 8), 255) for i in range(count)]
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:], description=MARKER.decode())
    data = bytearray(buffer.getvalue())
    if draw(st.booleans()):
        # The first directory's offset is at byte 4; point it (or the next one) somewhere else.
        target = draw(st.sampled_from([8, 0, len(data) - 2, 2**31, struct.unpack("<I", data[4:8])[0]]))
        data[4:8] = struct.pack("<I", target % 2**32)
    return bytes(data)


@st.composite
def _pdf_page_box(draw: st.DrawFn) -> bytes:
    numbers = st.sampled_from([b"0", b"-1", b"1e9", b"14400", b"99999999999", b"3", b"nan", b"612"])
    box = b" ".join(draw(numbers) for _ in range(4))
    count = draw(st.sampled_from([b"1", b"0", b"-5", b"100000", b"99999999999999999999"]))
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count " + count + b" >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [" + box + b"] /UserUnit " + draw(numbers) + b" >>",
    ])


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"read_document ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check(data: bytes) -> None:
    try:
        with _time_limit(EXAMPLE_SECONDS):
            result = ocr.read_document(data, "fuzzed", SETTINGS)
    except InputError as e:
        reason = str(e)
        assert reason.startswith("fuzzed: ")
        assert MARKER.decode() not in reason
        assert "b'" not in reason and 'b"' not in reason and "\\x" not in reason, reason
        return
    assert isinstance(result, OcrResult)


SEEDS: dict[str, Callable[[], bytes]] = {
    "png": _png_seed, "jpeg": _jpeg_seed, "tiff": _tiff_seed, "pdf": _pdf_seed
}


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_mutated_headers_give_text_or_an_input_error(kind: str) -> None:
    @FUZZ
    @given(data=_mutated(SEEDS[kind]()))
    def run(data: bytes) -> None:
        _check(data)

    run()


@FUZZ
@given(data=_png_declaring())
def test_png_declaring_any_header_gives_text_or_an_input_error(data: bytes) -> None:
    _check(data)


@FUZZ
@given(data=_tiff_pages())
def test_tiff_with_many_or_looping_pages_gives_text_or_an_input_error(data: bytes) -> None:
    _check(data)


@FUZZ
@given(data=_pdf_page_box())
def test_pdf_with_any_page_box_gives_text_or_an_input_error(data: bytes) -> None:
    _check(data)
