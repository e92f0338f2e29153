"""Originals in an S3-compatible object store, for deployments on several machines (``[storage] blobs =
"s3://bucket/prefix"``).

The same content-addressed layout as the local store (``prefix/ab/cd/abcd...``), and the same
interface (``storage.blobs.Blobs``). OCR reads originals from local files, so every machine keeps a
local cache of the objects it wrote or read (a local ``BlobStore``; content-addressed, so a cached copy
can never be stale): ``path(sha)`` downloads into it once. The integrity check (``digest``) reads the
object itself, never the cache. boto3 is imported here only (and this module only when an S3 store is
configured); its errors become ``StorageError`` (or
``FileNotFoundError``/``OSError`` from ``digest``, as the local store raises).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from storage.blobs import BlobStore, check_sha256, is_sha256, sha256_stream
from storage.errors import StorageError


@dataclass(frozen=True)
class S3Options:
    """Where the bucket is and how to log in; unset values come from boto3's own configuration
    (``AWS_*`` variables, ``~/.aws``)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None


class S3BlobStore:
    """Originals as objects under ``s3://bucket/prefix``, with a local cache for reading by path."""

    def __init__(self, url: str, cache: BlobStore, options: S3Options | None = None,
                 client: Any = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise StorageError(f"not an S3 location: {url!r} (expected s3://bucket/prefix)")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.cache = cache
        self._client = client if client is not None else _client(options or S3Options())

    @property
    def location(self) -> str:
        return self._location

    def key(self, sha: str) -> str:
        check_sha256(sha)
        name = f"{sha[:2]}/{sha[2:4]}/{sha}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def exists(self, sha: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=self.key(sha))
            return True
        except (ClientError, BotoCoreError) as e:
            if _status(e) == 404:
                return False
            raise self._error(f"cannot look up original {sha}", e) from e

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` (once) and return its SHA-256; see ``BlobStore.put``."""
        sha = self.cache.put(data, sha256)
        self._upload(sha)
        return sha

    def put_stream(self, f: BinaryIO) -> tuple[str, int]:
        """Store what ``f`` reads (through the local cache, hashing while copying); (SHA-256, size)."""
        sha, size = self.cache.put_stream(f)
        self._upload(sha)
        return sha, size

    def _upload(self, sha: str) -> None:
        if self.exists(sha):
            return
        try:
            self._client.upload_file(str(self.cache.path(sha)), self.bucket, self.key(sha))
        except (ClientError, BotoCoreError) as e:
            raise self._error(f"cannot upload original {sha}", e) from e

    def path(self, sha: str) -> Path:
        """A local file with the original's bytes (downloaded into the cache once, checked).

        Raises:
            StorageError: no such object, it cannot be read, or its bytes do not hash to ``sha``.
        """
        local = self.cache.path(sha)
        if local.is_file():
            return local
        body = self._get(sha)
        try:
            got, _size = self.cache.put_stream(body)
        except OSError as e:
            raise StorageError(f"cannot download original {sha} from {self.location}: {e}") from e
        finally:
            body.close()
        if got != sha:
            raise StorageError(
                f"the object for original {sha} in {self.location} is damaged (its bytes hash to {got})"
            )
        return local

    def open(self, sha: str) -> BinaryIO:
        return self.path(sha).open("rb")

    def read(self, sha: str) -> bytes:
        with self.open(sha) as f:
            return f.read()

    def digest(self, sha: str) -> tuple[int, str]:
        """Size and SHA-256 of the object itself (not the cache), for the integrity check.

        Raises:
            FileNotFoundError: there is no such object.
            OSError: it cannot be read.
        """
        try:
            body = self._client.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"]
        except (ClientError, BotoCoreError) as e:
            if _status(e) == 404:
                raise FileNotFoundError(f"no object {self.key(sha)} in {self.location}") from e
            raise OSError(f"cannot read {self.key(sha)} in {self.location}: {e}") from e
        try:
            return sha256_stream(body)
        finally:
            body.close()

    def verify(self, sha: str) -> bool:
        try:
            return self.digest(sha)[1] == sha
        except OSError:
            return False

    def shas(self) -> Iterator[str]:
        """The SHA-256 of every object under the prefix."""
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"].rsplit("/", 1)[-1]
                    if is_sha256(name):
                        yield name
        except (ClientError, BotoCoreError) as e:
            raise self._error("cannot list the originals", e) from e

    def _get(self, sha: str) -> Any:
        try:
            return self._client.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"]
        except (ClientError, BotoCoreError) as e:
            if _status(e) == 404:
                raise StorageError(f"no original with SHA-256 {sha} in {self.location}") from e
            raise self._error(f"cannot read original {sha}", e) from e

    def _error(self, what: str, e: ClientError | BotoCoreError) -> StorageError:
        return StorageError(f"{what} in {self.location}: {e}; check [storage] s3_endpoint_url, the "
                            "credentials and that the bucket exists")


def _client(options: S3Options) -> Any:
    return boto3.client(
        "s3", endpoint_url=options.endpoint_url, region_name=options.region,
        aws_access_key_id=options.access_key_id, aws_secret_access_key=options.secret_access_key,
    )


def _status(e: Exception) -> int | None:
    """The HTTP status of a botocore ``ClientError`` (404 for a missing key or bucket), else None."""
    if not isinstance(e, ClientError):
        return None
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = str(e.response.get("Error", {}).get("Code", ""))
    if code in ("404", "NoSuchKey", "NotFound"):
        return 404
    return int(status) if status else None
