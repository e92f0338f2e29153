"""Benchmark the classifiers on real public data, against a TF-IDF + logistic regression baseline.

    .venv/bin/python -m bench.classify --data-dir ../shared/data [--max-train 8000]
        [--arch-max-train 2000] [--skip-archs] [--skip-corrections] [--json-out bench/out/classify.json]

For each dataset (FixMyStreet London -> department, 8 labels; US airline tweets -> sentiment, 3 labels):

1. architectures: spaCy textcat ``bow`` (ours: lower-cased n-grams shared across label sets),
   ``bow_spacy`` (spaCy's TextCatBOW.v3), ``cnn``, ``ensemble`` (spaCy's bag-of-words + CNN) and
   ``ensemble_bow`` (ours + CNN) from ``classifiers/config.cfg``, trained on the first
   ``--arch-max-train`` rows of ``split=train``, each at its best epoch on ``split=dev`` (patience 2),
   and scored on ``split=dev``;
2. on up to ``--max-train`` training rows (a seeded random subsample: said in the output), ``bow``
   with each setting of ``SPACY_GRID`` and, if another architecture won step 1, that one too; each
   gets its temperature and macro-F1 label offsets fitted on ``split=dev``
   (``classifiers.training.fit_biases``, stored in the model as the shipped training does) and the
   epoch with the best dev score (patience 2); the best (mean raw macro-F1 on dev and an OCR-noised
   copy of dev, plus the offsets' cross-fitted gain) is scored on ``split=test`` (also without the
   offsets, and its reliability table), and on OCR-noised copies of the test texts (character
   confusions, dropped/doubled spaces, hyphenated line breaks, full-width letters; other damage
   than dev's);
3. the baseline (TF-IDF word 1-2 grams, sublinear tf + LogisticRegression, C chosen by the same
   dev criterion) on the same rows, on the same clean and noised test texts (raw, and through
   ``normalize_text`` as spaCy's are);
4. how sure the test difference is: a paired bootstrap over the test rows (95% interval of
   spaCy minus baseline macro-F1);
5. inference speed, one thread, CPU time: documents per second for both.

Then the shipped three-label-set model (department + sentiment + kind) is timed on our own texts,
and the corrections simulation runs: start from the shipped model, feed 200 reviewer corrections
(the fixture rows and half of the held-out file, which the shipped model never saw; wrong and
least-confident predictions first, as a review queue would show them) in 4 batches of 50, retrain
with ``classifiers.retrain`` after each and promote through the gate; macro-F1 on the other half
of the held-out file should rise; then a poisoned batch (systematically wrong labels) must be
refused by the gate.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import classifiers  # noqa: E402
from classifiers.dataset import is_dev_row, read_rows  # noqa: E402
from classifiers.labels import LabelSet  # noqa: E402
from classifiers.noise import ocr_noise  # noqa: E402
from classifiers.retrain import retrain  # noqa: E402
from classifiers.training import load_training_config, train_rows  # noqa: E402
from pipeline.config import BUNDLED_MODEL_DIR  # noqa: E402

DATASETS = [
    ("fixmystreet-london-department.jsonl", "department"),
    ("twitter-us-airline-sentiment.jsonl", "sentiment"),
]
OUT = ROOT / "bench" / "out"
console = Console(width=170)

# ---------------------------------------------------------------- data and noise


def load_split(path: Path, field: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of a shared dataset as ``{split: [{"text", field, "lang"}]}``."""
    out: dict[str, list[dict[str, Any]]] = {"train": [], "dev": [], "test": []}
    with path.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out[r["split"]].append({"text": r["text"], field: r["label"], "lang": "en"})
    return out


# ---------------------------------------------------------------- timing helpers


def cpu_rate(n: int, fn: Callable[[], Any]) -> tuple[Any, float]:
    """(result, documents per CPU second) of ``fn`` over ``n`` documents (one thread)."""
    started = time.process_time()
    result = fn()
    return result, n / max(time.process_time() - started, 1e-9)


# ---------------------------------------------------------------- spaCy side


