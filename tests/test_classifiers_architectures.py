"""complaintdesk.TextCatBOW.v1 features: n-gram weighting and character n-grams."""

from __future__ import annotations

import numpy as np
import pytest
import spacy

from classifiers.architectures import cached_ngrams


def _features(text: str, **kwargs: object) -> dict[int, float]:
    nlp = spacy.blank("en")
    model = cached_ngrams(kwargs.pop("ngram_size", 2), "LOWER", **kwargs)  # type: ignore[arg-type]
    (keys, values, lengths), _ = model([nlp(text)], is_train=False)
    assert lengths.tolist() == [len(keys)]
    return dict(zip(keys.tolist(), values.tolist(), strict=True))


def test_sublinear_l2_weighting_has_unit_length_and_damps_repeats() -> None:
    counts = _features("bins bins bins bins full")
    weights = _features("bins bins bins bins full", weighting="sublinear_l2")
    assert max(counts.values()) == 4.0
    assert np.linalg.norm(list(weights.values())) == pytest.approx(1.0, abs=1e-6)
    assert max(weights.values()) / min(weights.values()) < 4.0


def test_character_ngrams_survive_ocr_damage_inside_a_word() -> None:
    clean = _features("streetlight missing", ngram_size=1, char_ngrams=5)
    damaged = _features("streetlight rnissing", ngram_size=1, char_ngrams=5)
    words_only = _features("streetlight rnissing", ngram_size=1)
    assert len(clean) > 2 * len(words_only)
    # "missing" and "rnissing" share most character n-grams (issing, ssing...) though not the word
    shared = set(clean) & set(damaged)
    assert len(shared) > len(set(words_only) & set(clean)) + 10
    assert _features("streetlight missing", ngram_size=1, char_ngrams=5) == clean  # stable hashing


def test_character_ngrams_need_at_least_three() -> None:
    with pytest.raises(ValueError, match="char_ngrams"):
        cached_ngrams(2, "LOWER", char_ngrams=2)
