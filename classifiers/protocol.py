"""What the pipeline needs of a classifier: the seam unit tests fake against.

``classifiers.load_model`` returns the spaCy implementation (``SpacyClassifier``); tests pass a
``FakeClassifier`` (``tests/fakes.py``) through the same type, and a web app could pass a remote one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from classifiers.labels import LabelSet
from pipeline.core.model import Classification


@runtime_checkable
class Classifier(Protocol):
    """A model version that labels texts for every label set it knows."""

    @property
    def version(self) -> str:
        """The model version stored with every case it labels (``m-20261127-1a2b3c4d5e``)."""
        ...

    @property
    def label_sets(self) -> tuple[LabelSet, ...]:
        """The label sets it predicts, with their labels and review thresholds."""
        ...

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        """One ``Classification`` per text, in order, with a label for every label set."""
        ...
