"""Input formats and bad input: what ``read_document`` refuses, and with which error and message."""

from __future__ import annotations

import io
import pickle
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

import ocr
from ocr.formats import load_pages
from ocr.preprocess import PageContext, upscale
from ocr.settings import OcrSettings
from pipeline.core.errors import (
    ConfigError,
    DecompressionBombError,
    MissingDependencyError,
    OcrError,
    UnreadableScanError,
    UnsupportedFormatError,
)
from tests.ocr_fixtures import build_pdf, encrypted_pdf, png_bytes, png_declaring, text_layer_pdf

SETTINGS = OcrSettings()


def _encoded(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (250, 250, 250)).save(buffer, fmt, **options)
    return buffer.getvalue()


def test_public_surface_is_the_contract() -> None:
    assert sorted(ocr.__all__) == [
        "OcrPool", "check_engines", "check_tesseract", "ocr_many", "read_document", "sniff_media_type"
    ]
    assert all(callable(getattr(ocr, name)) for name in ocr.__all__)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_encoded("PNG"), "image/png"),
        (_encoded("JPEG"), "image/jpeg"),
        (_encoded("TIFF"), "image/tiff"),
        (_encoded("WEBP"), "image/webp"),
        (_encoded("BMP"), "image/bmp"),
        (text_layer_pdf(["hello"]), "application/pdf"),
        (b"Return-Path: <a@example.com>\r\nFrom: a@example.com\r\nSubject: hi\r\n\r\nbody", "message/rfc822"),
    ],
)
def test_sniff_media_type_reads_magic_bytes_not_names(data: bytes, expected: str) -> None:
    assert ocr.sniff_media_type(data, "misnamed.txt") == expected


def test_sniff_rejects_unknown_bytes_naming_what_is_supported() -> None:
    with pytest.raises(UnsupportedFormatError, match="PNG, JPEG, TIFF, WebP, PDF"):
        ocr.sniff_media_type(b"PK\x03\x04 a zip or a docx", "letter.docx")


def test_empty_file_is_unreadable() -> None:
    with pytest.raises(UnreadableScanError, match="empty"):
        ocr.read_document(b"", "blank.png", SETTINGS)


