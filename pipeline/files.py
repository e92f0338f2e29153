"""Intake: find the files a staff member pointed at, and hash them before any work is done.

Hashing first lets a re-scanned file be recognised (and skipped) before it costs an OCR run.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline.core.errors import ConfigError

#: extensions tried when a folder is scanned; single files named explicitly are always tried.
SCAN_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf", ".webp", ".heic", ".bmp", ".gif"})


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield the files named, and the scannable files inside the folders named (recursively, sorted).

    Hidden files and folders (``.name``) inside a folder are skipped: scanners and sync tools leave
    their own files there.

    Raises:
        ConfigError: a path does not exist.
    """
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if child.is_file() and child.suffix.lower() in SCAN_SUFFIXES:
                    yield child
        else:
            raise ConfigError(f"no such file or folder: {path}")


def sha256_file(path: Path) -> tuple[str, int]:
    """Return the sha256 hex digest and size of a file, reading it in chunks."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        size = f.tell()
    return digest.hexdigest(), size


def media_type_for(path: Path) -> str:
    """The media type a file's name suggests (the OCR stage sniffs the bytes for the real one)."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
