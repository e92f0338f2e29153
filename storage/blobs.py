"""The content-addressed store of originals: every file kept byte for byte under its SHA-256.

Layout: ``root/ab/cd/abcd...`` (the first two pairs of hex digits as folders). A blob is written once,
through a temporary file in the same folder that is fsynced, checked and then ``os.replace``d into
place, so a reader never sees a partial file and a crash leaves at most a stray ``.tmp`` file.
Originals name citizens: folders are 0700 and blobs 0400 (read-only, private), whatever the umask.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from storage.errors import StorageError
from storage.private import READ_ONLY_FILE_MODE, make_private_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


def sha256_bytes(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_stream(f: BinaryIO) -> tuple[int, str]:
    """The size and hex SHA-256 of what ``f`` reads until its end, read in chunks (a local file, an S3
    object's body); the caller closes ``f``.

    Raises:
        OSError: reading failed.
    """
    digest, size = hashlib.sha256(), 0
    while chunk := f.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def is_sha256(name: str) -> bool:
    """True if ``name`` is a lower-case hex SHA-256 (the name of a blob)."""
    return bool(_SHA256.match(name))


def check_sha256(sha: str) -> None:
    """Raises:
    StorageError: ``sha`` is not a lower-case hex SHA-256 (nothing can be stored under it).
    """
    if not _SHA256.match(sha):
        raise StorageError(f"not a SHA-256 digest: {sha!r}")


class Blobs(Protocol):
    """What the pipeline needs of a store of originals: the local ``BlobStore`` or ``storage.s3``'s.

    ``path`` is a local file with the bytes (OCR reads files); ``digest`` reads the stored bytes
    themselves (the integrity check), raising ``FileNotFoundError`` for a missing blob.
    """

    @property
    def location(self) -> str: ...
    def exists(self, sha: str) -> bool: ...
    def put(self, data: bytes, sha256: str | None = None) -> str: ...
    def put_stream(self, f: BinaryIO) -> tuple[str, int]: ...
    def path(self, sha: str) -> Path: ...
    def open(self, sha: str) -> BinaryIO: ...
    def read(self, sha: str) -> bytes: ...
    def digest(self, sha: str) -> tuple[int, str]: ...
    def verify(self, sha: str) -> bool: ...
    def shas(self) -> Iterator[str]: ...


class BlobStore:
    """Originals on disk, addressed by their SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        """Where the originals are, for messages."""
        return str(self.root)

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists).

        Raises:
            StorageError: ``sha`` is not a lower-case hex SHA-256.
        """
        check_sha256(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` (once) and return its SHA-256.

        Raises:
            StorageError: ``sha256`` was given and does not match the data, the bytes written do not
                hash back to it, or the disk refused the write.
        """
        sha = sha256_bytes(data)
        if sha256 is not None and sha256 != sha:
            raise StorageError(f"data does not match its expected SHA-256 {sha256} (it hashes to {sha})")
        target = self.path(sha)
        try:
            if target.is_file() and target.stat().st_size == len(data):
                # kept by a version that made it 0444
                if target.stat().st_mode & 0o777 != READ_ONLY_FILE_MODE:
                    os.chmod(target, READ_ONLY_FILE_MODE)
                return sha
            make_private_dir(target.parent)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{sha[:12]}.", suffix=".tmp", dir=target.parent)
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                written = _hash_file(tmp)
                if written != sha:
                    raise StorageError(
                        f"the copy of {sha} written to {tmp} hashes to {written}; disk problem?"
                    )
                os.chmod(tmp, READ_ONLY_FILE_MODE)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"cannot write original {sha} under {self.root}: {e}") from e
        return sha

    def put_stream(self, f: BinaryIO) -> tuple[str, int]:
        """Store what ``f`` reads until its end, hashing while copying; returns (SHA-256, size).

        Raises:
            OSError: reading ``f`` failed.
            StorageError: the store refused the write.
        """
        digest = hashlib.sha256()
        size = 0
        try:
            make_private_dir(self.root)
            fd, tmp_name = tempfile.mkstemp(prefix=".incoming.", suffix=".tmp", dir=self.root)
        except OSError as e:
            raise StorageError(f"cannot write an original under {self.root}: {e}") from e
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            self._install(tmp, sha, size)
        finally:
            tmp.unlink(missing_ok=True)
        return sha, size

    def _install(self, tmp: Path, sha: str, size: int) -> None:
        target = self.path(sha)
        try:
            if target.is_file() and target.stat().st_size == size:
                # kept by a version that made it 0444
                if target.stat().st_mode & 0o777 != READ_ONLY_FILE_MODE:
                    os.chmod(target, READ_ONLY_FILE_MODE)
                return
            make_private_dir(target.parent)
            os.chmod(tmp, READ_ONLY_FILE_MODE)
            os.replace(tmp, target)
        except OSError as e:
            raise StorageError(f"cannot write original {sha} under {self.root}: {e}") from e

    def open(self, sha: str) -> BinaryIO:
        """The blob ``sha`` opened for reading in binary mode (the caller closes it).

        Raises:
            StorageError: no such blob in this store.
        """
        path = self.path(sha)
        try:
            return path.open("rb")
        except FileNotFoundError as e:
            raise StorageError(f"no original with SHA-256 {sha} in {self.root}") from e
        except OSError as e:
            raise StorageError(f"cannot read original {sha} in {self.root}: {e}") from e

    def read(self, sha: str) -> bytes:
        with self.open(sha) as f:
            return f.read()

    def digest(self, sha: str) -> tuple[int, str]:
        """The size and SHA-256 of the bytes stored as ``sha`` (to find damage).

        Raises:
            FileNotFoundError: there is no such blob.
            OSError: it cannot be read.
        """
        with self.path(sha).open("rb") as f:
            return sha256_stream(f)

    def shas(self) -> Iterator[str]:
        """The SHA-256 of every blob in the store (in no particular order)."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if _SHA256.match(path.name) and path.is_file():
                yield path.name

    def verify(self, sha: str) -> bool:
        """True if the blob exists and its bytes still hash to ``sha``."""
        path = self.path(sha)
        try:
            return _hash_file(path) == sha
        except OSError:
            return False


def _hash_file(path: Path) -> str:
    with path.open("rb") as f:
        return sha256_stream(f)[1]
