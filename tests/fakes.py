"""Fakes at the project's interfaces, for unit tests (integration tests use the real components).

``FakeClassifier`` and ``RecordingClassifier`` implement ``classifiers.Classifier`` (the protocol):
a test passes them wherever the pipeline takes a classifier, without patching anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import classifiers
from classifiers import LabelSet
from pipeline.core.model import Classification, Label

#: what a FakeClassifier answers for every text unless told otherwise
DEFAULT_LABELS = {"department": "general", "sentiment": "negative", "kind": "complaint"}


def _bundled_label_sets() -> tuple[LabelSet, ...]:
    return classifiers.load_label_sets()


@dataclass
class FakeClassifier:
    """Labels every text the same way (``labels``), or as ``rule(text)`` says, with ``confidence``.

    The other labels of a label set share the rest of the probability mass, so scores sum to 1 and
    ``needs_review`` behaves as with a real model. ``calls`` records the size of every batch.
    """

    labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))
    confidence: float = 0.9
    rule: Callable[[str], Mapping[str, str]] | None = None
    version: str = "fake-1"
    label_sets: tuple[LabelSet, ...] = field(default_factory=_bundled_label_sets)
    calls: list[int] = field(default_factory=list)

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls.append(len(texts))
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> Classification:
        chosen = {**self.labels, **(self.rule(text) if self.rule is not None else {})}
        out = {}
        for ls in self.label_sets:
            label = chosen.get(ls.name)
            if label is None:
                continue
            others = [lab for lab in ls.labels if lab != label]
            rest = (1.0 - self.confidence) / len(others) if others else 0.0
            scores = {label: self.confidence, **{lab: rest for lab in others}}
            out[ls.name] = Label(ls.name, label, self.confidence, scores)
        return Classification(out, self.version)


@dataclass
class RecordingClassifier:
    """A real classifier that also records the size of every batch it was asked to classify."""

    inner: classifiers.Classifier
    calls: list[int] = field(default_factory=list)

    @property
    def version(self) -> str:
        return self.inner.version

    @property
    def label_sets(self) -> tuple[LabelSet, ...]:
        return self.inner.label_sets

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls.append(len(texts))
        return self.inner.classify(texts)