def test_truncated_png_is_unreadable_with_reason() -> None:
    data = png_bytes(300, 300)
    with pytest.raises(UnreadableScanError, match="truncated"):
        ocr.read_document(data[: len(data) // 2], "half.png", SETTINGS)


def test_corrupt_png_is_unreadable() -> None:
    with pytest.raises(UnreadableScanError, match="corrupt"):
        ocr.read_document(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, "bad.png", SETTINGS)


def test_unsupported_format_is_refused() -> None:
    with pytest.raises(UnsupportedFormatError):
        ocr.read_document(b"Dear sir, the queue was long.", "note.txt", SETTINGS)


def test_email_bytes_are_not_ocr_input() -> None:
    with pytest.raises(UnsupportedFormatError, match="message/rfc822"):
        ocr.read_document(b"From: a@example.com\r\nSubject: x\r\n\r\nhi", "mail.eml", SETTINGS)


def test_decompression_bomb_over_configured_limit_is_refused_before_decoding() -> None:
    # 9000 x 9000 = 81 M pixels: under Pillow's own hard limit, over ours; the IDAT holds 16 bytes,
    # so only the header check can catch it.
    with pytest.raises(DecompressionBombError, match="81,000,000 pixels.*max_image_pixels"):
        ocr.read_document(png_declaring(9000, 9000), "bomb.png", SETTINGS)


def test_huge_declared_size_is_a_bomb_too() -> None:
    with pytest.raises(DecompressionBombError, match="decompression bomb"):
        ocr.read_document(png_declaring(30000, 30000), "bomb.png", SETTINGS)


def test_pixel_limit_comes_from_settings() -> None:
    with pytest.raises(DecompressionBombError):
        ocr.read_document(png_bytes(200, 200), "small.png", OcrSettings(max_image_pixels=10_000))


def test_encrypted_pdf_is_unreadable_with_a_clear_message() -> None:
    with pytest.raises(UnreadableScanError, match="encrypted with a password"):
        ocr.read_document(encrypted_pdf(), "secret.pdf", SETTINGS)


def test_broken_pdf_is_unreadable() -> None:
    with pytest.raises(UnreadableScanError, match="broken or truncated PDF"):
        ocr.read_document(text_layer_pdf(["x"])[:200], "cut.pdf", SETTINGS)


def test_pdf_text_layer_is_used_instead_of_ocr() -> None:
    data = text_layer_pdf(["Window 7 was closed all morning and nobody told us.", "Badge No. 1043"])
    result = ocr.read_document(data, "typed.pdf", SETTINGS)
    (page,) = result.pages
    assert page.method == "text-layer"
    assert page.confidence == -1.0
    assert "Window 7 was closed all morning" in page.text
    assert "Badge No. 1043" in result.text


def test_too_many_pages_is_refused_with_the_setting_named() -> None:
    buffer = io.BytesIO()
    frames = [Image.new("L", (50, 50), 255) for _ in range(3)]
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(UnreadableScanError, match="3 pages.*ocr.max_pages"):
        ocr.read_document(buffer.getvalue(), "long.tif", OcrSettings(max_pages=2))


def test_too_many_bytes_is_refused() -> None:
    with pytest.raises(UnreadableScanError, match="max_file_bytes"):
        ocr.read_document(png_bytes(), "big.png", OcrSettings(max_file_bytes=10))


def test_exif_orientation_is_honoured() -> None:
    image = Image.new("L", (120, 40), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the camera was held sideways
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    (page,) = list(load_pages(buffer.getvalue(), "phone.jpg", SETTINGS))
    assert page.image is not None
    assert page.image.shape == (120, 40)


def test_multi_page_tiff_yields_each_page_in_order() -> None:
    buffer = io.BytesIO()
    frames = [Image.new("L", (60 + 10 * i, 50), 255) for i in range(3)]
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    pages = list(load_pages(buffer.getvalue(), "scan.tif", SETTINGS))
    assert [p.number for p in pages] == [1, 2, 3]
    assert [p.image.shape[1] for p in pages if p.image is not None] == [60, 70, 80]


def test_transparent_png_becomes_white_paper() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(buffer, "PNG")
    (page,) = list(load_pages(buffer.getvalue(), "clear.png", SETTINGS))
    assert page.image is not None and int(np.min(page.image)) == 255


def test_unknown_preprocess_step_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="sharpen"):
        ocr.read_document(png_bytes(), "x.png", OcrSettings(preprocess=["grayscale", "sharpen"]))


def test_missing_language_pack_names_the_package_to_install() -> None:
    with pytest.raises(MissingDependencyError, match="apt-get install tesseract-ocr-klingon"):
        ocr.check_tesseract("eng+klingon")


def test_installed_languages_pass_the_check() -> None:
    ocr.check_tesseract("eng+chi_sim")


@pytest.mark.parametrize("error", [UnreadableScanError("x.png: truncated"), OcrError("boom")])
def test_errors_survive_the_trip_from_a_worker(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)


# --- memory: pages bigger than OCR needs are reduced while decoding, not refused ----------------


def test_large_png_under_the_pixel_limit_is_reduced_to_the_ocr_budget() -> None:
    # 8900 x 8900 (79 M pixels, under max_image_pixels) compresses to a few KB; read at full size
    # it cost 2.6 GB in one worker.
    buffer = io.BytesIO()
    Image.new("L", (8900, 8900), 255).save(buffer, "PNG", dpi=(600, 600))
    (page,) = list(load_pages(buffer.getvalue(), "huge.png", SETTINGS))
    assert page.image is not None
    height, width = page.image.shape
    assert width * height <= SETTINGS.max_ocr_pixels
    assert abs(width - height) <= 1
    assert page.dpi == pytest.approx(600 * width / 8900, rel=0.01)


def test_large_jpeg_is_decoded_reduced_and_keeps_its_proportions() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4000, 3000), (240, 240, 240)).save(buffer, "JPEG")
    settings = OcrSettings(max_ocr_pixels=1_000_000)
    (page,) = list(load_pages(buffer.getvalue(), "photo.jpg", settings))
    assert page.image is not None
    height, width = page.image.shape[:2]
    assert width * height <= 1_000_000
    assert width / height == pytest.approx(4 / 3, rel=0.01)


