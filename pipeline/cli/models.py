"""Model commands of the ``complaintdesk`` CLI: train, evaluate, models list|promote|rollback, retrain, reclassify.

Glue only: parse options, build settings, call ``classifiers``. Errors are ``ComplaintdeskError``
subclasses; ``pipeline.cli.main`` maps them to exit codes. ``register(app)`` adds the commands.

Where models live:
- ``train --model-dir DIR`` writes exactly there (the Makefile builds the bundled model this way);
- ``train`` alone writes ``Settings.models_root/<version>`` (a candidate: ``models promote`` it);
- every other command uses the current model (``classifiers.resolve_model_dir``): ``--model-dir``,
  else ``Settings.model_dir``, else the promoted version, else the bundled ``classifiers/model``.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

import classifiers  # lazy: spaCy is imported when a command first uses a name that needs it
from classifiers.dataset import read_rows
from pipeline.cli.output import console, err_console, safe
from pipeline.config import Settings, load_settings
from pipeline.core.errors import ComplaintdeskError, InputError

#: The training data shipped with the project.
BUNDLED_DATA_DIR = Path(classifiers.__file__).resolve().parent / "data"

models_app = typer.Typer(help="List, promote and roll back trained model versions.", no_args_is_help=True)
T = TypeVar("T")


def _settings() -> Settings:
    """The settings of this invocation, honouring the main CLI's global options when present."""
    cli = sys.modules.get("pipeline.cli.app")
    if cli is not None and hasattr(cli, "settings"):
        return cli.settings()  # type: ignore[no-any-return]
    return load_settings()


def _with_database(settings: Settings, action: Callable[[Any], T]) -> T | None:
    """Run ``action(session)`` against the deployment's database if it exists; None otherwise.

    The database keeps an audited copy of the model registry; the files under ``models_root``
    stay the source of truth, so a deployment without a database can still train and promote.
    """
    try:
        import storage

        db = storage.open_database(settings.resolved_database_url)
    except ComplaintdeskError as e:
        err_console.print(f"[yellow]note:[/yellow] model registry not recorded in the database ({safe(e)})")
        return None
    with db, db.session() as session:
        return action(session)


def train_cmd(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="JSONL file or directory of *.jsonl (repeatable) [default: classifiers/data]."),
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Write the model here instead of a new version in HOME/models.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same data and seed give the same model.")] = 0,
    labels: Annotated[
        Path | None, typer.Option(help="Label sets file (TOML/JSON) [default: labels.toml next to the data, else built-in].")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model info as JSON.")] = False,
) -> None:
    """Train the classifiers from labelled JSONL rows (text + department/sentiment/kind...)."""
    paths = data or [BUNDLED_DATA_DIR]
    label_sets = classifiers.load_label_sets(labels) if labels else None
    if model_dir is not None:
        info = classifiers.train(paths, model_dir, seed=seed, label_sets=label_sets)
    else:
        settings = _settings()
        info = train_version(paths, settings, seed=seed, label_sets=label_sets)
    if as_json:
        console.print_json(json.dumps(info.to_json(), ensure_ascii=False))
        return
    console.print(f"trained [bold]{safe(info.version)}[/bold] in {info.seconds:.1f}s -> {safe(info.path)}")
    table = Table(title="dev split (about 10% of the rows, held out from the scored run)")
    for col in ("label set", "labels", "rows per language", "accuracy", "macro-F1", "n"):
        table.add_column(col)
    for ls in info.label_sets:
        per_lang = ", ".join(f"{lang} {sum(info.counts[lang].get(ls.name, {}).values())}" for lang in info.languages)
        m = info.metrics.get(ls.name, {})
        table.add_row(safe(ls.name), str(len(ls.labels)), safe(per_lang), safe(m.get("accuracy", "-")),
                      safe(m.get("macro_f1", "-")), safe(m.get("n", "-")))
    console.print(table)
    if model_dir is None:
        console.print(f"promote it with: complaintdesk models promote {safe(info.version)}")


def train_version(
    paths: list[Path], settings: Settings, *, seed: int = 0, label_sets: Any = None, extra_rows: Any = ()
) -> classifiers.ModelInfo:
    """Train into ``models_root/<version>``; identical data and settings reuse the existing version."""
    staging = _staging_dir(settings)
    info = classifiers.train(paths, staging, seed=seed, label_sets=label_sets, extra_rows=extra_rows)
    return _install_version(settings, staging, info)


