"""Our one registered spaCy architecture: bag-of-n-grams text classification with shared features.

``complaintdesk.TextCatBOW.v1`` is ``spacy.TextCatBOW.v3`` with these changes:

- the token attribute is configurable (default ``LOWER``: "Toilet" and "toilet" are one feature;
  spaCy's v3 uses case-sensitive ``ORTH``);
- with exclusive classes the softmax passes its gradient straight through, so spaCy's
  ``scores - truth`` gradient becomes the cross-entropy gradient of the logits (as in thinc's
  ``Softmax`` layer) instead of squared error through the softmax Jacobian: it learns faster,
  like logistic regression, and its scores are less under-confident;
- optionally (``char_ngrams`` > 0) hashed character 3..``char_ngrams``-grams of each lower-cased
  token, marked ``<word>`` at its edges as in fastText: OCR damage inside a word ("rnissing",
  "st reet") leaves most of its character n-grams intact;
- the n-gram keys of a ``Doc`` are computed once and kept in ``doc.user_data``, so the textcats of
  all label sets (department, sentiment, kind...) share the work. That is most of the inference
  cost of a bag-of-words pipeline, so three label sets cost little more than one.

It is registered in spaCy's ``architectures`` registry on import; ``classifiers.runtime`` imports
this module before ``spacy.load`` so saved pipelines find it.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any

from spacy import attrs
from spacy.ml.models.textcat import NEG_VALUE, resize_and_set_ref
from spacy.strings import hash_string  # type: ignore[attr-defined]  # missing from spaCy's strings.pyi
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Logistic, Model, SparseLinear_v2, chain, resizable, with_cpu
from thinc.layers.resizable import resize_linear_weighted


def cached_ngrams(
    ngram_size: int, attr: str, weighting: str = "count", char_ngrams: int = 0
) -> Model[list[Doc], Any]:
    """Like ``spacy.ml.extract_ngrams`` but caches each doc's (keys, values) in ``doc.user_data``.

    ``weighting``: ``"count"`` (spaCy's), or ``"sublinear_l2"``: 1 + log(count), scaled to unit
    length per document (as TF-IDF vectorizers do, without the IDF).
    ``char_ngrams``: 0, or the longest character n-gram (from 3) of each lower-cased token to add.
    """
    if weighting not in ("count", "sublinear_l2"):
        raise ValueError(f"unknown n-gram weighting {weighting!r}")
    if char_ngrams and char_ngrams < 3:
        raise ValueError(f"char_ngrams must be 0 or at least 3, not {char_ngrams}")
    model: Model[list[Doc], Any] = Model("cached_ngrams", _ngrams_forward)
    model.attrs["ngram_size"] = ngram_size
    model.attrs["attr"] = attr
    model.attrs["weighting"] = weighting
    model.attrs["char_ngrams"] = char_ngrams
    return model


@lru_cache(maxsize=200_000)
def _char_keys(word: str, longest: int) -> tuple[int, ...]:
    """Hash keys of the character 3..``longest``-grams of ``<word>`` (marked apart from word keys)."""
    marked = f"<{word}>"
    return tuple(
        hash_string("\x1f" + marked[i : i + n])
        for n in range(3, longest + 1)
        for i in range(len(marked) - n + 1)
    )


def _ngrams_forward(model: Model[list[Doc], Any], docs: list[Doc], is_train: bool) -> tuple[Any, Any]:
    xp = model.ops.xp
    n, attr, weighting = model.attrs["ngram_size"], model.attrs["attr"], model.attrs["weighting"]
    chars = model.attrs.get("char_ngrams", 0)
    cache_key = ("complaintdesk.ngrams", attr, n, weighting, chars)
    batch_keys, batch_vals = [], []
    for doc in docs:
        # spaCy's own extensions key user_data by tuples too; its stubs say str keys only
        user_data: dict[Any, Any] = doc.user_data
        cached = user_data.get(cache_key)
        if cached is None:
            # uint64 hashes: neither spaCy's nor thinc's array types know them
            ids: Any = doc.to_array([attrs.IDS[attr]])
            unigrams: Any = model.ops.asarray(ids)
            # thinc's ngrams() reads keys[0]: skip it for docs shorter than k tokens
            grams = [unigrams] + [model.ops.ngrams(k, unigrams) for k in range(2, n + 1)
                                  if len(unigrams) >= k]
            if chars:
                char_keys = [k for t in doc if not t.is_space for k in _char_keys(t.lower_, chars)]
                grams.append(xp.asarray(char_keys, dtype="uint64"))
            keys, counts = xp.unique(xp.concatenate(grams), return_counts=True)
            values = counts.astype("f")
            if weighting == "sublinear_l2" and len(values):
                values = 1.0 + xp.log(values)
                values /= xp.sqrt((values * values).sum())
            cached = (keys, values)
            user_data[cache_key] = cached
        batch_keys.append(cached[0])
        batch_vals.append(cached[1])
    lengths = model.ops.asarray([len(k) for k in batch_keys], dtype="int32")
    keys = xp.concatenate(batch_keys) if batch_keys else xp.zeros((0,), dtype="uint64")
    vals = model.ops.asarray(xp.concatenate(batch_vals) if batch_vals else xp.zeros((0,)), dtype="f")

    def backprop(dY: Any) -> list[Any]:
        return []

    return (keys, vals, lengths), backprop


def softmax_cross_entropy() -> Model[Any, Any]:
    """Softmax whose backward pass is the identity: given ``probs - truth`` it yields the CE gradient."""
    return Model("softmax_ce", _softmax_ce_forward)


def _softmax_ce_forward(model: Model[Any, Any], X: Any, is_train: bool) -> tuple[Any, Any]:
    Y = model.ops.softmax(X)

    def backprop(dY: Any) -> Any:
        return dY

    return Y, backprop


@registry.architectures("complaintdesk.TextCatBOW.v1")
def build_bow_text_classifier(
    exclusive_classes: bool,
    ngram_size: int,
    no_output_layer: bool = False,
    length: int = 262144,
    attr: str = "LOWER",
    weighting: str = "count",
    char_ngrams: int = 0,
    nO: int | None = None,
) -> Model[list[Doc], Any]:
    """A sparse linear model over hashed token n-grams (1..``ngram_size``) of ``attr``, weighted by
    ``weighting``, plus character n-grams of the tokens when ``char_ngrams`` is 3 or more."""
    length = 2 ** (length - 1).bit_length()
    sparse_linear = SparseLinear_v2(nO=nO, length=length)
    fill_defaults = {"b": 0, "W": 0}
    output_layer = None
    if not no_output_layer:
        fill_defaults["b"] = NEG_VALUE
        output_layer = softmax_cross_entropy() if exclusive_classes else Logistic()
    resize = partial(resize_linear_weighted, fill_defaults=fill_defaults)
    resizable_layer: Model[Any, Any] = resizable(sparse_linear, resize_layer=resize)
    model = with_cpu(chain(cached_ngrams(ngram_size, attr, weighting, char_ngrams), resizable_layer),
                     resizable_layer.ops)
    if output_layer is not None:
        model = chain(model, with_cpu(output_layer, output_layer.ops))
    if nO is not None:
        model.set_dim("nO", nO)
    model.set_ref("output_layer", sparse_linear)
    model.attrs["multi_label"] = not exclusive_classes
    model.attrs["resize_output"] = partial(resize_and_set_ref, resizable_layer=resizable_layer)
    return model
