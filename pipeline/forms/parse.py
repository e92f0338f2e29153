"""Parsing one OCR'd page as a slip form: which template, the slip number, the fields, the content.

With a template (``templates.py``): its printed titles say the page is that form's first sheet or a
continuation sheet; each field's label is found at the start of a row (fuzzily: OCR misreads print
too) and the value is the rest of the row; the content is every row below the content field's label
that is not print. Without one: rows that recur on many scans (``RecurringLines``) are print, a row
with a label-like prefix (``Name:``, ``电话：``) is a field, and rows above the first field are the
form's top; everything else is what the citizen wrote.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

from pipeline.core.model import PageText
from pipeline.forms.layout import Row, join_words, normalize, rows_of
from pipeline.forms.templates import FieldSpec, FormTemplate

#: fuzzy scores (0-100) from which OCR'd text counts as a piece of print or a label
PRINT_SCORE = 85
LABEL_SCORE = 80
RECURRING_SCORE = 85
#: normalized characters a row needs to be compared with print (shorter rows match anything)
MIN_PRINT_CHARS = 4
#: a slip number on a form nobody described: after "No", "Serial", "编号" and the like
GENERIC_NUMBER = re.compile(
    r"(?:\bno\b|\bserial\b|\bref\b|编号|序号|单号)[\s\S]{0,10}?(?P<number>\b[A-Z]{0,3}\d[\d-]{3,}\d\b)",
    re.IGNORECASE)
#: a label-like prefix on a form nobody described: a few words, then a colon
_LABEL_PREFIX = re.compile(r"^\s*(?P<label>[^:：]{1,30}?)\s*[:：]\s*(?P<value>.*)$")
#: label words that name a field's kind, most specific first ("联系电话" is a phone, "联系人" a name)
KIND_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("email", ("email", "e-mail", "mail", "邮箱", "电子邮件")),
    ("phone", ("phone", "tel", "mobile", "电话", "手机")),
    ("window", ("window", "counter", "desk", "窗口", "服务台", "柜台")),
    ("date", ("date", "日期", "时间")),
    ("name", ("name", "contact", "姓名", "联系人")),
)
_CJK = "\u3000-\u303f\u4e00-\u9fff\uff00-\uffef"  # Han characters, CJK and full-width punctuation
SPLIT_SCRIPTS = re.compile(f"[{_CJK}]+|[^{_CJK}]+")
_PROSE_CHARS = 25  # a row this long that is neither print nor a field is the citizen's prose


@dataclass(frozen=True, slots=True)
class FormField:
    """A value read from a labelled field of the form, and how sure we are of it (0-1)."""

    name: str
    kind: str
    value: str
    confidence: float


@dataclass(frozen=True, slots=True)
class PageParse:
    """What one page is: which form sheet, its slip number, fields and content, and the print left out."""

    page: int  # 1-based page number
    template: str  # the matched template's name; "" when none matched
    first_sheet: bool  # a form's titles are on it: it starts a slip
    continuation: bool  # a continuation sheet's title is on it
    slip_number: str
    fields: tuple[FormField, ...]
    content: str  # what the citizen wrote, rows joined by newlines
    printed: tuple[str, ...]  # rows recognised as print, left out of the content

    @property
    def is_form(self) -> bool:
        return bool(self.template or self.first_sheet or self.continuation or self.slip_number or self.fields)


class RecurringLines:
    """Lines seen on many scans (this batch and earlier ones): print of forms nobody described."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self.keys = sorted({k for k in keys if len(k) >= MIN_PRINT_CHARS})

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or len(key) < MIN_PRINT_CHARS or not self.keys:
            return False
        return any(explains(known, key) for known in self.keys)


def explains(printed: str, key: str, score: int = RECURRING_SCORE) -> bool:
    """True when the printed line explains most of the row: about as long, and (nearly) inside it.

    Partial, because the OCR often reads one language of a bilingual line well and the other as
    junk; bounded in length, so that a short line of content ("Thank you!") is not taken for a long
    line of print that starts with the same words.
    """
    return 0.5 * len(key) <= len(printed) <= 1.6 * len(key) and fuzz.partial_ratio(printed, key) >= score