def _staging_dir(settings: Settings) -> Path:
    root = settings.models_root
    root.mkdir(parents=True, exist_ok=True)
    staging = root / ".training"
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _install_version(settings: Settings, staging: Path, info: classifiers.ModelInfo) -> classifiers.ModelInfo:
    """Move a model trained in ``staging`` to ``models_root/<version>`` and register it."""
    from classifiers.versions import version_dir

    root = settings.models_root
    fingerprint = info.version.rsplit("-", 1)[-1]
    same = [v for v in classifiers.list_versions(root) if v.version.endswith(f"-{fingerprint}")]
    target = same[0].path if same else version_dir(root, info.version)
    if same:
        shutil.rmtree(staging)
        meta = json.loads((target / "meta.json").read_text(encoding="utf-8"))
        info = classifiers.ModelInfo(same[0].version, target, info.label_sets, info.languages, info.counts,
                                     meta.get("metrics", {}), info.seconds)
    else:
        staging.rename(target)
        info = classifiers.ModelInfo(info.version, target, info.label_sets, info.languages, info.counts,
                                     info.metrics, info.seconds)

    def record(session: Any) -> None:
        import storage

        storage.register_model_version(session, info.version, str(target), metrics=info.metrics)

    _with_database(settings, record)
    return info


def _model_dir(model_dir: Path | None) -> Path:
    return model_dir if model_dir is not None else classifiers.resolve_model_dir(_settings())


def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Labelled JSONL file (or directory of *.jsonl).")],
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Model to evaluate [default: the current one].")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object keyed by label set.")] = False,
) -> None:
    """Score a model on labelled rows: precision/recall/F1 per label, macro-F1, confusion, calibration."""
    model = classifiers.load_model(_model_dir(model_dir))
    rows = read_rows([data])
    report = classifiers.evaluate(model, rows)
    if not report.label_sets:
        names = [ls.name for ls in model.label_sets]
        raise InputError(f"no row in {data} has a label for any of the model's label sets {names}")
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
        return
    classifiers.render_report(report, console)


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Trained model versions of this deployment, oldest first; * marks the promoted one."""
    settings = _settings()
    versions = classifiers.list_versions(settings.models_root)
    if as_json:
        out = [{"version": v.version, "path": str(v.path), "created_at": v.created_at, "promoted": v.promoted,
                "metrics": v.metrics} for v in versions]
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    table = Table(title=safe(f"model versions in {settings.models_root} (current: {classifiers.resolve_model_dir(settings)})"))
    for col in ("", "version", "created", "dev macro-F1"):
        table.add_column(col)
    for v in versions:
        f1 = ", ".join(f"{k} {m.get('macro_f1', '-')}" for k, m in v.metrics.items())
        table.add_row("*" if v.promoted else "", safe(v.version), safe(v.created_at), safe(f1))
    console.print(table)


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="A version from `complaintdesk models list`.")]) -> None:
    """Make VERSION the model used by scan, submit, reclassify and evaluate."""
    settings = _settings()
    promote_version(settings, version, actor="cli")
    console.print(f"promoted {safe(version)}")


def promote_version(settings: Settings, version: str, *, actor: str) -> None:
    """Promote on disk, then record it in the database registry when there is one."""
    from classifiers.versions import version_dir

    classifiers.promote(settings.models_root, version)

    def record(session: Any) -> None:
        import storage

        storage.register_model_version(session, version, str(version_dir(settings.models_root, version)))
        storage.promote_model_version(session, version, actor=actor)

    _with_database(settings, record)


@models_app.command("rollback")
def models_rollback() -> None:
    """Go back to the version promoted before the current one (or to the bundled model)."""
    settings = _settings()
    version = classifiers.rollback(settings.models_root)
    if version is None:
        console.print(f"rolled back to {safe(classifiers.resolve_model_dir(settings))} (no promoted version left)")
        return
    promote_version(settings, version, actor="cli")
    console.print(f"rolled back to {safe(version)}")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and the ``models`` group (plus retrain/reclassify) to ``app``."""
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.add_typer(models_app, name="models")
    app.command("retrain")(retrain_cmd)
    app.command("reclassify")(reclassify_cmd)


OPEN_STATUSES = ("new", "triaged", "in_progress", "waiting_citizen")


