"""Rendering realistic suggestion-box slips, clean or degraded, for tests, benchmarks and samples.

``render_slip`` draws the text on a ruled slip of grey or yellowed paper in a hand-jittered style;
``degrade`` does to it what a phone camera or a tired scanner does (skew, a quarter or half turn,
blur, noise, low contrast, uneven light, JPEG artifacts). Everything is deterministic for a seed.
"""

from __future__ import annotations

import functools
import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LATIN_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
LATIN_FONT_ALT = Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf")
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
#: handwriting fonts from Debian (fonts-dkg-handwriting, fonts-breip, fonts-femkeklaver; Chinese Kaiti,
#: brush-pen style: fonts-arphic-ukai, fonts-cwtex-kai), for slips filled in by hand
HAND_FONTS_EN: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/fifthhorseman/dkg.ttf"),
    Path("/usr/share/fonts/truetype/breip/Breip.ttf"),
    Path("/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf"),
)
HAND_FONTS_ZH: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/arphic/ukai.ttc"),
    Path("/usr/share/fonts/truetype/cwtex/cwkai.ttf"),
)
#: pen inks (RGB): blue ballpoint, black gel, blue-black fountain pen, pencil grey
INKS: tuple[tuple[int, int, int], ...] = ((30, 45, 120), (25, 25, 30), (35, 40, 75), (85, 85, 90))
HEADER_EN = "Citizen Service Center - Opinion Slip"
HEADER_ZH = "市民服务中心 意见建议卡"
#: the printed line of a bilingual form under its headings, in English
PROMPT_EN = "Please write your opinion below:"

PAPERS: dict[str, tuple[int, int, int]] = {
    "white": (246, 245, 240),
    "grey": (212, 212, 206),
    "yellowed": (236, 222, 178),
}


@dataclass(frozen=True, slots=True)
class Degradation:
    """How badly a slip was captured; the default is a clean scan."""

    angle: float = 0.0  # small skew, degrees counter-clockwise
    turn: int = 0  # quarter turns: 0, 90, 180 or 270 degrees clockwise
    blur: float = 0.0  # Gaussian sigma in pixels
    noise: float = 0.0  # standard deviation of sensor noise (0-255 scale)
    contrast: float = 1.0  # 1 = full; 0.35 = faded pencil on grey paper
    uneven_light: float = 0.0  # 0-1: strength of a shadow across the page
    jpeg_quality: int = 0  # 0 = keep lossless


CLEAN = Degradation()
MILD = Degradation(angle=2.0, blur=0.7, noise=6.0, contrast=0.8, uneven_light=0.25, jpeg_quality=75)
HARD = Degradation(angle=6.0, blur=1.2, noise=12.0, contrast=0.55, uneven_light=0.5, jpeg_quality=30)


def is_chinese(text: str) -> bool:
    """True when the text is mostly Han characters."""
    han = sum(1 for c in text if "\u4e00" <= c <= "\u9fff")
    return han > len(text.replace(" ", "")) * 0.3