def parse_page(page: PageText, templates: Sequence[FormTemplate],
               recurring: RecurringLines | None = None) -> PageParse:
    """Parse one page against the templates; without a match, by recurring lines and label prefixes."""
    rows = rows_of(page)
    best: tuple[int, FormTemplate, set[int], set[int]] | None = None
    for template in templates:
        titles = _rows_matching(rows, template.header)
        continued = _rows_matching(rows, template.continuation)
        labels = sum(1 for f in template.fields if _find_label(rows, f) is not None)
        score = 3 * (len(titles) + len(continued)) + labels
        if (titles or continued or labels >= 2) and (best is None or score > best[0]):
            best = (score, template, titles, continued)
    if best is not None:
        _, template, titles, continued = best
        return _with_template(page.number, rows, template, titles, continued)
    return _without_template(page.number, rows, recurring or RecurringLines())


# -- with a template ------------------------------------------------------------------------------


def _with_template(page: int, rows: list[Row], template: FormTemplate, titles: set[int],
                   continued: set[int]) -> PageParse:
    number, number_row = _slip_number(rows, template.number_pattern())
    found: dict[str, tuple[int, FormField]] = {}
    content_label = _find_label(rows, next((f for f in template.fields if f.name == template.content), None))
    # fields are above the content box: a line of content starting with "窗口" is not the window field
    above = rows[: content_label[0]] if content_label is not None else rows
    for spec in template.fields:
        hit = _find_label(above, spec)
        if hit is not None and spec.name != template.content:
            index, value, confidence = hit
            found[spec.name] = (index, FormField(spec.name, spec.kind, _clean(value, spec.kind), confidence))
    _fill_unlabelled(rows, template, found)
    taken = titles | continued | {i for i, _ in found.values()} | ({number_row} if number_row >= 0 else set())
    printed = [*template.printed, *template.header, *template.continuation]
    print_rows = {i for i, row in enumerate(rows) if _is_print(row.key, printed)} | {
        i for i, row in enumerate(rows) if _is_label_only(row, template.fields)}
    # what the citizen wrote starts under the content label, else under the last print above it
    start = content_label[0] if content_label is not None else max(
        [i for i in taken | print_rows if not _is_footer(i, rows, template)] or [-1])
    body = [i for i in range(start + 1, len(rows))
            if i not in taken and i not in print_rows and _is_writing(rows[i])]
    print_rows |= _small_print(rows, body)
    content = [rows[i].text for i in body if i not in print_rows]
    fields = tuple(f for _, f in sorted(found.values(), key=lambda x: x[0]) if f.value)
    return PageParse(page, template.name, bool(titles), bool(continued) and not titles, number, fields,
                     "\n".join(content), tuple(rows[i].text for i in sorted(print_rows | titles | continued)))


def _small_print(rows: Sequence[Row], body: Sequence[int]) -> set[int]:
    """Rows at the top of the content area in markedly smaller letters: instructions the OCR garbled."""
    if len(body) < 2 or not rows[body[0]].words:
        return set()
    typical = statistics.median(rows[i].height for i in body)
    small = set()
    for i in body:
        if rows[i].height >= 0.7 * typical:
            break  # the citizen's writing has begun
        small.add(i)
    return small


def _rows_matching(rows: Sequence[Row], strings: Sequence[str]) -> set[int]:
    return {i for i, row in enumerate(rows) if _is_print(row.key, strings)}


def _parts(strings: Iterable[str]) -> list[str]:
    """Each string and its runs of one script: the OCR often reads only the English or the Chinese half."""
    out: list[str] = []
    for s in strings:
        out += [p for p in {normalize(s), *(normalize(x) for x in SPLIT_SCRIPTS.findall(s))}
                if len(p) >= MIN_PRINT_CHARS]
    return out


