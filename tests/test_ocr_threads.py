"""``[ocr] threads`` reaches both engines: Tesseract's environment (``OMP_THREAD_LIMIT``, read by the
tesseract program the pool's workers start) and the ONNX Runtime sessions of PP-OCR.

Each check runs in a fresh interpreter, so that its OCR pool starts from a new forkserver whose PATH
finds a recording ``tesseract`` first, and its PP-OCR engines are only the ones this reading made.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from ocr import ocr_many
    from ocr.ppocr import ppocr_engine
    from ocr.read import read_document
    from ocr.settings import OcrSettings
    from ocr.synth import make_slip

    mode, threads, slip = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    slip.write_bytes(make_slip("The lift on floor 3 is broken again."))
    if mode == "tesseract":
        settings = OcrSettings(languages="eng", policy="tesseract", workers=1, threads=threads)
        [(_, result)] = list(ocr_many([("slip", slip)], settings))
        assert not isinstance(result, Exception), result
    else:
        settings = OcrSettings(languages="eng", policy="ppocr", threads=threads)
        read_document(slip.read_bytes(), slip.name, settings)
        print("ENGINES", ppocr_engine.cache_info().currsize)
        print("SESSIONS", sorted({n for _, n in ppocr_engine(threads).sessions().values()}))
""")


def run(tmp_path: Path, mode: str, threads: int, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode, str(threads), str(tmp_path / "slip.png")],
                          cwd=ROOT, env=env or dict(os.environ), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("threads", [1, 2])
def test_tesseract_runs_with_the_configured_thread_limit(tmp_path: Path, threads: int) -> None:
    real = shutil.which("tesseract")
    assert real is not None
    bin_dir, log = tmp_path / "bin", tmp_path / "omp.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "tesseract"
    wrapper.write_text(f'#!/bin/sh\necho "${{OMP_THREAD_LIMIT:-unset}}" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run(tmp_path, "tesseract", threads, env)
    limits = set(log.read_text().split())
    assert limits == {str(threads)}  # every Tesseract run of the pool, retries included


def test_ppocr_sessions_get_the_configured_threads(tmp_path: Path) -> None:
    out = run(tmp_path, "ppocr", 2)
    assert "ENGINES 1" in out  # the reading used the 2-thread engine, and made no other
    assert "SESSIONS [2]" in out