def render_slip(
    text: str,
    *,
    seed: int = 0,
    font: Path | None = None,
    font_px: int = 30,
    width: int = 1100,
    paper: str = "yellowed",
    jitter: float = 1.0,
    bilingual: bool = False,
    ink: tuple[int, int, int] | None = None,
) -> Image.Image:
    """Draw ``text`` (English or Chinese, ``\\n`` for new paragraphs) on a clean ruled slip (RGB).

    ``jitter`` (0-1.5) shakes baseline, size, angle and ink per character to look hand-lettered;
    with a handwriting ``font`` (``HAND_FONTS_EN``, ``HAND_FONTS_ZH``) and ``jitter`` about 1.5 the
    slip looks filled in by hand. ``bilingual`` prints the form's headings in English and Chinese
    and an English prompt above the content, whatever its language (the center's real form).
    ``ink`` is the pen's colour (default: a random blue).
    """
    rng = np.random.default_rng(seed)
    chinese = is_chinese(text)
    font_path = font or (CJK_FONT if chinese else LATIN_FONT)
    lines = _wrap(text, font_path, font_px, width - 140, chinese)
    line_gap = int(font_px * 1.9)
    head = 110 if not bilingual else 200
    height = head + 80 + line_gap * len(lines) + 60
    page = _paper(width, height, PAPERS[paper], rng)
    draw = ImageDraw.Draw(page)
    header_px = int(font_px * 0.9)
    if bilingual:
        latin = ImageFont.truetype(str(LATIN_FONT), header_px)
        draw.text((70, 30), HEADER_EN, font=latin, fill=(60, 60, 60))
        draw.text((70, 80), HEADER_ZH, font=ImageFont.truetype(str(CJK_FONT), header_px), fill=(60, 60, 60))
        draw.text((70, 140), PROMPT_EN, font=ImageFont.truetype(str(LATIN_FONT), int(font_px * 0.7)),
                  fill=(80, 80, 80))
    else:
        header_font = ImageFont.truetype(str(CJK_FONT if chinese else LATIN_FONT), header_px)
        draw.text((70, 50), HEADER_ZH if chinese else HEADER_EN, font=header_font, fill=(60, 60, 60))
    draw.line((60, head, width - 60, head), fill=(120, 120, 120), width=2)
    if ink is None:
        ink = (int(rng.integers(20, 50)), int(rng.integers(30, 60)), int(rng.integers(90, 140)))
    y = head + 50
    for line in lines:
        draw.line((60, y + font_px + 8, width - 60, y + font_px + 8), fill=(170, 185, 205), width=1)
        _draw_jittered(draw, (75, y), line, font_path, font_px, ink, jitter, rng)
        y += line_gap
    return page


def degrade(image: Image.Image, how: Degradation, *, seed: int = 0, table: int = 70) -> Image.Image:
    """Photograph the slip badly: lay it on a table, tilt, turn, shade, fade, blur and add noise."""
    rng = np.random.default_rng(seed + 7919)
    rgb: np.ndarray = np.asarray(image.convert("RGB")).astype(np.float32)
    rgb = _on_table(rgb, table, rng)
    if how.angle:
        rgb = _tilt(rgb, how.angle, table)
    if how.uneven_light:
        rgb = rgb * _light_map(rgb.shape[:2], how.uneven_light, rng)[..., None]
    if how.contrast != 1.0:
        rgb = 150 + (rgb - 150) * how.contrast
    if how.blur:
        rgb = cv2.GaussianBlur(rgb, (0, 0), how.blur)
    if how.noise:
        rgb = rgb + rng.normal(0, how.noise, rgb.shape[:2])[..., None]
    out = np.clip(rgb, 0, 255).astype(np.uint8)
    codes = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if how.turn in codes:
        # The slip was scanned turned: to read it, a program must turn it back the other way.
        out = cv2.rotate(out, codes[(360 - how.turn) % 360])
    return Image.fromarray(out)


def encode(image: Image.Image, *, jpeg_quality: int = 0, dpi: int = 150) -> bytes:
    """PNG bytes, or JPEG at ``jpeg_quality`` when it is not 0."""
    buffer = io.BytesIO()
    if jpeg_quality:
        image.convert("RGB").save(buffer, "JPEG", quality=jpeg_quality, dpi=(dpi, dpi))
    else:
        image.save(buffer, "PNG", optimize=True, dpi=(dpi, dpi))
    return buffer.getvalue()


def make_slip(text: str, how: Degradation = CLEAN, *, seed: int = 0, **render: object) -> bytes:
    """Render, degrade and encode one slip: the bytes a scanner or phone would hand us."""
    image = degrade(render_slip(text, seed=seed, **render), how, seed=seed)  # type: ignore[arg-type]
    return encode(image, jpeg_quality=how.jpeg_quality)


def _wrap(text: str, font_path: Path, font_px: int, max_width: int, chinese: bool) -> list[str]:
    font = ImageFont.truetype(str(font_path), font_px)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        if chinese:
            current = ""
            for char in paragraph:
                if font.getlength(current + char) > max_width:
                    lines.append(current)
                    current = ""
                current += char
            lines.append(current)
        else:
            chars = max(10, int(max_width / (font_px * 0.58)))
            lines.extend(textwrap.wrap(paragraph, chars) or [""])
    return [line for line in lines if line.strip()]


