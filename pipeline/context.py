"""What every stage needs, opened once per command at the edge: settings, database, store of originals,
model."""

from __future__ import annotations

from dataclasses import dataclass

import classifiers
import ocr
import storage
from pipeline.config import Settings
from pipeline.core.model import ReviewRule
from pipeline.database import open_blobs, open_db
from pipeline.models import current_model_dir


@dataclass
class RunContext:
    """The services one command (or worker) works with; stages receive it instead of reading globals."""

    settings: Settings
    db: storage.Database
    blobs: storage.Blobs
    classifier: classifiers.Classifier
    actor: str = "system"
    #: a queue worker's OCR processes, shared by its jobs; None: each batch starts its own
    ocr_pool: ocr.OcrPool | None = None

    @property
    def thresholds(self) -> dict[str, ReviewRule]:
        """The review rule (threshold, margin) of each of the model's label sets, for
        ``storage.create_case``."""
        return classifiers.review_rules(self.classifier.label_sets)


def open_context(settings: Settings, *, actor: str = "system", need_ocr: bool = True) -> RunContext:
    """Check external programs, open the database and load the model, failing early with a hint.

    Raises:
        MissingDependencyError: Tesseract, a language pack or the PP-OCR engine is missing.
        ModelError: there is no trained model.
        StorageError: the database cannot be opened.
    """
    if need_ocr:
        ocr.check_engines(settings.ocr)
    db = open_db(settings)
    try:
        model = classifiers.load_model(
            current_model_dir(db, settings.models_root, model_dir=settings.model_dir))
    except BaseException:
        db.dispose()
        raise
    return RunContext(settings, db, open_blobs(settings), model, actor)
