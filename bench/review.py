"""Benchmark the review service's reads and writes on a large database, SQLite and PostgreSQL.

    flock /tmp/complaintdesk-bench.lock .venv/bin/python -m bench.review [--cases 100000] [--samples 200]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--skip-postgres]
        [--json-out bench/out/review.json]

Fills a fresh database per backend with ``--cases`` cases through ``storage.create_cases`` (a third
of them need review, with spread label confidences, runner-ups, OCR confidences and ages), then times,
one client, ``--samples`` calls each (p50/p95/max in milliseconds):

- ``queue p1``: ``pipeline.review.review_queue`` first page (50 cases, as the web queue shows them);
- ``queue p40``: the 40th page, reached by its keyset token (deep pages must not get slower);
- ``case``: ``pipeline.review.get_case`` of a random case;
- ``history``: ``pipeline.review.history`` of a random case;
- ``correct``: ``pipeline.review.correct`` of a random case's department (a write transaction);
- the baseline, in the same run on the same database: the same queue order computed at read time
  from ``case_labels`` (lowest label confidence first, then due date, then age), which is what the
  queue costs without the stored ``review_rank`` and its index.

The PostgreSQL run uses its own schema, dropped afterwards. Nothing here needs ../shared.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import storage  # noqa: E402
from pipeline import review  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.core.model import Channel, Classification, IntakeItem, Label, PageText, Source  # noqa: E402

DEPARTMENTS = ("window_services", "online_services", "public_security", "medical", "transport", "facilities",
               "banking_postal", "general")
PAGE = 50


def fill(db: storage.Database, n: int, seed: int = 0) -> list[str]:
    """``n`` cases in batches of 1,000; returns their references."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    refs: list[str] = []
    rules = Settings().due_rules()
    for first in range(0, n, 1000):
        items = []
        for i in range(first, min(n, first + 1000)):
            dept = DEPARTMENTS[i % len(DEPARTMENTS)]
            unsure = i % 3 == 0
            conf = rng.uniform(0.2, 0.6) if unsure else rng.uniform(0.7, 0.99)
            runner = min(conf, rng.uniform(0.0, conf))
            labels = {"department": Label("department", dept, conf, {dept: conf, "general": runner}),
                      "sentiment": Label("sentiment", "negative", 0.9, {"negative": 0.9, "neutral": 0.1})}
            text = f"case {i}: the queue at window {i % 30} took {i % 90} minutes"
            items.append(IntakeItem(
                source=Source.from_bytes(Channel.slip, f"slip-{i}.png", text.encode()), text=text,
                language="en", pages=(PageText(1, text, rng.uniform(40, 95)),),
                classification=Classification(labels, "m-1")))
        with db.session() as session:
            made = storage.create_cases(session, items, due_days=15, actor="bench", thresholds={},
                                        now=start + timedelta(minutes=first // 10), sla=rules)
        refs += [m.reference for m in made]
    db.analyze()  # PostgreSQL's statistics, as autovacuum gives a live system soon after a bulk load
    return refs


def filled(url: str, n: int) -> tuple[storage.Database, list[str], float]:
    """A migrated database at ``url`` with ``n`` cases (``fill``): the database, the cases' references and
    the seconds the fill took (``bench.web`` too)."""
    storage.migrate(url)
    db = storage.open_database(url)
    t = time.perf_counter()
    refs = fill(db, n)
    return db, refs, round(time.perf_counter() - t, 1)


def sample(fn: Callable[[], Any], samples: int) -> list[float]:
    """Milliseconds of ``samples`` calls of ``fn``, after one that warms the caches (``bench.web`` too)."""
    fn()  # warm the caches and the statement cache
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def percentiles(times: list[float], digits: int = 2) -> dict[str, float]:
    """p50, p95 and max of ``times``, rounded to ``digits``."""
    times = sorted(times)
    return {"p50": round(statistics.median(times), digits),
            "p95": round(times[max(0, int(len(times) * 0.95) - 1)], digits), "max": round(times[-1], digits)}


def timed(fn: Callable[[], Any], samples: int) -> dict[str, float]:
    return percentiles(sample(fn, samples))


def baseline_queue(db: storage.Database) -> list[str]:
    """The queue order computed at read time from the labels (no stored rank, no queue index)."""
    need = (select(storage.CaseLabel.case_id, func.min(storage.CaseLabel.confidence).label("low"))
            .group_by(storage.CaseLabel.case_id).subquery())
    statement = (select(storage.Case.reference).join(need, need.c.case_id == storage.Case.id)
                 .where(storage.Case.needs_review.is_(True), storage.Case.status.in_(storage.OPEN_STATUSES))
                 .order_by(need.c.low, storage.Case.due_at, storage.Case.created_at, storage.Case.id)
                 .limit(PAGE))
    with db.reader() as session:
        return list(session.scalars(statement))


def run_backend(name: str, url: str, home: Path, n: int, samples: int) -> dict[str, Any]:
    db, refs, fill_seconds = filled(url, n)
    desk = review.open_desk(Settings(home=home, database_url=url), db=db)
    who = review.Actor.supervisor("bench")
    rng = random.Random(1)
    token = None
    for _ in range(39):
        token = review.review_queue(desk, who, limit=PAGE, after=token).next
    deep = token
    results = {
        "cases": n, "fill_seconds": fill_seconds,
        "queue p1": timed(lambda: review.review_queue(desk, who, limit=PAGE), samples),
        "queue p40": timed(lambda: review.review_queue(desk, who, limit=PAGE, after=deep), samples),
        "case": timed(lambda: review.get_case(desk, who, rng.choice(refs)), samples),
        "history": timed(lambda: review.history(desk, who, rng.choice(refs)), samples),
        "correct": timed(lambda: review.correct(desk, who, rng.choice(refs),
                                                {"department": rng.choice(DEPARTMENTS)}), samples),
        "baseline queue (rank computed at read time)": timed(lambda: baseline_queue(db),
                                                             max(10, samples // 10)),
    }
    db.dispose()
    return {name: results}


def postgres_schema(url: str) -> tuple[str, Callable[[], None]]:
    schema = f"bench_review_{uuid.uuid4().hex[:10]}"
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))

    def drop() -> None:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False), drop


def run_backends(run: Callable[[str, str, Path], dict[str, Any]], postgres_url: str, *,
                 sqlite: bool = True, postgres: bool = True) -> dict[str, Any]:
    """``run(name, url, home)`` on a new SQLite database, then on a PostgreSQL schema of its own
    (dropped afterwards), each with a temporary home of its own; their results merged."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if sqlite:
            home = Path(tmp) / "sqlite"
            home.mkdir()
            out |= run("sqlite", f"sqlite:///{home}/bench.db", home)
        if postgres:
            home = Path(tmp) / "postgresql"
            home.mkdir()
            url, drop = postgres_schema(postgres_url)
            try:
                out |= run("postgresql", url, home)
            finally:
                drop()
    return out


def report(out: dict[str, Any], json_out: Path | None) -> None:
    """Print the results as JSON, and write them to ``json_out`` if given."""
    print(json.dumps(out, indent=2))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    out = run_backends(lambda name, url, home: run_backend(name, url, home, args.cases, args.samples),
                       args.postgres_url, postgres=not args.skip_postgres)
    report(out, args.json_out)


if __name__ == "__main__":
    main()