def retrain_cmd(
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="Shipped training data (repeatable) [default: classifiers/data].")
    ] = None,
    heldout: Annotated[
        list[Path] | None,
        typer.Option("--heldout", help="Held-out evaluation JSONL (repeatable) [default: classifiers/data/heldout]."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Train and compare, but never promote.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain even when no correction is new since the last retrain.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Train a candidate on shipped data + reviewer corrections; promote it only if macro-F1 does not drop.

    Does nothing (exit 0) when there are no corrections, or no new ones since the last retrain: safe to
    run nightly from cron or a systemd timer.
    """
    import storage
    from classifiers.retrain import already_trained_on, retrain

    settings = _settings()
    current_dir = classifiers.resolve_model_dir(settings)
    current = classifiers.load_model(current_dir)
    with storage.open_database(settings.resolved_database_url) as db, db.session() as session:
        corrections = storage.confirmed_training_rows(session)
    if not force:
        if not corrections:
            reason = "no reviewer corrections yet"
        elif seen := already_trained_on(corrections, [current_dir, *(v.path for v in classifiers.list_versions(settings.models_root))]):
            reason = f"no new corrections: {seen} was already trained on these {len(corrections)} corrected cases"
        else:
            reason = ""
        if reason:
            if as_json:
                sys.stdout.write(json.dumps({"retrained": False, "reason": reason, "current": current.version}) + "\n")
            else:
                console.print(safe(f"{reason}; nothing to retrain, keeping {current.version} (--force retrains anyway)"))
            return
    staging = _staging_dir(settings)
    result = retrain(
        data=data or [BUNDLED_DATA_DIR],
        corrections=corrections,
        heldout=heldout or [BUNDLED_DATA_DIR / "heldout"],
        current=current,
        out_dir=staging,
        seed=seed,
    )
    info = _install_version(settings, staging, result.candidate)
    promoted = result.decision.promote and not dry_run and info.version != current.version
    if promoted:
        promote_version(settings, info.version, actor="retrain")
    if as_json:
        out = result.to_json() | {"retrained": True, "candidate": info.version, "promoted": promoted, "dry_run": dry_run}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"held-out macro-F1 ({result.eval_rows} rows, incl. a share of corrections)")
    for col in ("label set", f"current {current.version}", f"candidate {info.version}", "n"):
        table.add_column(safe(col))
    for name, cur in result.current_report.label_sets.items():
        cand = result.candidate_report.label_sets.get(name)
        table.add_row(safe(name), f"{cur.macro_f1:.4f}", f"{cand.macro_f1:.4f}" if cand else "-", str(cur.n))
    console.print(table)
    console.print(f"{len(corrections)} corrected cases, {result.train_corrections} trained on; "
                  f"gate: {safe(result.decision.reason)}")
    if promoted:
        console.print(f"[green]promoted {safe(info.version)}[/green] (previous versions kept; `complaintdesk models rollback`)")
    else:
        console.print(safe(f"kept {current.version}; candidate {info.version} stays registered, not promoted"))


def reclassify_cmd(
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Model to use [default: the current one].")] = None,
    batch_size: Annotated[int, typer.Option(help="Cases classified per batch (and per transaction).")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Re-run the current model over open cases; labels a reviewer confirmed are never overwritten."""
    import storage

    settings = _settings()
    model = classifiers.load_model(_model_dir(model_dir))
    thresholds = {ls.name: ls.threshold for ls in model.label_sets}
    changed_cases = changed_labels = kept = 0
    with storage.open_database(settings.resolved_database_url) as db:
        with db.session() as session:
            todo = [(c.reference, c.text) for status in OPEN_STATUSES for c in storage.list_cases(session, status=status)]
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            results = model.classify([text for _, text in batch])
            with db.session() as session:
                for (reference, _), classification in zip(batch, results, strict=True):
                    case = storage.get_case(session, reference)
                    kept += len(storage.confirmed_labels(case))
                    changed = storage.relabel_case(session, case, classification, actor="reclassify",
                                                   thresholds=thresholds)
                    changed_cases += bool(changed)
                    changed_labels += len(changed)
    summary = {"model_version": model.version, "cases": len(todo), "changed_cases": changed_cases,
               "changed_labels": changed_labels, "confirmed_labels_kept": kept}
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    console.print(f"reclassified {len(todo)} open cases with {safe(model.version)}: {changed_cases} changed "
                  f"({changed_labels} labels), {kept} reviewer-confirmed labels kept")
