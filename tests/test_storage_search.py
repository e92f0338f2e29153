"""Full-text search and keyset pagination of ``list_cases``, on SQLite (FTS5) and PostgreSQL (GIN)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text

import storage
from pipeline.core.model import Channel, IntakeItem, Source
from tests.test_storage_cases import classification, item


def email(body: str, subject: str = "", sender: str = "") -> IntakeItem:
    source = Source.from_bytes(Channel.email, f"<{abs(hash(body))}@x>", body.encode(), "message/rfc822")
    return IntakeItem(source=source, text=body, subject=subject, sender=sender, language="zh",
                      classification=classification())


def test_terms_are_words_and_chinese_bigrams() -> None:
    assert storage.terms_of("Broken LIFT, 3rd floor") == ["broken", "lift", "3rd", "floor"]
    assert storage.terms_of("市民投诉噪音") == ["市民", "民投", "投诉", "诉噪", "噪音"]
    assert storage.terms_of("楼 lift楼道") == ["楼", "lift", "楼道"]  # a lone character stays a term
    with pytest.raises(ValueError, match="no words"):
        storage.query_terms("!!! ---")


def references(db: storage.Database, **filters: object) -> list[str]:
    with db.reader() as s:
        return [c.reference for c in storage.list_cases(s, **filters)]  # type: ignore[arg-type]


def test_search_text_subject_and_sender_in_english_and_chinese(db: storage.Database) -> None:
    with db.session() as s:
        noise, lift, road = storage.create_cases(s, [
            email("夜间施工噪音扰民，无法入睡", subject="噪音投诉", sender="wang@example.cn"),
            email("The lift in building 7 has been broken for a week", subject="Broken lift"),
            email("道路积水严重", sender="li.ming@example.cn"),
        ], due_days=15, actor="t")
        single = storage.create_case(s, item("Queue at window 3 took two hours"), due_days=15, actor="t")
    assert references(db, search="噪音") == [noise.reference]
    assert references(db, search="施工噪音") == [noise.reference]  # every bigram must match
    assert references(db, search="噪音积水") == []
    assert references(db, search="BROKEN lift") == [lift.reference]
    assert references(db, search="lift seven") == []
    assert references(db, search="li.ming") == [road.reference]  # the sender
    assert references(db, search="投诉") == [noise.reference]  # the subject
    assert references(db, search="window") == [single.reference]  # create_case indexes too
    assert references(db, search="example", channel="email") == [road.reference, noise.reference]
    assert references(db, search="example", channel="slip") == []


def test_keyset_pages_cover_every_case_once_newest_first(db: storage.Database) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with db.session() as s:
        made = []
        for n in range(7):  # cases 2 and 3 share a timestamp: the id breaks the tie
            at = start + timedelta(minutes=n if n != 3 else 2)
            made += storage.create_cases(s, [item(f"case {n}")], due_days=15, actor="t", now=at)
    pages, after = [], None
    while page := references(db, limit=3, after=after):
        pages.append(page)
        after = page[-1]
    assert [r for page in pages for r in page] == [c.reference for c in reversed(made)]
    assert [len(p) for p in pages] == [3, 3, 1]
    with pytest.raises(storage.CaseNotFoundError):
        references(db, after="2026-999999")


def test_deleting_a_case_removes_it_from_the_index(db: storage.Database) -> None:
    with db.session() as s:
        made = storage.create_case(s, item("graffiti on the wall"), due_days=15, actor="t")
    with db.session() as s:
        s.delete(s.get(storage.Case, made.id))
    assert references(db, search="graffiti") == []
    with db.reader() as s:
        assert s.scalars(select(storage.CaseSearch)).all() == []


def test_migration_indexes_existing_cases(db_url: str) -> None:
    """0008 on a database with cases: they are found afterwards, the new ones too."""
    engine = storage.create_database_engine(db_url)
    try:
        with engine.begin() as conn:
            config = storage.db.alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0004")
            conn.execute(text(
                "INSERT INTO cases (reference, channel, source_name, sha256, language, text, subject, "
                "sender, status, model_version, needs_review, fields, problems, pages, created_at, "
                "updated_at) VALUES "
                "('2020-000001', 'slip', 'a.png', :sha, 'zh', '小区垃圾无人清运', '', '', 'new', '', false, "
                "'[]', '[]', '[]', :at, :at)"), {"sha": "f" * 64, "at": datetime(2020, 1, 1)})
    finally:
        engine.dispose()
    storage.migrate(db_url)
    with storage.open_database(db_url) as db:
        assert references(db, search="垃圾") == ["2020-000001"]
        with db.session() as s:
            storage.create_case(s, item("垃圾 again"), due_days=15, actor="t")
        assert len(references(db, search="垃圾")) == 2
