"""Case references stay contiguous under concurrent creation, refused duplicates and rollbacks."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

import storage
from pipeline.core.model import Channel, IntakeItem, PageText, Source
from storage.models import ReferenceCounter

THREADS = 4
ROUNDS = 6


class Abandoned(Exception):
    """Raised inside a transaction to roll it back after a case was created in it."""


def slip(name: str) -> IntakeItem:
    body = f"complaint {name}: the bus stop sign is missing"
    return IntakeItem(source=Source.from_bytes(Channel.slip, f"{name}.png", body.encode(), "image/png"),
                      text=body, language="en", pages=(PageText(1, body, 90.0),))


def attempt(db: storage.Database, worker: int, n: int) -> None:
    """One of four kinds of creation, as concurrent scans and mail imports make them."""
    kind = (worker + n) % 4
    mine = f"w{worker}-{n}"
    if kind == 0:  # a plain new case
        with db.session() as session:
            storage.create_case(session, slip(mine), due_days=15, actor="test")
    elif kind == 1:  # the same original as another worker's: refused, the transaction still commits
        with db.session() as session, contextlib.suppress(storage.DuplicateCaseError):
            storage.create_case(session, slip("shared"), due_days=15, actor="test")
    elif kind == 2:  # a case whose transaction fails later and is rolled back
        with pytest.raises(Abandoned), db.session() as session:
            storage.create_case(session, slip(mine), due_days=15, actor="test")
            raise Abandoned
    else:  # a batch refused for one known original, then stored one by one as mail import does
        items = [slip(f"{mine}-a"), slip("shared"), slip(f"{mine}-b")]
        with db.session() as session:
            try:
                storage.create_cases(session, items, due_days=15, actor="test")
            except storage.DuplicateCaseError:
                for item in items:
                    with contextlib.suppress(storage.DuplicateCaseError):
                        storage.create_case(session, item, due_days=15, actor="test")


def test_references_are_contiguous_after_concurrent_refusals_and_rollbacks(db: storage.Database) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(ROUNDS):
                attempt(db, worker, n)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    year = datetime.now(UTC).year
    with db.reader() as session:
        references = sorted(session.scalars(select(storage.Case.reference)))
        last = session.scalars(select(ReferenceCounter.last_value).where(ReferenceCounter.year == year)).one()
    numbers = [int(r.split("-")[1]) for r in references]
    assert numbers == list(range(1, len(numbers) + 1))
    assert last == len(numbers)
    # 24 attempts: 6 plain, 6 rolled back, 6 batches of 2 new + the shared one, 6 tries at the shared one
    assert len(numbers) == 6 + 6 * 2 + 1


def test_a_refused_duplicate_burns_no_number(db: storage.Database) -> None:
    with db.session() as session:
        first = storage.create_case(session, slip("one"), due_days=15, actor="test").reference
    with db.session() as session:
        with pytest.raises(storage.DuplicateCaseError):
            storage.create_case(session, slip("one"), due_days=15, actor="test")
        with pytest.raises(storage.DuplicateCaseError):
            storage.create_cases(session, [slip("two"), slip("one")], due_days=15, actor="test")
    with db.session() as session:
        second = storage.create_case(session, slip("two"), due_days=15, actor="test").reference
    assert int(second.split("-")[1]) == int(first.split("-")[1]) + 1
