"""Recognising and opening input files: images (PNG, JPEG, TIFF, WebP, ...) and PDFs.

Everything that can go wrong with the bytes themselves is decided here, before any OCR: an empty or
truncated file, an unsupported format, an encrypted PDF, too many pages, or an image that declares
more pixels than the configured limit (checked from the header, *before* decoding, so a
decompression bomb never gets to allocate its memory).

Pages with more pixels than OCR needs (``OcrSettings.max_ocr_pixels``) are reduced as they are
decoded, before any full-size numpy copy exists: JPEG through libjpeg's scaled decoding
(``Image.draft``), PDF by rendering at a lower scale, other images right after Pillow decodes them.
What one page costs to decode is estimated from its declared size and mode first, and a page over
``OcrSettings.max_decode_bytes`` is refused. Reasons never quote the file's bytes: a quarantined
symlink to a secret must not leak its content into the database.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import ExifTags, Image, UnidentifiedImageError

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
#: what else a file may be, named in reasons instead of quoting its first bytes
_OTHER_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (for example .docx, .xlsx or .zip)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document (.doc, .xls)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ\x90\x00", "a Windows program"),
    (b"{\\rtf", "an RTF document"),
)
#: bytes Pillow keeps per pixel in each mode; every other mode takes 4 (RGB is stored as RGBX)
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
#: what Pillow's decoders raise on corrupt data besides OSError; a crafted header reaches odd corners
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError,
    ZeroDivisionError, OverflowError, MemoryError,
)
_BYTES_LITERAL = re.compile(r"""b'(?:[^'\\]|\\.)*'|b"(?:[^"\\]|\\.)*"|\\x[0-9a-fA-F]{2}""")
#: EXIF orientation -> the transpose that makes the page upright (as ``ImageOps.exif_transpose``)
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
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
        f"it looks like {describe_content(data)}"
    )


def describe_content(data: bytes) -> str:
    """Name what kind of data this is, for a reason shown to people; never quotes the data itself."""
    head = data[:1024]
    for magic, kind in _OTHER_KINDS:
        if head.startswith(magic):
            return kind
    if b"\x00" not in head:
        try:
            text = head.decode("utf-8")
        except UnicodeDecodeError as e:
            # A multi-byte character cut by the 1 KB window is still text.
            text = head[: e.start].decode("utf-8") if e.start > len(head) - 4 else ""
        if text and sum(c.isprintable() or c.isspace() for c in text) >= 0.95 * len(text):
            return "a text file"
    return "unknown binary data"


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
    with _open_image(data, name, media_type) as image, _pillow_limits(name):
        count = _frame_count(image, name)
    _check_page_count(count, name, settings)
    # GIF, WebP and APNG frames build on the previous ones: reaching page n from a fresh open
    # decodes every page before it, so those files stay open from page to page.
    shared = _open_image(data, name, media_type) if count > 1 and media_type != "image/tiff" else None
    try:
        yield from _each_page(data, name, media_type, count, shared, settings)
    finally:
        if shared is not None:
            shared.close()


def _each_page(
    data: bytes, name: str, media_type: str, count: int, shared: Image.Image | None, settings: OcrSettings
) -> Iterator[LoadedPage]:
    for number in range(1, count + 1):
        # Otherwise opened again for each page and closed before the page is yielded: the decoded
        # full-size frame must not stay in memory while the reduced page is preprocessed and read.
        with _opened(data, name, media_type, shared) as image, _pillow_limits(name):
            try:
                image.seek(number - 1)
            except _DECODE_ERRORS as e:
                raise UnreadableScanError(f"{name}: page {number} cannot be read{_detail(e)}") from e
            _check_pixels(image.size, name, number, settings)
            # Read before decoding: a reduced copy no longer carries the file's metadata.
            turn, dpi = _exif_orientation(image), _dpi(image)
            frame, factor = _decoded(image, name, number, settings)
            page = _pixels(frame, turn, name, number)
            del frame
        yield LoadedPage(number, image=page, dpi=dpi * factor)


@contextmanager
def _opened(data: bytes, name: str, media_type: str, shared: Image.Image | None) -> Iterator[Image.Image]:
    if shared is not None:
        yield shared
        return
    with _open_image(data, name, media_type) as image:
        yield image


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
        except _DECODE_ERRORS as e:
            raise UnreadableScanError(f"{name}: the image header is corrupt{_detail(e)}") from e


def _frame_count(image: Image.Image, name: str) -> int:
    # Counting a TIFF's pages walks its chain of directories, which a corrupt file can break.
    try:
        return int(getattr(image, "n_frames", 1))
    except _DECODE_ERRORS as e:
        raise UnreadableScanError(f"{name}: the list of pages is corrupt{_detail(e)}") from e


