"""Checking that every case's originals are still in the blob store, byte for byte.

An original deleted or changed on disk would otherwise go unnoticed until someone opens the case.
The check reads the ``documents`` rows in one short read transaction (``kept_originals``) and hashes
the files afterwards (``check_originals``), so a long check does not hold a database snapshot open;
``verify_originals`` does both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.blobs import Blobs, check_sha256
from storage.errors import StorageError
from storage.models import Case, Document


class OriginalStatus(StrEnum):
    missing = "missing"  # no file under its SHA-256
    damaged = "damaged"  # the file's size or SHA-256 is not what was kept
    unreadable = "unreadable"  # the file is there, but this user cannot read it


@dataclass(frozen=True)
class KeptOriginal:
    """A file a case lists (one ``documents`` row)."""

    reference: str
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class OriginalProblem:
    """A kept original that is missing, damaged or unreadable, and what was found."""

    original: KeptOriginal
    status: OriginalStatus
    detail: str


def kept_originals(session: Session) -> list[KeptOriginal]:
    """Every case's documents, by case reference."""
    rows = session.execute(
        select(Case.reference, Document.filename, Document.sha256, Document.size)
        .join(Document, Document.case_id == Case.id)
        .order_by(Case.reference, Document.id)
    )
    return [KeptOriginal(*row) for row in rows]


def check_originals(originals: Iterable[KeptOriginal], blobs: Blobs) -> list[OriginalProblem]:
    """The originals that are not in ``blobs`` as kept (each distinct blob is hashed once)."""
    found: dict[str, tuple[int, str] | OriginalProblem | None] = {}
    problems: list[OriginalProblem] = []
    for original in originals:
        if original.sha256 not in found:
            found[original.sha256] = _inspect(original, blobs)
        seen = found[original.sha256]
        problem = _compare(original, seen)
        if problem is not None:
            problems.append(problem)
    return problems


def verify_originals(session: Session, blobs: Blobs) -> list[OriginalProblem]:
    """Check every case's documents against the blob store: present, and the SHA-256 matches.

    Returns the problems found (empty when all is well), in case reference order.
    """
    return check_originals(kept_originals(session), blobs)


def _inspect(original: KeptOriginal, blobs: Blobs) -> tuple[int, str] | OriginalProblem | None:
    """(size, sha256) of the stored file, None if there is none, or the problem reading it."""
    try:
        check_sha256(original.sha256)
    except StorageError as e:  # a documents row with a malformed hash: nothing can be stored under it
        return OriginalProblem(original, OriginalStatus.damaged, str(e))
    try:
        return blobs.digest(original.sha256)
    except FileNotFoundError:
        return None
    except OSError as e:
        where = blobs.location
        return OriginalProblem(original, OriginalStatus.unreadable,
                               f"cannot read {original.sha256} in {where}: {e.strerror or e}")


def _compare(original: KeptOriginal,
             seen: tuple[int, str] | OriginalProblem | None) -> OriginalProblem | None:
    if seen is None:
        return OriginalProblem(original, OriginalStatus.missing, "no file in the store")
    if isinstance(seen, OriginalProblem):
        return OriginalProblem(original, seen.status, seen.detail)
    size, sha = seen
    if sha != original.sha256:
        return OriginalProblem(original, OriginalStatus.damaged, f"{size} bytes hashing to {sha}")
    if size != original.size:  # same bytes as the blob, but the row recorded another size
        return OriginalProblem(original, OriginalStatus.damaged,
                               f"{size} bytes, the case lists {original.size}")
    return None


def problems_json(problems: Sequence[OriginalProblem]) -> list[dict[str, object]]:
    """The problems as plain dicts (for ``--json`` output)."""
    return [
        {"reference": p.original.reference, "filename": p.original.filename, "sha256": p.original.sha256,
         "size": p.original.size, "status": str(p.status), "detail": p.detail}
        for p in problems
    ]
