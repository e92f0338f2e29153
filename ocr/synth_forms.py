"""Rendering filled-in bilingual slip *forms*, single or in batch files, for tests and benchmarks.

``ocr/synth.py`` draws a slip as a ruled page with a header and the citizen's words. A real center's
slip is a printed form: a bilingual header, a printed slip number, labelled fields (date, window,
name, phone, e-mail), instructions and a content box the citizen writes in. This module draws such
forms with synth's primitives (paper, hand-jittered ink, ``degrade``, ``encode``), so a handwriting
font passed as ``font`` writes the filled-in parts while the printed parts stay in print.

Two layouts: ``STANDARD`` is the bundled form (``pipeline/forms/standard.toml`` describes it) and
``FEEDBACK`` another center's form with other headers, instructions and label wording, for which no
template ships. A slip whose content does not fit its box runs onto continuation sheets that carry
the same printed number. Everything is deterministic for a seed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ocr.synth import (  # the private drawing helpers: one way to draw ink and paper for both kinds of slip
    CJK_FONT,
    CLEAN,
    LATIN_FONT,
    PAPERS,
    Degradation,
    _draw_jittered,
    _paper,
    _wrap,
    degrade,
    encode,
    is_chinese,
)

#: printed parts use a font with both scripts, so a bilingual label is one run of print
PRINT_FONT = CJK_FONT
#: the field names a form can have, in the order the standard form prints them
FIELD_NAMES = ("date", "window", "name", "phone", "email")


@dataclass(frozen=True, slots=True)
class FormLayout:
    """What is printed on a form: headers, number prefix, field labels, content label, instructions."""

    name: str
    header: tuple[str, ...]  # printed title lines, e.g. the English and the Chinese one
    number_prefix: str  # printed before the slip number: "No." or "编号 Serial"
    number_format: str  # the number from year, yy (2 digits) and serial: "{year}-{serial:06d}"
    labels: dict[str, str]  # field name -> printed label, bilingual ("Date 日期")
    content_label: str  # printed above the content box
    instructions: tuple[str, ...]  # printed under the content label, smaller
    footer: str  # printed under the box
    continuation: str  # the title of a continuation sheet
    box_lines: int = 7  # handwritten lines that fit in the first sheet's box
    continuation_lines: int = 12  # and in a continuation sheet's box

    def printed_lines(self) -> tuple[str, ...]:
        """Every line of print on the form (not the number), as a test or bench checks for leaks."""
        return (*self.header, *self.labels.values(), self.content_label, *self.instructions, self.footer,
                self.continuation)


STANDARD = FormLayout(
    name="standard",
    # the same title the bundled sample slips (ocr/synth.py) carry, so the shipped template knows them too
    header=("Citizen Service Center - Opinion Slip", "市民服务中心 意见建议卡"),
    number_prefix="No.",
    number_format="{year}-{serial:06d}",
    labels={
        "date": "Date 日期:",
        "window": "Window/Counter 窗口:",
        "name": "Name 姓名:",
        "phone": "Phone 电话:",
        "email": "E-mail 邮箱:",
    },
    content_label="Your opinion or suggestion 意见或建议:",
    instructions=(
        "Please write clearly inside the box. 请在框内用正楷填写。",
        "Drop this slip in the box at the entrance. 填写后请投入门口意见箱。",
    ),
    footer="Thank you for helping us improve. 感谢您的宝贵意见！",
    continuation="Continuation sheet 续页",
)

FEEDBACK = FormLayout(
    name="feedback",
    header=("Municipal Affairs Hall", "Public Feedback Card 政务大厅群众反馈单"),
    number_prefix="Serial 编号",
    number_format="FB{yy:02d}{serial:05d}",
    labels={
        "date": "Visit date 来访日期:",
        "window": "Service desk 服务台:",
        "name": "Contact person 联系人:",
        "phone": "Tel 联系电话:",
        "email": "Mailbox 电子邮箱:",
    },
    content_label="Details of your feedback 反馈内容:",
    instructions=(
        "Tell us what happened, where and when. 请写明事情经过、地点和时间。",
        "We reply within five working days. 我们将在五个工作日内答复。",
    ),
    footer="Supervision hotline 12345 监督电话",
    continuation="Feedback card - additional page 反馈单附页",
)

LAYOUTS = {layout.name: layout for layout in (STANDARD, FEEDBACK)}


@dataclass(frozen=True, slots=True)
class SlipFill:
    """What a citizen wrote on one slip, and its printed number: also the ground truth of a test."""

    content: str
    serial: int = 123
    year: int = 2026
    fields: dict[str, str] = field(default_factory=dict)  # field name -> value; missing = left blank

    def number(self, layout: FormLayout) -> str:
        """The slip number as printed on ``layout`` (without its prefix)."""
        return layout.number_format.format(year=self.year, yy=self.year % 100, serial=self.serial)


WIDTH = 1240
MARGIN = 60
LABEL_PX = 26
ROW_GAP = 58


def render_form(
    fill: SlipFill,
    layout: FormLayout = STANDARD,
    *,
    seed: int = 0,
    font: Path | None = None,
    font_px: int = 30,
    paper: str = "white",
    jitter: float = 1.0,
) -> list[Image.Image]:
    """The filled-in slip as clean pages (RGB): the form, then a continuation sheet per overflow.

    ``font`` writes what the citizen wrote (content and field values); by default DejaVu Sans for
    English and WenQuanYi Micro Hei for Chinese, like ``render_slip``. Print uses ``PRINT_FONT``.
    """
    rng = np.random.default_rng(seed)
    ink = (int(rng.integers(20, 50)), int(rng.integers(30, 60)), int(rng.integers(90, 140)))
    chinese = is_chinese(fill.content)
    hand = font_for(fill.content, font) if font else (CJK_FONT if chinese else LATIN_FONT)
    lines = _wrap(fill.content, hand, font_px, WIDTH - 2 * MARGIN - 40, chinese)
    first, rest = lines[: layout.box_lines], lines[layout.box_lines :]
    pages = [_first_sheet(fill, layout, first, rng, hand, font_px, ink, jitter, paper)]
    while rest:
        chunk, rest = rest[: layout.continuation_lines], rest[layout.continuation_lines :]
        pages.append(_continuation_sheet(fill, layout, chunk, rng, hand, font_px, ink, jitter, paper))
    return pages


def make_form_pages(
    fill: SlipFill, layout: FormLayout = STANDARD, how: Degradation = CLEAN, *, seed: int = 0,
    font: Path | None = None, paper: str = "white", jitter: float = 1.0,
) -> list[Image.Image]:
    """Render and degrade one slip's pages (each page captured with its own seed)."""
    pages = render_form(fill, layout, seed=seed, font=font, paper=paper, jitter=jitter)
    return [degrade(page, how, seed=seed + n) for n, page in enumerate(pages)]


