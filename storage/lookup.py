"""Batch lookups (``IN`` lists in chunks), e.g. by content hash for cases, quarantine and ignored messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

_Row = TypeVar("_Row")

# Well under every backend's limit on bound parameters (SQLite's was 999 before 3.32).
CHUNK = 500


def chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``values`` in slices of at most ``size``, for ``IN (...)`` lists."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


def rows_by_sha256(session: Session, model: type[_Row], sha256s: Sequence[str]) -> dict[str, _Row]:
    """The rows of ``model`` (which has a unique ``sha256`` column) for any of these hashes, one query per chunk."""
    column: Any = getattr(model, "sha256")
    found: dict[str, _Row] = {}
    for chunk in chunks(sorted(set(sha256s))):
        found.update({getattr(r, "sha256"): r for r in session.scalars(select(model).where(column.in_(chunk)))})
    return found
