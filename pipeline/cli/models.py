"""Model commands of the ``complaintdesk`` CLI: train, evaluate, models list|promote|rollback, retrain,
reclassify, correct.

Glue only: parse options, build settings, open the database, call ``pipeline.models`` (the service a
web app would call too) and print. Errors are ``ComplaintdeskError`` subclasses; ``pipeline.cli.main``
maps them to exit codes. ``register(app)`` adds the commands.

Where models live:
- ``train --model-dir DIR`` writes exactly there, without a database (the Makefile builds the bundled
  model this way);
- ``train`` alone writes ``Settings.models_root/<version>`` and registers it in the database (a
  candidate: ``models promote`` it);
- every other command uses the current model (``pipeline.models.current_model_dir``): ``--model-dir``,
  else ``Settings.model_dir``, else the version promoted in the database, else the bundled
  ``classifiers/model``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import classifiers
import storage
from classifiers.dataset import read_rows
from classifiers.meta import read_meta
from pipeline import models as service
from pipeline.cli.output import console, safe
from pipeline.cli.params import require_paths
from pipeline.config import Settings, load_settings
from pipeline.core.actor import Actor
from pipeline.core.errors import InputError, InvalidLabelError
from pipeline.database import open_db
from pipeline.review.desk import open_desk
from pipeline.review.report import CorrectionsReport, corrections_report, record_retrain

models_app = typer.Typer(help="List, promote and roll back trained model versions.", no_args_is_help=True)


def _settings() -> Settings:
    """The settings of this invocation, honouring the main CLI's global options when present."""
    cli = sys.modules.get("pipeline.cli.app")
    if cli is not None and hasattr(cli, "settings"):
        return cli.settings()
    return load_settings()


@contextmanager
def _database(settings: Settings) -> Iterator[storage.Database]:
    """The deployment's database (the model registry lives there); run ``complaintdesk init`` first."""
    with open_db(settings) as db:
        yield db


def _current_dir(settings: Settings, model_dir: Path | None) -> Path:
    """``--model-dir``, else ``Settings.model_dir`` (no database needed for either), else the promoted
    model."""
    explicit = model_dir if model_dir is not None else settings.model_dir
    if explicit is not None:
        return Path(explicit)
    with _database(settings) as db:
        return service.current_model_dir(db, settings.models_root)


def train_cmd(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data",
                     help="JSONL file or directory of *.jsonl (repeatable) [default: classifiers/data]."),
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Write the model here instead of a new version in HOME/models."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same data and seed give the same model.")] = 0,
    labels: Annotated[
        Path | None,
        typer.Option(help="Label sets file (TOML/JSON) "
                          "[default: labels.toml next to the data, else built-in]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the model info as JSON.")] = False,
) -> None:
    """Train the classifiers from labelled JSONL rows (text + department/sentiment/kind...)."""
    paths = data or [service.BUNDLED_DATA_DIR]
    label_sets = classifiers.load_label_sets(labels) if labels else None
    if model_dir is not None:
        info = classifiers.train(paths, model_dir, seed=seed, label_sets=label_sets)
    else:
        settings = _settings()
        with _database(settings) as db:
            info = service.train_and_install(paths, db, settings.models_root, actor="cli", seed=seed,
                                             label_sets=label_sets)
    if as_json:
        console.print_json(json.dumps(info.to_json(), ensure_ascii=False))
        return
    console.print(f"trained [bold]{safe(info.version)}[/bold] in {info.seconds:.1f}s -> {safe(info.path)}")
    table = Table(title="dev split (carved from the rows, or given; scored before the refit on all rows)")
    for col in ("label set", "labels", "rows per language", "accuracy", "macro-F1", "n"):
        table.add_column(col)
    for ls in info.label_sets:
        per_lang = ", ".join(f"{lang} {sum(info.counts[lang].get(ls.name, {}).values())}"
                             for lang in info.languages)
        m = info.metrics.get(ls.name, {})
        table.add_row(ls.name, str(len(ls.labels)), per_lang, str(m.get("accuracy", "-")),
                      str(m.get("macro_f1", "-")), str(m.get("n", "-")))
    console.print(table)
    selection = read_meta(info.path).get("selection", {})
    if selection.get("candidates"):
        chosen = json.dumps(selection["chosen"]) if selection["chosen"] else "the config as written"
        console.print(f"settings chosen on {selection['dev_rows']} dev rows among "
                      f"{len(selection['candidates'])} candidates: {safe(chosen)}")
    if model_dir is None:
        console.print(f"promote it with: complaintdesk models promote {safe(info.version)}")