def make_form_slip(
    fill: SlipFill, layout: FormLayout = STANDARD, how: Degradation = CLEAN, *, seed: int = 0,
    font: Path | None = None, paper: str = "white", jitter: float = 1.0, fmt: str = "",
) -> bytes:
    """One slip's file: PNG/JPEG when it is one page and ``fmt`` is empty, else ``fmt`` ("pdf", "tiff")."""
    pages = make_form_pages(fill, layout, how, seed=seed, font=font, paper=paper, jitter=jitter)
    if len(pages) == 1 and not fmt:
        return encode(pages[0], jpeg_quality=how.jpeg_quality)
    return encode_pages(pages, fmt or "pdf", jpeg_quality=how.jpeg_quality)


def make_batch(
    fills: Sequence[SlipFill], layout: FormLayout = STANDARD, how: Degradation = CLEAN, *, seed: int = 0,
    font: Path | None = None, paper: str = "white", fmt: str = "pdf",
) -> bytes:
    """A scanner's batch file: every slip's pages (continuation sheets included) in one PDF or TIFF."""
    pages: list[Image.Image] = []
    for n, fill in enumerate(fills):
        pages += make_form_pages(fill, layout, how, seed=seed + 101 * n, font=font, paper=paper)
    return encode_pages(pages, fmt, jpeg_quality=how.jpeg_quality)


def encode_pages(pages: Sequence[Image.Image], fmt: str, *, jpeg_quality: int = 0, dpi: int = 150) -> bytes:
    """A multi-page PDF or TIFF of the pages (JPEG-compressed at ``jpeg_quality`` when it is not 0)."""
    if fmt not in ("pdf", "tiff"):
        raise ValueError(f"fmt must be 'pdf' or 'tiff', not {fmt!r}")
    if len(pages) == 1 and fmt == "pdf" and not jpeg_quality:
        return _pdf(pages, dpi)
    buffer = io.BytesIO()
    images = [p.convert("RGB") for p in pages]
    if fmt == "pdf":
        return _pdf(images, dpi, jpeg_quality)
    compression = "jpeg" if jpeg_quality else "tiff_lzw"
    extra = {"quality": jpeg_quality} if jpeg_quality else {}
    images[0].save(buffer, "TIFF", save_all=True, append_images=images[1:], compression=compression,
                   dpi=(dpi, dpi), **extra)
    return buffer.getvalue()


def _pdf(pages: Sequence[Image.Image], dpi: int, jpeg_quality: int = 0) -> bytes:
    buffer = io.BytesIO()
    images = [p.convert("RGB") for p in pages]
    extra = {"quality": jpeg_quality} if jpeg_quality else {}
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:], resolution=float(dpi), **extra)
    return buffer.getvalue()


