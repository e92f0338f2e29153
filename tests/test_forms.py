"""Form parsing from word boxes: templates, fields, content, recurring print, one slip per case.

These build pages from words laid out as an OCR engine reports them (boxes, confidences, lines), so
they run in milliseconds; tests/test_forms_scan.py renders and OCRs real slip forms.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ocr.synth_forms import FEEDBACK, STANDARD
from pipeline.config import load_settings
from pipeline.core.errors import ConfigError
from pipeline.core.model import OcrWord, PageText
from pipeline.forms import (
    FormTemplate,
    RecurringLines,
    load_template,
    parse_document,
    parse_page,
    shipped_templates,
    split_slips,
)
from pipeline.forms.layout import normalize, rows_of
from pipeline.forms.stage import line_keys, recurring_within

ROW = 60  # pixels between rows
CONTENT = ["On 3 May the staff at window 4 were very helpful and explained",
           "the residence permit forms. Thanks!"]


def page(rows: list[str | tuple[str, int]], number: int = 1, confidence: float = 90.0) -> PageText:
    """A page whose rows are these texts (a tuple gives the row's letter height), words left to right."""
    words: list[OcrWord] = []
    for n, row in enumerate(rows):
        text, height = row if isinstance(row, tuple) else (row, 30)
        x = 60
        for word in text.split():
            width = 18 * len(word)
            words.append(OcrWord(word, confidence, (x, n * ROW, x + width, n * ROW + height), n))
            x += width + 12
    return PageText(number, "\n".join(r if isinstance(r, str) else r[0] for r in rows), confidence,
                    words=tuple(words), size=(1240, ROW * len(rows)))


def standard_sheet(number: str = "2026-000123", content: list[str] = CONTENT) -> list[str | tuple[str, int]]:
    return [
        "Citizen Service Center - Opinion Slip",
        "市民服务中心 意见建议卡",
        f"No. {number}",
        "Date BHA: 2026-05-03",  # the Chinese half of a label often reads as junk
        "Window/Counter 窗口: 4",
        "Name 姓名: Li Wei",
        "Phone 电话: 138 1234 5678",
        "E-mail 邮箱: li.wei@example.com",
        "Your opinion or suggestion 意见或建议:",
        ("Please write clearly inside the box. 请在框内用正楷填写。", 18),
        ("Drop this slip in the box at the entrance. MEGARANOS RH.", 18),  # garbled, found by its size
        *content,
        "Thank you for helping us improve. 感谢您的宝贵意见！",
    ]


def test_the_shipped_template_finds_fields_number_and_only_what_the_citizen_wrote() -> None:
    parsed = parse_page(page(standard_sheet()), shipped_templates())
    assert (parsed.template, parsed.first_sheet, parsed.slip_number) == ("standard", True, "2026-000123")
    assert {f.name: f.value for f in parsed.fields} == {
        "date": "2026-05-03", "window": "4", "name": "Li Wei", "phone": "138 1234 5678",
        "email": "li.wei@example.com"}
    assert all(0.5 < f.confidence <= 1 for f in parsed.fields)
    assert parsed.content.splitlines() == CONTENT
    assert "Thank you for helping us improve. 感谢您的宝贵意见！" in parsed.printed


def test_a_field_whose_label_the_ocr_lost_is_taken_from_between_its_neighbours() -> None:
    rows = standard_sheet()
    rows[5] = "Liwei"  # the printed "Name 姓名:" did not read at all
    fields = {f.name: f for f in parse_page(page(rows), shipped_templates()).fields}
    assert fields["name"].value == "Liwei" and fields["name"].confidence < 0.6  # less sure without a label


def test_a_short_line_of_content_like_the_footer_is_still_content() -> None:
    parsed = parse_page(page(standard_sheet(content=["Thank you!"])), shipped_templates())
    assert parsed.content == "Thank you!"


def test_a_continuation_sheet_continues_the_slip_with_the_same_number() -> None:
    first = page(standard_sheet(content=CONTENT[:1]), 1)
    more = page(["Continuation sheet 续页", "No. 2026-000123", CONTENT[1]], 2)
    other = page(standard_sheet("2026-000124", ["The toilets have no soap."]), 3)
    slips = parse_document([first, more, other], shipped_templates())
    assert [[p.number for p in s.pages] for s in slips] == [[1, 2], [3]]
    assert slips[0].content.splitlines() == CONTENT and slips[0].slip_number == "2026-000123"
    assert "Continuation sheet" not in slips[0].content
    assert [f.name for f in slips[0].fields] == ["date", "window", "name", "phone", "email"]
    assert "Continuation sheet 续页" in slips[0].ocr_text and "Opinion Slip" in slips[0].ocr_text


def test_a_continuation_sheet_joins_a_slip_whose_own_number_did_not_read() -> None:
    rows = standard_sheet()
    rows[2] = ") 1!026-00045"
    slips = parse_document([page(rows, 1), page(["Continuation sheet 续页", "No. 2026-000457", "more"], 2)],
                           shipped_templates())
    assert len(slips) == 1 and slips[0].slip_number == "2026-000457"


def test_split_modes_none_and_pages_and_a_document_with_no_form() -> None:
    pages = [page(standard_sheet(), 1), page(standard_sheet("2026-000124"), 2)]
    parses = [parse_page(p, shipped_templates()) for p in pages]
    assert len(split_slips(pages, parses, "auto")) == 2
    assert len(split_slips(pages, parses, "none")) == 1
    assert len(split_slips(pages, parses, "pages")) == 2
    plain = [page(["A letter about the lift.", "It is broken."], 1), page(["Second page of it."], 2)]
    (slip,) = parse_document(plain, shipped_templates())
    assert not slip.is_form
    assert slip.content == "A letter about the lift.\nIt is broken.\n\nSecond page of it."


def feedback_sheet(number: str, content: str) -> list[str | tuple[str, int]]:
    return [*FEEDBACK.header, f"{FEEDBACK.number_prefix} {number}", "Visit date 来访日期: 2026-05-03",
            "Service desk 服务台: 6", "Contact person 联系人: Wang Fang", "Tel 联系电话: 139 1234 5678",
            "Details of your feedback 反馈内容:", *FEEDBACK.instructions, content, FEEDBACK.footer]


def test_a_form_nobody_described_gives_fields_by_label_prefix_and_drops_its_top() -> None:
    parsed = parse_page(page(feedback_sheet("FB2600457", "The lift by the east gate is broken again.")),
                        shipped_templates())
    assert parsed.template == "" and parsed.slip_number == "FB2600457"
    assert {f.name: f.value for f in parsed.fields} == {
        "date": "2026-05-03", "window": "6", "name": "Wang Fang", "phone": "139 1234 5678"}
    assert "Municipal Affairs Hall" not in parsed.content and "反馈内容" not in parsed.content
    # with nothing learned yet, the instructions and footer are still in the text ...
    assert normalize(FEEDBACK.footer) in normalize(parsed.content)
    # ... and once they recur on enough scans, they are print
    learned = RecurringLines(normalize(s) for s in (*FEEDBACK.instructions, FEEDBACK.footer))
    again = parse_page(page(feedback_sheet("FB2600458", "The lift by the east gate is broken again.")),
                       shipped_templates(), learned)
    assert again.content == "The lift by the east gate is broken again."


def test_lines_recurring_on_a_batch_s_own_pages_are_learned_as_print() -> None:
    contents = ["The lift is broken.", "Window 3 was closed all morning.", "Thank you to the nurse on duty."]
    pages = [page(feedback_sheet(f"FB26{n:05d}", c), n + 1) for n, c in enumerate(contents)]
    keys = [line_keys(p) for p in pages]
    learned = RecurringLines(recurring_within(keys, 3))
    slips = parse_document(pages, shipped_templates(), learned)
    assert [s.content for s in slips] == contents
    assert recurring_within(keys[:2], 3) == []  # two pages are not enough


def test_a_center_adds_its_template_in_the_config_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text("""
[forms]
split = "pages"
[[forms.templates]]
name = "hall-feedback"
header = ["Municipal Affairs Hall", "Public Feedback Card 政务大厅群众反馈单"]
number = 'Serial\\W*编号\\W*(?P<number>FB\\d{7})'
printed = ["Tell us what happened, where and when.", "We reply within five working days.",
           "Supervision hotline 12345 监督电话"]
content = "details"
[[forms.templates.fields]]
name = "contact"
kind = "name"
labels = ["Contact person", "联系人"]
[[forms.templates.fields]]
name = "details"
labels = ["Details of your feedback", "反馈内容"]
""", encoding="utf-8")
    monkeypatch.setenv("COMPLAINTDESK_CONFIG", str(config))
    settings = load_settings()
    assert settings.forms.split == "pages"
    sheet = page(feedback_sheet("FB2600457", "The lift is broken."))
    parsed = parse_page(sheet, settings.forms.all_templates())
    assert (parsed.template, parsed.slip_number, parsed.content) == ("hall-feedback", "FB2600457",
                                                                    "The lift is broken.")
    assert [(f.name, f.value) for f in parsed.fields] == [("contact", "Wang Fang")]


@pytest.mark.parametrize(("body", "complaint"), [
    ('name = "x"\nheader = ["X"]\nnumber = "(unclosed"', "form template"),
    ('name = "x"\nheader = ["X"]\nnumber = "No (\\\\d+)"', "group named number"),
    ('name = "x"\nheader = ["X"]\ncontent = "body"\n[[fields]]\nname = "date"\nlabels = ["Date"]', "content"),
    ('name = "x"\nheader = []', "header"),
])
def test_a_broken_template_is_a_config_error_naming_the_key(tmp_path: Path, body: str,
                                                            complaint: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=complaint):
        load_template(path)


def test_the_shipped_template_describes_the_rendered_standard_form() -> None:
    (template,) = [t for t in shipped_templates() if t.name == "standard"]
    assert template.header == list(STANDARD.header)
    labels = {f.name: f.labels for f in template.fields}
    for name, printed in STANDARD.labels.items():
        assert all(label in printed for label in labels[name])
    assert FormTemplate.model_validate(template.model_dump()) == template


def test_rows_split_columns_and_drop_speckles() -> None:
    words = (OcrWord("Title", 95, (60, 40, 200, 70), 0), OcrWord("No.", 90, (900, 42, 950, 72), 0),
             OcrWord("2026-000123", 90, (960, 42, 1150, 72), 0), OcrWord("bi", 20, (600, 300, 620, 320), 1),
             OcrWord("23", 30, (1160, 44, 1190, 72), 0))
    rows = rows_of(PageText(1, "", 90, words=words, size=(1240, 400)))
    assert [r.text for r in rows] == ["Title", "No. 2026-000123 23"]
