"""Reading labelled JSONL rows, routing them to a language, and hashing them for model versions.

A row is a JSON object with ``text`` and any label-set fields (``department``, ``sentiment``,
``kind``...); ``lang`` ("en"/"zh") is optional and otherwise detected from the text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from classifiers.text import _HAN_RE, _LATIN_WORD_RE, detect_language, normalize_text
from pipeline.core.errors import InputError

#: The languages with their own spaCy pipeline.
LANGUAGES = ("en", "zh")


def data_files(paths: Iterable[Path]) -> list[Path]:
    """Expand ``paths``: a directory stands for the ``*.jsonl`` files directly in it (sorted).

    Raises:
        InputError: a path does not exist, or no JSONL file was found.
    """
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(p.glob("*.jsonl")))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"training data not found: {p}")
    if not files:
        raise InputError(f"no *.jsonl files in {', '.join(str(p) for p in paths)}")
    return files


def read_rows(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """All rows of the JSONL files under ``paths`` that have a non-empty ``text``.

    Raises:
        InputError: a file cannot be read or a line is not a JSON object.
    """
    rows: list[dict[str, Any]] = []
    for path in data_files(paths):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read {path}: {e}") from e
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{number}: not valid JSON: {e}") from e
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: expected a JSON object")
            if isinstance(row.get("text"), str) and row["text"].strip():
                rows.append(row)
    return rows


def route_language(text: str, available: Sequence[str] = LANGUAGES) -> str:
    """The pipeline language for a text: ``zh`` when Han characters outnumber Latin words, else ``en``.

    Falls back to the first available pipeline when the preferred one is missing.
    """
    lang = detect_language(text)
    if lang == "mixed":
        lang = "zh" if len(_HAN_RE.findall(text)) >= len(_LATIN_WORD_RE.findall(text)) else "en"
    if lang not in LANGUAGES:
        lang = "en"
    return lang if lang in available else available[0]


def row_language(row: Mapping[str, Any]) -> str:
    """The ``lang`` field when it names a pipeline language, else the language routed from the text."""
    lang = str(row.get("lang") or "")
    return lang if lang in LANGUAGES else route_language(normalize_text(str(row["text"])))


def fingerprint(rows: Sequence[Mapping[str, Any]], fields: Sequence[str], *extra: str) -> str:
    """A sha256 over the rows' text, language and label fields (in order) plus ``extra`` strings."""
    h = hashlib.sha256()
    for row in rows:
        record = {"text": row["text"], "lang": row.get("lang", "")} | {f: row.get(f) for f in fields}
        h.update(json.dumps(record, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    for e in extra:
        h.update(e.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def is_dev_row(text: str, dev_every: int) -> bool:
    """Deterministic dev-split membership: about one row in ``dev_every``, by a hash of the text."""
    if dev_every <= 1:
        return False
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % dev_every == 0
