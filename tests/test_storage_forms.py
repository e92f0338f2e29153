"""What form parsing keeps: recurring lines (text only once they recur), slip numbers, one case per slip."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

import storage
from pipeline.core.model import ExtractedField
from tests.test_storage_cases import item


def test_lines_are_counted_per_page_and_recur_from_min_pages(db: storage.Database) -> None:
    with db.session() as s:
        storage.count_form_lines(s, {"municipalaffairshall", "mylineaboutthelift"})
        storage.count_form_lines(s, {"municipalaffairshall", "anothercomplaint"})
        assert storage.recurring_form_lines(s, min_pages=3) == []
        storage.count_form_lines(s, {"municipalaffairshall"})
        assert storage.recent_form_lines(s)[0] == "municipalaffairshall"
    with db.reader() as s:
        assert storage.recurring_form_lines(s, min_pages=3) == ["municipalaffairshall"]
        pages = dict(s.execute(select(storage.FormLine.key, storage.FormLine.pages)).tuples().all())
        assert pages == {"municipalaffairshall": 3, "mylineaboutthelift": 1, "anothercomplaint": 1}


def test_a_batch_scan_has_one_case_per_slip_and_a_slip_number_finds_its_case(db: storage.Database) -> None:
    first = item("The lift is broken.", slip_number="2026-000123", form="standard", ocr_text="all of it",
                 fields=(ExtractedField("phone", "138 1234 5678", -1, -1, 0.93),))
    second = dataclasses.replace(first, text="Window 3 was closed.", slip_number="2026-000124", part=1)
    with db.session() as s:
        a = storage.create_case(s, first, due_days=15, actor="test")
        b = storage.create_case(s, second, due_days=15, actor="test")
        assert a.sha256 == b.sha256 and a.reference != b.reference
        with pytest.raises(storage.DuplicateCaseError):  # the same slip of the same file: once
            storage.create_case(s, dataclasses.replace(second, text="again"), due_days=15, actor="test")
    with db.reader() as s:
        found = storage.find_case_by_slip_number(s, "2026-000124")
        assert found is not None and found.text == "Window 3 was closed."
        assert storage.find_case_by_slip_number(s, "") is None
        shown = storage.case_to_dict(storage.find_case_by_slip_number(s, "2026-000123"))  # type: ignore[arg-type]
        assert (shown["slip_number"], shown["form"], shown["part"], shown["ocr_text"]) == (
            "2026-000123", "standard", 0, "all of it")
        assert shown["fields"] == [{"name": "phone", "value": "138 1234 5678", "start": -1, "end": -1,
                                    "confidence": 0.93}]
