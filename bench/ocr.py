"""OCR benchmark: complaintdesk's OCR stage against plain Tesseract, on rendered slips and real scans.

    .venv/bin/python bench/ocr.py [--pages 200] [--quick] [--funsd ../shared/data/funsd-test] [--memory]
    .venv/bin/python bench/ocr.py --engines [--per-class 12] [--mix 60] [--policies tesseract auto ppocr]

Prints, in one run (rich tables):
  * CER and WER per difficulty (clean, mild, hard) for (a) the plain ``tesseract`` CLI on the raw image
    and (b) ``ocr.ocr_many`` with the recommended preprocessing chain;
  * pages per second on that same batch: plain tesseract one page at a time vs the OCR pool;
  * word recall and precision on the real FUNSD scans, for both;
  * with ``--memory``: peak RSS of the pool (parent + workers + tesseract) for 100 vs 2,000 files
    (small one-line slips, English, grayscale-only chain: the pool's memory is what is measured).

Plain tesseract gets the true language of each slip (``-l eng`` or ``-l chi_sim``), a stronger
baseline than a deployment could use; complaintdesk gets ``eng+chi_sim`` and must choose itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# This script is called ocr.py: its folder must not shadow the ``ocr`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402

import ocr_engines  # noqa: E402
from ocr_metrics import bag_of_words, error_rates  # noqa: E402
from ocr_texts import CHINESE, ENGLISH  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from ocr.parallel import ocr_many  # noqa: E402
from ocr.settings import RECOMMENDED_CHAIN  # noqa: E402
from ocr.synth import CLEAN, HEADER_EN, HEADER_ZH, is_chinese, make_slip  # noqa: E402
from pipeline.config import OcrSettings  # noqa: E402
from pipeline.core.errors import ComplaintdeskError  # noqa: E402

LEVELS = ("clean", "mild", "hard")
console = Console()


def render_set(pages: int, folder: Path) -> list[ocr_engines.Page]:
    """Render ``pages`` slips spread evenly over the difficulty levels, a quarter of them Chinese."""
    slips = []
    for i in range(pages):
        level = LEVELS[i % 3]
        rng = random.Random(1000 + i)
        text = CHINESE[i % len(CHINESE)] if i % 4 == 3 else ENGLISH[i % len(ENGLISH)]
        how = ocr_engines.capture(level, rng, turns=True)
        data = make_slip(text, how, seed=1000 + i, font_px=rng.choice((28, 30, 32)))
        path = folder / f"{i:04d}_{level}.{'jpg' if how.jpeg_quality else 'png'}"
        path.write_bytes(data)
        header = HEADER_ZH if is_chinese(text) else HEADER_EN
        language = "chi_sim" if is_chinese(text) else "eng"
        slips.append(ocr_engines.Page(path, level, f"{header}\n{text}", language))  # kind: the level
    return slips


def run_ours(paths: Sequence[Path], settings: OcrSettings) -> tuple[list[str], float, int]:
    """complaintdesk's OCR pool on all files; returns texts (in input order), seconds and error count."""
    results, seconds = ocr_engines.read_all(paths, settings)
    texts = ["" if isinstance(r, ComplaintdeskError) else r.text for r in results]
    return texts, seconds, sum(isinstance(r, ComplaintdeskError) for r in results)


def bench_slips(pages: int, settings: OcrSettings, workdir: Path) -> None:
    folder = workdir / "slips"
    folder.mkdir()
    console.print(f"rendering {pages} slips ({', '.join(LEVELS)}) into {folder} ...")
    slips = render_set(pages, folder)
    console.print("plain tesseract, one page at a time ...")
    plain_texts, plain_seconds = ocr_engines.run_plain([(s.path, s.language) for s in slips])
    console.print(f"complaintdesk OCR pool ({settings.workers or os.cpu_count()} workers) ...")
    our_texts, our_seconds, errors = run_ours([s.path for s in slips], settings)

    table = Table(title=f"Rendered slips: error rates per difficulty ({pages} pages)")
    for column in ("difficulty", "pages", "plain CER", "ours CER", "plain WER", "ours WER", "CER target"):
        table.add_column(column, justify="right")
    for level in LEVELS:
        chosen = [i for i, s in enumerate(slips) if s.kind == level]
        p_cer, p_wer = error_rates([(slips[i].reference, plain_texts[i]) for i in chosen])
        o_cer, o_wer = error_rates([(slips[i].reference, our_texts[i]) for i in chosen])
        target = {"clean": o_cer <= p_cer, "hard": o_cer <= p_cer / 2}.get(level)
        verdict = "" if target is None else ("met" if target else "NOT met")
        table.add_row(level, str(len(chosen)), f"{p_cer:.3f}", f"{o_cer:.3f}", f"{p_wer:.3f}", f"{o_wer:.3f}",
                      verdict)
    console.print(table)

    speed = Table(title="Throughput on the same batch")
    for column in ("engine", "pages", "seconds", "pages/s", "speed-up", "errors"):
        speed.add_column(column, justify="right")
    plain_rate, our_rate = len(slips) / plain_seconds, len(slips) / our_seconds
    speed.add_row("plain tesseract (1 at a time)", str(len(slips)), f"{plain_seconds:.1f}",
                  f"{plain_rate:.2f}", "1.00", "-")
    speed.add_row(
        f"complaintdesk ocr_many ({settings.workers or os.cpu_count()} workers)",
        str(len(slips)), f"{our_seconds:.1f}", f"{our_rate:.2f}", f"{our_rate / plain_rate:.2f}", str(errors),
    )
    console.print(speed)
    console.print(f"throughput target (>= 1.6x): {'met' if our_rate >= 1.6 * plain_rate else 'NOT met'}")


