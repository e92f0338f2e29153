"""Batch lookups by content hash, shared by cases, quarantine records and ignored messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

_Row = TypeVar("_Row")

# Well under every backend's limit on bound parameters (SQLite's was 999 before 3.32).
CHUNK = 500


def rows_by_sha256(session: Session, model: type[_Row], sha256s: Sequence[str]) -> dict[str, _Row]:
    """The rows of ``model`` (which has a unique ``sha256`` column) for any of these hashes, one query per chunk."""
    column: Any = getattr(model, "sha256")
    shas = sorted(set(sha256s))
    found: dict[str, _Row] = {}
    for i in range(0, len(shas), CHUNK):
        rows = session.scalars(select(model).where(column.in_(shas[i:i + CHUNK])))
        found.update({getattr(r, "sha256"): r for r in rows})
    return found
