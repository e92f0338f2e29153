"""Model operations as a service: train and install, promote, roll back, retrain, reclassify, correct.

Plain functions with explicit arguments (the models root, a ``storage.Database``, an actor), callable
from the CLI, a web app or an API alike; nothing here prints.

One registry: the ``model_versions`` table says which versions exist and which is current; the
model directories live on disk under the models root (``classifiers.versions``). A deployment that
still has the old ``registry.json`` there gets it imported into the table the first time any
function here looks at the registry (``adopt_legacy_registry``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import classifiers
import storage
from classifiers.meta import read_meta
from pipeline.core.errors import ModelError

if TYPE_CHECKING:  # spaCy loads with these; commands that only list or promote must start fast
    from classifiers.retrain import RetrainResult

#: Case statuses ``reclassify`` works on: a closed or rejected case keeps the labels it was handled with.
OPEN_STATUSES = ("new", "triaged", "in_progress", "waiting_citizen")
#: The training data shipped with the project.
BUNDLED_DATA_DIR = Path(classifiers.__file__).resolve().parent / "data"
BUNDLED_HELDOUT_DIR = BUNDLED_DATA_DIR / "heldout"


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, as a caller shows it."""

    version: str
    path: Path
    created_at: datetime
    status: str  # candidate | promoted | retired
    metrics: dict[str, Any]

    @property
    def promoted(self) -> bool:
        return self.status == "promoted"

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "path": str(self.path), "created_at": self.created_at.isoformat(),
                "status": self.status, "promoted": self.promoted, "metrics": self.metrics}


@dataclass(frozen=True)
class RetrainOutcome:
    """What ``retrain`` did: skipped (with the reason), or trained a candidate and maybe promoted it."""

    current: str
    retrained: bool
    reason: str
    corrections: int = 0
    result: RetrainResult | None = None
    candidate: str | None = None
    promoted: bool = False
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.result is None:
            return {"retrained": False, "reason": self.reason, "current": self.current}
        return self.result.to_json() | {"retrained": True, "candidate": self.candidate,
                                        "promoted": self.promoted, "dry_run": self.dry_run,
                                        "corrections": self.corrections}


@dataclass(frozen=True)
class ReclassifySummary:
    """What ``reclassify`` changed."""

    model_version: str
    cases: int
    changed_cases: int
    changed_labels: int
    confirmed_labels_kept: int

    def to_json(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "cases": self.cases, "changed_cases": self.changed_cases,
                "changed_labels": self.changed_labels, "confirmed_labels_kept": self.confirmed_labels_kept}


def _info(row: storage.ModelVersion) -> VersionInfo:
    return VersionInfo(row.version, Path(row.path), row.created_at, row.status, dict(row.metrics or {}))


def adopt_legacy_registry(db: storage.Database, models_root: Path, *, actor: str = "system") -> list[str]:
    """Import an old ``models_root/registry.json`` into the database once; returns the versions registered.

    Every model directory under the root is registered; the old promotions are replayed in order, so
    that ``rollback`` goes back through them as before. The file is then renamed (``.imported``).

    Raises:
        ModelError: the file cannot be read.
    """
    legacy = classifiers.read_legacy_registry(models_root)
    if legacy is None:
        return []
    found = classifiers.model_dirs(models_root)
    history = [v for v in legacy.history if any(m.version == v for m in found)]
    if (legacy.promoted and legacy.promoted not in history
            and any(m.version == legacy.promoted for m in found)):
        history.append(legacy.promoted)
    with db.session() as session:
        for m in found:
            storage.register_model_version(session, m.version, str(m.path), metrics=m.metrics, actor=actor)
        # explicit, increasing times: the replayed promotions must keep their order for rollback
        start = datetime.now(UTC)
        for n, version in enumerate(history):
            storage.promote_model_version(session, version, actor=actor,
                                          now=start + timedelta(milliseconds=n))
    classifiers.retire_legacy_registry(legacy)
    return [m.version for m in found]


def list_versions(db: storage.Database, models_root: Path) -> list[VersionInfo]:
    """Every registered model version, oldest first."""
    adopt_legacy_registry(db, models_root)
    with db.session() as session:
        return [_info(row) for row in reversed(storage.list_model_versions(session))]


