"""Batch lookups (``IN`` lists in chunks), e.g. by content hash for cases, quarantine and ignored messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session


class _HasSha256(Protocol):
    @property
    def sha256(self) -> str: ...


_Row = TypeVar("_Row", bound=_HasSha256)

# Well under every backend's limit on bound parameters (SQLite's was 999 before 3.32).
CHUNK = 500


def chunks(values: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    """``values`` in slices of at most ``size``, for ``IN (...)`` lists."""
    for i in range(0, len(values), size):
        yield values[i:i + size]


def rows_by_sha256(session: Session, model: type[_Row], sha256s: Sequence[str]) -> dict[str, _Row]:
    """The rows of ``model`` (which has a unique ``sha256`` column) for any of these hashes, one query
    per chunk."""
    column = inspect(model).columns["sha256"]
    found: dict[str, _Row] = {}
    for chunk in chunks(sorted(set(sha256s))):
        found.update({r.sha256: r for r in session.scalars(select(model).where(column.in_(chunk)))})
    return found