# -- drawing --------------------------------------------------------------------------------------


def _print(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, px: int,
           colour: tuple[int, int, int] = (40, 40, 40)) -> None:
    draw.text(xy, text, font=ImageFont.truetype(str(PRINT_FONT), px), fill=colour)


def _sheet_top(draw: ImageDraw.ImageDraw, titles: Sequence[str], number: str) -> int:
    """Title lines on the left, the red printed number on the right; returns the y under the rule."""
    y = 40
    for n, title in enumerate(titles):
        _print(draw, (MARGIN, y), title, 34 if n == 0 else 30)
        y += 48
    _print(draw, (WIDTH - MARGIN - 380, 44), number, 30, (170, 30, 30))
    y += 12
    draw.line((MARGIN - 10, y, WIDTH - MARGIN + 10, y), fill=(60, 60, 60), width=3)
    return y + 30


def _box(draw: ImageDraw.ImageDraw, top: int, lines: int, font_px: int) -> tuple[int, int]:
    gap = int(font_px * 1.9)
    bottom = top + 30 + gap * lines
    draw.rectangle((MARGIN - 10, top, WIDTH - MARGIN + 10, bottom), outline=(70, 70, 70), width=2)
    return top + 20, bottom


def _write(draw: ImageDraw.ImageDraw, top: int, lines: Sequence[str], hand: Path, font_px: int,
           ink: tuple[int, int, int], jitter: float, rng: np.random.Generator) -> None:
    y = top
    for line in lines:
        _draw_jittered(draw, (MARGIN + 15, y), line, hand, font_px, ink, jitter, rng)
        y += int(font_px * 1.9)


def _first_sheet(fill: SlipFill, layout: FormLayout, lines: Sequence[str], rng: np.random.Generator,
                 hand: Path, font_px: int, ink: tuple[int, int, int], jitter: float,
                 paper: str) -> Image.Image:
    height = 260 + ROW_GAP * len(layout.labels) + 150 + 30 + int(font_px * 1.9) * layout.box_lines + 110
    page = _paper(WIDTH, height, PAPERS[paper], rng)
    draw = ImageDraw.Draw(page)
    y = _sheet_top(draw, layout.header, f"{layout.number_prefix} {fill.number(layout)}")
    label_font = ImageFont.truetype(str(PRINT_FONT), LABEL_PX)
    for name, label in layout.labels.items():
        _print(draw, (MARGIN, y), label, LABEL_PX)
        x = MARGIN + int(label_font.getlength(label)) + 20
        draw.line((x, y + LABEL_PX + 8, WIDTH - MARGIN, y + LABEL_PX + 8), fill=(150, 150, 150), width=1)
        value = fill.fields.get(name, "")
        if value:
            value_font = font_for(value, hand)
            _draw_jittered(draw, (x + 10, y - 4), value, value_font, font_px - 2, ink, jitter, rng)
        y += ROW_GAP
    y += 10
    _print(draw, (MARGIN, y), layout.content_label, 28)
    y += 44
    for instruction in layout.instructions:
        _print(draw, (MARGIN, y), instruction, 20, (90, 90, 90))
        y += 32
    top, bottom = _box(draw, y + 6, layout.box_lines, font_px)
    _write(draw, top, lines, hand, font_px, ink, jitter, rng)
    _print(draw, (MARGIN, bottom + 22), layout.footer, 22, (90, 90, 90))
    return page


def _continuation_sheet(fill: SlipFill, layout: FormLayout, lines: Sequence[str], rng: np.random.Generator,
                        hand: Path, font_px: int, ink: tuple[int, int, int], jitter: float,
                        paper: str) -> Image.Image:
    height = 200 + 30 + int(font_px * 1.9) * layout.continuation_lines + 60
    page = _paper(WIDTH, height, PAPERS[paper], rng)
    draw = ImageDraw.Draw(page)
    y = _sheet_top(draw, (layout.continuation,), f"{layout.number_prefix} {fill.number(layout)}")
    top, _ = _box(draw, y, layout.continuation_lines, font_px)
    _write(draw, top, lines, hand, font_px, ink, jitter, rng)
    return page


def font_for(text: str, hand: Path) -> Path:
    """``hand`` unless the text has Han characters a Latin handwriting font cannot draw."""
    has_han = any("\u4e00" <= c <= "\u9fff" for c in text)
    if has_han and hand != CJK_FONT and not _has_glyphs(hand, text):
        return CJK_FONT
    return hand


def _has_glyphs(font: Path, text: str) -> bool:
    # A font without Han glyphs draws each as the same "missing" box: compare with a known-absent one.
    face = ImageFont.truetype(str(font), 20)
    missing = face.getmask("\U000f0000").getbbox()
    return all(face.getmask(c).getbbox() != missing for c in text if "\u4e00" <= c <= "\u9fff")
