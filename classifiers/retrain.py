"""Learning from reviewer corrections without ever silently getting worse.

``retrain`` trains a candidate on the shipped data plus the rows reviewers confirmed or corrected,
scores it and the current model on the same held-out set, and ``gate`` decides whether the
candidate may be promoted:

- the held-out set is the shipped held-out file(s) plus a deterministic share (one in
  ``EVAL_SHARE_EVERY``, by a hash of the case reference or text) of the corrected rows; that share
  is never trained on, so corrections feed the evaluation too;
- corrected rows are trained on ``CORRECTION_WEIGHT`` times (they are verified, in-domain, and
  mostly cases the model got wrong);
- the candidate passes when its mean macro-F1 over the label sets is not lower than the current
  model's, and no single label set loses more than ``MAX_LABEL_SET_DROP``.

The candidate's ``meta.json`` records which corrections it was trained on (``provenance.corrections``:
rows and a fingerprint); ``already_trained_on`` finds an earlier model trained on the same corrections, so
a nightly ``complaintdesk retrain`` does nothing when reviewers corrected nothing new.

Promotion itself (``versions.promote`` plus the database registry) is the caller's decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from classifiers.dataset import fingerprint, is_dev_row, read_rows
from classifiers.evaluation import EvaluationReport, evaluate
from classifiers.labels import LabelSet
from classifiers.meta import read_meta
from classifiers.protocol import Classifier
from classifiers.runtime import load_model
from classifiers.training import ModelInfo, train
from pipeline.core.errors import ModelError

EVAL_SHARE_EVERY = 5
MAX_LABEL_SET_DROP = 0.02
#: corrected rows are verified labels on the deployment's own cases: each counts this many times
CORRECTION_WEIGHT = 2


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate may replace the current model, and why."""

    promote: bool
    reason: str
    current_macro_f1: float
    candidate_macro_f1: float


@dataclass(frozen=True)
class RetrainResult:
    """The candidate, both evaluation reports on the same held-out rows, and the gate's decision."""

    candidate: ModelInfo
    current_report: EvaluationReport
    candidate_report: EvaluationReport
    decision: GateDecision
    train_corrections: int
    eval_rows: int

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.version,
            "current": self.current_report.model_version,
            "promote": self.decision.promote,
            "reason": self.decision.reason,
            "current_macro_f1": self.decision.current_macro_f1,
            "candidate_macro_f1": self.decision.candidate_macro_f1,
            "train_corrections": self.train_corrections,
            "eval_rows": self.eval_rows,
            "current_report": self.current_report.to_json(),
            "candidate_report": self.candidate_report.to_json(),
        }


def split_corrections(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training rows, evaluation rows): one corrected row in ``EVAL_SHARE_EVERY`` goes to evaluation."""
    train_rows: list[dict[str, Any]] = []
    eval_rows: list[dict[str, Any]] = []
    for row in rows:
        key = str(row.get("reference") or row["text"])
        (eval_rows if is_dev_row(key, EVAL_SHARE_EVERY) else train_rows).append(dict(row))
    return train_rows, eval_rows


def corrections_fingerprint(rows: Sequence[Mapping[str, Any]]) -> str:
    """A short hash of corrected rows (reference, text and every label), independent of their order."""
    records = sorted(
        ({k: str(v) for k, v in row.items() if v not in (None, "")} for row in rows),
        key=lambda r: (r.get("reference", ""), r.get("text", "")),
    )
    fields = sorted({k for r in records for k in r} - {"text"})
    return fingerprint(records, fields)[:16]


def already_trained_on(corrections: Sequence[Mapping[str, Any]], model_dirs: Sequence[Path]) -> str | None:
    """The version of the first model in ``model_dirs`` whose training used exactly ``corrections``, if
    any."""
    wanted = corrections_fingerprint(corrections)
    for model_dir in model_dirs:
        try:
            meta = read_meta(model_dir)
        except ModelError:
            continue
        if meta.get("provenance", {}).get("corrections", {}).get("fingerprint") == wanted:
            return str(meta["version"])
    return None


def gate(
    current: EvaluationReport, candidate: EvaluationReport, *, max_drop: float = MAX_LABEL_SET_DROP
) -> GateDecision:
    """Promote only if mean macro-F1 does not drop and no label set drops by more than ``max_drop``."""
    shared = [name for name in current.label_sets if name in candidate.label_sets]
    if not shared:
        return GateDecision(False, "no label set in common to compare on", 0.0, 0.0)
    cur = round(sum(current.label_sets[n].macro_f1 for n in shared) / len(shared), 4)
    cand = round(sum(candidate.label_sets[n].macro_f1 for n in shared) / len(shared), 4)
    if cand < cur:
        return GateDecision(False, f"mean macro-F1 would drop from {cur:.4f} to {cand:.4f}", cur, cand)
    for n in shared:
        drop = current.label_sets[n].macro_f1 - candidate.label_sets[n].macro_f1
        if drop > max_drop:
            return GateDecision(
                False, f"{n} macro-F1 would drop by {drop:.4f} (more than {max_drop})", cur, cand)
    return GateDecision(True, f"mean macro-F1 {cur:.4f} -> {cand:.4f}", cur, cand)


def retrain(
    *,
    data: Sequence[Path],
    corrections: Sequence[Mapping[str, Any]],
    heldout: Sequence[Path] | Sequence[Mapping[str, Any]],
    current: Classifier | Path,
    out_dir: Path,
    seed: int = 0,
    label_sets: Sequence[LabelSet] | None = None,
    correction_weight: int = CORRECTION_WEIGHT,
) -> RetrainResult:
    """Train a candidate on ``data`` + corrections and compare it with ``current`` on held-out rows.

    Args:
        data: the shipped training JSONL files or directories.
        corrections: rows ``{"text", "reference"?, <label set>: label...}`` from reviewers.
        heldout: held-out JSONL paths, or rows.
        current: the model in use (or its directory).
        out_dir: where the candidate is written.
        label_sets: default: those of the current model.
    """
    model = load_model(current) if isinstance(current, Path) else current
    if heldout and isinstance(heldout[0], Path):
        fixed_rows = read_rows(cast(Sequence[Path], heldout))
    else:
        fixed_rows = [dict(r) for r in cast(Sequence[Mapping[str, Any]], heldout)]
    train_extra, eval_extra = split_corrections(corrections)
    eval_rows = fixed_rows + eval_extra
    provenance = {
        "corrections": {"rows": len(corrections), "fingerprint": corrections_fingerprint(corrections)}
    }
    info = train(data, out_dir, seed=seed, label_sets=label_sets or model.label_sets,
                 extra_rows=train_extra * correction_weight, provenance=provenance)
    candidate = load_model(out_dir)
    current_report = evaluate(model, eval_rows)
    candidate_report = evaluate(candidate, eval_rows)
    return RetrainResult(
        candidate=info,
        current_report=current_report,
        candidate_report=candidate_report,
        decision=gate(current_report, candidate_report),
        train_corrections=len(train_extra),
        eval_rows=len(eval_rows),
    )