def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="Labelled JSONL file (or directory of *.jsonl).")],
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model to evaluate [default: the current one].")
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option("--baseline", help="Also train TF-IDF (1-2 grams) + logistic regression (C=5) on "
                                        "--train-data and score it on the same rows (needs the "
                                        "`baseline` extra: scikit-learn)."),
    ] = False,
    train_data: Annotated[
        list[Path] | None,
        typer.Option("--train-data", help="Training rows for --baseline (repeatable) "
                                          "[default: classifiers/data]; give the model's own."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object keyed by label set.")
    ] = False,
) -> None:
    """Score a model on labelled rows: precision/recall/F1 per label, macro-F1, confusion, calibration,
    top-2 accuracy, the coverage/accuracy curve and what the review thresholds auto-accept."""
    require_paths([data, *(train_data or [])])
    model = classifiers.load_model(_current_dir(_settings(), model_dir))
    rows = read_rows([data])
    report = classifiers.evaluate(model, rows)
    if not report.label_sets:
        names = [ls.name for ls in model.label_sets]
        raise InputError(f"no row in {data} has a label for any of the model's label sets {names}")
    base_report = None
    if baseline:
        from classifiers.baseline import train_baseline

        base = train_baseline(read_rows(train_data or [service.BUNDLED_DATA_DIR]), model.label_sets)
        base_report = classifiers.evaluate(base, rows)
    if as_json:
        out = report.to_json()
        if base_report is not None:
            out = {"model": out, "baseline": base_report.to_json()}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    classifiers.render_report(report, console)
    if base_report is not None:
        table = Table(
            title="model vs baseline (TF-IDF 1-2 grams + logistic regression, C=5) on the same rows")
        # one row per metric: fits an 80-column terminal, where eight columns of numbers wrapped
        for col in ("label set", "metric", "model", "baseline", "n"):
            table.add_column(col, justify="right")
        for name, r in report.label_sets.items():
            b = base_report.label_sets.get(name)
            metrics = (("accuracy", r.accuracy, b.accuracy if b else None),
                    ("macro-F1", r.macro_f1, b.macro_f1 if b else None),
                    ("top-2", r.top2_accuracy or 0, (b.top2_accuracy or 0) if b else None))
            for metric, mine, theirs in metrics:
                shown = "-" if theirs is None else f"{theirs:.3f}"
                table.add_row(name, metric, f"{mine:.3f}", shown, str(r.n))
        console.print(table)


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Registered model versions of this deployment, oldest first; * marks the promoted one."""
    settings = _settings()
    with _database(settings) as db:
        versions = service.list_versions(db, settings.models_root)
        current = service.current_model_dir(db, settings.models_root, model_dir=settings.model_dir)
    if as_json:
        sys.stdout.write(json.dumps([v.to_json() for v in versions], ensure_ascii=False) + "\n")
        return
    table = Table(title=safe(f"model versions in {settings.models_root} (current: {current})"))
    for col in ("", "version", "status", "created", "dev macro-F1"):
        table.add_column(col)
    for v in versions:
        f1 = ", ".join(f"{k} {m.get('macro_f1', '-')}" for k, m in v.metrics.items())
        table.add_row("*" if v.promoted else "", safe(v.version), v.status,
                      v.created_at.isoformat(timespec="seconds"), safe(f1))
    console.print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="A version from `complaintdesk models list`.")],
) -> None:
    """Make VERSION the model used by scan, submit, mail, reclassify and evaluate."""
    settings = _settings()
    with _database(settings) as db:
        service.promote(db, settings.models_root, version, actor="cli")
    console.print(f"promoted {safe(version)}")


@models_app.command("rollback")
def models_rollback() -> None:
    """Go back to the version promoted before the current one (or to the bundled model)."""
    settings = _settings()
    with _database(settings) as db:
        back = service.rollback(db, settings.models_root, actor="cli")
        current = service.current_model_dir(db, settings.models_root, model_dir=settings.model_dir)
    if back is None:
        console.print(f"rolled back to {safe(current)} (no promoted version left)")
        return
    console.print(f"rolled back to {safe(back.version)}")


def register(app: typer.Typer) -> None:
    """Add ``train``, ``evaluate`` and the ``models`` group (plus retrain/reclassify) to ``app``."""
    app.command("train")(train_cmd)
    app.command("evaluate")(evaluate_cmd)
    app.add_typer(models_app, name="models")
    app.command("retrain")(retrain_cmd)
    app.command("reclassify")(reclassify_cmd)
    app.command("correct")(correct_cmd)


def retrain_cmd(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Shipped training data (repeatable) [default: classifiers/data]."),
    ] = None,
    heldout: Annotated[
        list[Path] | None,
        typer.Option("--heldout",
                     help="Held-out evaluation JSONL (repeatable) [default: classifiers/data/heldout]."),
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
    settings = _settings()
    with _database(settings) as db:
        outcome = service.retrain(db, settings.models_root, actor="retrain", model_dir=settings.model_dir,
                                  data=data or (), heldout=heldout or (), seed=seed, dry_run=dry_run,
                                  force=force)
        report = _what_corrections_did(settings, db, outcome)
    if as_json:
        sys.stdout.write(json.dumps(outcome.to_json(), ensure_ascii=False) + "\n")
        return
    result = outcome.result
    if result is None:
        console.print(f"{safe(outcome.reason)}; nothing to retrain, keeping {safe(outcome.current)} "
                      "(--force retrains anyway)")
        return
    table = Table(title=f"held-out macro-F1 ({result.eval_rows} rows, incl. a share of corrections)")
    for col in ("label set", f"current {outcome.current}", f"candidate {outcome.candidate}", "n"):
        table.add_column(col)
    for name, cur in result.current_report.label_sets.items():
        cand = result.candidate_report.label_sets.get(name)
        table.add_row(name, f"{cur.macro_f1:.4f}", f"{cand.macro_f1:.4f}" if cand else "-", str(cur.n))
    console.print(table)
    console.print(f"{outcome.corrections} corrected cases, {result.train_corrections} trained on; "
                  f"gate: {result.decision.reason}")
    if report is not None and report.most_corrected:
        console.print("labels most corrected by reviewers: " + "; ".join(
            f"{safe(c.label_set)} {safe(c.old or '-')} -> {safe(c.new)} ({c.count})"
            for c in report.most_corrected[:5]))
    if outcome.promoted:
        console.print(f"[green]promoted {safe(outcome.candidate)}[/green] (previous versions kept; "
                      "`complaintdesk models rollback`)")
    else:
        console.print(f"kept {safe(outcome.current)}; candidate {safe(outcome.candidate)} stays registered, "
                      "not promoted")


def _what_corrections_did(settings: Settings, db: storage.Database,
                          outcome: service.RetrainOutcome) -> CorrectionsReport | None:
    """Keep a retrain's comparison for the models page (``pipeline.review.report``) and read back the
    most corrected labels; None when nothing was retrained."""
    if outcome.result is None:
        return None
    desk = open_desk(settings, db=db)
    actor = Actor.supervisor("retrain")
    record_retrain(desk, actor, outcome)
    return corrections_report(desk, actor)


def reclassify_cmd(
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model to use [default: the current one].")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Cases classified per batch (and per transaction).")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Re-run the current model over open cases; labels a reviewer confirmed are never overwritten."""
    settings = _settings()
    with _database(settings) as db:
        current = service.current_model_dir(db, settings.models_root,
                                            model_dir=model_dir or settings.model_dir)
        summary = service.reclassify(db, classifiers.load_model(current), actor="reclassify",
                                     batch_size=batch_size)
    if as_json:
        sys.stdout.write(json.dumps(summary.to_json()) + "\n")
        return
    console.print(f"reclassified {summary.cases} open cases with {safe(summary.model_version)}: "
                  f"{summary.changed_cases} changed ({summary.changed_labels} labels), "
                  f"{summary.confirmed_labels_kept} reviewer-confirmed labels kept")