def _decoded(frame: Image.Image, name: str, number: int, settings: OcrSettings) -> tuple[Image.Image, float]:
    """The frame decoded and, if it has more than ``max_ocr_pixels``, reduced; with the scale factor.

    Raises:
        DecompressionBombError: decoding the page would take more than ``max_decode_bytes``.
        UnreadableScanError: the pixel data is truncated or corrupt.
    """
    declared = frame.size
    budget = settings.max_ocr_pixels
    if declared[0] * declared[1] > budget and frame.format == "JPEG":
        # libjpeg decodes at 1/2, 1/4 or 1/8 of the size directly: the full-size page never exists.
        frame.draft(frame.mode, _fitted(declared, budget))
    need = _decode_bytes(frame, declared)
    if need > settings.max_decode_bytes:
        raise DecompressionBombError(
            f"{name}: page {number} ({declared[0]}x{declared[1]}, {frame.mode}) would need about "
            f"{need / 2**20:,.0f} MB to decode, "
            f"over the limit of {settings.max_decode_bytes / 2**20:,.0f} MB "
            "(ocr.max_decode_bytes); possible decompression bomb"
        )
    try:
        frame.load()
        reduced = _reduced(frame, budget)
    except _DECODE_ERRORS as e:
        # Pillow says "image file is truncated" / "broken data stream" only when decoding.
        message = f"{name}: page {number} cannot be decoded (truncated or corrupt{_detail(e)})"
        raise UnreadableScanError(message) from e
    return reduced, reduced.size[0] / declared[0]


def _decode_bytes(frame: Image.Image, declared: tuple[int, int]) -> int:
    width, height = frame.size  # after a JPEG draft: the reduced size
    need = width * height * _BYTES_PER_PIXEL.get(frame.mode, 4)
    if frame.format == "JPEG" and frame.info.get("progressive"):
        # libjpeg keeps every DCT coefficient of a progressive image (2 bytes, per component, at the
        # full size whatever the draft) until its last scan arrives.
        need += declared[0] * declared[1] * len(frame.getbands()) * 2
    return need


def _fitted(size: tuple[float, float], budget: int) -> tuple[int, int]:
    shrink = math.sqrt(budget / (size[0] * size[1]))
    return max(1, int(size[0] * shrink)), max(1, int(size[1] * shrink))


def _reduced(frame: Image.Image, budget: int) -> Image.Image:
    if frame.size[0] * frame.size[1] <= budget:
        return frame
    if frame.mode == "1":
        # Averaging grey keeps thin strokes that picking every n-th bilevel pixel would drop.
        frame = frame.convert("L")
    # BOX averages each output pixel's area, like cv2.INTER_AREA in ``ocr.preprocess``.
    return frame.resize(_fitted(frame.size, budget), Image.Resampling.BOX)


def _pixels(frame: Image.Image, turn: int, name: str, number: int) -> np.ndarray:
    try:
        upright = frame.transpose(_EXIF_TRANSPOSE[turn]) if turn in _EXIF_TRANSPOSE else frame
        if upright.mode in ("RGBA", "LA", "P", "PA"):
            upright = _flatten_alpha(upright)
        mode = "L" if upright.mode in ("1", "L", "I", "I;16", "F") else "RGB"
        return np.asarray(upright.convert(mode))
    except _DECODE_ERRORS as e:
        message = f"{name}: page {number} cannot be decoded (truncated or corrupt{_detail(e)})"
        raise UnreadableScanError(message) from e


def _exif_orientation(frame: Image.Image) -> int:
    try:
        return int(frame.getexif().get(ExifTags.Base.Orientation, 1))
    except _DECODE_ERRORS:
        return 1  # unreadable EXIF is only a missing hint: read the page as it is stored


def _detail(error: BaseException) -> str:
    """": <the third-party message>" for a reason, without any bytes of the file it may quote."""
    text = _BYTES_LITERAL.sub("...", str(error))
    text = "".join(c for c in text if c.isprintable()).strip()[:120]
    return f": {text}" if text else ""


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
    ``-W error`` would turn it into a crash), and its hard limit must still read as a bomb. Its
    other warnings ("Corrupt EXIF data", "Truncated File Read") are about the file, which either
    reads or becomes an ``InputError``: nothing for the operator's log.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
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
            scale = _pdf_scale(width_pt, height_pt, name, number, settings)
            _check_pixels((int(width_pt * scale), int(height_pt * scale)), name, number, settings)
            bitmap = page.render(scale=scale, grayscale=True)
            image = np.asarray(bitmap.to_pil().convert("L")).copy()
            bitmap.close()
            return LoadedPage(number, image=image, dpi=72.0 * scale)
        finally:
            page.close()
    except pdfium.PdfiumError as e:
        raise UnreadableScanError(f"{name}: page {number} of the PDF cannot be rendered ({e})") from e


def _pdf_scale(width_pt: float, height_pt: float, name: str, number: int, settings: OcrSettings) -> float:
    """Points to pixels: ``pdf_dpi``, or less for a page box too big for ``max_ocr_pixels`` at it."""
    if not (math.isfinite(width_pt) and math.isfinite(height_pt) and width_pt > 0 and height_pt > 0):
        raise UnreadableScanError(f"{name}: page {number} of the PDF has no valid size")
    scale = settings.pdf_dpi / 72.0
    pixels = width_pt * height_pt * scale * scale
    if pixels > settings.max_ocr_pixels:
        # A page box of metres (up to 200 inches, more with UserUnit) would render to gigabytes.
        # PDFium rounds the bitmap's sides up: aim just below whole pixels.
        width, height = _fitted((width_pt * scale, height_pt * scale), settings.max_ocr_pixels)
        scale = min(width / width_pt, height / height_pt) * (1 - 1e-6)
    return scale


def _text_layer(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        # PDFium returns CRLF line ends and NULs for unmapped glyphs.
        return textpage.get_text_range().replace("\r\n", "\n").replace("\x00", "").strip()
    finally:
        textpage.close()
