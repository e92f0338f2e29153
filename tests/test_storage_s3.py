"""The S3-compatible store of originals against a real S3 server: moto's, started on loopback.

Two machines are two local caches over one bucket: what one stores, the other reads (downloaded and
checked once). The integrity check reads the objects themselves, so damage in the bucket is found even
when a cache still has good bytes.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import storage
from pipeline.config import Settings
from pipeline.database import open_blobs
from pipeline.intake import submit_text
from storage.s3 import S3BlobStore, S3Options
from tests.cli_support import cli, deployment_env
from tests.dovecot import free_port
from tests.fakes import FakeClassifier
from tests.mail_support import make_context

KEYS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server per test session (per xdist worker), on 127.0.0.1."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"cd-{uuid.uuid4().hex[:12]}"
    client(s3_endpoint).create_bucket(Bucket=name)
    return name


def client(endpoint: str) -> object:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def store(endpoint: str, bucket: str, cache: Path) -> S3BlobStore:
    return S3BlobStore(f"s3://{bucket}/originals", storage.BlobStore(cache),
                       S3Options(endpoint_url=endpoint, **KEYS))


def test_two_machines_share_originals(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    one = store(s3_endpoint, bucket, tmp_path / "one")
    two = store(s3_endpoint, bucket, tmp_path / "two")
    sha = one.put(b"slip one")
    streamed, size = one.put_stream(io.BytesIO(b"slip two" * 1000))
    assert size == 8000 and one.exists(sha) and two.exists(streamed)
    assert not two.cache.exists(sha)
    assert two.path(sha).read_bytes() == b"slip one"  # downloaded into the second machine's cache
    assert two.cache.exists(sha) and two.read(streamed) == b"slip two" * 1000
    assert sorted(two.shas()) == sorted([sha, streamed])
    assert two.verify(sha) and two.digest(sha) == (8, sha)
    with pytest.raises(storage.StorageError, match="does not match"):
        one.put(b"x", sha256="0" * 64)
    missing = storage.sha256_bytes(b"never stored")
    assert not two.exists(missing)
    with pytest.raises(storage.StorageError, match="no original"):
        two.path(missing)
    with pytest.raises(FileNotFoundError):
        two.digest(missing)


def test_damage_in_the_bucket_is_found_and_never_cached(s3_endpoint: str, bucket: str,
                                                        tmp_path: Path) -> None:
    one = store(s3_endpoint, bucket, tmp_path / "one")
    sha = one.put(b"the original")
    client(s3_endpoint).put_object(Bucket=bucket, Key=one.key(sha), Body=b"tampered")  # type: ignore[attr-defined]
    assert one.cache.exists(sha)  # the writer's cache still has good bytes, the bucket does not
    assert not one.verify(sha)
    other = store(s3_endpoint, bucket, tmp_path / "other")
    with pytest.raises(storage.StorageError, match="damaged"):
        other.path(sha)
    assert not other.cache.exists(sha)


def test_a_deployment_on_s3(
    s3_endpoint: str, bucket: str, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Settings name the bucket; intake stores there; `check` and `backup` read it."""
    home = tmp_path / "home"
    env = {"BLOBS": f"s3://{bucket}/cd", "S3_ENDPOINT_URL": s3_endpoint, "S3_REGION": "us-east-1",
           "S3_ACCESS_KEY_ID": "testing", "S3_SECRET_ACCESS_KEY": "testing"}
    deployment_env(monkeypatch, home, db_url)
    for name, value in env.items():
        monkeypatch.setenv(f"COMPLAINTDESK_STORAGE_{name}", value)
    settings = Settings(home=home, database_url=db_url, storage={
        "blobs": env["BLOBS"], "s3_endpoint_url": s3_endpoint, "s3_region": "us-east-1",
        "s3_access_key_id": "testing", "s3_secret_access_key": "testing"})
    ctx = make_context(db_url, home, classifier=FakeClassifier())
    ctx.blobs = open_blobs(settings)
    submit_text("Bus 12 never came.", ctx)
    ctx.db.dispose()
    (sha,) = ctx.blobs.shas()
    assert cli(capsys, "check").code == 0
    run = cli(capsys, "backup", str(tmp_path / "backup"))
    assert run.code == 0, run.err
    assert storage.BlobStore(tmp_path / "backup" / "originals").verify(sha)
    client(s3_endpoint).delete_object(Bucket=bucket, Key=f"cd/{sha[:2]}/{sha[2:4]}/{sha}")  # type: ignore[attr-defined]
    run = cli(capsys, "check", "--json")
    assert run.code == 7 and '"missing"' in run.out
