"""OCR clean-up and language detection."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from classifiers import detect_language, normalize_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("the staff were very un-\nhelpful today", "the staff were very unhelpful today"),
        ("I waited for\ntwo hours at the\ncounter.", "I waited for two hours at the counter."),
        ("Name: Ann Lee\nPhone: 0161 496 0000", "Name: Ann Lee\nPhone: 0161 496 0000"),
        ("the c0mplaint about the he1p desk", "the complaint about the help desk"),
        ("on 2O26-03-14 at l0:30am", "on 2026-03-14 at 10:30am"),
        ("call 138 l234 5678", "call 138 1234 5678"),
        ("Ｗｉｎｄｏｗ　７", "Window 7"),
        ("too   many \t spaces", "too many spaces"),
        ("我 在 窗 口 排 队\n等了两个小时，很慢。", "我在窗口排队等了两个小时，很慢。"),
        ("姓名：张三\n电话：13812345678", "姓名：张三\n电话：13812345678"),
    ],
)
def test_normalize_text(raw: str, clean: str) -> None:
    assert normalize_text(raw) == clean
    assert normalize_text(clean) == clean  # idempotent


def test_chinese_characters_and_punctuation_survive() -> None:
    text = "办事大厅二楼，（东侧）卫生间没有纸！「请尽快处理」。"
    assert normalize_text(text) == text


def test_numbers_and_ids_are_not_mangled() -> None:
    text = "Ref A12B, john01@example.com, flight BA1 and room 101"
    assert normalize_text(text) == text


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The toilets are dirty", "en"),
        ("卫生间很脏", "zh"),
        ("我的ID card丢了", "mixed"),
        ("12345 !!!", ""),
        ("", ""),
        ("二楼卫生间 WC 没有纸，太脏了", "zh"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_normalize_text_is_linear_on_one_huge_word() -> None:
    # the confusables regex used to backtrack quadratically: 20,000 letters took 30 s
    import time

    started = time.monotonic()
    assert normalize_text("x" * 200_000 + " he1p 1O1") == "x" * 200_000 + " help 101"
    assert time.monotonic() - started < 2.0


@given(st.text(alphabet="aOo0lI1|x9- \n", max_size=40))
def test_confusable_words_are_found_as_before(raw: str) -> None:
    import re

    from classifiers import text

    backtracking = re.compile(r"[A-Za-z0-9|]*(?:[A-Za-z|][0-9]|[0-9][A-Za-z|])[A-Za-z0-9|]*")
    before = backtracking.sub(lambda m: text._fix_confusables(m.group(0)), raw)
    assert text._WORD_RE.sub(text._fix_mixed_word, raw) == before