def correct_cmd(
    reference: Annotated[str, typer.Argument(help="The case, e.g. 2026-000123.")],
    label_set: Annotated[
        str, typer.Option("--label-set", help="Which label set: department, sentiment, kind...")
    ],
    label: Annotated[str, typer.Option("--label", help="The right label; one of the label set's labels.")],
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who decided (recorded with the correction).")],
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Model whose label sets apply [default: the current one]."),
    ] = None,
) -> None:
    """Set (or confirm) a case's label as a reviewer; it becomes training data for `complaintdesk retrain`."""
    settings = _settings()
    with _database(settings) as db:
        current = service.current_model_dir(db, settings.models_root,
                                            model_dir=model_dir or settings.model_dir)
        label_sets = classifiers.read_label_sets(current)
        try:
            case = service.correct_label(db, reference, label_set, label, reviewer=reviewer,
                                         label_sets=label_sets)
        except InvalidLabelError as e:
            # a bad option value is a usage error (exit 2), shown with the option it came from
            hint = "--label-set" if label_set not in {ls.name for ls in label_sets} else "--label"
            raise typer.BadParameter(str(e), param_hint=hint) from e
    console.print(f"case {safe(case['reference'])}: {safe(label_set)} = {safe(label)} "
                  f"(confirmed by {safe(reviewer)})")
