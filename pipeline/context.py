"""What every stage needs, opened once per command at the edge: settings, database, store of originals, model."""

from __future__ import annotations

from dataclasses import dataclass

import classifiers
import ocr
import storage
from pipeline.config import Settings


@dataclass
class RunContext:
    """The services one command (or worker) works with; stages receive it instead of reading globals."""

    settings: Settings
    db: storage.Database
    blobs: storage.BlobStore
    classifier: classifiers.Classifier
    actor: str = "system"

    @property
    def thresholds(self) -> dict[str, float]:
        return {ls.name: ls.threshold for ls in self.classifier.label_sets}


def open_context(settings: Settings, *, actor: str = "system", need_ocr: bool = True) -> RunContext:
    """Check external programs, open the database and load the model, failing early with a hint.

    Raises:
        MissingDependencyError: Tesseract or a language pack is missing.
        ModelError: there is no trained model.
        StorageError: the database cannot be opened.
    """
    if need_ocr:
        ocr.check_tesseract(settings.ocr.languages)
    model = classifiers.load_model(classifiers.resolve_model_dir(settings))
    db = storage.open_database(settings.resolved_database_url)
    return RunContext(settings, db, storage.BlobStore(settings.blob_dir), model, actor)
