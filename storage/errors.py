"""Storage errors: subclasses of ``pipeline.core.errors.StorageError`` so the CLI maps them to exit code 7."""

from __future__ import annotations

from pipeline.core.errors import CaseNotFoundError, StorageError

__all__ = [
    "CaseNotFoundError",
    "DuplicateCaseError",
    "InvalidTransitionError",
    "ModelVersionNotFoundError",
    "QuarantineNotFoundError",
    "SchemaError",
    "StorageError",
]


class SchemaError(StorageError):
    """The database has no tables yet, or is at an older schema than this program."""


class DuplicateCaseError(StorageError):
    """A case for these exact original bytes already exists (another run stored it first)."""


class InvalidTransitionError(StorageError):
    """A case cannot move from its current status to the one asked for."""


class ModelVersionNotFoundError(StorageError):
    """No model version with that name is registered."""


class QuarantineNotFoundError(StorageError):
    """No quarantine record has that id; list them with `complaintdesk quarantine list`."""
