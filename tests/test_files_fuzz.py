"""Fuzz iter_files over file names nobody would choose but anyone can make: spaces, newlines, rich markup,
terminal escape sequences, bytes that are not UTF-8, 255-byte names, leading dashes.

Every entry is seen exactly once, and what is said about it can be stored and printed.
(The same kind of names through the console script: tests/test_scan_hostile.py.)
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.files import SCAN_SUFFIXES, Skipped, iter_files, printable, source_name

PIECES = [
    b" ", b"\n", b"\t", b"\r", b"[", b"]", b"[red]", b"[bold", b"\x1b[31m", b"\x1b]0;title\x07",
    b"\x7f", b"\xc2\x9b", b"\xff", b"\xc3", b"\xed\xa0\x80", "窗口投诉".encode(), "\u202e".encode(), b"-",
    b"--help", b"a", b"Z", b"0", b"\\", b"'", b'"', b"%s", b"{}", b"*", b"~", b".",
]
SUFFIXES = [b".png", b".PNG", b".jpeg", b".pdf", b".docx", b".txt", b"", b".png\n", b".[x]"]
NAME_MAX = 255

stems = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=10).map(b"".join),
    st.binary(min_size=1, max_size=30),
    st.integers(200, NAME_MAX).map(lambda n: b"-" + b"x" * n),  # very long, leading dash
)


@st.composite
def names(draw: st.DrawFn) -> bytes:
    suffix = draw(st.sampled_from(SUFFIXES))
    stem = draw(stems).replace(b"/", b"_").replace(b"\0", b"_")[: NAME_MAX - len(suffix)]
    name = stem + suffix
    return name if name not in (b".", b"..") else b"_" + name


def unprintable(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")]


@settings(max_examples=60, deadline=None)
@given(files=st.lists(names(), min_size=1, max_size=10, unique=True), folder=names(), inner=names())
def test_every_entry_is_seen_exactly_once_and_described_in_printable_text(
    files: list[bytes], folder: bytes, inner: bytes
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = os.fsencode(tmp) + b"/box"
        os.mkdir(root)
        expected = {}
        for name in files:
            with open(root + b"/" + name, "wb") as f:
                f.write(b"scan")
            expected[root + b"/" + name] = name
        if folder not in files:
            os.mkdir(root + b"/" + folder)
            with open(root + b"/" + folder + b"/" + inner, "wb") as f:
                f.write(b"scan")
            if not folder.startswith(b"."):
                expected[root + b"/" + folder + b"/" + inner] = inner
        visible = {path: name for path, name in expected.items() if not name.startswith(b".")}

        seen: list[bytes] = []
        for entry in iter_files([Path(os.fsdecode(root))]):
            path = entry.path if isinstance(entry, Skipped) else entry
            seen.append(os.fsencode(path))
            suffix = path.suffix.lower()
            assert isinstance(entry, Skipped) != (suffix in SCAN_SUFFIXES), (path, entry)
            if isinstance(entry, Skipped):
                assert not unprintable(entry.reason), entry.reason
            # what a record and a terminal get: valid UTF-8, control characters escaped
            name = source_name(path)
            json.dumps(name, ensure_ascii=False).encode("utf-8")
            assert not unprintable(printable(name))
        assert sorted(seen) == sorted(visible)
