"""Real Tesseract on rendered slips: orientation, skew, noise, Chinese, multi-page files, the retry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import ocr
from ocr.settings import OcrSettings
from ocr.synth import HEADER_EN, HEADER_ZH, Degradation, is_chinese, make_slip
from tests.ocr_fixtures import ROOT, SAMPLES, cer, ocr_settings  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

ENGLISH = (
    "I waited two hours at Window 7 and the staff member with Badge No. 1043 was rude. "
    "Please call me on 138-1234-5678."
)
CHINESE = "我在7号窗口排队两个小时，工号1043的工作人员态度很差。请联系我：138-1234-5678。"
KEY_WORDS = ("waited", "Window", "Badge", "1043", "rude", "138-1234-5678")


@pytest.mark.parametrize("turn", [90, 180, 270])
def test_turned_slip_is_read_upright(turn: int, ocr_settings: OcrSettings) -> None:
    data = make_slip(ENGLISH, Degradation(angle=1.0, turn=turn, blur=0.5, noise=4), seed=turn)
    result = ocr.read_document(data, f"turned{turn}.png", ocr_settings)
    for word in KEY_WORDS:
        assert word.lower() in result.text.lower()
    assert cer("Citizen Service Center - Opinion Slip " + ENGLISH, result.text) < 0.1
    assert result.confidence > 80


def test_skewed_blurred_noisy_slip_is_read(ocr_settings: OcrSettings) -> None:
    how = Degradation(angle=5.0, blur=1.0, noise=10.0, contrast=0.7, uneven_light=0.4, jpeg_quality=50)
    result = ocr.read_document(make_slip(ENGLISH, how, seed=5), "skewed.jpg", ocr_settings)
    assert cer("Citizen Service Center - Opinion Slip " + ENGLISH, result.text) < 0.1
    assert sum(word in result.text for word in KEY_WORDS) >= 5


def test_default_settings_read_a_skewed_slip() -> None:
    # The out-of-the-box chain (pipeline.config) must cope with a plain crooked scan too.
    how = Degradation(angle=4.0, blur=0.6, noise=5.0)
    result = ocr.read_document(make_slip(ENGLISH, how, seed=6), "crooked.png", OcrSettings())
    assert cer("Citizen Service Center - Opinion Slip " + ENGLISH, result.text) < 0.1


def test_chinese_slip_is_read_in_chinese(ocr_settings: OcrSettings) -> None:
    how = Degradation(angle=-3.0, blur=0.6, noise=5.0, contrast=0.85)
    result = ocr.read_document(make_slip(CHINESE, how, seed=7), "zh.jpg", ocr_settings)
    (page,) = result.pages
    assert page.language.startswith("chi_sim")
    for word in ("窗口", "排队", "小时", "工号", "1043", "态度"):
        assert word in result.text
    assert not re.search(r"[\u4e00-\u9fff] +[\u4e00-\u9fff0-9]", result.text)  # Tesseract's spaces removed
    assert cer("市民服务中心意见建议卡" + CHINESE, result.text) < 0.15


def test_low_confidence_page_is_retried_with_the_alternative_chain() -> None:
    # A chain without orientation reads an upside-down slip as junk; the retry turns it upright.
    settings = OcrSettings(languages="eng", preprocess=["grayscale", "deskew"])
    data = make_slip(ENGLISH, Degradation(turn=180, noise=3), seed=8)
    result = ocr.read_document(data, "upside-down.png", settings)
    assert "Badge" in result.text and "rude" in result.text
    assert result.pages[0].confidence > 80


def test_multi_page_tiff_gives_one_result_with_two_pages(ocr_settings: OcrSettings) -> None:
    path = SAMPLES / "scanner_batch_two_pages.tif"
    result = ocr.read_document(path.read_bytes(), path.name, ocr_settings)
    assert [p.number for p in result.pages] == [1, 2]
    assert "air conditioning" in result.pages[0].text
    assert "nurse" in result.pages[1].text


def test_multi_page_pdf_scan_is_ocrd_page_by_page(ocr_settings: OcrSettings) -> None:
    path = SAMPLES / "scanner_batch_two_pages.pdf"
    result = ocr.read_document(path.read_bytes(), path.name, ocr_settings)
    # the English page is read by Tesseract, the Chinese one (found by the script probe) by PP-OCR
    assert [(p.number, p.method) for p in result.pages] == [(1, "tesseract"), (2, "ppocr")]
    assert "020 7946 0321" in result.pages[0].text
    assert "电梯" in result.pages[1].text


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("en_window7_complaint.jpg", ("Window 7", "1043", "138-1234-5678", "12 March 2026")),
        ("en_police_praise.jpg", ("police desk", "residence permit")),
        ("en_online_question.jpg", ("online approval platform", "chen.ming@example.com")),
        ("en_toilets_complaint.png", ("toilets", "soap")),
        ("zh_window_complaint.jpg", ("7号窗口", "工号1043", "138-1234-5678")),
        ("zh_metro_suggestion.jpg", ("地铁站", "楼梯")),
    ],
)
def test_bundled_samples_are_readable(name: str, words: tuple[str, ...], ocr_settings: OcrSettings) -> None:
    result = ocr.read_document((SAMPLES / name).read_bytes(), name, ocr_settings)
    for word in words:
        assert word in result.text


def test_unseen_slips_are_close_to_their_text(ocr_settings: OcrSettings) -> None:
    folder = ROOT / "tests" / "resources" / "ocr"
    expected = json.loads((folder / "unseen_expected.json").read_text())
    for name, text in expected.items():
        data = (folder / "unseen" / name).read_bytes()
        result = ocr.read_document(data, name, ocr_settings)
        header = HEADER_ZH if is_chinese(text) else HEADER_EN + " "
        assert cer(header + text, result.text) < 0.1, (name, result.text)


def test_sample_folder_holds_slips_and_one_readme() -> None:
    names = sorted(p.name for p in SAMPLES.iterdir())
    assert len(names) == 9 and "README.md" in names
    assert all(Path(SAMPLES / n).stat().st_size < 400_000 for n in names)


def test_words_carry_boxes_in_reading_order_inside_the_page(ocr_settings: OcrSettings) -> None:
    # Form parsing locates the printed labels by these boxes, so they must lie on the page and
    # follow the text: every word of the text is a word with a box, lines numbered top to bottom.
    data = make_slip(ENGLISH, Degradation(), seed=3)
    (page,) = ocr.read_document(data, "boxes.png", ocr_settings).pages
    width, height = page.size
    assert width > 0 and height > 0
    assert [w.text for w in page.words] == page.text.split()
    for word in page.words:
        left, top, right, bottom = word.box
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
    lines = [w.line for w in page.words]
    assert lines == sorted(lines) and lines[0] == 0
    tops = {}
    for word in page.words:
        tops.setdefault(word.line, word.box[1])
    assert list(tops.values()) == sorted(tops.values())
    window = next(w for w in page.words if w.text == "Window")
    seven = page.words[page.words.index(window) + 1]
    assert seven.line == window.line and seven.box[0] > window.box[2]
