"""Intake rows in storage: migration 0004 gives inputs stored before it a finished row, on both backends."""

from __future__ import annotations

from sqlalchemy import select, text

import storage


def test_upgrade_backfills_finished_intake_rows_for_stored_inputs(blank_db_url: str) -> None:
    storage.migrate(blank_db_url, "0003")
    engine = storage.create_database_engine(blank_db_url)
    now = "2026-11-30 10:00:00+00:00"
    try:
        with engine.begin() as conn:
            for n, channel in enumerate(("slip", "email", "manual"), start=1):
                conn.execute(text(
                    "INSERT INTO cases (id, reference, channel, source_name, sha256, language, text, subject,"
                    " sender, status, model_version, needs_review, fields, pages, created_at, updated_at)"
                    " VALUES (:id, :ref, :channel, :name, :sha, 'en', 'x', '', '', 'new', 'v1', false, '[]',"
                    " '[]', :now, :now)"),
                    {"id": n, "ref": f"2026-00000{n}", "channel": channel, "name": f"in{n}",
                     "sha": f"{n}" * 64, "now": now})
            conn.execute(text(
                "INSERT INTO quarantine (channel, source_name, sha256, reason, error_type, created_at)"
                " VALUES ('slip', 'bad.png', :sha, 'corrupt PNG', 'UnreadableScanError', :now)"),
                {"sha": "f" * 64, "now": now})
    finally:
        engine.dispose()
    storage.migrate(blank_db_url)
    with storage.open_database(blank_db_url) as db, db.reader() as session:
        rows = {r.source_name: r for r in session.scalars(select(storage.IntakeRecord))}
        assert {name: (r.state, r.outcome, r.case_id) for name, r in rows.items()} == {
            "in1": ("done", "created", 1), "in2": ("done", "created", 2), "in3": ("done", "created", 3),
            "bad.png": ("done", "quarantined", None),
        }
        assert rows["in1"].dedupe_key == "sha256:" + "1" * 64
        assert rows["in3"].dedupe_key == "sha256:" + "3" * 64
        assert rows["bad.png"].reason == "corrupt PNG"
        # a re-scan of a file stored before the upgrade is recognised
        assert storage.find_intake(session, ["sha256:" + "1" * 64]) is not None
