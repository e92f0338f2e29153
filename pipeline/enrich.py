"""The enrich stage: normalise the text, detect its language, extract fields and classify, as one batch."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import classifiers
from pipeline.core.model import IntakeItem


def enrich(items: Sequence[IntakeItem], classifier: classifiers.Classifier) -> list[IntakeItem]:
    """The items with normalised text, language, fields and labels (one ``classify`` call for the batch)."""
    if not items:
        return []
    prepared = []
    for item in items:
        text = classifiers.normalize_text(item.text)
        language = classifiers.detect_language(text)
        # a slip form's own fields (read from its boxes) first, then what the text itself mentions
        fields = (*item.fields, *classifiers.extract_fields(text, language))
        prepared.append(dataclasses.replace(item, text=text, language=language, fields=fields))
    labels = classifier.classify([item.text for item in prepared])
    return [dataclasses.replace(item, classification=c) for item, c in zip(prepared, labels, strict=True)]