def test_exif_orientation_is_honoured_on_a_reduced_page() -> None:
    image = Image.new("L", (1200, 400), 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    (page,) = list(load_pages(buffer.getvalue(), "phone.jpg", OcrSettings(max_ocr_pixels=30_000)))
    assert page.image is not None
    height, width = page.image.shape
    assert height > width and width * height <= 30_000


def test_pdf_with_a_huge_page_box_is_rendered_within_the_budget() -> None:
    # 200 x 200 inches: 60000 x 60000 pixels at 300 DPI, which used to be refused as a bomb.
    data = build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] >>",
    ])
    (page,) = list(load_pages(data, "poster.pdf", SETTINGS))
    assert page.image is not None
    height, width = page.image.shape
    assert width * height <= SETTINGS.max_ocr_pixels
    assert page.dpi == pytest.approx(72 * width / 14400, rel=0.01)


def test_page_that_needs_too_much_memory_to_decode_is_refused_naming_the_setting() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1000, 1000), (250, 250, 250)).save(buffer, "PNG")
    with pytest.raises(DecompressionBombError, match="about 4 MB to decode.*ocr.max_decode_bytes"):
        list(load_pages(buffer.getvalue(), "wide.png", OcrSettings(max_decode_bytes=2 * 2**20)))


def test_progressive_jpeg_counts_its_coefficient_buffers() -> None:
    # libjpeg keeps all coefficients of a progressive JPEG at full size, whatever the draft scale.
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 2000), (250, 250, 250)).save(buffer, "JPEG", progressive=True)
    settings = OcrSettings(max_ocr_pixels=100_000, max_decode_bytes=10 * 2**20)
    with pytest.raises(DecompressionBombError, match="max_decode_bytes"):
        list(load_pages(buffer.getvalue(), "progressive.jpg", settings))


def test_upscale_never_enlarges_a_page_beyond_the_pixel_budget() -> None:
    page = np.full((1000, 1000), 255, np.uint8)
    ctx = PageContext(dpi=50.0, max_pixels=2_000_000)  # 50 DPI asks for 3x, the budget allows 1.41x
    out = upscale(page, ctx)
    assert out.shape[0] * out.shape[1] <= 2_000_000
    assert out.shape[0] > 1000


# --- reasons never quote the file ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"root:$6$Xy7hash.SECRET:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n", "a text file"),
        (b"PK\x03\x04\x14\x00\x06\x00SECRET[Content_Types].xml", "a ZIP archive"),
        (b"\x7fELF\x02\x01\x01SECRET", "a program"),
        (bytes(range(256)) + b"SECRET", "unknown binary data"),
    ],
)
def test_unsupported_file_is_named_by_its_kind_never_by_its_bytes(data: bytes, kind: str) -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        ocr.read_document(data, "shadow", SETTINGS)
    reason = str(caught.value)
    assert kind in reason
    assert "SECRET" not in reason and "root" not in reason and "b'" not in reason and "\\x" not in reason


def test_corrupt_image_reason_does_not_quote_its_bytes() -> None:
    # A chunk type that is not four word characters: Pillow's message quotes it as raw bytes
    # ("broken PNG file (chunk b'S#CR')").
    pixels = zlib.compress(b"".join(b"\x00" + bytes([200]) * 64 for _ in range(64)), 0)
    header = struct.pack(">IIBBBBB", 64, 64, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels[:20])
    data += _chunk(b"S#CR", pixels[20:]) + _chunk(b"IEND", b"")
    with pytest.raises(UnreadableScanError) as caught:
        ocr.read_document(data, "bad.png", SETTINGS)
    assert "truncated or corrupt" in str(caught.value)
    assert "S#CR" not in str(caught.value) and "b'" not in str(caught.value)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_frames_of_an_animated_image_are_pages_in_order(fmt: str) -> None:
    # These formats build each frame on the previous one: read from one open file, page after page.
    buffer = io.BytesIO()
    frames = [Image.new("L", (40, 30), 255 - 60 * i) for i in range(3)]
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:], lossless=True)
    pages = list(load_pages(buffer.getvalue(), f"animated.{fmt.lower()}", SETTINGS))
    assert [p.number for p in pages] == [1, 2, 3]
    assert [int(np.median(p.image)) for p in pages if p.image is not None] == [255, 195, 135]
