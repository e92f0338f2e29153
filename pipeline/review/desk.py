"""The review desk: what every review operation works with, opened once at the edge (the web app at
start-up, one CLI command): settings, database, store of originals, and the label sets corrections
are checked against (the current model's, read from its ``meta.json``: no spaCy is loaded)."""

from __future__ import annotations

from dataclasses import dataclass

import storage
from classifiers.labels import LabelSet, load_label_sets
from classifiers.meta import read_meta
from pipeline.config import Settings
from pipeline.core.errors import ModelError
from pipeline.models import current_model_dir


@dataclass
class Desk:
    """The services review operations use; build it with ``open_desk`` and ``close()`` it at the end."""

    settings: Settings
    db: storage.Database
    blobs: storage.BlobStore
    label_sets: tuple[LabelSet, ...]

    @property
    def allowed_labels(self) -> dict[str, tuple[str, ...]]:
        """label set -> its labels, the values a correction may use."""
        return {ls.name: tuple(ls.labels) for ls in self.label_sets}

    @property
    def departments(self) -> tuple[str, ...]:
        """The department labels: where a case may be assigned."""
        return self.allowed_labels.get("department", ())

    def close(self) -> None:
        self.db.dispose()

    def __enter__(self) -> Desk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_desk(settings: Settings, *, db: storage.Database | None = None) -> Desk:
    """Open the database (or use ``db``) and read the current model's label sets.

    Raises:
        StorageError: the database cannot be opened (run ``complaintdesk init``).
    """
    database = db or storage.open_database(settings.resolved_database_url)
    return Desk(settings, database, storage.BlobStore(settings.blob_dir),
                current_label_sets(settings, database))


def current_label_sets(settings: Settings, db: storage.Database) -> tuple[LabelSet, ...]:
    """The label sets of the current model (``meta.json``), else the bundled ``labels.toml``."""
    try:
        meta = read_meta(current_model_dir(db, settings.models_root, model_dir=settings.model_dir))
        sets = tuple(LabelSet.from_dict(item) for item in meta.get("label_sets", []))
    except ModelError:
        sets = ()
    return sets or load_label_sets()