#: Settings tried on dev for the final model, as the baseline tries values of C (the shipped
#: config.cfg is tuned for a few hundred rows; thousands of rows want a bigger hash table and batches).
#: ``sublinear_l2`` weights n-grams like the baseline's TF-IDF (1 + log tf, unit length; no IDF);
#: ``char_ngrams`` adds character 3-5-grams of each word (more features: a bigger hash table).
#: ``patience`` keeps the best epoch on dev (at most ``epochs``): with a million features the
#: model fits 8,000 rows in 2-4 epochs and memorises them after (airline dev macro-F1 0.750 after
#: 3 epochs, 0.731 after 12, 0.728 after 20; see the README).
SPACY_GRID: list[dict[str, Any]] = [
    {"architectures.bow.length": 262144, "training.batch_size": 64, "optimizer.learn_rate": 0.005},
    {"architectures.bow.length": 262144, "training.batch_size": 64, "optimizer.learn_rate": 0.01,
     "architectures.bow.weighting": "sublinear_l2"},
    {"architectures.bow.length": 1048576, "training.batch_size": 64, "optimizer.learn_rate": 0.01,
     "architectures.bow.weighting": "sublinear_l2", "architectures.bow.char_ngrams": 5},
]
SPACY_GRID = [{**g, "training.patience": 2} for g in SPACY_GRID]


def train_spacy(
    rows: Sequence[dict[str, Any]], field: str, labels: Sequence[str], arch: str, out: Path,
    overrides: dict[str, Any] | None = None, dev: Sequence[dict[str, Any]] | None = None,
) -> tuple[classifiers.SpacyClassifier, float]:
    """Train on all of ``rows``; temperature and macro-F1 label offsets are fitted on ``dev`` (if given)."""
    cfg = load_training_config(overrides={
        "pipelines.en": arch, "training.search": False, "training.refit_on_all": False, **(overrides or {}),
    })
    started = time.process_time()
    train_rows(rows, out, label_sets=[LabelSet(field, {lab: "" for lab in labels})], config=cfg,
               calibration_rows=dev)
    return classifiers.load_model(out), time.process_time() - started


def raw_model(model: classifiers.SpacyClassifier) -> classifiers.SpacyClassifier:
    """The same pipelines without the dev-fitted temperature and label offsets (for the ablation column)."""
    meta = {k: v for k, v in model.meta.items() if k not in ("temperatures", "biases")}
    return classifiers.SpacyClassifier(model.pipelines, model.label_sets, model.version, meta)


def macro_f1_of(
    model: classifiers.Classifier, rows: Sequence[dict[str, Any]], field: str
) -> tuple[float, float]:
    """(macro-F1, docs/s) of a spaCy model on rows."""
    report, rate = scored(model, rows, field)
    return report.macro_f1, rate


def scored(model: classifiers.Classifier, rows: Sequence[dict[str, Any]], field: str) -> tuple[Any, float]:
    """(LabelSetReport with calibration, docs/s) of a spaCy model on rows."""
    results, rate = cpu_rate(len(rows), lambda: model.classify([r["text"] for r in rows]))
    gold = [r[field] for r in rows]
    pred = [c.labels[field] for c in results]
    report = classifiers.score_predictions(field, gold, [p.label for p in pred], [p.confidence for p in pred])
    return report, rate


def paired_bootstrap(gold: Sequence[str], ours: Sequence[str], theirs: Sequence[str], resamples: int = 2000,
                     seed: int = 0) -> dict[str, float]:
    """How sure is a macro-F1 difference on one test split? Resample its rows (paired: the same rows for
    both models) and report the 2.5/97.5 percentiles of macro-F1(ours) - macro-F1(theirs) and the share
    of resamples in which ours is at least as good."""
    import numpy as np

    from classifiers.training import _macro_f1

    labels = sorted(set(gold) | set(ours) | set(theirs))
    index = {lab: i for i, lab in enumerate(labels)}
    g, a, b = (np.array([index[x] for x in seq]) for seq in (gold, ours, theirs))
    rng = np.random.RandomState(seed)
    diffs = []
    for _ in range(resamples):
        pick = rng.randint(0, len(g), len(g))
        diffs.append(_macro_f1(g[pick], a[pick], len(labels)) - _macro_f1(g[pick], b[pick], len(labels)))
    d = np.array(diffs)
    return {"low": round(float(np.percentile(d, 2.5)), 4), "high": round(float(np.percentile(d, 97.5)), 4),
            "share_ours_at_least_as_good": round(float((d >= 0).mean()), 3)}