def current_version(db: storage.Database, models_root: Path) -> VersionInfo | None:
    """The promoted version, or None (the deployment then uses its configured or the bundled model)."""
    adopt_legacy_registry(db, models_root)
    with db.session() as session:
        row = storage.current_model_version(session)
        return _info(row) if row is not None else None


def current_model_dir(db: storage.Database, models_root: Path, *, model_dir: Path | None = None) -> Path:
    """The model to use: ``model_dir`` (``Settings.model_dir``, ``--model-dir``), else the promoted one,
    else bundled."""
    if model_dir is not None:
        return Path(model_dir)
    current = current_version(db, models_root)
    return classifiers.resolve_model_dir(None, current.path if current is not None else None)


def train_and_install(
    data: Sequence[Path],
    db: storage.Database,
    models_root: Path,
    *,
    actor: str,
    seed: int = 0,
    label_sets: Sequence[classifiers.LabelSet] | None = None,
) -> classifiers.ModelInfo:
    """Train a candidate into ``models_root/<version>`` and register it (not promoted).

    Identical data, labels, config and seed give the same version: the existing one is kept.
    """
    staging = classifiers.staging_dir(models_root)
    info = classifiers.train(data, staging, seed=seed, label_sets=label_sets)
    return _install(db, models_root, staging, info, actor=actor)


def _install(
    db: storage.Database, models_root: Path, staging: Path, info: classifiers.ModelInfo, *, actor: str
) -> classifiers.ModelInfo:
    adopt_legacy_registry(db, models_root)
    installed = classifiers.install(models_root, staging, info)
    with db.session() as session:
        storage.register_model_version(session, installed.version, str(installed.path),
                                       metrics=installed.metrics, actor=actor)
    return installed


def promote(db: storage.Database, models_root: Path, version: str, *, actor: str) -> VersionInfo:
    """Make ``version`` the model every intake channel, reclassify and evaluate use.

    A model directory under ``models_root`` that is not registered yet (copied in by hand) is
    registered first.

    Raises:
        ModelError: there is no such version, or its directory no longer holds a loadable model.
    """
    adopt_legacy_registry(db, models_root)
    with db.session() as session:
        row = storage.find_model_version(session, version)
        path = Path(row.path) if row is not None else classifiers.version_dir(models_root, version)
        try:
            meta = read_meta(path)
        except ModelError as e:
            if row is None:
                raise ModelError(
                    f"no model version {version!r}; list them with `complaintdesk models list`") from e
            raise
        if row is None:
            storage.register_model_version(session, version, str(path), metrics=dict(meta.get("metrics", {})),
                                           actor=actor)
        return _info(storage.promote_model_version(session, version, actor=actor))


def rollback(db: storage.Database, models_root: Path, *, actor: str) -> VersionInfo | None:
    """Go back to the version promoted before the current one; None when that leaves none promoted.

    Raises:
        ModelError: nothing is promoted.
    """
    adopt_legacy_registry(db, models_root)
    with db.session() as session:
        if storage.current_model_version(session) is None:
            raise ModelError("no promoted model version to roll back from; "
                             "list them with `complaintdesk models list`")
        row = storage.rollback_model_version(session, actor=actor, to_none=True)
        return _info(row) if row is not None else None


