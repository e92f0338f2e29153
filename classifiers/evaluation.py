"""Evaluation: per-label precision/recall/F1, accuracy, macro-F1, confusion matrix, calibration.

``score_predictions`` works on plain lists (gold, predicted, confidence) so it can be checked by hand;
``evaluate`` runs a model over labelled rows and scores every label set the rows carry.
Macro-F1 averages over the labels that occur in the gold or the predicted labels.
``evaluate`` also reports what abstaining buys: top-2 accuracy (a reviewer picks from two
suggestions), the coverage/accuracy curve (accuracy of the most confident share of the rows) and the
share and accuracy of the rows the label set's review rule (``threshold``/``margin`` of
``labels.toml``) would auto-accept, per label set and for whole cases (no label set sent to review).
The reliability table puts predictions into ``bins`` equal-width confidence bins and compares each
bin's mean confidence with its accuracy; ECE is the count-weighted mean of the gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from classifiers.protocol import Classifier


@dataclass(frozen=True)
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ReliabilityBin:
    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class LabelSetReport:
    """Scores of one label set."""

    label_set: str
    n: int
    accuracy: float
    macro_f1: float
    per_label: dict[str, LabelScores]
    labels: tuple[str, ...]  # row/column order of the confusion matrix
    confusion: tuple[tuple[int, ...], ...]  # confusion[gold][predicted]
    reliability: tuple[ReliabilityBin, ...]
    ece: float
    top2_accuracy: float | None = None
    #: (coverage, accuracy, lowest confidence kept): the most confident share of the rows
    coverage_curve: tuple[tuple[float, float, float], ...] = ()
    #: rows the review rule would not send to review: {"share", "accuracy", "n"}
    auto_accept: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "top2_accuracy": self.top2_accuracy,
            "coverage_curve": [{"coverage": c, "accuracy": a, "min_confidence": m}
                               for c, a, m in self.coverage_curve],
            "auto_accept": self.auto_accept,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "per_label": {
                k: {"precision": v.precision, "recall": v.recall, "f1": v.f1, "support": v.support}
                for k, v in self.per_label.items()
            },
            "confusion": {
                "labels": list(self.labels),
                "matrix": [list(row) for row in self.confusion],
            },
            "reliability": {
                "bins": [
                    {
                        "lower": b.lower,
                        "upper": b.upper,
                        "count": b.count,
                        "mean_confidence": b.mean_confidence,
                        "accuracy": b.accuracy,
                    }
                    for b in self.reliability
                ],
                "ece": self.ece,
            },
        }


@dataclass(frozen=True)
class EvaluationReport:
    """Scores of every label set evaluated, keyed by label set name."""

    label_sets: dict[str, LabelSetReport] = field(default_factory=dict)
    model_version: str = ""
    #: whole cases (rows labelled for every label set scored): no label set needs review -> auto-accepted;
    #: {"share", "accuracy" (every label right), "n"}
    case_auto_accept: dict[str, float] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: r.to_json() for name, r in self.label_sets.items()}
        if self.case_auto_accept is not None:
            out["cases_auto_accepted"] = self.case_auto_accept
        return out

    def macro_f1(self) -> float:
        """Mean macro-F1 over the label sets (0 when nothing was scored)."""
        if not self.label_sets:
            return 0.0
        return round(sum(r.macro_f1 for r in self.label_sets.values()) / len(self.label_sets), 4)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0


def score_predictions(
    label_set: str,
    gold: Sequence[str],
    predicted: Sequence[str],
    confidence: Sequence[float] | None = None,
    *,
    labels: Sequence[str] = (),
    bins: int = 10,
) -> LabelSetReport:
    """Score one label set from parallel lists of gold labels, predictions and confidences.

    Args:
        labels: the order of the confusion matrix; labels seen in the data are appended.
    """
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    conf = list(confidence) if confidence is not None else [1.0] * len(gold)
    order = list(dict.fromkeys([*labels, *gold, *predicted]))
    index = {lab: i for i, lab in enumerate(order)}
    matrix = [[0] * len(order) for _ in order]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p]] += 1
    per_label: dict[str, LabelScores] = {}
    for lab, i in index.items():
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted_n = sum(row[i] for row in matrix)
        if not support and not predicted_n:
            continue  # a configured label absent from both sides does not count towards macro-F1
        precision, recall = _ratio(tp, predicted_n), _ratio(tp, support)
        f1 = _ratio(2 * tp, support + predicted_n)
        per_label[lab] = LabelScores(precision, recall, f1, support)
    n = len(gold)
    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    reliability, ece = _reliability([g == p for g, p in zip(gold, predicted, strict=True)], conf, bins)
    return LabelSetReport(
        label_set=label_set,
        n=n,
        accuracy=_ratio(correct, n),
        macro_f1=round(sum(s.f1 for s in per_label.values()) / len(per_label), 4) if per_label else 0.0,
        per_label=per_label,
        labels=tuple(order),
        confusion=tuple(tuple(row) for row in matrix),
        reliability=reliability,
        ece=ece,
    )


def _reliability(
    correct: Sequence[bool], confidence: Sequence[float], bins: int
) -> tuple[tuple[ReliabilityBin, ...], float]:
    """Equal-width confidence bins (the last one closed) and the expected calibration error."""
    groups: list[list[int]] = [[] for _ in range(bins)]
    for i, c in enumerate(confidence):
        groups[min(int(c * bins), bins - 1)].append(i)
    table, gap = [], 0.0
    for b, members in enumerate(groups):
        if members:
            mean_conf = sum(confidence[i] for i in members) / len(members)
            acc = sum(correct[i] for i in members) / len(members)
            gap += len(members) * abs(acc - mean_conf)
        else:
            mean_conf = acc = 0.0
        table.append(ReliabilityBin(round(b / bins, 4), round((b + 1) / bins, 4), len(members),
                                    round(mean_conf, 4), round(acc, 4)))
    return tuple(table), round(gap / len(correct), 4) if correct else 0.0


def evaluate(model: Classifier, rows: Sequence[Mapping[str, Any]]) -> EvaluationReport:
    """Classify the rows' ``text`` and score each of the model's label sets the rows carry."""
    rows = [r for r in rows if isinstance(r.get("text"), str)]
    results = model.classify([r["text"] for r in rows])
    reports = {}
    for ls in model.label_sets:
        picked = [(str(r[ls.name]), c.labels[ls.name]) for r, c in zip(rows, results, strict=True)
                  if r.get(ls.name) not in (None, "")]
        if not picked:
            continue
        report = score_predictions(
            ls.name,
            [g for g, _ in picked],
            [lab.label for _, lab in picked],
            [lab.confidence for _, lab in picked],
            labels=ls.label_ids,
        )
        accepted = [g == lab.label for g, lab in picked if not ls.needs_review(lab)]
        reports[ls.name] = replace(
            report,
            top2_accuracy=_ratio(sum(g in _top(lab.scores, 2) for g, lab in picked), len(picked)),
            coverage_curve=coverage_curve([g == lab.label for g, lab in picked],
                                          [lab.confidence for _, lab in picked]),
            auto_accept={"share": _ratio(len(accepted), len(picked)),
                         "accuracy": _ratio(sum(accepted), len(accepted)), "n": len(accepted)},
        )
    scored = [ls for ls in model.label_sets if ls.name in reports]
    cases = [(r, c) for r, c in zip(rows, results, strict=True)
             if scored and all(r.get(ls.name) not in (None, "") for ls in scored)]
    case_accept = None
    if cases:
        right = [all(str(r[ls.name]) == c.labels[ls.name].label for ls in scored) for r, c in cases
                 if not any(ls.needs_review(c.labels[ls.name]) for ls in scored)]
        case_accept = {"share": _ratio(len(right), len(cases)), "accuracy": _ratio(sum(right), len(right)),
                       "n": len(right)}
    return EvaluationReport(reports, model.version, case_accept)


def _top(scores: Mapping[str, float], k: int) -> list[str]:
    return sorted(scores, key=lambda lab: -scores[lab])[:k]


def coverage_curve(
    correct: Sequence[bool], confidence: Sequence[float], steps: int = 10
) -> tuple[tuple[float, float, float], ...]:
    """Accuracy of the most confident 10%, 20% ... 100% of the rows: (coverage, accuracy, lowest
    confidence in that share). Abstaining on the rest (sending them to review) buys that accuracy."""
    order = sorted(range(len(correct)), key=lambda i: -confidence[i])
    out = []
    for step in range(1, steps + 1):
        n = max(1, round(len(order) * step / steps))
        kept = order[:n]
        if not kept:
            continue
        out.append((round(n / len(order), 4), _ratio(sum(correct[i] for i in kept), n),
                    round(confidence[kept[-1]], 4)))
    return tuple(out)


def render_report(report: EvaluationReport, console: Console | None = None) -> None:
    """Print the report as rich tables: scores per label, confusion matrix, reliability."""
    console = console or Console()
    if report.model_version:
        console.print(f"model [bold]{report.model_version}[/bold]")
    for name, r in report.label_sets.items():
        scores = Table(title=f"{name}: accuracy {r.accuracy:.3f}, macro-F1 {r.macro_f1:.3f}, n={r.n}")
        for col in ("label", "precision", "recall", "F1", "support"):
            scores.add_column(col, justify="left" if col == "label" else "right")
        for lab, s in r.per_label.items():
            scores.add_row(lab, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
        console.print(scores)
        confusion = Table(title=f"{name}: confusion (rows gold, columns predicted)")
        confusion.add_column("gold \\ predicted")
        for lab in r.labels:
            confusion.add_column(lab[:12], justify="right")
        for lab, row in zip(r.labels, r.confusion, strict=True):
            confusion.add_row(lab, *(str(v) for v in row))
        console.print(confusion)
        rel = Table(title=f"{name}: reliability (ECE {r.ece:.3f})")
        for col in ("confidence", "count", "mean confidence", "accuracy"):
            rel.add_column(col, justify="right")
        for b in r.reliability:
            if b.count:
                rel.add_row(f"{b.lower:.1f}-{b.upper:.1f}", str(b.count), f"{b.mean_confidence:.3f}",
                            f"{b.accuracy:.3f}")
        console.print(rel)
        if r.coverage_curve:
            curve = Table(title=f"{name}: coverage / accuracy (most confident share first)")
            for col in ("coverage", "accuracy", "lowest confidence"):
                curve.add_column(col, justify="right")
            for c, a, m in r.coverage_curve:
                curve.add_row(f"{c:.0%}", f"{a:.3f}", f"{m:.3f}")
            console.print(curve)
        if r.auto_accept is not None:
            console.print(f"{name}: top-2 accuracy {r.top2_accuracy:.3f}; at the configured thresholds "
                          f"{r.auto_accept['share']:.1%} auto-accepted, "
                          f"accuracy {r.auto_accept['accuracy']:.3f} "
                          f"on those (n={int(r.auto_accept['n'])})")
    cases = report.case_auto_accept
    if cases is not None:
        console.print(f"whole cases: {cases['share']:.1%} auto-accepted (no label set sent to review), "
                      f"all labels right on {cases['accuracy']:.3f} of those (n={int(cases['n'])})")