def funsd_words(annotation: Path) -> list[str]:
    """Every annotated word of a FUNSD page."""
    form = json.loads(annotation.read_text())["form"]
    return [w["text"] for entity in form for w in entity.get("words", []) if w.get("text", "").strip()]


def bench_funsd(folder: Path, settings: OcrSettings, limit: int) -> None:
    images = sorted((folder / "images").glob("*.png"))[:limit]
    if not images:
        console.print(f"[yellow]no FUNSD images under {folder}; skipped[/]")
        return
    console.print(f"FUNSD: {len(images)} real scans ...")
    truth = [funsd_words(folder / "annotations" / f"{p.stem}.json") for p in images]
    plain_texts, plain_seconds = ocr_engines.run_plain([(p, "eng") for p in images])
    english = settings.model_copy(update={"languages": "eng"})
    our_texts, our_seconds, _ = run_ours(images, english)
    table = Table(title=f"FUNSD test scans: bag-of-words against the annotated words ({len(images)} pages)")
    for column in ("engine", "recall", "precision", "seconds"):
        table.add_column(column, justify="right")
    scores = {}
    engines = (("plain tesseract", plain_texts, plain_seconds), ("complaintdesk", our_texts, our_seconds))
    for engine, texts, seconds in engines:
        matched = ref_total = hyp_total = 0
        for words, text in zip(truth, texts, strict=True):
            m, r, h = bag_of_words(words, text)
            matched, ref_total, hyp_total = matched + m, ref_total + r, hyp_total + h
        recall, precision = matched / max(ref_total, 1), matched / max(hyp_total, 1)
        scores[engine] = (recall, precision)
        table.add_row(engine, f"{recall:.3f}", f"{precision:.3f}", f"{seconds:.1f}")
    console.print(table)
    (p_rec, p_prec), (o_rec, o_prec) = scores["plain tesseract"], scores["complaintdesk"]
    console.print(f"FUNSD target (recall above plain, precision not lower): "
                  f"{'met' if o_rec > p_rec and o_prec >= p_prec else 'NOT met'}")


def peak_memory(files: int, folder: Path, settings: OcrSettings) -> tuple[int, float]:
    """Run the pool over ``files`` files in a child process; (peak tree RSS in kB, seconds)."""
    command = [sys.executable, str(Path(__file__)), "--memory-child", str(files), "--dir", str(folder),
               "--workers", str(settings.workers)]
    start = time.perf_counter()
    child = subprocess.Popen(command)
    peak = 0
    while child.poll() is None:
        peak = max(peak, ocr_engines.tree_rss_kb(child.pid))
        time.sleep(0.1)
    if child.returncode:
        raise SystemExit(f"memory child failed with exit code {child.returncode}")
    return peak, time.perf_counter() - start


def memory_child(files: int, folder: Path, settings: OcrSettings) -> None:
    # The job list is a generator: the pool must not need the whole folder in memory.
    sources = sorted(folder.glob("*.png"))
    jobs = ((i, sources[i % len(sources)]) for i in range(files))
    done = sum(1 for _ in ocr_many(jobs, settings))
    assert done == files


