"""complaintdesk classifiers: spaCy pipelines per language, training, evaluation, field extraction.

Public API (see ``docs/architecture.md``)::

    Classifier                                   # Protocol: .version, .label_sets, .classify(texts)
    load_model(model_dir) -> SpacyClassifier     # the spaCy implementation of Classifier
    train(data, out_dir, *, seed=0) -> ModelInfo
    evaluate(model, rows) -> EvaluationReport    # .to_json(), render_report(report)
    extract_fields(text, language) -> tuple[ExtractedField, ...]
    detect_language(text) -> "en" | "zh" | "mixed" | ""
    normalize_text(text) -> str
    resolve_model_dir(model_dir, promoted) -> Path  # configured dir, else promoted, else the bundled model
    model_dirs(root), install(root, staging, info)  # model versions on disk (the registry is the database's)
    load_label_sets(path) -> tuple[LabelSet, ...]
    label_names(path) -> LabelNames                # labels as people read them, English and Chinese
    review_rules(label_sets), check_label(label_sets, label_set, label)

This package is the only importer of spaCy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Importing spaCy takes seconds; `complaintdesk --help` and `cases list` must not pay for it, so
# each public name is imported from its module on first use (PEP 562).
_WHERE = {
    "read_rows": "dataset",
    "route_language": "dataset",
    "EvaluationReport": "evaluation",
    "LabelSetReport": "evaluation",
    "evaluate": "evaluation",
    "render_report": "evaluation",
    "score_predictions": "evaluation",
    "extract_fields": "fields",
    "LabelSet": "labels",
    "LabelNames": "labels",
    "label_names": "labels",
    "check_label": "labels",
    "load_label_sets": "labels",
    "review_rules": "labels",
    "Classifier": "protocol",
    "SpacyClassifier": "runtime",
    "load_model": "runtime",
    "read_label_sets": "runtime",
    "detect_language": "text",
    "normalize_text": "text",
    "ModelInfo": "training",
    "train": "training",
    "BUNDLED_MODEL_DIR": "versions",
    "LegacyRegistry": "versions",
    "ModelDir": "versions",
    "install": "versions",
    "model_dirs": "versions",
    "read_legacy_registry": "versions",
    "resolve_model_dir": "versions",
    "retire_legacy_registry": "versions",
    "staging_dir": "versions",
    "version_dir": "versions",
}

if TYPE_CHECKING:
    from classifiers.dataset import (
        read_rows,
        route_language,
    )
    from classifiers.evaluation import (
        EvaluationReport,
        LabelSetReport,
        evaluate,
        render_report,
        score_predictions,
    )
    from classifiers.fields import (
        extract_fields,
    )
    from classifiers.labels import (
        LabelNames,
        LabelSet,
        check_label,
        label_names,
        load_label_sets,
        review_rules,
    )
    from classifiers.protocol import (
        Classifier,
    )
    from classifiers.runtime import (
        SpacyClassifier,
        load_model,
        read_label_sets,
    )
    from classifiers.text import (
        detect_language,
        normalize_text,
    )
    from classifiers.training import (
        ModelInfo,
        train,
    )
    from classifiers.versions import (
        BUNDLED_MODEL_DIR,
        LegacyRegistry,
        ModelDir,
        install,
        model_dirs,
        read_legacy_registry,
        resolve_model_dir,
        retire_legacy_registry,
        staging_dir,
        version_dir,
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
    "BUNDLED_MODEL_DIR",
    "Classifier",
    "EvaluationReport",
    "LabelNames",
    "LabelSet",
    "LabelSetReport",
    "LegacyRegistry",
    "ModelDir",
    "ModelInfo",
    "SpacyClassifier",
    "check_label",
    "detect_language",
    "evaluate",
    "label_names",
    "extract_fields",
    "install",
    "load_label_sets",
    "load_model",
    "model_dirs",
    "normalize_text",
    "read_label_sets",
    "read_legacy_registry",
    "read_rows",
    "render_report",
    "resolve_model_dir",
    "retire_legacy_registry",
    "review_rules",
    "route_language",
    "score_predictions",
    "staging_dir",
    "train",
    "version_dir",
]