# ---------------------------------------------------------------- baseline


def baseline(
    train: Sequence[dict[str, Any]],
    dev: Sequence[dict[str, Any]],
    noisy_dev: Sequence[dict[str, Any]],
    field: str,
) -> tuple[Any, float]:
    """TF-IDF (word 1-2 grams, sublinear tf) + LogisticRegression; C chosen on dev. Returns (model, C).

    C is chosen as the spaCy settings are: mean macro-F1 on dev and on an OCR-noised copy of dev.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    best: tuple[float, Any, float] | None = None
    for c in (1.0, 4.0, 16.0, 64.0, 256.0, 1024.0):  # 8,000 rows want little regularisation
        model = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            LogisticRegression(C=c, max_iter=2000),
        )
        model.fit([r["text"] for r in train], [r[field] for r in train])
        f1 = (baseline_f1(model, dev, field)[0] + baseline_f1(model, noisy_dev, field)[0]) / 2
        if best is None or f1 > best[0]:
            best = (f1, model, c)
    assert best is not None
    return best[1], best[2]


def baseline_f1(
    model: Any, rows: Sequence[dict[str, Any]], field: str, prep: Callable[[str], str] = str
) -> tuple[float, float]:
    texts = [prep(r["text"]) for r in rows]
    pred, rate = cpu_rate(len(rows), lambda: list(model.predict(texts)))
    return classifiers.score_predictions(field, [r[field] for r in rows], pred).macro_f1, rate


# ---------------------------------------------------------------- one dataset


def bench_dataset(path: Path, field: str, args: argparse.Namespace) -> dict[str, Any]:
    splits = load_split(path, field)
    labels = sorted({r[field] for r in splits["train"]})
    train = list(splits["train"])
    random.Random(args.seed).shuffle(train)
    train = train[: args.max_train]
    dev, test = splits["dev"], splits["test"]
    noisy = [{**r, "text": ocr_noise(r["text"], i)} for i, r in enumerate(test)]
    # other damage than test's
    noisy_dev = [{**r, "text": ocr_noise(r["text"], 10**6 + i)} for i, r in enumerate(dev)]
    result: dict[str, Any] = {
        "dataset": path.name, "label_set": field, "labels": labels, "train_rows": len(train),
        "train_rows_available": len(splits["train"]), "dev_rows": len(dev), "test_rows": len(test),
    }
    work = OUT / field
    archs: dict[str, Any] = {}
    best_arch = "bow"
    if not args.skip_archs:
        sub = train[: args.arch_max_train]
        for arch in args.architectures.split(","):
            # each at its best epoch on dev (up to 12); raw scores compared (no dev-fitted offsets)
            model, secs = train_spacy(sub, field, labels, arch, work / arch, {"training.patience": 2}, dev)
            f1, rate = macro_f1_of(raw_model(model), dev, field)
            epochs = model.meta["epochs"]["en"]
            archs[arch] = {"train_rows": len(sub), "dev_macro_f1": f1, "epochs": epochs,
                           "train_cpu_s": round(secs, 1), "docs_per_s": round(rate)}
            console.print(f"  {field} {arch}: dev macro-F1 {f1:.4f} after {epochs} epochs, "
                          f"train {secs:.1f}s CPU, {rate:.0f} docs/s")
        best_arch = max(archs, key=lambda a: (archs[a]["dev_macro_f1"], archs[a]["docs_per_s"]))
    result["architectures"] = archs
    result["best_architecture_on_few_rows"] = best_arch

    # The final choice is made on all the training rows: the bow settings of SPACY_GRID, plus the
    # architecture that won on few rows if it is another one (with its config.cfg settings). Few
    # rows favour other settings (best epoch 1-3) and differ by less than dev's noise (~0.01).
    grid = [("bow", g) for g in SPACY_GRID]
    if best_arch != "bow":
        grid.append((best_arch, {"training.patience": 2}))
    tried = []
    grid_log: list[dict[str, Any]] = []
    for k, (arch, overrides) in enumerate(grid):
        candidate, secs = train_spacy(train, field, labels, arch, work / f"final-{k}", overrides, dev)
        f1, _ = macro_f1_of(candidate, dev, field)
        # choose on an estimate that is not flattered by offsets fitted on these very rows: raw
        # macro-F1 (mean of dev and OCR-noised dev: the issue asks for both) plus the offsets'
        # cross-fitted gain (halves of dev), when the model kept offsets
        raw_f1, _ = macro_f1_of(raw_model(candidate), dev, field)
        raw_noisy_f1, _ = macro_f1_of(raw_model(candidate), noisy_dev, field)
        gain = (candidate.meta.get("bias_cross_fitted_gain", {}).get(field, 0.0)
                if candidate.biases.get(field) else 0.0)
        epochs = candidate.meta["epochs"]["en"]
        console.print(f"  {field} {arch} {overrides}: dev macro-F1 {raw_f1:.4f} raw "
                      f"({raw_noisy_f1:.4f} OCR-noised), {f1:.4f} with offsets fitted on dev "
                      f"(cross-fitted gain {gain:+.4f}); {epochs} epochs, {secs:.0f}s CPU")
        tried.append(((raw_f1 + raw_noisy_f1) / 2 + gain, k, (arch, overrides), candidate, secs, f1))
        grid_log.append({"architecture": arch, "overrides": overrides, "dev_raw": raw_f1,
                         "noisy_dev_raw": raw_noisy_f1,
                         "offsets_cross_fitted_gain": gain, "dev_with_offsets": f1, "epochs": epochs,
                         "train_cpu_s": round(secs, 1)})
    _, _, (chosen_arch, best_overrides), model, secs, dev_f1 = max(tried, key=lambda t: t[0])
    result["chosen_architecture"] = chosen_arch
    test_report, rate = scored(model, test, field)
    noisy_report, _ = scored(model, noisy, field)
    raw_test, _ = scored(raw_model(model), test, field)
    raw_noisy, _ = scored(raw_model(model), noisy, field)
    result["spacy"] = {"architecture": chosen_arch, "overrides": best_overrides, "dev_macro_f1": dev_f1,
                       "test_macro_f1": test_report.macro_f1, "noisy_test_macro_f1": noisy_report.macro_f1,
                       "test_accuracy": test_report.accuracy, "test_ece": test_report.ece,
                       "raw_test_macro_f1": raw_test.macro_f1, "raw_noisy_test_macro_f1": raw_noisy.macro_f1,
                       "raw_test_ece": raw_test.ece, "temperature": model.temperatures.get(field),
                       "biases": model.biases.get(field, {}),
                       "reliability": [vars(b) for b in test_report.reliability],
                       "docs_per_s": round(rate), "train_cpu_s": round(secs, 1), "grid": grid_log}

    started = time.process_time()
    base, c = baseline(train, dev, noisy_dev, field)
    base_secs = time.process_time() - started
    b_test, b_rate = baseline_f1(base, test, field)
    b_noisy, _ = baseline_f1(base, noisy, field)
    b_noisy_norm, _ = baseline_f1(base, noisy, field, classifiers.normalize_text)
    texts = [r["text"] for r in test]
    b_proba = base.predict_proba(texts)
    b_report = classifiers.score_predictions(field, [r[field] for r in test],
                                             list(base.classes_[b_proba.argmax(axis=1)]),
                                             [float(p) for p in b_proba.max(axis=1)])
    gold = [r[field] for r in test]
    ours = [c.labels[field].label for c in model.classify(texts)]
    result["test_difference_bootstrap"] = paired_bootstrap(gold, ours, list(base.predict(texts)))
    result["baseline"] = {"C": c, "dev_macro_f1": baseline_f1(base, dev, field)[0], "test_macro_f1": b_test,
                          "test_accuracy": b_report.accuracy, "test_ece": b_report.ece,
                          "noisy_test_macro_f1": b_noisy, "noisy_normalized_test_macro_f1": b_noisy_norm,
                          "docs_per_s": round(b_rate), "train_cpu_s_with_tuning": round(base_secs, 1)}
    shutil.rmtree(work, ignore_errors=True)
    return result



# ---------------------------------------------------------------- `complaintdesk train` with its defaults


def fixed_baseline() -> Any:
    """The issue's baseline, untuned: TF-IDF (word 1-2 grams, sublinear tf, min_df 2) + LR (C=5)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
                         LogisticRegression(C=5.0, max_iter=2000))


