"""Preprocessing steps that make a photographed or crooked scan readable for Tesseract.

Each step is a small function ``(image, context) -> image`` registered by name in ``STEPS``, so a
deployment can switch steps on and off in ``OcrSettings.preprocess``; ``run_chain`` applies a list
of names in order. Images are 8-bit numpy arrays, grayscale after the ``grayscale`` step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ocr.tesseract import Orientation, detect_orientation, recognise
from pipeline.core.errors import ConfigError, OcrError

#: Tesseract reads best when capital letters are roughly this many pixels tall (about 10 pt at 300 DPI).
TARGET_TEXT_HEIGHT = 26.0
MAX_UPSCALE = 3.0
#: OSD orientation confidence below which we do not trust it and vote with quick OCR instead
MIN_OSD_CONFIDENCE = 2.0
MAX_SKEW_DEGREES = 10.0
#: seconds allowed for each quick read of the orientation vote
VOTE_TIMEOUT = 15.0
#: noise (standard deviation, 0-255) up to which a median filter is enough
LIGHT_NOISE = 5.0
#: text height (px, at the scanned size) below which strokes are 1-2 px wide (small print on a
#: 100 DPI fax): a 3x3 median erases them, and so does a Sauvola window, so ``denoise`` and
#: ``binarize`` leave such pages to Tesseract's own thresholding
SMALL_PRINT_HEIGHT = 12.0
#: half the height of the orientation vote's window, in text heights
VOTE_WINDOW_LINES = 5
SAUVOLA_K = 0.2
#: local standard deviation (0-255) below which a window is blank paper, whatever its shade
MIN_INK_SPREAD = 6.0


@dataclass(slots=True)
class PageContext:
    """What the steps of one page may need or learn: scan resolution, time budget, OSD answer.

    It is per-page scratch: ``orientation`` records the OSD result so the language choice later
    does not run OSD a second time.
    """

    dpi: float = 0.0
    timeout: float = 120.0
    languages: str = "eng"  # Tesseract languages the orientation vote reads with
    scale: float = 1.0  # how much ``upscale`` enlarged the page (denoising works at the original size)
    #: pixels no step may enlarge the page beyond (``OcrSettings.max_ocr_pixels``; 0: no limit). Each
    #: step makes page-sized copies, so a page of tiny print upscaled 3x would cost nine times as much.
    max_pixels: int = 0
    #: ``text_height`` of the page as scanned, measured by ``run_chain`` before any step (0: unknown).
    #: Later steps cannot measure it reliably: after ``background`` noise specks pass for letters.
    scan_text_height: float = 0.0
    osd: Orientation | None = None
    osd_done: bool = False
    may_be_upside_down: bool = False  # set by ``orientation`` for pages whose lines run horizontally


Step = Callable[[np.ndarray, PageContext], np.ndarray]


def grayscale(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Convert to 8-bit grayscale."""
    if image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image


