"""Field extraction on clean and OCR-damaged English and Chinese text; spans slice back to values."""

from __future__ import annotations

import pytest

from classifiers import extract_fields, normalize_text
from pipeline.core.model import ExtractedField


def _found(text: str, language: str) -> list[tuple[str, str]]:
    fields = extract_fields(text, language)
    for f in fields:
        assert isinstance(f, ExtractedField)
        assert text[f.start : f.end] == f.value, f
    assert [f.start for f in fields] == sorted(f.start for f in fields)
    return [(f.name, f.value) for f in fields]


EN_SLIP = (
    "My name is John Smith. I waited at Wind0w 7 on 3 March 2026 at 10:30am and\n"
    "staff no. 2231 was rude. Phone 138 1234 5678, +44 20 7946 0018 or 07700 900123,\n"
    "email john.smith@example.com. The 2nd floor toilets and metro exit B are dirty.\n"
    "Also counter no. 12 on 14/03/2026, and badge 1043 on 2026-03-14."
)


def test_english_slip() -> None:
    found = _found(EN_SLIP, "en")
    for expected in [
        ("name", "John Smith"),
        ("window", "7"),
        ("date", "3 March 2026"),
        ("time", "10:30am"),
        ("badge", "2231"),
        ("phone", "138 1234 5678"),
        ("phone", "+44 20 7946 0018"),
        ("phone", "07700 900123"),
        ("email", "john.smith@example.com"),
        ("place", "2nd floor toilets"),
        ("place", "metro exit B"),
        ("window", "12"),
        ("date", "14/03/2026"),
        ("badge", "1043"),
        ("date", "2026-03-14"),
    ]:
        assert expected in found, expected


ZH_SLIP = (
    "姓名：张三\n电话：13812345678\n我是李明，3月14日下午3点在7号窗口办事，工号1043的工作人员态度很差。\n"
    "二楼卫生间没有纸。固话020-8888-1234。工牌号 2231，12号窗，快一点。"
)


def test_chinese_slip() -> None:
    found = _found(ZH_SLIP, "zh")
    for expected in [
        ("name", "张三"),
        ("phone", "13812345678"),
        ("name", "李明"),
        ("date", "3月14日"),
        ("time", "下午3点"),
        ("window", "7"),
        ("badge", "1043"),
        ("place", "二楼卫生间"),
        ("phone", "020-8888-1234"),
        ("badge", "2231"),
        ("window", "12"),
    ]:
        assert expected in found, expected
    assert ("time", "一点") not in found  # "快一点" means "hurry up"


def test_messy_ocr_english_after_normalisation() -> None:
    raw = ("Narne: MARY O'NEILL\nl waited at c0unter n0. 4 for 2 hrs on 2O26-O3-14 at l0:30 am,\n"
           "ph0ne 0 7700 9OO123")
    text = normalize_text(raw)
    found = _found(text, "en")
    assert ("window", "4") in found
    assert ("date", "2026-03-14") in found
    assert ("time", "10:30 am") in found
    assert any(name == "name" and "MARY" in value for name, value in found)


def test_messy_ocr_chinese_after_normalisation() -> None:
    raw = "姓 名 ： 王 小 红\n电 话 ： 138 l234 5678\n我 在 ７ 号 窗 口 等 了 很 久"
    text = normalize_text(raw)
    found = _found(text, "zh")
    assert ("name", "王小红") in found
    assert ("phone", "138 1234 5678") in found
    assert ("window", "7") in found


def test_mixed_language_uses_both_rule_sets() -> None:
    found = _found("我在window 5排队，工号 3321，email li@example.cn", "mixed")
    assert ("window", "5") in found and ("badge", "3321") in found and ("email", "li@example.cn") in found


@pytest.mark.parametrize("text", ["", "   ", "no fields here at all", "价格是12.50元"])
def test_no_false_fields(text: str) -> None:
    assert [f for f in extract_fields(text, "") if f.name in {"phone", "time", "name"}] == []


def test_one_huge_word_is_searched_in_linear_time() -> None:
    # the e-mail pattern was tried from every letter of a long word: 20,000 letters took 5 s
    import time

    started = time.monotonic()
    found = extract_fields("x" * 50_000 + " write to ann.lee@example.org", "en")
    assert [f.value for f in found] == ["ann.lee@example.org"]
    assert time.monotonic() - started < 3.0
