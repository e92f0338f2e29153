"""Files and folders only the service's user may open: complaints name citizens and their addresses.

Modes are set with ``chmod`` after creating, not left to ``mkdir``/``open`` and the umask, so a
permissive umask (0o000 under some service managers) cannot widen them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
#: originals are never rewritten once kept
READ_ONLY_FILE_MODE = 0o400


def make_private_dir(path: Path) -> None:
    """Create ``path`` and any missing parents as 0700 folders (existing folders are left alone).

    Raises:
        OSError: a folder cannot be created.
    """
    missing: list[Path] = []
    current = Path(path)
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # another process made it first; it made it private too
            continue
        os.chmod(folder, PRIVATE_DIR_MODE)


def make_private_file(path: Path) -> None:
    """Create ``path`` empty as a 0600 file if missing; tighten it to 0600 if it is wider.

    Raises:
        OSError: the file cannot be created or its mode changed.
    """
    fd = os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != PRIVATE_FILE_MODE:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path, mode: int) -> None:
    """Give an existing file ``mode`` (a database made by an older version was world-readable)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, mode)