def _is_print(key: str, strings: Sequence[str]) -> bool:
    """A row is print when a printed string (or one language of it) explains most of it."""
    if len(key) < MIN_PRINT_CHARS:
        return False
    return any(explains(p, key, PRINT_SCORE) for p in _parts(strings))


def _is_footer(index: int, rows: Sequence[Row], template: FormTemplate) -> bool:
    # print below the content (the footer) must not move the content's start under itself
    return index > len(rows) // 2 and _is_print(rows[index].key, template.printed)


def _is_label_only(row: Row, fields: Sequence[FieldSpec]) -> bool:
    return any(_is_print(row.key, f.labels) for f in fields) and len(row.key) <= 2 + max(
        (len(normalize(" ".join(f.labels))) for f in fields), default=0)


def _is_writing(row: Row) -> bool:
    # box edges and speckles read as one or two low-confidence characters
    return len(row.key) > 2 or (row.confidence >= 60 and bool(row.key))


def _find_label(rows: Sequence[Row], spec: FieldSpec | None) -> tuple[int, str, float] | None:
    """The row that starts with the field's label: (row index, the rest of the row, confidence 0-1)."""
    if spec is None:
        return None
    labels = [normalize(lab) for lab in spec.labels if normalize(lab)]
    labels.append(normalize("".join(spec.labels)))
    best: tuple[float, int, int] | None = None  # score, row, words taken by the label
    for i, row in enumerate(rows):
        texts = [w.text for w in row.words] or row.text.split()
        for start in range(min(3, len(texts))):
            for end in range(start + 1, min(len(texts), start + 8) + 1):
                key = normalize(join_words(texts[start:end]))
                if not key:
                    continue
                score = max(fuzz.ratio(key, lab) for lab in labels)
                if score >= LABEL_SCORE and (best is None or score > best[0]):
                    best = (score, i, end)
    if best is None:
        return None
    score, i, end = best
    row = rows[i]
    texts = [w.text for w in row.words] or row.text.split()
    rest = _after_colon(texts[end:])
    confidences = [w.confidence for w in row.words[len(texts) - len(rest):]] if row.words else []
    confidence = (statistics.fmean(confidences) / 100 if confidences else 0.5) * score / 100
    return i, join_words(rest), round(max(0.0, confidence), 2)


def _after_colon(words: Sequence[str]) -> list[str]:
    """The value's words: a garbled other-language label ending in a colon comes off first."""
    for n, word in enumerate(words[:3]):
        if word.endswith((":", "：")) or word in (":", "："):
            return list(words[n + 1:])
    return list(words)


def _fill_unlabelled(rows: Sequence[Row], template: FormTemplate,
                     found: dict[str, tuple[int, FormField]]) -> None:
    """A field whose label the OCR lost: a lone row between its neighbours' rows is its value."""
    specs = [f for f in template.fields if f.name != template.content]
    for n, spec in enumerate(specs[1:-1], start=1):
        before, after = found.get(specs[n - 1].name), found.get(specs[n + 1].name)
        if spec.name in found or before is None or after is None:
            continue
        between = [i for i in range(before[0] + 1, after[0]) if _is_writing(rows[i])]
        if len(between) == 1:
            row = rows[between[0]]
            confidence = round(row.confidence / 100 * 0.6, 2)  # no label seen: less sure
            value = _clean(row.text, spec.kind)
            found[spec.name] = (between[0], FormField(spec.name, spec.kind, value, confidence))


def _slip_number(rows: Sequence[Row], pattern: re.Pattern[str] | None) -> tuple[str, int]:
    """The printed number and its row (which may follow its prefix's row: a wide gap, a line break)."""
    text = "\n".join(row.text for row in rows)
    match = (pattern or GENERIC_NUMBER).search(text)
    if match is None:
        return "", -1
    number = re.sub(r"\s+", "", match.group("number")).replace("–", "-").replace("—", "-")
    return number, text.count("\n", 0, match.start("number"))


