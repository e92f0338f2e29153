"""Opening the database and the store of originals a ``Settings`` names (the database with its ``[db]``
pool and timeouts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.config import Settings

if TYPE_CHECKING:
    import storage


def open_db(settings: Settings, *, check_schema: bool = True) -> storage.Database:
    """``storage.open_database`` for ``settings.resolved_database_url`` with the ``[db]`` options.

    Raises:
        StorageError: the database cannot be reached; SchemaError: it needs ``complaintdesk init``.
    """
    import storage  # SQLAlchemy: only once a command needs the database

    return storage.open_database(settings.resolved_database_url, check_schema=check_schema,
                                 pool=storage.PoolOptions(**settings.db.model_dump()))


def open_blobs(settings: Settings) -> storage.Blobs:
    """The store of originals the settings name (``[storage] blobs``): a folder, by default
    ``HOME/originals``, or an S3 bucket with ``settings.blob_dir`` as this machine's cache.

    Raises:
        StorageError: the S3 location is not ``s3://bucket/prefix``.
    """
    import storage

    local = storage.BlobStore(settings.blob_dir)
    config = settings.storage
    if not config.blobs.startswith("s3://"):
        return local
    from storage.s3 import S3BlobStore, S3Options

    secret = config.s3_secret_access_key
    options = S3Options(endpoint_url=config.s3_endpoint_url, region=config.s3_region,
                        access_key_id=config.s3_access_key_id,
                        secret_access_key=secret.get_secret_value() if secret else None)
    return S3BlobStore(config.blobs, local, options)