def bench_cli_defaults(path: Path, field: str, args: argparse.Namespace) -> dict[str, Any]:
    """``complaintdesk train --data <whole split=train> --model-dir ...`` with no other option (a
    deployment training on its own history), against ``fixed_baseline`` on the same rows, both scored
    on split=test, clean and OCR-noised. Training CPU time is the child process's."""
    import resource
    import subprocess

    splits = load_split(path, field)
    train, test = splits["train"], splits["test"]
    work = OUT / f"cli-{field}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    with (work / "data" / "train.jsonl").open("w", encoding="utf-8") as f:
        for r in train:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    cli = Path(sys.executable).parent / "complaintdesk"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([str(cli), "train", "--data", str(work / "data"), "--model-dir", str(work / "model")],
                   check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    train_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    model = classifiers.load_model(work / "model")
    noisy = [{**r, "text": ocr_noise(r["text"], i)} for i, r in enumerate(test)]
    ours, rate = scored(model, test, field)
    ours_noisy, _ = scored(model, noisy, field)
    started = time.process_time()
    base = fixed_baseline().fit([r["text"] for r in train], [r[field] for r in train])
    base_cpu = time.process_time() - started
    b_test, b_rate = baseline_f1(base, test, field)
    b_noisy = max(baseline_f1(base, noisy, field)[0],
                  baseline_f1(base, noisy, field, classifiers.normalize_text)[0])
    texts = [r["text"] for r in test]
    gold = [r[field] for r in test]
    pred = [c.labels[field].label for c in model.classify(texts)]
    selection = model.meta.get("selection", {})
    result = {
        "dataset": path.name, "label_set": field, "train_rows": len(train), "test_rows": len(test),
        "command": f"complaintdesk train --data {work / 'data'} --model-dir {work / 'model'}",
        "model": model.version, "selection": selection, "epochs": model.meta.get("epochs"),
        "train_cpu_s": round(train_cpu, 1), "baseline_train_cpu_s": round(base_cpu, 1),
        "test_macro_f1": ours.macro_f1, "noisy_test_macro_f1": ours_noisy.macro_f1,
        "baseline_test_macro_f1": b_test, "baseline_noisy_test_macro_f1": b_noisy,
        "docs_per_cpu_s": round(rate), "baseline_docs_per_cpu_s": round(b_rate),
        "test_difference_bootstrap": paired_bootstrap(gold, pred, list(base.predict(texts))),
    }
    console.print(f"  {field}: `complaintdesk train` defaults macro-F1 test {ours.macro_f1:.4f} "
                  f"(noised {ours_noisy.macro_f1:.4f}), baseline {b_test:.4f} (noised {b_noisy:.4f}); "
                  f"chose {selection.get('chosen')}, epochs {model.meta.get('epochs')}, "
                  f"train {train_cpu:.0f}s CPU")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


# ---------------------------------------------------------------- shipped model speed


def shipped_model_dir() -> Path:
    if (BUNDLED_MODEL_DIR / "meta.json").is_file():
        return BUNDLED_MODEL_DIR
    out = OUT / "shipped"
    console.print(f"no bundled model; training one from classifiers/data into {out}")
    classifiers.train([ROOT / "classifiers" / "data"], out)
    return out


def shipped_speed() -> dict[str, Any]:
    model = classifiers.load_model(shipped_model_dir())
    rows = read_rows([ROOT / "classifiers" / "data" / "heldout"])
    texts = [r["text"] for r in rows] * max(1, 6000 // len(rows))
    model.classify(texts[:200])  # warm-up
    wall = time.perf_counter()
    _, rate = cpu_rate(len(texts), lambda: model.classify(texts))
    wall_rate = len(texts) / (time.perf_counter() - wall)
    return {"model": model.version, "label_sets": [ls.name for ls in model.label_sets], "docs": len(texts),
            "docs_per_cpu_s": round(rate), "docs_per_wall_s": round(wall_rate)}


# ---------------------------------------------------------------- corrections simulation


def corrections_simulation(batches: int = 4, batch_size: int = 50, seed: int = 0) -> dict[str, Any]:
    """Feed reviewer corrections in batches through ``classifiers.retrain`` and its promotion gate."""
    heldout_all = read_rows([ROOT / "classifiers" / "data" / "heldout"])
    heldout = [r for r in heldout_all if not is_dev_row(r["text"], 2)]
    pool_rows = [r for r in heldout_all if is_dev_row(r["text"], 2)]
    pool_rows += read_rows([ROOT / "tests" / "resources" / "classify" / "fixture.jsonl"])
    current_dir = shipped_model_dir()
    current = classifiers.load_model(current_dir)
    sets = [ls.name for ls in current.label_sets]
    # one correction = one (text, label set, reviewer's label), in review-queue order: reviewers see
    # the cases the model got wrong or was least sure of first (ties broken by a seeded shuffle)
    predicted = current.classify([r["text"] for r in pool_rows])
    corrections = [(i, name, str(r[name])) for i, r in enumerate(pool_rows) for name in sets if r.get(name)]
    random.Random(seed).shuffle(corrections)

    def queue_key(c: tuple[int, str, str]) -> tuple[bool, float]:
        lab = predicted[c[0]].labels[c[1]]
        return (lab.label == c[2], lab.confidence)

    corrections.sort(key=queue_key)

    def rows_of(chosen: Sequence[tuple[int, str, str]], poison: bool = False) -> list[dict[str, Any]]:
        merged: dict[int, dict[str, Any]] = {}
        for i, name, label in chosen:
            row = merged.setdefault(i, {"text": pool_rows[i]["text"], "reference": f"sim-{i}"})
            if poison:  # systematically wrong: every label replaced by the next one of its label set
                labels = current.label_set(name).label_ids  # type: ignore[union-attr]
                label = labels[(labels.index(label) + 1) % len(labels)]
            row[name] = label
        return list(merged.values())

    def heldout_f1(model: classifiers.Classifier) -> float:
        return classifiers.evaluate(model, heldout).macro_f1()

    rounds = [{"round": 0, "corrections": 0, "model": current.version,
               "heldout_macro_f1": heldout_f1(current)}]
    console.print(f"  start: {current.version}, held-out macro-F1 {rounds[0]['heldout_macro_f1']:.4f} "
                  f"({len(heldout)} rows; pool of {len(corrections)} possible corrections)")
    accepted: list[tuple[int, str, str]] = []
    for b in range(batches):
        batch = corrections[b * batch_size : (b + 1) * batch_size]
        out = OUT / "sim" / f"round-{b + 1}"
        res = retrain(data=[ROOT / "classifiers" / "data"], corrections=rows_of(accepted + batch),
                      heldout=heldout, current=current, out_dir=out, seed=seed)
        accepted += batch
        if res.decision.promote:
            current = classifiers.load_model(out)
        rounds.append({"round": b + 1, "corrections": len(accepted), "candidate": res.candidate.version,
                       "promoted": res.decision.promote, "reason": res.decision.reason,
                       "gate_current": res.decision.current_macro_f1,
                       "gate_candidate": res.decision.candidate_macro_f1,
                       "model": current.version, "heldout_macro_f1": heldout_f1(current)})
        console.print(f"  batch {b + 1}: {len(accepted)} corrections, gate {res.decision.reason} -> "
                      f"{'promoted' if res.decision.promote else 'refused'}; "
                      f"held-out macro-F1 {rounds[-1]['heldout_macro_f1']:.4f}")
    remaining = corrections[batches * batch_size :] or corrections[:batch_size]
    poison = rows_of(remaining[: max(batch_size, 100)], poison=True)
    res = retrain(data=[ROOT / "classifiers" / "data"], corrections=rows_of(accepted) + poison,
                  heldout=heldout, current=current, out_dir=OUT / "sim" / "poisoned", seed=seed)
    poisoned = {"poisoned_rows": len(poison), "promoted": res.decision.promote, "reason": res.decision.reason,
                "gate_current": res.decision.current_macro_f1,
                "gate_candidate": res.decision.candidate_macro_f1}
    console.print(f"  poisoned batch ({len(poison)} rows): gate {res.decision.reason} -> "
                  f"{'PROMOTED (gate failed)' if res.decision.promote else 'refused'}")
    shutil.rmtree(OUT / "sim", ignore_errors=True)
    return {"rounds": rounds, "poisoned": poisoned,
            "rose": rounds[-1]["heldout_macro_f1"] > rounds[0]["heldout_macro_f1"]}


# ---------------------------------------------------------------- report


def print_report(results: dict[str, Any]) -> None:
    table = Table(title="macro-F1 on split=test (spaCy vs TF-IDF + LogisticRegression, same training rows; "
                        "both tuned on split=dev only)")
    for col in ("dataset", "train rows", "spaCy arch", "spaCy test", "baseline test", "spaCy OCR-noised",
                "baseline OCR-noised", "baseline noised+normalize", "spaCy w/o offsets test / noised",
                "test difference 95% (bootstrap)",
                "ECE spaCy / baseline", "spaCy docs/s", "baseline docs/s"):
        table.add_column(col, justify="right")
    for d in results["datasets"]:
        s, b = d["spacy"], d["baseline"]
        table.add_row(f"{d['dataset'].split('-')[0]} ({d['label_set']})",
                      f"{d['train_rows']}/{d['train_rows_available']}",
                      s["architecture"], f"{s['test_macro_f1']:.4f}", f"{b['test_macro_f1']:.4f}",
                      f"{s['noisy_test_macro_f1']:.4f}", f"{b['noisy_test_macro_f1']:.4f}",
                      f"{b['noisy_normalized_test_macro_f1']:.4f}",
                      f"{s['raw_test_macro_f1']:.4f} / {s['raw_noisy_test_macro_f1']:.4f}",
                      "{low:+.3f}..{high:+.3f}".format(**d["test_difference_bootstrap"]),
                      f"{s['test_ece']:.3f} / {b['test_ece']:.3f}", str(s["docs_per_s"]),
                      str(b["docs_per_s"]))
    console.print(table)
    for d in results["datasets"]:
        s = d["spacy"]
        rel = Table(title=f"{d['label_set']}: spaCy reliability on split=test "
                          f"(temperature {s['temperature']}, "
                          f"label offsets {s['biases'] or 'none'})")
        for col in ("confidence", "n", "mean confidence", "accuracy"):
            rel.add_column(col, justify="right")
        for b in s["reliability"]:
            if b["count"]:
                rel.add_row(f"{b['lower']:.1f}-{b['upper']:.1f}", str(b["count"]),
                            f"{b['mean_confidence']:.3f}", f"{b['accuracy']:.3f}")
        console.print(rel)
    for d in results["datasets"]:
        if d["architectures"]:
            arch_rows = next(iter(d["architectures"].values()))["train_rows"]
            t = Table(title=f"{d['label_set']}: architectures on split=dev ({arch_rows} training rows)")
            for col in ("architecture", "dev macro-F1", "best epoch", "train CPU s", "docs/s"):
                t.add_column(col, justify="right")
            for name, a in d["architectures"].items():
                t.add_row(name, f"{a['dev_macro_f1']:.4f}", str(a["epochs"]), str(a["train_cpu_s"]),
                          str(a["docs_per_s"]))
            console.print(t)
    if results.get("cli_defaults"):
        t = Table(title="`complaintdesk train` with no options on the whole split=train vs TF-IDF "
                        "(1-2 grams, sublinear tf, min_df 2) + LR (C=5); macro-F1 on split=test")
        for col in ("dataset", "train rows", "ours", "baseline", "ours OCR-noised", "baseline OCR-noised",
                    "difference 95% (bootstrap)", "chosen settings", "epochs", "train CPU s"):
            t.add_column(col, justify="right")
        for d in results["cli_defaults"]:
            t.add_row(f"{d['dataset'].split('-')[0]} ({d['label_set']})", str(d["train_rows"]),
                      f"{d['test_macro_f1']:.4f}", f"{d['baseline_test_macro_f1']:.4f}",
                      f"{d['noisy_test_macro_f1']:.4f}", f"{d['baseline_noisy_test_macro_f1']:.4f}",
                      "{low:+.3f}..{high:+.3f}".format(**d["test_difference_bootstrap"]),
                      json.dumps(d["selection"].get("chosen")), json.dumps(d["epochs"]),
                      str(d["train_cpu_s"]))
        console.print(t)
    if "shipped_speed" in results:
        s = results["shipped_speed"]
        console.print(f"shipped model {s['model']} ({' + '.join(s['label_sets'])}): "
                      f"{s['docs_per_cpu_s']} docs per CPU second on one thread "
                      f"({s['docs_per_wall_s']} docs/s wall clock, {s['docs']} docs)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--max-train", type=int, default=8000,
                        help="subsample split=train to this many rows (seeded)")
    parser.add_argument("--arch-max-train", type=int, default=2000,
                        help="training rows for the architecture comparison")
    parser.add_argument("--architectures", default="bow,bow_spacy,cnn,ensemble,ensemble_bow")
    parser.add_argument("--skip-archs", action="store_true", help="no architecture comparison: use bow")
    parser.add_argument("--datasets", default="department,sentiment", help="which label sets to benchmark")
    parser.add_argument("--skip-corrections", action="store_true")
    parser.add_argument("--skip-datasets", action="store_true",
                        help="only the shipped-model speed and the simulation")
    parser.add_argument("--cli-defaults", action="store_true",
                        help="instead of the tuned comparison: train each dataset's whole split=train "
                             "through `complaintdesk train` with no options, against TF-IDF + LR (C=5)")
    parser.add_argument("--keep", action="store_true", help="keep the --cli-defaults models in bench/out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, default=OUT / "classify.json")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "datasets": []}
    chosen = [] if args.skip_datasets else [(n, f) for n, f in DATASETS if f in args.datasets.split(",")]
    for name, field in chosen:
        path = args.data_dir / name
        if not path.is_file():
            console.print(f"[yellow]skipping {path}: not found[/yellow]")
            continue
        console.print(f"[bold]{name}[/bold] -> {field} (training on at most {args.max_train} rows of "
                      f"split=train, seeded subsample; architectures compared on {args.arch_max_train})")
        if args.cli_defaults:
            results.setdefault("cli_defaults", []).append(bench_cli_defaults(path, field, args))
        else:
            results["datasets"].append(bench_dataset(path, field, args))
    results["shipped_speed"] = shipped_speed()
    if not args.skip_corrections:
        console.print("[bold]corrections simulation[/bold]")
        results["corrections"] = corrections_simulation(seed=args.seed)
    print_report(results)
    targets = {}
    for d in results["datasets"]:
        s, b = d["spacy"], d["baseline"]
        targets[f"{d['label_set']}: spaCy >= baseline"] = s["test_macro_f1"] >= b["test_macro_f1"]
        # against the better baseline reading: raw noised text, or noised text through our normalize_text
        best_noisy = max(b["noisy_test_macro_f1"], b["noisy_normalized_test_macro_f1"])
        targets[f"{d['label_set']} OCR-noised: spaCy >= baseline"] = s["noisy_test_macro_f1"] >= best_noisy
    for d in results.get("cli_defaults", []):
        margin = d["test_macro_f1"] - d["baseline_test_macro_f1"]
        noisy_margin = d["noisy_test_macro_f1"] - d["baseline_noisy_test_macro_f1"]
        targets[f"{d['label_set']} (train defaults): >= baseline + 0.01 ({margin:+.4f})"] = margin >= 0.01
        targets[f"{d['label_set']} (train defaults) OCR-noised: ahead by more ({noisy_margin:+.4f})"] = (
            noisy_margin > margin)
    targets[">= 2000 docs/s for 3 label sets"] = results["shipped_speed"]["docs_per_cpu_s"] >= 2000
    if "corrections" in results:
        targets["held-out macro-F1 rises with corrections"] = results["corrections"]["rose"]
        targets["poisoned batch refused"] = not results["corrections"]["poisoned"]["promoted"]
    results["targets"] = targets
    for name, ok in targets.items():
        console.print(f"  {'[green]met[/green]' if ok else '[red]NOT met[/red]'}  {name}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    console.print(f"results written to {args.json_out}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
