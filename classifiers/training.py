"""Training: one spaCy pipeline per language, one exclusive ``textcat`` per label set.

The architecture, optimizer and schedule come from ``classifiers/config.cfg`` (spaCy's config
system; architectures are resolved from spaCy's registry). Training is deterministic for a seed:
``spacy.util.fix_random_seed`` before each pipeline is built, and batches shuffled by a seeded
``random.Random``. Each component is updated only with the rows that have its label set, so a row
with a ``department`` but no ``kind`` still trains the department classifier.

Calibration: bag-of-words softmax scores trained with spaCy's squared-error loss come out
under-confident, so each label set gets a temperature fitted on the dev split (log-loss, grid search)
and stored in ``meta.json``; ``SpacyClassifier`` applies it. The refit on all rows reuses it.
Label sets with enough dev rows (``[training] bias_min_rows``) also get per-label offsets of the
log-scores that maximise dev macro-F1 (``fit_biases``; the temperature is fitted after them).

The version is ``m-<UTC date>-<hash>``: the hash covers the rows, label sets, config, seed and the
training code (this module, ``architectures.py``, ``text.py``, the spaCy version), and
re-training identical data into a directory that already holds that hash keeps its version.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import spacy
from spacy.language import Language
from spacy.pipeline import TextCategorizer
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, load_config, registry
from thinc.api import Config, Model

from classifiers.dataset import LANGUAGES, fingerprint, read_rows, row_language
from classifiers.labels import LabelSet, find_label_sets, restrict_to_data
from classifiers.meta import META_FILE
from classifiers.noise import ocr_noise
from classifiers.runtime import SpacyClassifier, apply_temperature, cat_name, component_name
from classifiers.text import normalize_text
from pipeline.core.errors import InputError, ModelError
from pipeline.core.model import Classification

DEFAULT_CONFIG = Path(__file__).resolve().parent / "config.cfg"
_Row = TypeVar("_Row", bound=Mapping[str, Any])


@dataclass(frozen=True)
class ModelInfo:
    """What ``train`` produced: where, which version, and how well it did on the dev split."""

    version: str
    path: Path
    label_sets: tuple[LabelSet, ...]
    languages: tuple[str, ...]
    counts: dict[str, dict[str, dict[str, int]]]  # lang -> label set -> label -> rows
    metrics: dict[str, Any] = field(default_factory=dict)  # label set -> {accuracy, macro_f1, n}
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "path": str(self.path),
            "label_sets": [ls.to_dict() for ls in self.label_sets],
            "languages": list(self.languages),
            "counts": self.counts,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 2),
        }


def load_training_config(path: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """The training config (default ``classifiers/config.cfg``) with dotted ``overrides`` applied."""
    return load_config(path or DEFAULT_CONFIG, overrides=dict(overrides or {}), interpolate=True)


def train(
    data: Sequence[Path],
    out_dir: Path,
    *,
    seed: int = 0,
    label_sets: Sequence[LabelSet] | None = None,
    config: Config | None = None,
    extra_rows: Sequence[Mapping[str, Any]] = (),
    provenance: Mapping[str, Any] | None = None,
) -> ModelInfo:
    """Train a model on the JSONL files (or directories of them) in ``data`` and write it to ``out_dir``.

    Args:
        data: JSONL files, or directories whose ``*.jsonl`` files are read.
        out_dir: created or replaced; gets ``meta.json`` plus ``en/`` and/or ``zh/``.
        seed: fixes every random choice; the same data and seed give the same scores.
        label_sets: default: ``labels.toml`` in a data directory, else the bundled defaults.
        config: default: ``classifiers/config.cfg``.
        extra_rows: more rows (e.g. reviewer corrections) appended to those read from ``data``.
        provenance: JSON-able facts about the inputs, stored in ``meta.json`` under ``provenance``
            (``classifiers.retrain`` records which corrections it trained on).

    Raises:
        InputError: the data cannot be read or has no label set with two labels.
    """
    rows = read_rows(data) + [dict(r) for r in extra_rows]
    sets = tuple(label_sets) if label_sets is not None else find_label_sets(data)
    return train_rows(rows, out_dir, seed=seed, label_sets=sets, config=config, provenance=provenance)


def train_rows(
    rows: Sequence[Mapping[str, Any]],
    out_dir: Path,
    *,
    seed: int = 0,
    label_sets: Sequence[LabelSet],
    config: Config | None = None,
    provenance: Mapping[str, Any] | None = None,
    calibration_rows: Sequence[Mapping[str, Any]] | None = None,
) -> ModelInfo:
    """Train on already-read rows; see ``train``.

    ``calibration_rows``: labelled rows never trained on that replace the internal dev split for the
    dev metrics, temperatures and label biases (``bench/classify.py`` passes a dataset's own dev split).
    """
    started = time.perf_counter()
    cfg = config or load_training_config()
    rows = prepared = [_prepare(r) for r in rows]
    sets = restrict_to_data(label_sets, rows)
    if not sets:
        names = [ls.name for ls in label_sets]
        raise InputError(f"no label set of {names} has two or more labels in the {len(rows)} training rows")
    short = fingerprint(rows, [ls.name for ls in sets], cfg.to_str(),
                        json.dumps([ls.to_dict() for ls in sets]), str(seed), _code_revision())[:10]
    version = _version_for(out_dir, short)
    by_lang = {lang: [r for r in rows if r["lang"] == lang] for lang in LANGUAGES}
    by_lang = {lang: rs for lang, rs in by_lang.items() if rs}

    tcfg = cfg["training"]
    if calibration_rows is not None:
        train_part = by_lang
        dev_rows = [_prepare(r) for r in calibration_rows]
        dev_source = "given"
    else:
        train_list, dev_rows = carve_dev(prepared, [ls.name for ls in sets], float(tcfg["dev_share"]), seed)
        train_part = {lang: [r for r in train_list if r["lang"] == lang] for lang in by_lang}
        dev_source = "carved"
    described = description_rows(sets, tuple(by_lang))
    train_part = {lang: rs + [r for r in described if r["lang"] == lang] for lang, rs in train_part.items()}
    dev_by_lang = {lang: [r for r in dev_rows if r["lang"] == lang] for lang in LANGUAGES}
    # too few dev rows to choose an epoch or settings on: the config as written, all its epochs
    enough_dev = len(dev_rows) >= int(tcfg["min_dev_rows"])
    candidates: list[dict[str, Any]] = [{}]
    if enough_dev and tcfg["search"]:
        candidates += SEARCH_GRID
    tried: list[dict[str, Any]] = []
    best_fit: tuple[float, int, Config, dict[str, tuple[Language, int]]] | None = None
    for k, choice in enumerate(candidates):
        cand_cfg = candidate_config(cfg, choice, enough_dev)
        fitted_k = {lang: _fit(lang, rs, sets, cand_cfg, seed, dev_by_lang[lang])
                    for lang, rs in train_part.items() if rs}
        if len(candidates) == 1:
            best_fit = (0.0, k, cand_cfg, fitted_k)
            break
        score, record = _dev_choice_score(fitted_k, sets, version, dev_rows, cand_cfg)
        tried.append({"settings": choice, **record})
        if best_fit is None or score > best_fit[0] + 1e-9:
            best_fit = (score, k, cand_cfg, fitted_k)
    assert best_fit is not None
    _, best_k, cfg, fitted = best_fit
    chosen = candidates[best_k]
    selection = {"dev_source": dev_source, "dev_rows": len(dev_rows), "enough_dev_rows": enough_dev,
                 "patience": int(cfg["training"]["patience"]), "chosen": chosen, "candidates": tried}
    pipelines = {lang: nlp for lang, (nlp, _) in fitted.items()}
    kept_epochs = {lang: n for lang, (_, n) in fitted.items()}
    metrics: dict[str, Any] = {}
    temperatures: dict[str, float] = {}
    biases: dict[str, dict[str, float]] = {}
    bias_gains: dict[str, float] = {}
    if dev_rows and pipelines:
        from classifiers.evaluation import evaluate  # evaluation imports runtime; keep import local

        raw = SpacyClassifier(pipelines, sets, version)
        dev_results = raw.classify([str(r["text"]) for r in dev_rows])  # once, for both fits
        biases = fit_biases(raw, dev_rows, min_rows=int(cfg["training"]["bias_min_rows"]), gains=bias_gains,
                            results=dev_results)
        temperatures = fit_temperatures(raw, dev_rows, biases, results=dev_results)
        calibrated = SpacyClassifier(
            pipelines, sets, version, {"temperatures": temperatures, "biases": biases})
        report = evaluate(calibrated, dev_rows)
        metrics = {
            name: {"accuracy": r.accuracy, "macro_f1": r.macro_f1, "n": r.n, "ece": r.ece}
            for name, r in report.label_sets.items()
        }
    if dev_source == "carved" and dev_rows and cfg["training"]["refit_on_all"]:
        # as many epochs as the dev split chose (or [training] epochs: see _fit)
        pipelines = {
            lang: _fit(lang, rs + [r for r in described if r["lang"] == lang], sets, cfg, seed,
                       epochs=kept_epochs.get(lang))[0]
            for lang, rs in by_lang.items()
        }

    counts = {
        lang: {ls.name: dict(Counter(str(r[ls.name]) for r in rs if r.get(ls.name))) for ls in sets}
        for lang, rs in by_lang.items()
    }
    meta = {
        "version": version,
        "fingerprint": short,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "spacy_version": spacy.__version__,
        "seed": seed,
        "label_sets": [ls.to_dict() for ls in sets],
        "languages": list(pipelines),
        "architectures": {lang: cfg["pipelines"][lang] for lang in pipelines},
        "rows": len(rows),
        "counts": counts,
        "dev_rows": len(dev_rows),
        "description_rows": len(described),
        "metrics": metrics,
        "epochs": kept_epochs,
        "temperatures": temperatures,
        "biases": biases,
        "bias_cross_fitted_gain": bias_gains,
        "selection": selection,
        "config": cfg.to_str(),
        "provenance": dict(provenance or {}),
    }
    _write_model(out_dir, pipelines, meta)
    return ModelInfo(
        version=version,
        path=out_dir,
        label_sets=sets,
        languages=tuple(pipelines),
        counts=counts,
        metrics=metrics,
        seconds=time.perf_counter() - started,
    )


#: How a ``handles`` entry of ``labels.toml`` becomes training rows: the entry alone, and in a short
#: sentence (the model sees it both as a keyword list and as running text).
DESCRIPTION_FRAMES = {
    "en": ("{}", "problem with the {}"),
    "zh": ("{}", "关于{}的问题"),
}


def description_rows(label_sets: Sequence[LabelSet], languages: Sequence[str]) -> list[dict[str, Any]]:
    """Training rows made from the label sets' ``handles`` (what each label owns), for ``languages``.

    Each row carries one label set's label only, so it trains that classifier alone. Languages the
    data has no rows in are skipped (a description alone does not make a pipeline).
    """
    rows = []
    for ls in label_sets:
        for label, by_lang in ls.handles.items():
            for lang, items in by_lang.items():
                if lang not in languages:
                    continue
                for item in items:
                    for frame in DESCRIPTION_FRAMES.get(lang, ("{}",)):
                        text = normalize_text(frame.format(item))
                        rows.append({"text": text, "lang": lang, ls.name: label})
    return rows


#: Settings tried on the dev split besides the config as written (``train_rows`` keeps the best; the
#: same grid ``bench/classify.py`` used to tune by hand). Keys: ``architecture`` (applied to the
#: architecture of every language in ``[pipelines]``; ``char_ngrams`` not to Chinese, whose tokens are
#: single characters already), ``training`` and ``optimizer``. The config as written is tuned for a few
#: hundred rows; thousands of rows want a bigger hash table, bigger batches, TF-like weighting and,
#: for OCR-damaged words, character n-grams.
SEARCH_GRID: list[dict[str, dict[str, Any]]] = [
    {"architecture": {"length": 262144}, "training": {"batch_size": 64}, "optimizer": {"learn_rate": 0.005}},
    {"architecture": {"length": 262144, "weighting": "sublinear_l2"}, "training": {"batch_size": 64},
     "optimizer": {"learn_rate": 0.01}},
    {"architecture": {"length": 1048576, "weighting": "sublinear_l2", "char_ngrams": 5},
     "training": {"batch_size": 64}, "optimizer": {"learn_rate": 0.01}},
]


def candidate_config(cfg: Config, choice: Mapping[str, Mapping[str, Any]], use_dev: bool = True) -> Config:
    """``cfg`` with one ``SEARCH_GRID`` entry applied; ``use_dev=False`` turns patience off (too few dev
    rows to choose an epoch on)."""
    out = Config(cfg).copy()
    for section in ("training", "optimizer"):
        for key, value in choice.get(section, {}).items():
            out[section][key] = value
    for lang, arch in out["pipelines"].items():
        for key, value in choice.get("architecture", {}).items():
            if key == "char_ngrams" and lang == "zh":
                continue
            out["architectures"][arch][key] = value
    if not use_dev:
        out["training"]["patience"] = 0
    return out


def carve_dev(
    rows: Sequence[_Row], fields: Sequence[str], share: float, seed: int
) -> tuple[list[_Row], list[_Row]]:
    """(training rows, dev rows): ``share`` of the rows, stratified by language and labels, seeded.

    Rows are grouped by (language, label of every label set), each group shuffled with
    ``random.Random(seed)``, and every ``1/share``-th row of the groups laid end to end goes to dev,
    so each group gives its proportional share (a group of one row may give none).
    """
    if share <= 0:
        return list(rows), []
    groups: dict[tuple[str, ...], list[_Row]] = {}
    for r in rows:
        groups.setdefault((str(r["lang"]), *(str(r.get(f) or "") for f in fields)), []).append(r)
    rng = random.Random(seed)
    train_part: list[_Row] = []
    dev: list[_Row] = []
    position = 0
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        for r in members:
            (dev if int((position + 1) * share) > int(position * share) else train_part).append(r)
            position += 1
    return train_part, dev


def _dev_choice_score(
    fitted: Mapping[str, tuple[Language, int]],
    sets: Sequence[LabelSet],
    version: str,
    dev_rows: Sequence[Mapping[str, Any]],
    cfg: Config,
) -> tuple[float, dict[str, Any]]:
    """How ``train_rows`` (and ``bench/classify.py``) rank candidate settings: mean raw macro-F1 on dev
    and on an OCR-noised copy of dev, plus the cross-fitted gain of the macro-F1 label offsets where
    they are kept (an estimate not flattered by offsets fitted on the rows scored)."""
    from classifiers.evaluation import evaluate

    raw = SpacyClassifier({lang: nlp for lang, (nlp, _) in fitted.items()}, sets, version)
    clean = evaluate(raw, dev_rows).macro_f1()
    noisy_rows = [{**r, "text": ocr_noise(str(r["text"]), 10**6 + i)} for i, r in enumerate(dev_rows)]
    noisy = evaluate(raw, noisy_rows).macro_f1()
    gains: dict[str, float] = {}
    kept = fit_biases(raw, dev_rows, min_rows=int(cfg["training"]["bias_min_rows"]), gains=gains)
    gain = sum(gains[name] for name in kept) / max(len(sets), 1)
    score = (clean + noisy) / 2 + gain
    return score, {"dev_macro_f1": clean, "noisy_dev_macro_f1": noisy, "offsets_gain": round(gain, 4),
                   "score": round(score, 4), "epochs": {lang: n for lang, (_, n) in fitted.items()}}


def fit_temperatures(
    model: SpacyClassifier,
    rows: Sequence[Mapping[str, Any]],
    biases: Mapping[str, Mapping[str, float]] | None = None,
    *,
    results: Sequence[Classification] | None = None,
) -> dict[str, float]:
    """Per label set, the temperature (0.05..3) that minimises the log-loss of ``model`` on ``rows``.

    ``model`` must be uncalibrated; ``biases`` (see ``fit_biases``) are applied before the temperature.
    ``results``: ``model.classify`` of the rows' texts, when the caller has it already.
    """
    if results is None:
        results = model.classify([str(r["text"]) for r in rows])
    grid = [round(0.05 * i, 2) for i in range(1, 61)]
    out = {}
    for ls in model.label_sets:
        pairs = [(c.labels[ls.name].scores, str(r[ls.name])) for r, c in zip(rows, results, strict=True)
                 if r.get(ls.name) in ls.labels]
        if len(pairs) < 5:
            continue
        shift = (biases or {}).get(ls.name)

        # min() below calls nll at once, inside this iteration, so the loop variables are the current ones.
        def nll(t: float) -> float:
            return -sum(math.log(max(apply_temperature(s, t, shift)[gold], 1e-12)) for s, gold in pairs)  # noqa: B023

        out[ls.name] = min(grid, key=nll)
    return out


def fit_biases(
    model: SpacyClassifier,
    rows: Sequence[Mapping[str, Any]],
    *,
    min_rows: int = 200,
    limit: float = 2.0,
    step: float = 0.1,
    gains: dict[str, float] | None = None,
    results: Sequence[Classification] | None = None,
) -> dict[str, dict[str, float]]:
    """Per label set with at least ``min_rows`` labelled rows: log-score offsets that maximise macro-F1.

    Argmax of the raw scores maximises accuracy, which under-predicts rare labels; macro-F1 weighs
    every label the same. Coordinate ascent over one offset per label (``-limit..limit`` by ``step``,
    smaller offsets first, up to three passes, a move only when macro-F1 strictly improves). The
    offsets are kept only when they also help on rows they were not fitted on: fitted on one half of
    ``rows`` and scored on the other (both ways, five seeded splits), the mean macro-F1 gain must be
    positive; with few rows of a label the offsets fit noise and are dropped. ``model`` must be
    uncalibrated. ``gains``, when given, receives that mean held-out gain per label set considered
    (an honest estimate of what the offsets add, unlike macro-F1 on the rows they were fitted on).
    ``results``: ``model.classify`` of the rows' texts, when the caller has it already.
    """
    import numpy as np  # a dependency of spaCy/thinc

    if results is None:
        results = model.classify([str(r["text"]) for r in rows])
    out: dict[str, dict[str, float]] = {}
    for ls in model.label_sets:
        labels = list(ls.labels)
        pairs = [(c.labels[ls.name].scores, labels.index(str(r[ls.name])))
                 for r, c in zip(rows, results, strict=True) if r.get(ls.name) in ls.labels]
        if len(pairs) < min_rows:
            continue
        logp = np.log(np.maximum(np.array([[s[lab] for lab in labels] for s, _ in pairs]), 1e-12))
        gold = np.array([g for _, g in pairs])
        fold_gains = []
        for split_seed in range(5):
            order = np.random.RandomState(split_seed).permutation(len(gold))
            halves = (order[: len(order) // 2], order[len(order) // 2 :])
            for fit_on, score_on in (halves, halves[::-1]):
                offsets = _fit_offsets(logp[fit_on], gold[fit_on], len(labels), limit, step)
                fold_gains.append(
                    _macro_f1(gold[score_on], (logp[score_on] + offsets).argmax(axis=1), len(labels))
                    - _macro_f1(gold[score_on], logp[score_on].argmax(axis=1), len(labels))
                )
        if gains is not None:
            gains[ls.name] = round(sum(fold_gains) / len(fold_gains), 4)
        if sum(fold_gains) <= 0:
            continue
        offsets = _fit_offsets(logp, gold, len(labels), limit, step)
        if offsets.any():
            out[ls.name] = {lab: round(float(b), 4) for lab, b in zip(labels, offsets, strict=True) if b}
    return out


def _fit_offsets(logp: Any, gold: Any, k: int, limit: float, step: float) -> Any:
    """Coordinate ascent of per-label offsets added to ``logp`` (n x k) for macro-F1 against ``gold``."""
    import numpy as np

    grid = sorted((round(step * i, 4) for i in range(-round(limit / step), round(limit / step) + 1)), key=abs)
    offsets = np.zeros(k)
    best = _macro_f1(gold, logp.argmax(axis=1), k)
    for _pass in range(3):
        improved = False
        for j in range(k):
            for value in grid:
                trial = offsets.copy()
                trial[j] = value
                score = _macro_f1(gold, (logp + trial).argmax(axis=1), k)
                if score > best + 1e-9:
                    best, offsets, improved = score, trial, True
        if not improved:
            break
    return offsets


def _macro_f1(gold: Any, predicted: Any, k: int) -> float:
    """Macro-F1 over the labels (0..k-1) that occur in ``gold`` or ``predicted`` (as ``evaluation``
    scores)."""
    import numpy as np

    true_pos = np.bincount(gold[gold == predicted], minlength=k)
    gold_n = np.bincount(gold, minlength=k)
    pred_n = np.bincount(predicted, minlength=k)
    present = (gold_n + pred_n) > 0
    f1 = 2 * true_pos[present] / (gold_n[present] + pred_n[present])
    return float(f1.mean()) if present.any() else 0.0


def _code_revision() -> str:
    """The training and architecture code plus the spaCy version: a change makes a new model version."""
    here = Path(__file__).resolve().parent
    sources = [(here / name).read_text(encoding="utf-8")
               for name in ("training.py", "architectures.py", "text.py")]
    return spacy.__version__ + "".join(sources)


def _prepare(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the row with normalised text and a pipeline language."""
    out = dict(row)
    out["lang"] = row_language(row)
    out["text"] = normalize_text(str(row["text"]))
    return out


def _version_for(out_dir: Path, short: str) -> str:
    """Keep the version of an identical earlier training in ``out_dir``; otherwise a new dated one."""
    meta_path = out_dir / META_FILE
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
            if old.get("fingerprint") == short:
                return str(old["version"])
        except (OSError, ValueError, KeyError):
            pass
    return f"m-{datetime.now(UTC):%Y%m%d}-{short}"


def build_pipeline(lang: str, label_sets: Sequence[LabelSet], architecture: Mapping[str, Any]) -> Language:
    """A blank pipeline for ``lang`` with one exclusive textcat per label set, labels added."""
    nlp = spacy.blank(lang)
    for ls in label_sets:
        textcat = cast(TextCategorizer, nlp.add_pipe(
            "textcat", name=component_name(ls.name), config={"model": dict(architecture)}))
        for label in ls.labels:
            textcat.add_label(cat_name(ls.name, label))
    return nlp


def _fit(
    lang: str,
    rows: Sequence[Mapping[str, Any]],
    label_sets: Sequence[LabelSet],
    cfg: Config,
    seed: int,
    dev_rows: Sequence[Mapping[str, Any]] = (),
    epochs: int | None = None,
) -> tuple[Language, int]:
    """Build and train the pipeline of one language; returns it and the number of epochs it kept.

    With ``[training] patience`` > 0 and ``dev_rows``, the (averaged) weights are scored on
    ``dev_rows`` after every epoch and the best epoch's weights are kept, as ``spacy train`` keeps
    ``model-best``; training stops after ``patience`` epochs without a better score. A linear model
    over a million n-gram features fits the training rows within a few epochs and then memorises
    them. ``epochs`` overrides ``[training] epochs`` (the refit on all rows trains as many epochs as
    the dev split chose).
    """
    fix_random_seed(seed)
    arch_name = cfg["pipelines"][lang]
    nlp = build_pipeline(lang, label_sets, cfg["architectures"][arch_name])
    docs = [nlp.make_doc(r["text"]) for r in rows]
    sample = [Example(d, d.copy()) for d in docs[:20]]
    nlp.initialize(lambda: sample)
    optimizer = registry.resolve({"optimizer": cfg["optimizer"]})["optimizer"]
    # One example list per component: only rows with that label set, one-hot over its labels.
    per_set: dict[str, list[Example | None]] = {}
    for ls in label_sets:
        per_set[ls.name] = [
            Example.from_dict(
                doc, {"cats": {cat_name(ls.name, lab): float(lab == str(r[ls.name])) for lab in ls.labels}}
            )
            if r.get(ls.name) not in (None, "") else None
            for r, doc in zip(rows, docs, strict=True)
        ]
    tcfg = cfg["training"]
    patience = int(tcfg.get("patience", 0))
    scorer = _DevScorer(nlp, label_sets, dev_rows) if patience and dev_rows and epochs is None else None
    best: tuple[float, int, dict[tuple[int, str], Any]] | None = None
    rng = random.Random(seed)
    order = list(range(len(rows)))
    for epoch in range(1, (epochs or int(tcfg["epochs"])) + 1):
        rng.shuffle(order)
        for start in range(0, len(order), int(tcfg["batch_size"])):
            batch = order[start : start + int(tcfg["batch_size"])]
            for ls in label_sets:
                examples = [e for i in batch if (e := per_set[ls.name][i]) is not None]
                if examples:
                    _textcat(nlp, ls).update(
                        examples, drop=float(tcfg["dropout"]), sgd=optimizer, losses={}
                    )
        if scorer is not None:
            weights = _final_weights(nlp, optimizer.averages)
            score = scorer.score(weights)
            if best is None or score > best[0] + 1e-9:
                best = (score, epoch, weights)
            elif epoch - best[1] >= patience:
                break
    if best is not None:
        _set_weights(nlp, best[2])
        return nlp, best[1]
    if optimizer.averages:
        _set_weights(nlp, _final_weights(nlp, optimizer.averages))
    return nlp, epoch


class _DevScorer:
    """Mean macro-F1 over the label sets of a pipeline on dev rows, for choosing the epoch.

    The docs are made once: their n-gram keys stay cached in ``doc.user_data`` between epochs.
    """

    def __init__(
        self, nlp: Language, label_sets: Sequence[LabelSet], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        self.nlp = nlp
        self.docs = [nlp.make_doc(str(r["text"])) for r in rows]
        self.gold = {ls.name: [list(ls.labels).index(str(r[ls.name])) if r.get(ls.name) in ls.labels else -1
                               for r in rows] for ls in label_sets}
        self.label_sets = [ls for ls in label_sets if any(g >= 0 for g in self.gold[ls.name])]

    def score(self, weights: Mapping[tuple[int, str], Any]) -> float:
        import numpy as np

        current = _final_weights(self.nlp, {})
        _set_weights(self.nlp, weights)
        try:
            docs = self.docs
            for ls in self.label_sets:
                docs = list(_textcat(self.nlp, ls).pipe(docs))
        finally:
            _set_weights(self.nlp, current)
        scores = []
        for ls in self.label_sets:
            cats = [cat_name(ls.name, lab) for lab in ls.labels]
            gold = np.array(self.gold[ls.name])
            keep = gold >= 0
            predicted = np.array([_best_index(d, cats) for d in docs])
            scores.append(_macro_f1(gold[keep], predicted[keep], len(cats)))
        return sum(scores) / len(scores) if scores else 0.0


def _textcat(nlp: Language, ls: LabelSet) -> TextCategorizer:
    """The textcat of label set ``ls`` (``get_pipe`` is typed as returning any component)."""
    return cast(TextCategorizer, nlp.get_pipe(component_name(ls.name)))


def _best_index(doc: Doc, cats: Sequence[str]) -> int:
    """The index in ``cats`` of the category ``doc`` scores highest (the first one on a tie)."""
    return max(range(len(cats)), key=lambda j: doc.cats[cats[j]])


class _Trainable(Protocol):
    """A pipeline component with weights (every component of our pipelines is a textcat)."""

    model: Model[Any, Any]


def _final_weights(nlp: Language, averages: Mapping[tuple[int, str], Any]) -> dict[tuple[int, str], Any]:
    """A copy of every weight of the pipeline: the optimizer's moving average where it keeps one.

    Averaged weights (what ``spacy train`` saves) depend much less on the order of the last
    batches, so re-training with a few more rows moves the scores less: the promotion gate then
    compares models, not noise.
    """
    out = {}
    for _name, component in nlp.pipeline:
        for node in cast(_Trainable, component).model.walk():
            for param in node.param_names:
                if node.has_param(param):
                    key = (node.id, param)
                    out[key] = (averages[key] if key in averages else node.get_param(param)).copy()
    return out


def _set_weights(nlp: Language, weights: Mapping[tuple[int, str], Any]) -> None:
    for _name, component in nlp.pipeline:
        for node in cast(_Trainable, component).model.walk():
            for param in node.param_names:
                if (node.id, param) in weights:
                    node.set_param(param, weights[(node.id, param)])


def _write_model(out_dir: Path, pipelines: Mapping[str, Language], meta: Mapping[str, Any]) -> None:
    """Write the model next to ``out_dir`` first, then swap it in, so a reader never sees half a model."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for lang, nlp in pipelines.items():
            nlp.to_disk(tmp / lang)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ModelError(f"cannot write the model to {out_dir}: {e}") from e