def _draw_jittered(
    draw: ImageDraw.ImageDraw,
    origin: tuple[int, int],
    line: str,
    font_path: Path,
    font_px: int,
    ink: tuple[int, int, int],
    jitter: float,
    rng: np.random.Generator,
) -> None:
    x, y = float(origin[0]), origin[1]  # x advances by fractional glyph widths
    sizes = {s: ImageFont.truetype(str(font_path), s) for s in range(font_px - 2, font_px + 3)}
    fallback = {s: ImageFont.truetype(str(_fallback(font_path)), s) for s in sizes}
    for char in line:
        size = int(np.clip(round(font_px + rng.normal(0, 1.0) * jitter), font_px - 2, font_px + 2))
        # cwTeX Kai is a Traditional Chinese font: a simplified character it lacks comes from Kaiti too
        font = sizes[size] if has_glyph(font_path, char) else fallback[size]
        dy = rng.normal(0, 1.2) * jitter
        shade = int(rng.integers(-15, 16) * jitter)
        colour = tuple(int(np.clip(c + shade, 0, 255)) for c in ink)
        if jitter > 1.0 and not char.isspace():
            # A hand tilts each letter a little: drawn on its own and turned by a degree or three.
            _draw_tilted(draw, (x, y + dy), char, font, colour, rng.normal(0, 2.5 * (jitter - 0.5)))
        else:
            draw.text((x, y + dy), char, font=font, fill=colour)
        x += font.getlength(char) + rng.normal(0.5, 0.6) * jitter


def has_glyph(font: Path, char: str) -> bool:
    """True when ``font`` draws ``char`` (not its "missing glyph" box)."""
    return _has_glyph(str(font), char)


@functools.cache
def _has_glyph(font: str, char: str) -> bool:
    if char.isspace():
        return True
    face = _face(font)
    mask = face.getmask(char)
    missing = face.getmask("\U000f0000")
    return bool(mask.size != missing.size or bytes(mask) != bytes(missing))


@functools.cache
def _face(font: str) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font, 24)


def _fallback(font: Path) -> Path:
    # The Kaiti font with simplified and traditional characters, or the printed one.
    return HAND_FONTS_ZH[0] if font in HAND_FONTS_ZH and HAND_FONTS_ZH[0].exists() else CJK_FONT


def _draw_tilted(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    char: str,
    font: ImageFont.FreeTypeFont,
    colour: tuple[int, ...],
    degrees: float,
) -> None:
    left, top, right, bottom = font.getbbox(char)
    size = int(max(right, bottom) * 1.4) + 4
    glyph = Image.new("L", (size, size), 0)
    ImageDraw.Draw(glyph).text((2, 2), char, font=font, fill=255)
    glyph = glyph.rotate(degrees, resample=Image.Resampling.BICUBIC, center=(2 + right / 2, 2 + bottom / 2))
    draw.bitmap((int(xy[0]) - 2, int(xy[1]) - 2), glyph, fill=colour[:3])


def _paper(width: int, height: int, colour: tuple[int, int, int], rng: np.random.Generator) -> Image.Image:
    base = np.empty((height, width, 3), np.float32)
    base[:] = colour
    # Low-frequency blotches and fine grain, so the paper is not a flat colour.
    coarse = rng.normal(0, 6, (height // 40 + 2, width // 40 + 2)).astype(np.float32)
    blotches = cv2.resize(coarse, (width, height))
    grain = rng.normal(0, 3, (height, width)).astype(np.float32)
    base += (blotches + grain)[..., None]
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _on_table(rgb: np.ndarray, table: int, rng: np.random.Generator) -> np.ndarray:
    h, w = rgb.shape[:2]
    margin = int(0.06 * max(h, w))
    out = np.full((h + 2 * margin, w + 2 * margin, 3), table, np.float32)
    out += rng.normal(0, 4, out.shape[:2])[..., None]
    out[margin : margin + h, margin : margin + w] = rgb
    return out


def _tilt(rgb: np.ndarray, angle: float, table: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(rgb, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=(table, table, table))


def _light_map(shape: tuple[int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(-0.3, 1.3) * w, rng.uniform(-0.3, 1.3) * h
    distance = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / np.hypot(w, h)
    return 1.0 - strength * np.clip(distance, 0, 1)
