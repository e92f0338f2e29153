"""Spaces put back between English words PP-OCR ran together (``ocr.spaces``), and nothing else touched.

The run-together readings are PP-OCR's own ("floorhave", "approvalof" on handwriting-style slips of
bench/ocr.py); the misreadings that must stay as read are too ("sussestion", "windkw", "queve").
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ocr
from ocr.engines import Recognition, Word
from ocr.settings import OcrSettings
from ocr.spaces import Segmenter, english, spaced
from ocr.synth import make_slip
from tests.ocr_fixtures import ocr_settings  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("read", "meant"),
    [
        ("thelifthasbeenbrokenforweeks", "the lift has been broken for weeks"),
        ("Window7wasclosed", "Window 7 was closed"),
        ("floorhave", "floor have"),
        ("approvalof", "approval of"),
        ("Thelift.", "The lift."),
        ("(brokenagain)", "(broken again)"),
        ("waitingroom,", "waiting room,"),
        ("Iwaited two hours", "I waited two hours"),
        ("the toilets onthesecondfloor have no soap", "the toilets on the second floor have no soap"),
        ("floor2toilets", "floor 2 toilets"),
    ],
)
def test_words_run_together_are_split(read: str, meant: str) -> None:
    assert english().split_line(read) == meant


@pytest.mark.parametrize(
    "token",
    [
        # words, numbers, times and money
        "elevator", "Saturdays", "handrail", "1043", "12:30", "3.50", "20%",
        # addresses, phones, URLs, slip numbers, references and codes
        "chen.ming@example.com", "138-1234-5678", "+86-20-7946-0321", "020", "www.example.com/help",
        "https://example.com/apply", "2026-000123", "No.1043", "A1043", "KX3F9", "B2", "Window7", "No1043",
        # names and words the table knows, capitals (headings, codes), short runs
        "Xiaoming", "ZHANGWEI", "BUYDOWN", "ofthe", "don't", "e-mail",
        # PP-OCR's misreadings of handwriting: junk in, the same junk out
        "sussestion", "windkw", "queve", "onteanco", "climnt", "eogncnt",
    ],
)
def test_tokens_that_are_not_run_together_stay(token: str) -> None:
    assert english().split_token(token) == [token]


def test_chinese_lines_never_get_spaces() -> None:
    for line in ("电梯坏了thelifthasbeenbroken", "地铁站B出口的楼梯下雨天很滑", "工号1043的工作人员"):
        assert english().split_line(line) == line


def test_a_split_needs_a_clearly_better_score() -> None:
    words = {"in": 0.02, "to": 0.02, "window": 1e-4, "closed": 1e-4, "wind": 1e-5, "ow": 1e-6, "xq": 1e-9}
    segmenter = Segmenter(words)
    assert segmenter.split_token("windowclosed") == ["window", "closed"]
    assert segmenter.split_token("closedwindow") == ["closed", "window"]
    assert segmenter.split_token("windowxq") == ["windowxq"]  # a rare word is no part
    assert Segmenter(words, margin=100).split_token("windowclosed") == ["windowclosed"]


def test_split_words_share_the_box_and_chinese_lines_stay() -> None:
    english_line = [Word("Window7wasclosed", 91.0, (0, 0, 0), (100, 10, 260, 40)),
                    Word("all", 95.0, (0, 0, 0))]
    chinese_line = [Word("电", 90.0, (0, 0, 1)), Word("thelift", 90.0, (0, 0, 1))]
    result = Recognition("Window7wasclosed all\n电thelift", (*english_line, *chinese_line), "eng", 0, "ppocr")
    out = spaced(result, english())
    assert out.text == "Window 7 was closed all\n电thelift"
    assert [w.text for w in out.words] == ["Window", "7", "was", "closed", "all", "电", "thelift"]
    assert [w.box for w in out.words[:4]] == [(100, 10, 160, 40), (160, 10, 170, 40), (170, 10, 200, 40),
                                               (200, 10, 260, 40)]
    assert {w.confidence for w in out.words[:4]} == {91.0}
    assert out.engine == "ppocr" and out.language == "eng"


@pytest.mark.parametrize("restore", [True, False])
def test_ppocr_reading_of_a_run_together_slip_comes_out_spaced(
    ocr_settings: OcrSettings,  # noqa: F811 - fixture
    restore: bool,
) -> None:
    # A slip written with its words run together: PP-OCR reads it as written, and the page text and
    # its words (what form parsing rebuilds the case text from) come out spaced unless switched off.
    data = make_slip("Thelifthasbeenbrokenforweeks. Window7wasclosed all morning.")
    settings = ocr_settings.model_copy(update={"policy": "ppocr", "ppocr_spaces": restore})
    (page,) = ocr.read_document(data, "slip.png", settings).pages
    assert page.method == "ppocr"
    spaced_text = "The lift has been broken for weeks. Window 7 was closed all"
    assert (spaced_text in page.text) is restore
    assert ("Thelifthasbeenbrokenforweeks." in page.text) is not restore
    assert (spaced_text in " ".join(w.text for w in page.words)) is restore


def test_word_table_comes_from_the_installed_wheel_with_no_network(tmp_path: Path) -> None:
    # wordfreq's English list is a data file inside the package: nothing is fetched or cached elsewhere.
    script = textwrap.dedent("""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from ocr.spaces import english
        print(english().split_line("Window7wasclosed"))
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Window 7 was closed"
    assert not (tmp_path / "cache").exists()
    data = Path(__import__("wordfreq").__file__).parent / "data" / "large_en.msgpack.gz"
    assert data.is_file()
