"""Intake: find the files a staff member pointed at, and read them without trusting the folder.

A scanned folder is filled by scanners, sync tools and, through the web upload, by the public, so
every entry is treated as hostile: each one seen is either taken or reported as ``Skipped`` with a
reason (never dropped in silence), links are not followed out of the folder, FIFOs and devices are
never opened (opening a FIFO blocks), and a file that cannot be read raises an ``InputError`` with a
reason for people instead of an ``OSError`` that would end the batch.

Hashing first lets a re-scanned file be recognised (and skipped) before it costs an OCR run.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.core.errors import ConfigError, UnreadableScanError, UnsupportedFormatError

#: extensions tried when a folder is scanned; single files named explicitly are always tried.
SCAN_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf", ".webp", ".heic", ".bmp", ".gif"}
)
_SCAN_FORMATS = "PNG, JPEG, TIFF, PDF, WebP, HEIC, BMP, GIF"

#: control, format (bidi overrides, zero-width), surrogate and line/paragraph separator characters;
#: Zs spaces such as the ideographic space of Chinese text are shown as they are
UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry of a scanned folder that is not taken, and why (for the operator, never raw bytes)."""

    path: Path
    reason: str


def iter_files(paths: Iterable[Path], *, follow_symlinks: bool = False) -> Iterator[Path | Skipped]:
    """Yield every file to take, and a ``Skipped`` for every other entry seen, in a stable order.

    Folders are walked recursively, each level sorted by name. Hidden entries (``.name``) inside a
    folder are passed over without a record: scanners and sync tools keep their own files there.
    Inside a folder only files with a scan suffix are taken; a file named explicitly is always
    tried, whatever its suffix.

    Symbolic links: a link inside a scanned folder is taken when it points to a regular file inside
    that folder (compared after resolving both), and reported otherwise: a loop, a broken link, a
    link to a folder (not walked twice) or a link leaving the folder. ``follow_symlinks=True``
    follows links anywhere, into folders too, each folder walked once. A path named explicitly is
    the operator's own choice, so a link named on the command line is followed, to a file or to a
    folder that is then the scanned folder. FIFOs, sockets and devices are reported, never opened.

    Raises:
        ConfigError: a path named does not exist (a broken link named explicitly included).
    """
    for path in paths:
        yield from _named(Path(path), follow_symlinks)


def _named(path: Path, follow_symlinks: bool) -> Iterator[Path | Skipped]:
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        raise ConfigError(f"no such file or folder: {printable(str(path))}") from e
    except OSError as e:
        yield Skipped(path, _oserror_reason(e))
        return
    if stat.S_ISREG(st.st_mode):
        yield path
    elif stat.S_ISDIR(st.st_mode):
        root = os.path.realpath(path)
        yield from _walk(path, root, follow_symlinks, {(st.st_dev, st.st_ino)})
    else:
        yield Skipped(path, _special_reason(st.st_mode))


