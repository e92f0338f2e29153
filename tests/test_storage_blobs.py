"""The content-addressed store of originals."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

import storage


def test_put_open_path_round_trip(tmp_path: Path) -> None:
    store = storage.BlobStore(tmp_path / "originals")
    data = b"\x89PNG fake scan bytes"
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest() == storage.sha256_bytes(data)
    assert store.path(sha) == tmp_path / "originals" / sha[:2] / sha[2:4] / sha
    assert store.exists(sha) and store.verify(sha)
    with store.open(sha) as f:
        assert f.read() == data
    assert store.read(sha) == data
    assert not stat.S_IMODE(store.path(sha).stat().st_mode) & 0o222  # read-only once written


def test_put_twice_writes_once(tmp_path: Path) -> None:
    store = storage.BlobStore(tmp_path)
    sha = store.put(b"same")
    before = store.path(sha).stat().st_mtime_ns
    assert store.put(b"same") == sha
    assert store.path(sha).stat().st_mtime_ns == before
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [sha]


def test_put_checks_expected_hash(tmp_path: Path) -> None:
    store = storage.BlobStore(tmp_path)
    with pytest.raises(storage.StorageError, match="does not match"):
        store.put(b"data", sha256="0" * 64)
    assert list(tmp_path.rglob("*")) == []


def test_write_is_atomic_no_partial_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = storage.BlobStore(tmp_path)
    data = b"x" * 100_000
    sha = storage.sha256_bytes(data)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(storage.StorageError, match="No space left"):
        store.put(data)
    monkeypatch.undo()
    assert not store.exists(sha)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # temporary file cleaned up
    assert store.put(data) == sha and store.read(sha) == data


def test_verify_detects_corruption(tmp_path: Path) -> None:
    store = storage.BlobStore(tmp_path)
    sha = store.put(b"original")
    path = store.path(sha)
    path.chmod(0o644)
    path.write_bytes(b"tampered")
    assert not store.verify(sha)


def test_missing_and_bad_names(tmp_path: Path) -> None:
    store = storage.BlobStore(tmp_path)
    with pytest.raises(storage.StorageError, match="no original"):
        store.open("a" * 64)
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(storage.StorageError, match="not a SHA-256"):
            store.path(bad)
    assert not store.verify("b" * 64)


def test_put_stream(tmp_path: Path) -> None:
    import hashlib
    import io

    data = b"bytes of a scan" * 100_000  # more than one chunk
    store = storage.BlobStore(tmp_path / "store")
    sha, size = store.put_stream(io.BytesIO(data))
    assert (store.read(sha), sha, size) == (data, hashlib.sha256(data).hexdigest(), len(data))
    assert store.put_stream(io.BytesIO(data)) == (sha, size)  # stored once
    assert [p.name for p in store.root.iterdir() if p.suffix == ".tmp"] == []

    class Failing(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError):  # the caller decides what an unreadable input means
        store.put_stream(Failing())
    assert [p.name for p in store.root.iterdir() if p.suffix == ".tmp"] == []
