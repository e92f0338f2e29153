"""What form parsing keeps in the database: lines recurring across scans, and cases by slip number."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Case, FormLine, utcnow

#: longest line key kept (a longer line is prose, not a form's print)
MAX_KEY = 200


def recurring_form_lines(session: Session, *, min_pages: int, limit: int = 5000) -> list[str]:
    """The keys of lines seen on at least ``min_pages`` scanned pages, most recently seen first."""
    query = (select(FormLine.key).where(FormLine.pages >= min_pages, FormLine.key != "")
             .order_by(FormLine.last_seen.desc()).limit(limit))
    return list(session.scalars(query))


def recent_form_lines(session: Session, *, limit: int = 5000) -> list[str]:
    """The keys of the lines seen most recently, for matching a new reading of a line to its count."""
    query = select(FormLine.key).order_by(FormLine.last_seen.desc(), FormLine.id.desc()).limit(limit)
    return list(session.scalars(query))


def count_form_lines(session: Session, keys: Iterable[str]) -> None:
    """Count one more page for each normalized line (each once per call: call once per page)."""
    now = utcnow()
    wanted = {hashlib.sha256(k.encode()).hexdigest(): k for k in {k[:MAX_KEY] for k in keys if k}}
    if not wanted:
        return
    query = select(FormLine).where(FormLine.digest.in_(wanted))
    known = {line.digest: line for line in session.scalars(query)}
    for digest, key in wanted.items():
        line = known.get(digest)
        if line is None:
            line = FormLine(digest=digest, key=key, pages=0, first_seen=now)
            session.add(line)
        line.pages += 1
        line.last_seen = now
    session.flush()


def find_case_by_slip_number(session: Session, number: str) -> Case | None:
    """The (first) case of the slip with this printed number, if any."""
    if not number:
        return None
    return session.scalars(select(Case).where(Case.slip_number == number).order_by(Case.id).limit(1)).first()


def cases_with_sha256(session: Session, sha256: str) -> list[Case]:
    """Every case made from these exact original bytes: one per slip of a batch scan, in slip order."""
    return list(session.scalars(select(Case).where(Case.sha256 == sha256).order_by(Case.part, Case.id)))
