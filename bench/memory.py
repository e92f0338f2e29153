"""Peak memory of ``complaintdesk scan`` on hostile single inputs, measured over the whole process tree.

Each input is scanned alone by the real console script (in a temporary home: ``init`` once, then
one ``scan`` per input). A sampler adds up the RSS of the CLI process and all its descendants
(forkserver, OCR workers, Tesseract) every ~50 ms: ``/usr/bin/time -v`` sees only one process and
misses the pool's grandchildren. Shared pages are counted once per process, so the sum is an upper
bound. Target (issue 10): under 1.5 GB for any single input that is let through.

    .venv/bin/python bench/memory.py [--only NAME ...] [--keep DIR]

Needs psutil (a dev dependency).

Results, 2026-12-01 05:10 UTC, 2 shared cores, default settings (2 OCR workers, max_ocr_pixels 12 M,
max_decode_bytes 400 MB); before this change the 8900x8900 PNG peaked at 3,073 MB (FAIL):

    input                          bytes  peak tree RSS  seconds  result  outcome
    baseline-slip                404,187         390 MB     21.8  pass    created
    png-8900-gray                 28,259         515 MB      8.6  pass    created
    png-8900-rgba                385,382       1,085 MB      9.5  pass    created
    jpeg-8900                  1,241,623         723 MB      9.8  pass    quarantined: no text (blank)
    jpeg-8900-progressive        466,412         328 MB      6.2  pass    quarantined: ~529 MB to decode
    tiff-8-pages-6000             23,168         685 MB     35.6  pass    quarantined: no text (blank)
    tiff-500-pages                80,000         334 MB      8.9  pass    quarantined: over ocr.max_pages
    pdf-200in-page                   871         627 MB     12.2  pass    quarantined: no text (boxes only)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocr.synth import LATIN_FONT, make_slip  # noqa: E402
from tests.ocr_fixtures import build_pdf  # noqa: E402

EXE = str(Path(sys.executable).parent / "complaintdesk")
LIMIT_BYTES = int(1.5 * 2**30)
SAMPLE_SECONDS = 0.05


def _png(mode: str, size: int, fill: object) -> bytes:
    image = Image.new(mode, (size, size), fill)  # type: ignore[arg-type]
    # Letters about 160 px tall, as on a page scanned at a very high resolution: still readable
    # once the page is reduced to the OCR budget.
    font = ImageFont.truetype(str(LATIN_FONT), size // 40)
    ink = 0 if mode in ("1", "L") else (0, 0, 0, 255)
    ImageDraw.Draw(image).text(
        (size // 10, size // 2), "Window 3 was closed all morning", fill=ink, font=font
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _jpeg(size: int, *, progressive: bool) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (245, 245, 240)).save(buffer, "JPEG", quality=50, progressive=progressive)
    return buffer.getvalue()


def _tiff(pages: int, size: int) -> bytes:
    frames = [Image.new("1", (size, size), 1) for _ in range(pages)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:], compression="group4")
    return buffer.getvalue()


def _pdf_huge_box() -> bytes:
    # 200 x 200 inches with vector marks and no text layer: rendered, then OCR'd.
    drawing = b"0 g " + b" ".join(b"%d %d 400 40 re f" % (i * 700, i * 700) for i in range(20))
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(drawing) + drawing + b"\nendstream",
    ])


INPUTS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "baseline-slip": (
        "slip.png", lambda: make_slip("The lift near the east entrance is broken again.", seed=1)
    ),
    "png-8900-gray": ("huge.png", lambda: _png("1", 8900, 1)),
    "png-8900-rgba": ("huge-rgba.png", lambda: _png("RGBA", 8900, (250, 250, 250, 255))),
    "jpeg-8900": ("huge.jpg", lambda: _jpeg(8900, progressive=False)),
    "jpeg-8900-progressive": ("huge-progressive.jpg", lambda: _jpeg(8900, progressive=True)),
    "tiff-8-pages-6000": ("pages.tif", lambda: _tiff(8, 6000)),
    "tiff-500-pages": ("many.tif", lambda: _tiff(500, 64)),
    "pdf-200in-page": ("poster.pdf", _pdf_huge_box),
}


@dataclass
class Run:
    name: str
    size: int
    outcome: str
    peak: int
    seconds: float


def tree_rss(root: psutil.Process) -> int:
    """RSS of ``root`` and all its descendants, in bytes (processes that vanish meanwhile count 0)."""
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return total


@dataclass
class Sampled:
    """A finished command: exit code, output, and the peak RSS of its process tree in bytes."""

    code: int
    out: str
    err: str
    peak: int
    seconds: float


def run_sampled(argv: list[str], env: dict[str, str], *, timeout: float | None = None) -> Sampled:
    """Run ``argv`` to its end while summing the RSS of it and all its descendants every ~50 ms."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="backslashreplace")
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:  # it ended before the first sample
            return
        while not done.is_set():
            peak = max(peak, tree_rss(root))
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(killed after {timeout} s)"
    finally:
        done.set()
        sampler.join()
    return Sampled(proc.returncode, out, err, peak, time.monotonic() - started)


def scan(name: str, filename: str, data: bytes, home: Path, work: Path) -> Run:
    folder = work / name
    folder.mkdir()
    (folder / filename).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLAINTDESK_")}
    ran = run_sampled([EXE, "--home", str(home), "scan", str(folder), "--json"], env)
    return Run(name, len(data), _outcome(ran.out, ran.err, ran.code), ran.peak, ran.seconds)


def _outcome(out: str, err: str, code: int) -> str:
    for line in out.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        reason = row.get("reason") or ""
        return f"{row['outcome']}" + (f": {reason[:70]}" if reason else "")
    return f"exit {code}: {err.strip().splitlines()[-1][:70] if err.strip() else ''}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", choices=sorted(INPUTS), help="Inputs to run (default: all).")
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cd-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    subprocess.run([EXE, "--home", str(home), "init"], check=True, capture_output=True)
    runs = []
    try:
        for name in args.only or INPUTS:
            filename, make = INPUTS[name]
            run = scan(name, filename, make(), home, work)
            runs.append(run)
            print(_row(run), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'input':24} {'bytes':>11} {'peak tree RSS':>14} {'seconds':>8}  result  outcome")
    for run in runs:
        print(_row(run))
    return 0 if all(run.peak < LIMIT_BYTES for run in runs) else 1


def _row(run: Run) -> str:
    verdict = "pass" if run.peak < LIMIT_BYTES else "FAIL"
    return (
        f"{run.name:24} {run.size:>11,} {run.peak / 2**20:>11,.0f} MB "
        f"{run.seconds:>8.1f}  {verdict:6}  {run.outcome}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
