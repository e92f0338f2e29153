"""The reference a deployment compares its model with: TF-IDF + logistic regression, one per label set.

Word 1-2 grams with sublinear tf and ``min_df=2``, then ``LogisticRegression(C=5)``, as the issue
names it (``bench/classify.py`` measures the same against ``complaintdesk train``). Texts go through
``normalize_text`` as the model's do, and each Han character is a token of its own (the spaCy
pipelines split Chinese into characters too; scikit-learn's default pattern would make a whole
Chinese sentence one token). ``BaselineClassifier`` is a ``Classifier``, so ``evaluate`` scores it
like the model.

scikit-learn is an optional extra (``complaintdesk[baseline]``): only ``evaluate --baseline`` needs
it, and it is 40 MB a deployment that never compares does not need to install.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from classifiers.labels import LabelSet, restrict_to_data
from classifiers.text import normalize_text
from pipeline.core.errors import InputError, MissingDependencyError
from pipeline.core.model import Classification, Label

#: a Han character alone, or a run of other word characters
TOKEN_PATTERN = r"(?u)[\u3400-\u9fff]|[^\W\u3400-\u9fff]+"


class BaselineClassifier:
    """TF-IDF + logistic regression per label set, trained on labelled rows (a ``Classifier``)."""

    def __init__(self, models: Mapping[str, Any], label_sets: Sequence[LabelSet]) -> None:
        self.models = dict(models)
        self.label_sets = tuple(label_sets)
        self.version = "baseline-tfidf-lr"

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        clean = [normalize_text(t) for t in texts]
        probs = {name: model.predict_proba(clean) for name, model in self.models.items()}
        out = []
        for i in range(len(clean)):
            labels = {}
            for ls in self.label_sets:
                model = self.models[ls.name]
                scores = {str(c): float(p) for c, p in zip(model.classes_, probs[ls.name][i], strict=True)}
                top = max(scores, key=scores.__getitem__)
                labels[ls.name] = Label(label_set=ls.name, label=top, confidence=scores[top], scores=scores)
            out.append(Classification(labels=labels, model_version=self.version))
        return out


def train_baseline(rows: Sequence[Mapping[str, Any]], label_sets: Sequence[LabelSet]) -> BaselineClassifier:
    """Fit one TF-IDF + LR pipeline per label set on the rows labelled for it.

    Raises:
        MissingDependencyError: scikit-learn is not installed.
        InputError: no label set has two labels in the rows.
    """
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError as e:
        raise MissingDependencyError(
            "the baseline needs scikit-learn: install complaintdesk with the `baseline` extra "
            "(pip install 'complaintdesk[baseline]', or uv sync --extra baseline)") from e
    sets = [ls for ls in restrict_to_data(label_sets, rows)
            if len({str(r[ls.name]) for r in rows if r.get(ls.name) not in (None, "")}) >= 2]
    if not sets:
        raise InputError("no label set has two or more labels in the baseline's training rows")
    models = {}
    for ls in sets:
        picked = [r for r in rows if r.get(ls.name) not in (None, "")]
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=TOKEN_PATTERN),
            LogisticRegression(C=5.0, max_iter=2000),
        )
        model.fit([normalize_text(str(r["text"])) for r in picked], [str(r[ls.name]) for r in picked])
        models[ls.name] = model
    return BaselineClassifier(models, sets)
