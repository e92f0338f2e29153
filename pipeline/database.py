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


def open_blobs(settings: Settings) -> storage.BlobStore:
    """The store of originals the settings name: the folder ``HOME/originals``."""
    import storage

    return storage.BlobStore(settings.blob_dir)
