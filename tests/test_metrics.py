"""The OCR error rates (rapidfuzz's Levenshtein) against values worked out by hand."""

from __future__ import annotations

import pytest

from bench.ocr_metrics import bag_of_words, error_rates, words
from tests.ocr_fixtures import cer


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("kitten", "sitting", 3 / 6),  # k->s, e->i, +g
        ("ab", "ba", 2 / 2),  # Levenshtein, not Damerau: a swap costs two
        ("window 4", "window4", 0.0),  # whitespace does not count
        ("市民服务", "市服务中心", 3 / 4),  # -民, +中, +心
        ("", "abc", 3.0),  # an empty reference counts as one character
        ("same text", "same text", 0.0),
    ],
)
def test_cer_matches_hand_counted_edits(reference: str, hypothesis: str, expected: float) -> None:
    assert cer(reference, hypothesis) == pytest.approx(expected)


def test_words_split_han_characters_apart() -> None:
    assert words("我在3号窗口 waited 2 hrs") == ["我", "在", "3", "号", "窗", "口", "waited", "2", "hrs"]


def test_corpus_error_rates_are_total_edits_over_total_reference_length() -> None:
    pairs = [
        ("the cat sat", "the bat sat"),  # 1 of 9 characters, 1 of 3 words
        ("kitten", "sitting"),  # 3 of 6 characters, 1 of 1 word
        ("我在3号窗口", "我在8号窗口"),  # 1 of 6 characters, 1 of 6 words (each Han character is one)
        ("one two three", "one three"),  # 3 of 11 characters (-two), 1 of 3 words
    ]
    char_rate, word_rate = error_rates(pairs)
    assert char_rate == pytest.approx((1 + 3 + 1 + 3) / (9 + 6 + 6 + 11))
    assert word_rate == pytest.approx((1 + 1 + 1 + 1) / (3 + 1 + 6 + 3))


def test_bag_of_words_counts_multisets_without_case_or_edge_punctuation() -> None:
    assert bag_of_words(["The", "toilets,", "the", "floor"], "the Toilets the the lift.") == (3, 4, 5)
