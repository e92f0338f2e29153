"""Recognising and opening input files: images (PNG, JPEG, TIFF, WebP, ...) and PDFs.

Everything that can go wrong with the bytes themselves is decided here, before any OCR: an empty or
truncated file, an unsupported format, an encrypted PDF, too many pages, or an image that declares
more pixels than the configured limit (checked from the header, *before* decoding, so a
decompression bomb never gets to allocate its memory).
"""

from __future__ import annotations

import io
import re
import warnings
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageOps, UnidentifiedImageError

from ocr.settings import OcrSettings
from pipeline.core.errors import DecompressionBombError, UnreadableScanError, UnsupportedFormatError

#: media types ``read_document`` can turn into pages
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/tiff", "image/webp", "image/bmp", "image/gif"})
PDF_TYPE = "application/pdf"

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif")
# The start of an RFC 822 message: a header name, a colon, then more header lines.
_MAIL_HEADER = re.compile(
    rb"^(Return-Path|Received|From|To|Subject|Date|Message-ID|MIME-Version|Delivered-To|X-[\w-]+):", re.I
)
#: a page with at least this many non-space characters in its PDF text layer is not OCR'd
MIN_TEXT_LAYER_CHARS = 20


@dataclass(frozen=True, slots=True)
class LoadedPage:
    """One page ready for OCR (``image``, 8-bit grayscale or RGB) or already text (``text``)."""

    number: int  # 1-based
    image: np.ndarray | None = None
    text: str | None = None
    dpi: float = 0.0  # resolution the page was scanned or rendered at; 0 when unknown


def sniff_media_type(data: bytes, name: str) -> str:
    """Tell the media type of a file from its first bytes (the name is only used for messages).

    Raises:
        UnreadableScanError: the file is empty.
        UnsupportedFormatError: the bytes are not an image, PDF or e-mail complaintdesk reads.
    """
    if not data.strip():
        raise UnreadableScanError(f"{name}: the file is empty ({len(data)} bytes)")
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic"
    # PDF readers accept junk before the header, so do we (within the first kilobyte).
    if b"%PDF-" in data[:1024]:
        return PDF_TYPE
    if _MAIL_HEADER.match(data.lstrip()[:200]):
        return "message/rfc822"
    raise UnsupportedFormatError(
        f"{name}: not a format complaintdesk reads (PNG, JPEG, TIFF, WebP, PDF or e-mail); "
        f"it starts with {data[:8]!r}"
    )


def load_pages(data: bytes, name: str, settings: OcrSettings) -> Iterator[LoadedPage]:
    """Yield the pages of an image or PDF file one at a time, so a long file is never all in memory.

    Raises:
        UnsupportedFormatError: not an image or PDF.
        UnreadableScanError: empty, truncated, corrupt, encrypted, too big or too many pages.
        DecompressionBombError: a page declares more pixels than ``settings.max_image_pixels``.
    """
    if len(data) > settings.max_file_bytes:
        raise UnreadableScanError(
            f"{name}: the file is {len(data):,} bytes, over the limit of {settings.max_file_bytes:,} "
            "(ocr.max_file_bytes)"
        )
    media_type = sniff_media_type(data, name)
    if media_type == PDF_TYPE:
        yield from _pdf_pages(data, name, settings)
    elif media_type in IMAGE_TYPES or media_type == "image/heic":
        yield from _image_pages(data, name, media_type, settings)
    else:
        raise UnsupportedFormatError(f"{name}: {media_type} has no pages to OCR")


def _image_pages(data: bytes, name: str, media_type: str, settings: OcrSettings) -> Iterator[LoadedPage]:
    image = _open_image(data, name, media_type)
    _check_page_count(getattr(image, "n_frames", 1), name, settings)
    for number in range(1, getattr(image, "n_frames", 1) + 1):
        with _pillow_limits(name):
            try:
                image.seek(number - 1)
            except (OSError, EOFError) as e:
                raise UnreadableScanError(f"{name}: page {number} cannot be read ({e})") from e
            _check_pixels(image.size, name, number, settings)
            page = _decode(image, name, number)
        yield LoadedPage(number, image=page, dpi=_dpi(image))