def upscale(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Resize so text is about ``TARGET_TEXT_HEIGHT`` px tall: low-DPI scans up, huge photos down."""
    height = text_height(image)
    if height > 0:
        factor = TARGET_TEXT_HEIGHT / height
    elif 0 < ctx.dpi < 200:
        factor = 300.0 / ctx.dpi
    else:
        factor = 1.0
    factor = min(factor, MAX_UPSCALE, _room(image, ctx.max_pixels))
    # Small changes cost time and blur glyphs for nothing; shrink only text that is far too big.
    if 0.85 <= factor <= 1.3 or factor < 0.25:
        return image
    interpolation = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    ctx.scale *= factor
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=interpolation)


def denoise(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Remove sensor and JPEG noise: a median filter when it is light, non-local means when it is heavy.

    Light noise on small print (``SMALL_PRINT_HEIGHT``) is left alone: there a 3x3 median
    removes strokes, not noise. Heavy noise is always removed, whatever the resolution.
    Works at the page's original size when ``upscale`` ran first: noise is measured and removed
    where it lives, and non-local means on a 4x enlarged page would cost 16 times as much.
    """
    original = image
    if ctx.scale > 1.2:
        original = cv2.resize(image, None, fx=1 / ctx.scale, fy=1 / ctx.scale, interpolation=cv2.INTER_AREA)
    sigma = noise_sigma(original)
    if sigma < LIGHT_NOISE:
        # as scanned (measured once by run_chain); also when unknown (0: too few letter-sized marks)
        if ctx.scan_text_height < SMALL_PRINT_HEIGHT:
            return image
        cleaned = cv2.medianBlur(original, 3)
    else:
        strength = float(min(1.3 * sigma, 40.0))
        cleaned = cv2.fastNlMeansDenoising(
            original, None, h=strength, templateWindowSize=7, searchWindowSize=11
        )
    if cleaned.shape == image.shape:
        return cleaned
    return cv2.resize(cleaned, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_CUBIC)


def noise_sigma(image: np.ndarray) -> float:
    """Estimate the standard deviation of Gaussian noise (Immerkaer's fast method)."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    # Filtering straight into float32 and taking abs in place: one page-sized float array, not three.
    response = cv2.filter2D(image, cv2.CV_32F, kernel)
    np.abs(response, out=response)
    return float(np.sqrt(np.pi / 2) * response[1:-1, 1:-1].mean() / 6.0)


def background(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Flatten uneven lighting and paper colour by dividing by an estimate of the blank paper."""
    size = _odd(max(15, int(text_height(image) * 1.5) or 15))
    # Closing removes the (dark) text, the median then smooths what is left into a light map.
    paper = cv2.morphologyEx(image, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    paper = cv2.medianBlur(paper, 21)
    flat = cv2.divide(image, paper, scale=255)
    # dst=None allocates the output, as OpenCV documents; its stubs do not allow None there.
    return cv2.normalize(flat, None, 0, 255, cv2.NORM_MINMAX)  # type: ignore[call-overload]


def binarize(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Adaptive (Sauvola) binarization: black text on white, robust to shadows and stains.

    Small print (``SMALL_PRINT_HEIGHT`` at the scanned size, e.g. a 100 DPI fax) is left grey:
    upscaled, its 1-2 px strokes are soft ramps that Sauvola breaks into fragments, where
    Tesseract's own global threshold keeps them whole (FUNSD faxes lost recall and precision).
    """
    if 0 < ctx.scan_text_height < SMALL_PRINT_HEIGHT:
        return image
    return sauvola(image)


def sauvola(image: np.ndarray) -> np.ndarray:
    """Sauvola thresholding with a window of about 2.5 text heights.

    Flat paper has a local spread no bigger than its noise; only pixels in windows with clearly
    more spread than the page's typical one can be ink, so grain does not become speckles.
    """
    window = _odd(max(25, int(text_height(image) * 2.5)))
    # In place where possible: each float32 copy of a 12 MP page is 48 MB, and the naive formula
    # made seven of them (plus an int64 result).
    img = image.astype(np.float32)
    mean: np.ndarray = cv2.boxFilter(img, -1, (window, window))
    std: np.ndarray = cv2.sqrBoxFilter(img, -1, (window, window))  # the mean of squares, for now
    del img
    std -= mean * mean
    np.maximum(std, 0, out=std)
    np.sqrt(std, out=std)
    spread = max(MIN_INK_SPREAD, 1.5 * float(np.median(std)))
    # threshold = mean * (1 + k * (std / 128 - 1)), computed into ``mean``
    mean *= (1 - SAUVOLA_K) + (SAUVOLA_K / 128.0) * std
    ink = (image <= mean) & (std > spread)
    out = np.full(image.shape, 255, np.uint8)
    out[ink] = 0
    return out


def otsu(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Global Otsu binarization, for evenly lit scans."""
    _, binary = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary


def deskew(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Straighten text tilted by up to ``MAX_SKEW_DEGREES`` using the projection profile of its lines."""
    angle = skew_angle(image)
    if abs(angle) < 0.2:
        return image
    return rotate(image, angle)


def lines(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Erase long ruled lines and form borders, which Tesseract otherwise reads as rows of junk."""
    _, ink = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    length = max(40, int(max(text_height(image), 10) * 8))
    horizontal = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length, 1)))
    vertical = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length)))
    rules = cv2.dilate(cv2.bitwise_or(horizontal, vertical), np.ones((3, 3), np.uint8))
    out = image.copy()
    out[rules > 0] = int(np.percentile(image, 90))
    return out