def _walk(folder: Path, root: str, follow: bool, seen: set[tuple[int, int]]) -> Iterator[Path | Skipped]:
    """Walk one folder; ``seen`` holds the (device, inode) of every folder already walked in this root."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        yield Skipped(folder, f"cannot open the folder: {_oserror_text(e)}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = folder / entry.name
        try:
            if entry.is_symlink():
                yield from _link(path, root, follow, seen)
            elif entry.is_dir(follow_symlinks=False):
                yield from _subfolder(path, entry.stat(follow_symlinks=False), root, follow, seen)
            else:
                yield _file(path, entry.stat(follow_symlinks=False).st_mode)
        except OSError as e:  # the entry vanished or its folder is readable but not searchable
            yield Skipped(path, f"cannot look at it: {_oserror_text(e)}")


def _subfolder(path: Path, st: os.stat_result, root: str, follow: bool, seen: set[tuple[int, int]]
               ) -> Iterator[Path | Skipped]:
    key = (st.st_dev, st.st_ino)
    if key in seen:  # only reachable through a followed link
        yield Skipped(path, "a link to a folder that is already being scanned (a loop or a second way in)")
        return
    seen.add(key)
    yield from _walk(path, root, follow, seen)


def _link(path: Path, root: str, follow: bool, seen: set[tuple[int, int]]) -> Iterator[Path | Skipped]:
    try:
        st = os.stat(path)  # follows the link; lstat said it is one
    except OSError as e:
        if e.errno == errno.ELOOP:
            yield Skipped(path, "a symbolic link loop")
        elif e.errno in (errno.ENOENT, errno.ENOTDIR):
            yield Skipped(path, "a broken symbolic link: its target does not exist")
        else:
            yield Skipped(path, f"a symbolic link whose target cannot be looked at: {_oserror_text(e)}")
        return
    target = os.path.realpath(path)
    if not follow and not _inside(target, root):
        yield Skipped(path, "a symbolic link pointing outside the scanned folder; not followed "
                            "(scan --follow-symlinks to allow it)")
    elif stat.S_ISDIR(st.st_mode):
        if follow:
            yield from _subfolder(path, st, root, follow, seen)
        else:
            yield Skipped(path, "a symbolic link to a folder; not followed, the folder's own files are "
                                "scanned where they are (scan --follow-symlinks to follow it)")
    else:
        yield _file(path, st.st_mode)


def _file(path: Path, mode: int) -> Path | Skipped:
    if not stat.S_ISREG(mode):
        return Skipped(path, _special_reason(mode))
    suffix = path.suffix.lower()
    if suffix not in SCAN_SUFFIXES:
        what = f"a {printable(suffix)} file" if suffix else "a file without a suffix"
        return Skipped(path, f"{what}: not a scan format; scan takes {_SCAN_FORMATS} "
                             "(name the file explicitly to try it anyway)")
    return path


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _special_reason(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        kind = "a named pipe (FIFO)"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISDIR(mode):
        kind = "a folder"
    else:
        kind = "a special file"
    return f"{kind}, not a regular file; never opened"


@contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open a regular file for reading, refusing anything else before and after opening it.

    Checked before opening so a device is never opened; checked again on the open descriptor (and
    opened non-blocking) in case the entry was swapped for a FIFO in between.

    Raises:
        UnreadableScanError: the file cannot be opened (permission, vanished, I/O error).
        UnsupportedFormatError: not a regular file (a folder, FIFO, socket or device).
    """
    name = printable(Path(path).name)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise UnsupportedFormatError(f"{name} is {_special_reason(mode)}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise UnreadableScanError(f"cannot read {name}: {_oserror_text(e)}") from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsupportedFormatError(f"{name} is {_special_reason(mode)}")
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        try:
            yield f
        except OSError as e:  # a read failed half-way: bad disk, network share gone
            raise UnreadableScanError(f"cannot read {name}: {_oserror_text(e)}") from e


def media_type_for(path: Path) -> str:
    """The media type a file's name suggests (the OCR stage sniffs the bytes for the real one)."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def source_name(path: Path) -> str:
    """The path as text any database and JSON can hold: bytes that are not UTF-8 become ``\\xNN``.

    The name is for records and people; the file itself is always opened through its ``Path``.
    """
    return storable(os.fspath(path))


def storable(text: str) -> str:
    """``text`` without lone surrogates, which no database driver or UTF-8 output accepts.

    Python carries the bytes of a file name that are not UTF-8 as surrogates (``surrogateescape``);
    they reach messages through the name, and become ``\\xNN`` here (any other lone surrogate ``\\udNNN``).
    """
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that does not stand for a byte
        data = text.encode("utf-8", "backslashreplace")
    return data.decode("utf-8", "backslashreplace")


def printable(text: str) -> str:
    """``text`` safe to show in a terminal: control, format and lone surrogate characters as escapes.

    Escapes (``\\n``, ``\\x1b``, ``\\u202e``) rather than removal, so two odd names stay distinct.
    """
    if text.isprintable():
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in UNPRINTABLE else ch for ch in text)


def _escape(ch: str) -> str:
    if unicodedata.category(ch) == "Cs":  # a byte that was not UTF-8, carried by surrogateescape
        return f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF else f"\\u{ord(ch):04x}"
    return ch.encode("unicode_escape").decode("ascii")


def _oserror_text(e: OSError) -> str:
    """The operating system's reason in words (``permission denied``), without the path it names."""
    if e.errno is not None:
        return os.strerror(e.errno).lower()
    return type(e).__name__


def _oserror_reason(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "a symbolic link loop"
    return f"cannot look at it: {_oserror_text(e)}"
