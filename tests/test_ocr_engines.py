"""The two OCR engines and the policy that picks one: real Tesseract, real PP-OCR (rapidocr).

One PP-OCR engine per test process (``ppocr_engine`` is cached), as in a pool worker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import ocr
from ocr.ppocr import model_paths, ppocr_engine
from ocr.read import effective_policy
from ocr.script import text_bands
from ocr.settings import OcrSettings
from ocr.synth import CLEAN, HAND_FONTS_EN, HAND_FONTS_ZH, HARD, MILD, Degradation, make_slip, render_slip
from pipeline.config import load_settings
from pipeline.core.errors import ConfigError
from tests.ocr_fixtures import ocr_settings  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent
CHINESE = "地铁站B出口的楼梯下雨天很滑，请加防滑垫或者扶手。工号1043的工作人员态度很差。"
ENGLISH = "The elevator near the east entrance is broken again and older visitors have to climb the stairs."
HAN = [c for c in CHINESE if "\u4e00" <= c <= "\u9fff"]


def _han_found(text: str) -> float:
    found = sum(1 for c in HAN if c in text)
    return found / len(HAN)


def test_models_are_the_wheels_and_load_with_no_network(tmp_path: Path) -> None:
    # In a fresh process with every socket refused and an empty home and cache: the sessions come
    # from the files inside the installed package, and reading a page downloads nothing.
    package = Path(__import__("rapidocr").__file__).parent
    assert all(path.parent == package / "models" for path in model_paths().values())
    script = textwrap.dedent(f"""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from ocr.ppocr import ppocr_engine
        from ocr.synth import make_slip
        import io, numpy as np
        from PIL import Image
        engine = ppocr_engine()
        for task, (path, threads) in engine.sessions().items():
            print(task, path, threads)
        page = np.asarray(Image.open(io.BytesIO(make_slip({CHINESE!r}))).convert("L"))
        print("TEXT", engine.read(page).text.replace(chr(10), " "))
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT), "NO_PROXY": "*"}
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    sessions = {line.split()[0]: line.split()[1:] for line in lines if line[:3] in ("Det", "Cls", "Rec")}
    assert set(sessions) == {"Det", "Cls", "Rec"}
    for path, threads in sessions.values():
        assert Path(path).parent == package / "models"
        assert threads == "1"  # one ONNX Runtime thread, like Tesseract in a pool worker
    text = next(line for line in lines if line.startswith("TEXT"))
    assert _han_found(text) >= 0.95
    assert not list(tmp_path.rglob("*.onnx"))  # nothing was fetched into a cache


def test_policy_needs_its_engines() -> None:
    with pytest.raises(ValidationError, match="needs the engine 'ppocr'"):
        OcrSettings(engines=["tesseract"], policy="ppocr")
    assert effective_policy(OcrSettings(engines=["tesseract"], policy="auto")) == "tesseract"
    assert effective_policy(OcrSettings()) == "auto"


def test_text_bands_are_the_lines_of_the_slip() -> None:
    page = np.asarray(render_slip("one line of text\nand a second line\nand a third", jitter=0).convert("L"))
    # the heading and the three lines; the ruled lines under them are not text
    assert len(text_bands(page)) == 4


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "font"),
    [(CLEAN, None), (MILD, None), (HARD, None), (MILD, HAND_FONTS_ZH[0]), (HARD, HAND_FONTS_ZH[1])],
    ids=["printed-clean", "printed-mild", "printed-hard", "ukai-mild", "cwkai-hard"],
)
def test_chinese_content_on_a_bilingual_form_is_read_as_chinese(
    how: Degradation, font: Path | None, ocr_settings: OcrSettings
) -> None:
    # English headings and an English prompt are printed on the form; the content is Chinese.
    jitter = 1.5 if font else 1.0
    data = make_slip(CHINESE, how, seed=21, bilingual=True, font=font, jitter=jitter, font_px=32)
    result = ocr.read_document(data, "bilingual.jpg", ocr_settings)
    (page,) = result.pages
    assert page.method == "ppocr"
    assert _han_found(page.text) >= 0.97, page.text
    assert "1043" in page.text  # digits inside a Chinese line stay one word
    assert "Citizen Service Center" in page.text  # and the English heading is read too


@pytest.mark.slow
def test_handwritten_english_slip_is_read(ocr_settings: OcrSettings) -> None:
    data = make_slip(ENGLISH, MILD, seed=5, font=HAND_FONTS_EN[1], jitter=1.5, font_px=34)
    (page,) = ocr.read_document(data, "hand.jpg", ocr_settings).pages
    words = ENGLISH.lower().replace(".", "").split()
    read = page.text.lower()
    assert sum(w in read for w in words) >= 0.85 * len(words), page.text


@pytest.mark.slow
def test_printed_english_stays_with_tesseract_and_words_have_boxes(ocr_settings: OcrSettings) -> None:
    data = make_slip(ENGLISH, CLEAN, seed=6)
    (page,) = ocr.read_document(data, "clean.png", ocr_settings).pages
    assert page.method == "tesseract"
    assert "elevator" in page.text


@pytest.mark.slow
def test_ppocr_words_have_boxes_on_the_page_it_read(ocr_settings: OcrSettings) -> None:
    data = make_slip(CHINESE, CLEAN, seed=7, bilingual=True)
    (page,) = ocr.read_document(data, "zh.png", ocr_settings).pages
    width, height = page.size
    assert page.method == "ppocr" and page.words
    for word in page.words:
        left, top, right, bottom = word.box
        assert 0 <= left < right <= width + 1 and 0 <= top < bottom <= height + 1
    lines = [w.line for w in page.words]
    assert lines == sorted(lines) and lines[0] == 0
    assert "1043" in [w.text for w in page.words]
    # the first line is the English heading, above the Chinese content
    first = [w for w in page.words if w.line == 0]
    assert [w.text for w in first][:2] == ["Citizen", "Service"]
    assert first[0].box[2] <= first[1].box[0]


@pytest.mark.slow
def test_pool_workers_read_with_ppocr(tmp_path: Path, ocr_settings: OcrSettings) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        path.write_bytes(make_slip(CHINESE, CLEAN, seed=30 + i, bilingual=True))
        paths.append(path)
    results = dict(ocr.ocr_many(((p.name, p) for p in paths), ocr_settings))
    assert len(results) == 3
    for result in results.values():
        assert not isinstance(result, Exception)
        assert result.pages[0].method == "ppocr"
        assert _han_found(result.text) >= 0.97


def test_settings_error_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="policy"):
        load_settings(home=tmp_path, ocr={"policy": "ppocr", "engines": ["tesseract"]})


def test_same_engine_for_every_page_of_a_process() -> None:
    assert ppocr_engine() is ppocr_engine()
