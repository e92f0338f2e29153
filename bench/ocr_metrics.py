"""Scoring OCR output: character and word error rates, bag-of-words recall and precision.

The edit distance is rapidfuzz's Levenshtein (unit costs; on lists of words as on strings).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

_EDGE_PUNCT = re.compile(r"^[^\w\u3400-\u9fff]+|[^\w\u3400-\u9fff]+$")


def characters(text: str) -> list[str]:
    """The characters CER counts: everything but whitespace (line breaks differ harmlessly)."""
    return [c for c in text if not c.isspace()]


def words(text: str) -> list[str]:
    """The tokens WER counts: whitespace-separated words, and each Han character on its own."""
    tokens: list[str] = []
    for raw in text.split():
        for piece in re.split(r"([\u3400-\u9fff])", raw):
            if piece:
                tokens.append(piece)
    return tokens


def error_rates(pairs: Sequence[tuple[str, str]]) -> tuple[float, float]:
    """Corpus CER and WER over ``(reference, hypothesis)`` pairs: total edits / total reference length."""
    char_edits = char_total = word_edits = word_total = 0
    for ref, hyp in pairs:
        char_edits += Levenshtein.distance(characters(ref), characters(hyp))
        char_total += len(characters(ref))
        word_edits += Levenshtein.distance(words(ref), words(hyp))
        word_total += len(words(ref))
    return char_edits / max(char_total, 1), word_edits / max(word_total, 1)


def normalise_word(word: str) -> str:
    """Lower case without leading/trailing punctuation, for bag-of-words matching."""
    return _EDGE_PUNCT.sub("", word.lower())


def bag_of_words(reference: Sequence[str], text: str) -> tuple[int, int, int]:
    """(matched, reference count, hypothesis count) of normalised words, as multisets."""
    ref = Counter(w for w in (normalise_word(x) for x in reference) if w)
    hyp = Counter(w for w in (normalise_word(x) for x in text.split()) if w)
    matched = sum((ref & hyp).values())
    return matched, sum(ref.values()), sum(hyp.values())


def words_lost(reference: str, text: str) -> tuple[int, int]:
    """(reference words missing from ``text``, reference words): each Han character counts as a word.

    Words are matched as multisets after ``normalise_word``, in any order: a word read on another
    line, or a line read out of order, is not lost.
    """
    ref = Counter(w for w in (normalise_word(x) for x in words(reference)) if w)
    hyp = Counter(w for w in (normalise_word(x) for x in words(text)) if w)
    total = sum(ref.values())
    return total - sum((ref & hyp).values()), total
