"""``storage.__all__`` lists exactly the public names, and no SQLAlchemy exception escapes."""

from __future__ import annotations

import storage
from pipeline.core.errors import StorageError


def test_all_matches_public_names() -> None:
    public = {n for n in vars(storage) if not n.startswith("_")}
    modules = {n for n, v in vars(storage).items() if type(v).__name__ == "module"}
    assert sorted(storage.__all__) == sorted(public - modules - {"annotations"})
    for name in storage.__all__:
        assert getattr(storage, name) is not None


def test_errors_are_storage_errors() -> None:
    for error in (storage.CaseNotFoundError, storage.DuplicateCaseError, storage.InvalidTransitionError,
                  storage.ModelVersionNotFoundError, storage.SchemaError):
        assert issubclass(error, StorageError)