def orientation(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Turn a sideways page so its text lines run horizontally (90/270), via Tesseract OSD.

    The direction of the text lines (row versus column profile of the letter-sized ink) says
    whether the page may be sideways; only then is OSD asked which way (it is slow, and often
    unsure on Chinese), with a quick-read vote of the two turns as the fallback. A turn is made
    only when OSD agrees: confidently on its own, or with the vote (or when it saw too little
    text to say anything). A form's ruled lines and table columns can make an upright page look
    sideways, and turning an upright page ruins it, so one doubtful signal is not enough.
    Whether an upright-looking page is in fact upside down is left to the reader (``ocr.read``),
    which turns it over only if it reads badly: checking every page would cost an OSD run each.
    """
    probe = sauvola(_probe(image, ctx.max_pixels))
    if lines_run_horizontally(probe):
        ctx.may_be_upside_down = True
        return image
    osd = detect_orientation(probe, ctx.timeout)
    ctx.osd, ctx.osd_done = osd, True
    if osd is not None and osd.confidence >= MIN_OSD_CONFIDENCE:
        turn = osd.rotate if osd.rotate in (90, 270) else 0
    else:
        turn = _vote_orientation(probe, (90, 270), ctx)
        if osd is not None and osd.rotate != turn:
            turn = 0
    if not turn:
        ctx.may_be_upside_down = True
        return image
    return _turn(image, turn)


def turn_over(image: np.ndarray) -> np.ndarray:
    """The page turned by 180 degrees."""
    return _turn(image, 180)


def lines_run_horizontally(binary: np.ndarray) -> bool:
    """True when the ink is arranged in horizontal lines (the page is upright or upside down).

    Only letter-sized marks count: a form's ruled lines, boxes and table columns would otherwise
    make the column profile as jagged as the row profile of the text.
    """
    ink = _letters(binary < 128)
    rows, cols = ink.sum(axis=1, dtype=np.float64), ink.sum(axis=0, dtype=np.float64)
    # Text lines separated by blank gaps make a jagged profile across them and a flat one along them.
    row_jumps = np.sum(np.diff(rows) ** 2) / max(len(rows), 1)
    col_jumps = np.sum(np.diff(cols) ** 2) / max(len(cols), 1)
    return bool(row_jumps >= col_jumps)


def crop(image: np.ndarray, ctx: PageContext) -> np.ndarray:
    """Cut away what surrounds the paper (a table, a scanner's black border) and leave a white margin."""
    small, factor = _shrink(image, 800)
    blurred = cv2.GaussianBlur(small, (9, 9), 0)
    _, paper = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    paper = cv2.morphologyEx(paper, cv2.MORPH_CLOSE, np.ones((25, 25), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(paper)
    if count < 2:
        return image
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h, area = stats[largest]
    small_area = small.shape[0] * small.shape[1]
    # Only a clear sheet counts: not a stray bright spot, and not the whole frame already.
    if area < 0.25 * small_area or w * h > 0.97 * small_area:
        return image
    x0, y0 = int(x / factor), int(y / factor)
    x1, y1 = int((x + w) / factor), int((y + h) / factor)
    inset = max(2, int(0.01 * min(x1 - x0, y1 - y0)))
    sheet = image[y0 + inset : y1 - inset, x0 + inset : x1 - inset]
    return _whiten_outside(sheet, small, paper, largest, factor, (x0 + inset, y0 + inset))


def text_height(image: np.ndarray) -> float:
    """The median height in pixels of letter-sized dark blobs; 0 when there are too few to tell."""
    small, factor = _shrink(image, 2000)
    _, ink = cv2.threshold(cv2.medianBlur(small, 3), 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    heights = stats[1:, cv2.CC_STAT_HEIGHT]
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    areas = stats[1:, cv2.CC_STAT_AREA]
    letters = (heights >= 5) & (heights <= small.shape[0] / 6) & (widths <= heights * 4) & (areas >= 15)
    if np.count_nonzero(letters) < 5:
        return 0.0
    # The upper quartile, not the median: dots, commas and noise specks pull the median down.
    return float(np.percentile(heights[letters], 75)) / factor


def ink_blobs(image: np.ndarray) -> int:
    """How many separate marks of letter size or more the page has (dark, connected, 20+ pixels)."""
    _, ink = cv2.threshold(image, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    return int(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] >= 20))


def skew_angle(image: np.ndarray) -> float:
    """The small rotation (degrees, counter-clockwise) that makes text lines horizontal."""
    small, _ = _shrink(image, 900)
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    coarse = _best_angle(ink, np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 0.01, 0.5))
    return _best_angle(ink, np.arange(coarse - 0.5, coarse + 0.51, 0.1))


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """Rotate by ``angle`` degrees counter-clockwise, growing the canvas and filling with paper colour."""
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_w, new_h = int(h * sin + w * cos), int(h * cos + w * sin)
    matrix[0, 2] += new_w / 2 - w / 2
    matrix[1, 2] += new_h / 2 - h / 2
    fill = int(np.percentile(image, 90))
    return cv2.warpAffine(
        image, matrix, (new_w, new_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT, borderValue=fill
    )


STEPS: dict[str, Step] = {
    "grayscale": grayscale,
    "orientation": orientation,
    "crop": crop,
    "upscale": upscale,
    "background": background,
    "denoise": denoise,
    "deskew": deskew,
    "lines": lines,
    "binarize": binarize,
    "otsu": otsu,
}


def run_chain(image: np.ndarray, names: Sequence[str], ctx: PageContext) -> np.ndarray:
    """Apply the named steps in order; grayscale is always applied first if the image has colour.

    Raises:
        ConfigError: a name is not in ``STEPS``.
    """
    check_chain(names)
    out = grayscale(image, ctx)
    ctx.scan_text_height = text_height(out)
    for name in names:
        out = STEPS[name](out, ctx)
    return out


def check_chain(names: Sequence[str]) -> None:
    """Raise ``ConfigError`` naming the unknown steps, if any."""
    unknown = [n for n in names if n not in STEPS]
    if unknown:
        raise ConfigError(f"unknown OCR preprocessing step(s) {unknown}; known: {', '.join(STEPS)}")


def _best_angle(ink: np.ndarray, angles: np.ndarray) -> float:
    h, w = ink.shape
    centre = (w / 2, h / 2)
    best, best_score = 0.0, -1.0
    for angle in angles:
        matrix = cv2.getRotationMatrix2D(centre, float(angle), 1.0)
        turned = cv2.warpAffine(ink, matrix, (w, h), flags=cv2.INTER_NEAREST)
        profile = turned.sum(axis=1, dtype=np.float64)
        # Straight lines give sharp peaks and gaps in the row profile: the largest squared jumps.
        score = float(np.sum(np.diff(profile) ** 2))
        if score > best_score:
            best, best_score = float(angle), score
    return best


def _vote_orientation(probe: np.ndarray, candidates: tuple[int, int], ctx: PageContext) -> int:
    best_turn, best_score = candidates[0], -1.0
    for turns in candidates:
        window = _centre(_turn(probe, turns))
        for language in ctx.languages.split("+"):
            try:
                result = recognise(window, language, 6, min(ctx.timeout, VOTE_TIMEOUT))
            except OcrError:
                continue  # a turn Tesseract chokes on is not the upright one
            if result.score > best_score:
                best_turn, best_score = turns, result.score
    return best_turn


def _centre(image: np.ndarray) -> np.ndarray:
    # A few lines from the middle are enough to see which way up the text is, and quick to read.
    h, w = image.shape[:2]
    half_h, half_w = int(VOTE_WINDOW_LINES * TARGET_TEXT_HEIGHT), 600
    return image[max(0, h // 2 - half_h) : h // 2 + half_h, max(0, w // 2 - half_w) : w // 2 + half_w]


def _turn(image: np.ndarray, degrees: int) -> np.ndarray:
    """Rotate clockwise by a multiple of 90 degrees (the OSD convention)."""
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    return cv2.rotate(image, codes[degrees]) if degrees in codes else image


def _probe(image: np.ndarray, max_pixels: int = 0) -> np.ndarray:
    # OSD and the vote only need letters of a readable size, not the full resolution.
    height = text_height(image)
    factor = TARGET_TEXT_HEIGHT / height if height > 0 else 1.0
    factor = min(max(factor, 0.25), 2.0, _room(image, max_pixels))
    if abs(factor - 1) < 0.15:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def _room(image: np.ndarray, max_pixels: int) -> float:
    """The largest factor the page may be resized by and stay within ``max_pixels`` (0: no limit)."""
    if max_pixels <= 0:
        return float("inf")
    return float(np.sqrt(max_pixels / max(1, image.shape[0] * image.shape[1])))


def _letters(ink: np.ndarray) -> np.ndarray:
    # Keep marks up to a word of touching letters (probe letters are TARGET_TEXT_HEIGHT tall);
    # ruled lines are long and thin, and a table's grid is one mark as big as the table.
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    longest = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    shortest = np.maximum(np.minimum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]), 1)
    thin_rule = (longest > 2 * TARGET_TEXT_HEIGHT) & (longest > 8 * shortest)
    letter = (longest <= 6 * TARGET_TEXT_HEIGHT) & ~thin_rule
    letter[0] = False  # the background
    return letter[labels]


def _shrink(image: np.ndarray, longest: int) -> tuple[np.ndarray, float]:
    factor = min(1.0, longest / max(image.shape[:2]))
    if factor >= 1.0:
        return image, 1.0
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA), factor


def _whiten_outside(
    sheet: np.ndarray,
    small: np.ndarray,
    paper: np.ndarray,
    label: int,
    factor: float,
    origin: tuple[int, int],
) -> np.ndarray:
    # A tilted sheet's bounding box still holds triangles of table: paint them the paper's colour.
    _, labels = cv2.connectedComponents(paper)
    mask = cv2.erode((labels == label).astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    full_size = (int(small.shape[1] / factor), int(small.shape[0] / factor))
    full = cv2.resize(mask, full_size, interpolation=cv2.INTER_NEAREST)
    x0, y0 = origin
    region = full[y0 : y0 + sheet.shape[0], x0 : x0 + sheet.shape[1]]
    if region.shape != sheet.shape:
        return sheet
    out = sheet.copy()
    out[region == 0] = int(np.percentile(sheet, 90))
    return out


def _odd(n: int) -> int:
    return n if n % 2 else n + 1