def retrain(
    db: storage.Database,
    models_root: Path,
    *,
    actor: str,
    model_dir: Path | None = None,
    data: Sequence[Path] = (),
    heldout: Sequence[Path] = (),
    seed: int = 0,
    dry_run: bool = False,
    force: bool = False,
) -> RetrainOutcome:
    """The retrain policy: train a candidate on shipped data + reviewer corrections, promote it only if
    not worse.

    Skips (``retrained=False``) when there are no corrections, or none new since a model already
    trained on them, unless ``force``. The candidate is always installed and registered; it is
    promoted only when the gate passes, it differs from the current model and not ``dry_run``.

    Args:
        model_dir: the configured model (``Settings.model_dir``); default: the current one.
        data: shipped training data (default ``classifiers/data``).
        heldout: held-out evaluation rows (default ``classifiers/data/heldout``).
    """
    current_dir = current_model_dir(db, models_root, model_dir=model_dir)
    current = classifiers.load_model(current_dir)
    with db.session() as session:
        corrections = _valid_corrections(storage.confirmed_training_rows(session), current.label_sets)
    if not force:
        known = [current_dir, *(v.path for v in list_versions(db, models_root))]
        if not corrections:
            reason = "no reviewer corrections yet"
        elif seen := _already_trained_on(corrections, known):
            reason = (f"no new corrections: {seen} was already trained on these {len(corrections)} "
                      "corrected cases")
        else:
            reason = ""
        if reason:
            return RetrainOutcome(current.version, False, reason, len(corrections))
    staging = classifiers.staging_dir(models_root)
    from classifiers.retrain import retrain as train_candidate

    result = train_candidate(
        data=list(data) or [BUNDLED_DATA_DIR], corrections=corrections,
        heldout=list(heldout) or [BUNDLED_HELDOUT_DIR],
        current=current, out_dir=staging, seed=seed,
    )
    info = _install(db, models_root, staging, result.candidate, actor=actor)
    promoted = result.decision.promote and not dry_run and info.version != current.version
    if promoted:
        promote(db, models_root, info.version, actor=actor)
    return RetrainOutcome(current.version, True, result.decision.reason, len(corrections), result,
                          info.version, promoted, dry_run)


def _valid_corrections(
    rows: Sequence[Mapping[str, Any]], label_sets: Sequence[classifiers.LabelSet]
) -> list[dict[str, Any]]:
    """Corrected rows with only the labels the label sets have.

    ``correct_label`` rejects unknown labels now, but a database may hold some from before that
    check (``pol1ce_typo``): they are dropped rather than trained on as a new label.
    """
    allowed = {ls.name: set(ls.labels) for ls in label_sets}
    out = []
    for row in rows:
        kept = {k: v for k, v in row.items() if k not in allowed or v in allowed[k]}
        if any(k in allowed for k in kept):
            out.append(kept)
    return out


def reclassify(
    db: storage.Database, classifier: classifiers.Classifier, *, actor: str, batch_size: int = 256
) -> ReclassifySummary:
    """Re-run ``classifier`` over open cases, one transaction per batch; reviewer-confirmed labels are kept.

    ``needs_review`` is recomputed with the classifier's label sets' thresholds and margins.
    """
    rules = classifiers.review_rules(classifier.label_sets)
    changed_cases = changed_labels = kept = 0
    with db.session() as session:
        todo = [(c.reference, c.text)
                for status in OPEN_STATUSES for c in storage.list_cases(session, status=status)]
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        results = classifier.classify([text for _, text in batch])
        with db.session() as session:
            for (reference, _), classification in zip(batch, results, strict=True):
                case = storage.get_case(session, reference)
                kept += len(storage.confirmed_labels(case))
                changed = storage.relabel_case(session, case, classification, actor=actor, thresholds=rules)
                changed_cases += bool(changed)
                changed_labels += len(changed)
    return ReclassifySummary(classifier.version, len(todo), changed_cases, changed_labels, kept)


def correct_label(
    db: storage.Database,
    reference: str,
    label_set: str,
    label: str,
    *,
    reviewer: str,
    label_sets: Sequence[classifiers.LabelSet],
) -> dict[str, Any]:
    """A reviewer sets (or confirms) a case's label; returns the case as ``storage.case_to_dict`` shows it.

    Raises:
        InvalidLabelError: ``label_set`` or ``label`` is not in ``label_sets`` (the message lists the
            allowed ones).
        CaseNotFoundError: no case with that reference.
    """
    classifiers.check_label(label_sets, label_set, label)
    allowed = {ls.name: tuple(ls.labels) for ls in label_sets}
    with db.session() as session:
        case = storage.get_case(session, reference)
        storage.correct_label(session, case, label_set, label, reviewer=reviewer, allowed=allowed)
        return storage.case_to_dict(case)


def _already_trained_on(corrections: Any, known: Any) -> Any:
    from classifiers.retrain import already_trained_on

    return already_trained_on(corrections, known)