def bench_memory(settings: OcrSettings, workdir: Path, sizes: tuple[int, int]) -> None:
    folder = workdir / "memory"
    folder.mkdir()
    for i in range(20):
        text = ENGLISH[i % len(ENGLISH)].split(".")[0][:60]
        (folder / f"{i:02d}.png").write_bytes(make_slip(text, CLEAN, seed=i, font_px=22, width=700))
    table = Table(title="Peak memory of the OCR pool (parent + workers + tesseract)")
    for column in ("files", "peak RSS (MB)", "seconds"):
        table.add_column(column, justify="right")
    peaks = []
    for files in sizes:
        console.print(f"memory: {files} files ...")
        peak, seconds = peak_memory(files, folder, settings)
        peaks.append(peak)
        table.add_row(str(files), f"{peak / 1024:.0f}", f"{seconds:.0f}")
    console.print(table)
    growth = peaks[1] / peaks[0] - 1
    console.print(f"growth {growth:+.1%}; target (within 20%): {'met' if abs(growth) <= 0.2 else 'NOT met'}")


def run_engines(args: argparse.Namespace, settings: OcrSettings, funsd_pages: int) -> None:
    """Issue 11's benchmark: every part in one run, so each policy and the baseline see the same load."""
    workdir = Path(tempfile.mkdtemp(prefix="complaintdesk-engines-bench-"))
    per_class, mix = (2, 12) if args.quick else (args.per_class, args.mix)
    try:
        if not args.skip_slips and not args.skip_classes:
            (workdir / "classes").mkdir()
            ocr_engines.bench_classes(per_class, args.policies, settings, workdir / "classes",
                                      args.classes, args.without_spaces)
        if not args.skip_slips and not args.skip_mix:
            (workdir / "mix").mkdir()
            ocr_engines.bench_mix(mix, args.policies, settings, workdir / "mix")
        if not args.skip_funsd:
            ocr_engines.bench_funsd(args.funsd, funsd_pages, args.policies, settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=200, help="rendered slips in the batch (default 200)")
    parser.add_argument("--funsd", type=Path, default=ROOT.parent / "shared" / "data" / "funsd-test")
    parser.add_argument("--funsd-pages", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="30 slips and 10 FUNSD pages")
    parser.add_argument("--memory", action="store_true",
                        help="also compare peak memory for 100 vs 2,000 files")
    parser.add_argument("--memory-sizes", type=int, nargs=2, default=(100, 2000))
    parser.add_argument("--workers", type=int, default=0, help="OCR pool size (0 = one per core)")
    parser.add_argument("--skip-slips", action="store_true")
    parser.add_argument("--skip-funsd", action="store_true")
    parser.add_argument("--engines", action="store_true",
                        help="the engines benchmark (bench/ocr_engines.py): words lost per kind of slip, "
                             "FUNSD and throughput on the realistic mix for each policy")
    parser.add_argument("--per-class", type=int, default=12, help="--engines: slips per kind (default 12)")
    parser.add_argument("--mix", type=int, default=60, help="--engines: slips in the realistic mix")
    parser.add_argument("--policies", nargs="+", default=list(ocr_engines.POLICIES),
                        help="--engines: the policies to compare (default: tesseract auto ppocr)")
    parser.add_argument("--skip-classes", action="store_true", help="--engines: no words-lost table")
    parser.add_argument("--classes", nargs="+", choices=ocr_engines.CLASSES,
                        default=list(ocr_engines.CLASSES),
                        help="--engines: the kinds of slip in the words-lost table (default: all)")
    parser.add_argument("--without-spaces", action="store_true",
                        help="--engines: also each policy with [ocr] ppocr_spaces off (ocr/spaces.py)")
    parser.add_argument("--skip-mix", action="store_true", help="--engines: no throughput and memory table")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = OcrSettings(languages="eng+chi_sim", preprocess=list(RECOMMENDED_CHAIN), workers=args.workers)
    if args.memory_child:
        # Memory is a property of the pool, not of the chain: a light chain keeps 2,000 files in minutes.
        light = settings.model_copy(update={"languages": "eng", "preprocess": ["grayscale"]})
        memory_child(args.memory_child, args.dir, light)
        return
    pages, funsd_pages = (30, 10) if args.quick else (args.pages, args.funsd_pages)
    if args.engines:
        run_engines(args, settings.model_copy(update={"workers": args.workers or 2}), funsd_pages)
        return
    console.print(f"chain: {' -> '.join(settings.preprocess)}; cores: {os.cpu_count()}")
    workdir = Path(tempfile.mkdtemp(prefix="complaintdesk-ocr-bench-"))
    try:
        if not args.skip_slips:
            bench_slips(pages, settings, workdir)
        if not args.skip_funsd:
            bench_funsd(args.funsd, settings, funsd_pages)
        if args.memory:
            bench_memory(settings, workdir, tuple(args.memory_sizes))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
