"""complaintdesk classifiers: spaCy pipelines per language, training, evaluation, field extraction.

Public API (see ``docs/architecture.md``)::

    load_model(model_dir) -> Classifier          # .version, .label_sets, .classify(texts)
    train(data, out_dir, *, seed=0) -> ModelInfo
    evaluate(model, rows) -> EvaluationReport    # .to_json(), render_report(report)
    extract_fields(text, language) -> tuple[ExtractedField, ...]
    detect_language(text) -> "en" | "zh" | "mixed" | ""
    normalize_text(text) -> str
    resolve_model_dir(settings) -> Path          # Settings.model_dir, promoted version, bundled model
    load_label_sets(path) -> tuple[LabelSet, ...]

This package is the only importer of spaCy, and imports it only when a name that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Importing spaCy takes seconds; `complaintdesk --help` and `cases list` must not pay for it, so
# each public name is imported from its module on first use (PEP 562).
_WHERE = {
    "read_rows": "dataset", "route_language": "dataset",
    "EvaluationReport": "evaluation", "LabelSetReport": "evaluation", "evaluate": "evaluation",
    "render_report": "evaluation", "score_predictions": "evaluation",
    "extract_fields": "fields",
    "LabelSet": "labels", "load_label_sets": "labels",
    "Classifier": "runtime", "load_model": "runtime",
    "detect_language": "text", "normalize_text": "text",
    "ModelInfo": "training", "train": "training",
    "ModelVersion": "versions", "list_versions": "versions", "promote": "versions",
    "promoted_version": "versions", "resolve_model_dir": "versions", "rollback": "versions",
}

if TYPE_CHECKING:
    from classifiers.dataset import read_rows, route_language
    from classifiers.evaluation import (
        EvaluationReport,
        LabelSetReport,
        evaluate,
        render_report,
        score_predictions,
    )
    from classifiers.fields import extract_fields
    from classifiers.labels import LabelSet, load_label_sets
    from classifiers.runtime import Classifier, load_model
    from classifiers.text import detect_language, normalize_text
    from classifiers.training import ModelInfo, train
    from classifiers.versions import (
        ModelVersion,
        list_versions,
        promote,
        promoted_version,
        resolve_model_dir,
        rollback,
    )


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'classifiers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"classifiers.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "Classifier",
    "EvaluationReport",
    "LabelSet",
    "LabelSetReport",
    "ModelInfo",
    "ModelVersion",
    "detect_language",
    "evaluate",
    "extract_fields",
    "list_versions",
    "load_label_sets",
    "load_model",
    "normalize_text",
    "promote",
    "promoted_version",
    "read_rows",
    "render_report",
    "resolve_model_dir",
    "rollback",
    "route_language",
    "score_predictions",
    "train",
]
