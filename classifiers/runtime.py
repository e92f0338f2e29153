"""Loading a trained model and classifying texts with it.

A model directory holds ``meta.json`` (version, label sets, languages, counts, dev metrics) and one
``nlp.to_disk`` directory per language (``en/``, ``zh/``), each with a ``textcat_<label set>``
component per label set. Inside the pipelines a label is stored as ``<label set>:<label>`` so that
two label sets may use the same label id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

import classifiers.architectures  # noqa: F401  (registers complaintdesk.TextCatBOW.v1 before spacy.load)
from classifiers.dataset import route_language
from classifiers.labels import LabelSet
from classifiers.meta import _HINT, read_meta
from classifiers.text import normalize_text
from pipeline.core.errors import ModelError
from pipeline.core.model import Classification, Label


def component_name(label_set: str) -> str:
    """The spaCy component name of a label set's text categorizer."""
    return f"textcat_{label_set}"


def cat_name(label_set: str, label: str) -> str:
    """The textcat label for ``label`` of ``label_set`` (namespaced, so label sets may share ids)."""
    return f"{label_set}:{label}"


class SpacyClassifier:
    """A loaded model: one spaCy pipeline per language, all label sets in each (a ``Classifier``)."""

    def __init__(
        self,
        pipelines: Mapping[str, Language],
        label_sets: Sequence[LabelSet],
        version: str,
        meta: Mapping[str, Any] | None = None,
        *,
        batch_size: int = 256,
    ) -> None:
        if not pipelines:
            raise ModelError(f"model {version} has no language pipeline; {_HINT}")
        self.pipelines = dict(pipelines)
        self.label_sets = tuple(label_sets)
        self.version = version
        self.meta = dict(meta or {})
        self.batch_size = batch_size
        self._cat_names = [
            (ls.name, [(lab, cat_name(ls.name, lab)) for lab in ls.labels]) for ls in self.label_sets
        ]
        #: per label set: scores are raised to 1/T and renormalised (temperature scaling fitted on the
        #: dev split at training time; T < 1 sharpens under-confident scores)
        self.temperatures = {k: float(v) for k, v in self.meta.get("temperatures", {}).items()}
        #: per label set and label: an offset added to the log-score before the temperature (fitted on
        #: the dev split to maximise macro-F1: it moves decisions towards labels the model under-predicts)
        self.biases = {
            k: {lab: float(b) for lab, b in v.items()} for k, v in self.meta.get("biases", {}).items()
        }

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.pipelines)

    def label_set(self, name: str) -> LabelSet | None:
        return next((ls for ls in self.label_sets if ls.name == name), None)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """Labels for every label set, one ``Classification`` per text, in order.

        Each text is normalised, routed to its language's pipeline, and run through ``nlp.pipe``
        in batches.
        """
        clean = [normalize_text(t) for t in texts]
        by_lang: dict[str, list[int]] = {}
        for i, text in enumerate(clean):
            by_lang.setdefault(route_language(text, self.languages), []).append(i)
        out: list[Classification | None] = [None] * len(clean)
        for lang, indexes in by_lang.items():
            docs = self.pipelines[lang].pipe((clean[i] for i in indexes), batch_size=self.batch_size)
            for i, doc in zip(indexes, docs, strict=True):
                out[i] = Classification(labels=self._labels(doc.cats), model_version=self.version)
        return [c for c in out if c is not None]

    def _labels(self, cats: Mapping[str, float]) -> dict[str, Label]:
        labels = {}
        for name, pairs in self._cat_names:
            scores = {lab: float(cats.get(cat, 0.0)) for lab, cat in pairs}
            temperature = self.temperatures.get(name, 1.0)
            biases = self.biases.get(name)
            if temperature != 1.0 or biases:
                scores = apply_temperature(scores, temperature, biases)
            top = max(scores, key=scores.__getitem__)
            labels[name] = Label(label_set=name, label=top, confidence=scores[top], scores=scores)
        return labels


def apply_temperature(
    scores: Mapping[str, float], temperature: float, biases: Mapping[str, float] | None = None
) -> dict[str, float]:
    """``softmax((log(score) + bias) / temperature)``: scores shifted by ``biases``, scaled, renormalised."""
    biases = biases or {}
    logits = {k: (math.log(max(v, 1e-12)) + biases.get(k, 0.0)) / temperature for k, v in scores.items()}
    top = max(logits.values())
    powered = {k: math.exp(v - top) for k, v in logits.items()}
    total = sum(powered.values())
    return {k: v / total for k, v in powered.items()}


def read_label_sets(model_dir: Path) -> tuple[LabelSet, ...]:
    """The label sets a model was trained with (from its ``meta.json``; spaCy is not loaded).

    Raises:
        ModelError: no readable model there.
        ConfigError: a label set in ``meta.json`` is invalid.
    """
    meta = read_meta(Path(model_dir))
    return tuple(LabelSet.from_dict(d) for d in meta.get("label_sets", []))


def load_model(model_dir: Path) -> SpacyClassifier:
    """Load the model in ``model_dir``.

    Raises:
        ModelError: no trained model there, or it cannot be loaded (the message says how to build one).
    """
    model_dir = Path(model_dir)
    meta = read_meta(model_dir)
    try:
        label_sets = [LabelSet.from_dict(d) for d in meta["label_sets"]]
        pipelines = {lang: spacy.load(model_dir / lang) for lang in meta["languages"]}
    except Exception as e:  # spaCy raises OSError, ValueError, KeyError, msgpack errors...
        raise ModelError(f"the model in {model_dir} cannot be loaded ({e}): {_HINT}") from e
    for lang, nlp in pipelines.items():
        missing = [ls.name for ls in label_sets if component_name(ls.name) not in nlp.pipe_names]
        if missing:
            raise ModelError(f"the {lang} pipeline in {model_dir} lacks label sets {missing}: {_HINT}")
    return SpacyClassifier(pipelines, label_sets, str(meta["version"]), meta)