def _open_image(data: bytes, name: str, media_type: str) -> Image.Image:
    with _pillow_limits(name):
        try:
            return Image.open(io.BytesIO(data))
        except UnidentifiedImageError as e:
            if media_type == "image/heic":
                raise UnsupportedFormatError(
                    f"{name}: HEIC/HEIF photos need the pillow-heif plugin, which is not installed; "
                    "convert the photo to JPEG"
                ) from e
            raise UnreadableScanError(f"{name}: looks like {media_type} but the image is corrupt") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise UnreadableScanError(f"{name}: the image header is corrupt ({e})") from e


def _decode(frame: Image.Image, name: str, number: int) -> np.ndarray:
    try:
        upright = ImageOps.exif_transpose(frame)
        if upright.mode in ("RGBA", "LA", "P", "PA"):
            upright = _flatten_alpha(upright)
        mode = "L" if upright.mode in ("1", "L", "I", "I;16", "F") else "RGB"
        return np.asarray(upright.convert(mode))
    except (OSError, SyntaxError, ValueError) as e:
        # Pillow says "image file is truncated" / "broken data stream" only when decoding.
        message = f"{name}: page {number} cannot be decoded (truncated or corrupt: {e})"
        raise UnreadableScanError(message) from e


def _flatten_alpha(image: Image.Image) -> Image.Image:
    # Transparent pixels would turn black; a slip photographed on transparency means paper, so white.
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _dpi(frame: Image.Image) -> float:
    dpi = frame.info.get("dpi")
    try:
        return float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        return 0.0


def _check_pixels(size: tuple[int, int], name: str, number: int, settings: OcrSettings) -> None:
    width, height = size
    if width * height > settings.max_image_pixels:
        raise DecompressionBombError(
            f"{name}: page {number} declares {width}x{height} = {width * height:,} pixels, over the limit "
            f"of {settings.max_image_pixels:,} (ocr.max_image_pixels); possible decompression bomb"
        )
    if width < 8 or height < 8:
        raise UnreadableScanError(f"{name}: page {number} is only {width}x{height} pixels; nothing to read")


def _check_page_count(count: int, name: str, settings: OcrSettings) -> None:
    if count > settings.max_pages:
        raise UnreadableScanError(
            f"{name}: {count} pages, over the limit of {settings.max_pages} (ocr.max_pages)"
        )


@contextmanager
def _pillow_limits(name: str) -> Iterator[None]:
    """Within the block, Pillow's own decompression-bomb checks come out as ours.

    Our limit is checked from the header first; Pillow's warning would only duplicate it (and
    ``-W error`` would turn it into a crash), and its hard limit must still read as a bomb.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            yield
        except Image.DecompressionBombError as e:
            raise DecompressionBombError(f"{name}: {e}") from e


def _pdf_pages(data: bytes, name: str, settings: OcrSettings) -> Iterator[LoadedPage]:
    document = _open_pdf(data, name)
    try:
        count = len(document)
        if count == 0:
            raise UnreadableScanError(f"{name}: the PDF has no pages")
        _check_page_count(count, name, settings)
        for index in range(count):
            yield _pdf_page(document, index, name, settings)
    finally:
        document.close()


def _open_pdf(data: bytes, name: str) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if getattr(e, "err_code", None) == pdfium_c.FPDF_ERR_PASSWORD:
            raise UnreadableScanError(
                f"{name}: the PDF is encrypted with a password; ask the sender for an unprotected copy"
            ) from e
        raise UnreadableScanError(f"{name}: broken or truncated PDF ({e})") from e


def _pdf_page(document: pdfium.PdfDocument, index: int, name: str, settings: OcrSettings) -> LoadedPage:
    number = index + 1
    try:
        page = document[index]
        try:
            text = _text_layer(page)
            if len("".join(text.split())) >= MIN_TEXT_LAYER_CHARS:
                return LoadedPage(number, text=text)
            width_pt, height_pt = page.get_size()
            scale = settings.pdf_dpi / 72.0
            _check_pixels((int(width_pt * scale), int(height_pt * scale)), name, number, settings)
            bitmap = page.render(scale=scale, grayscale=True)
            image = np.asarray(bitmap.to_pil().convert("L")).copy()
            bitmap.close()
            return LoadedPage(number, image=image, dpi=float(settings.pdf_dpi))
        finally:
            page.close()
    except pdfium.PdfiumError as e:
        raise UnreadableScanError(f"{name}: page {number} of the PDF cannot be rendered ({e})") from e


def _text_layer(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        # PDFium returns CRLF line ends and NULs for unmapped glyphs.
        return textpage.get_text_range().replace("\r\n", "\n").replace("\x00", "").strip()
    finally:
        textpage.close()