_PHONE = re.compile(r"\+?\d[\d\s()-]{5,}\d")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_DATE = re.compile(r"\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?"
                   r"|\d{1,2}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{2,4}")
_WINDOW = re.compile(r"[A-Z]?\d{1,3}\s*号?")


def _clean(value: str, kind: str) -> str:
    """The value as its kind reads it: a phone number's digits, an address, a date; else the text."""
    value = value.strip(" :：_|.,;'\"")
    pattern = {"phone": _PHONE, "email": _EMAIL, "date": _DATE, "window": _WINDOW}.get(kind)
    if pattern is None:
        return value
    match = pattern.search(value)
    if match is None:
        return ""  # a phone field with no number in it holds nothing we can use
    found = match.group(0).strip()
    return re.sub(r"\s+", "", found) if kind in ("email", "window") else found


# -- without a template ---------------------------------------------------------------------------


def kind_of_label(label: str) -> str:
    """The field kind a label names ("Tel", "联系电话" -> phone), or "" when it names none."""
    low = label.lower()
    for kind, words in KIND_WORDS:
        if any(w in low for w in words):
            return kind
    return ""


def _without_template(page: int, rows: list[Row], recurring: RecurringLines) -> PageParse:
    number, number_row = _slip_number(rows, None)
    fields: list[FormField] = []
    field_rows: set[int] = set()
    printed: set[int] = set()
    prose_started = False
    for i, row in enumerate(rows):
        if i == number_row and not field_rows:
            printed.add(i)
            continue
        found = None if prose_started else _labelled_value(row)
        if found is not None:  # a field row recurs too (its label does): a field first
            kind, value = found
            field_rows.add(i)
            if value:
                confidence = round(row.confidence / 100 * 0.8, 2)  # a guessed label: less sure
                fields.append(FormField(kind, kind, value, max(0.0, confidence)))
        elif row.key in recurring or (not prose_started and _is_heading(row)):
            printed.add(i)
        elif field_rows and len(row.key) >= _PROSE_CHARS:
            prose_started = True  # titles above the fields are long too; prose comes after them
    if field_rows:  # the rows above the first field are the form's top: titles, never the citizen's
        printed |= set(range(min(field_rows)))
    skip = printed | field_rows | {number_row}
    content = [row.text for i, row in enumerate(rows) if i not in skip and _is_writing(row)]
    return PageParse(page, "", bool(field_rows), False, number, tuple(_first_of_each(fields)),
                     "\n".join(content), tuple(rows[i].text for i in sorted(printed)))


def _labelled_value(row: Row) -> tuple[str, str] | None:
    """(kind, value) of a row that is a field: a label naming a kind, then (maybe) its value."""
    match = _LABEL_PREFIX.match(row.text)
    if match is not None:
        label = match.group("label")
        kind = kind_of_label(label) if len(label.split()) <= 5 and len(normalize(label)) <= 24 else ""
        return (kind, _clean(match.group("value"), kind)) if kind and match.group("value").strip() else None
    # the colon did not read: the first words name a kind and the rest reads as that kind's value
    words = row.text.split()
    for n in range(1, min(4, len(words))):
        kind = kind_of_label(" ".join(words[:n]))
        value = _clean(" ".join(words[n:]), kind) if kind in ("date", "phone", "email") else ""
        if value:
            return kind, value
    return None


def _is_heading(row: Row) -> bool:
    """A label with nothing after it (the content's label, a lone "Tel"): print."""
    match = _LABEL_PREFIX.match(row.text)
    if match is not None and not match.group("value").strip():
        return len(match.group("label").split()) <= 8
    return len(row.text.split()) <= 2 and bool(kind_of_label(row.text))


def _first_of_each(fields: Sequence[FormField]) -> list[FormField]:
    seen: set[str] = set()
    out = []
    for f in fields:
        if f.name not in seen:
            seen.add(f.name)
            out.append(f)
    return out
