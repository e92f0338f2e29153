"""PostgreSQL as a production backend: the ``[db]`` pool and timeouts reach the server, and their
failures say what to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

import storage
from pipeline.config import load_settings
from pipeline.database import open_db
from storage.models import Base
from tests.db_fixtures import postgres_schema_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> object:
    for url in postgres_schema_url():
        storage.migrate(url)
        yield url


def test_db_settings_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.toml").write_text("[db]\npool_size = 3\nstatement_timeout = 2.5\n")
    monkeypatch.setenv("COMPLAINTDESK_DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("COMPLAINTDESK_DATABASE_URL", "postgresql+psycopg://u@db.internal/cd")
    s = load_settings(home=tmp_path)
    assert (s.db.pool_size, s.db.max_overflow, s.db.statement_timeout) == (3, 0, 2.5)
    assert s.db.pool_pre_ping and s.database_url == "postgresql+psycopg://u@db.internal/cd"


def test_statement_timeout_and_pool_reach_the_server(pg_url: str, tmp_path: Path) -> None:
    s = load_settings(home=tmp_path, database_url=pg_url,
                      db={"pool_size": 2, "statement_timeout": 0.3, "max_overflow": 0})
    with open_db(s) as db:
        assert db.engine.pool.size() == 2  # type: ignore[attr-defined]
        with db.reader() as session:
            assert session.execute(text("SHOW statement_timeout")).scalar() == "300ms"
            # the URL's own options (the test schema as search_path) are kept
            assert session.execute(text("SELECT current_schema()")).scalar().startswith("cdtest_")
        too_long = "statement timeout.*statement_timeout in \\[db\\]"
        with pytest.raises(storage.StorageError, match=too_long), db.reader() as session:
            session.execute(text("SELECT pg_sleep(2)"))


def test_an_exhausted_pool_says_which_setting_to_raise(pg_url: str) -> None:
    pool = storage.PoolOptions(pool_size=1, max_overflow=0, pool_timeout=0.3)
    with storage.open_database(pg_url, pool=pool) as db, db.reader() as held:
        held.execute(text("SELECT 1"))
        with pytest.raises(storage.StorageError, match="pool_size or max_overflow"), db.reader() as other:
            other.execute(text("SELECT 1"))


def test_analyze_gathers_statistics_of_our_tables_only(pg_url: str) -> None:
    # after a bulk load PostgreSQL guesses its plans until autovacuum runs (see Database.analyze)
    last = text("SELECT relname, last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema()")
    with storage.open_database(pg_url) as db:
        with db.reader() as session:
            assert not any(when for _, when in session.execute(last))
        db.analyze()
        with db.reader() as session:
            analyzed = {name for name, when in session.execute(last) if when is not None}
    assert {"cases", "case_labels", "documents", "intake_items"} <= analyzed
    assert analyzed <= {t.name for t in Base.metadata.sorted_tables}
