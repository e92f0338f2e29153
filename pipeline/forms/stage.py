"""The intake's parse stage: an OCR'd scan becomes one item per slip, whose text is what the citizen wrote.

Runs between OCR and enrich (see ``pipeline.intake``). Each page is parsed against the templates
(``FormSettings``); where none matches, lines that recur on earlier scans (the ``form_lines`` table)
and on this file's other pages count as print. The pages are grouped into slips by ``--split``; every
slip becomes an ``IntakeItem`` with the content as its text, the form's fields (with confidences),
its printed number and all the OCR read (``ocr_text``, for reviewers).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
from rapidfuzz import fuzz, process

import storage
from pipeline.context import RunContext
from pipeline.core.model import ExtractedField, IntakeItem, PageText
from pipeline.forms import FormSettings, SplitMode, parse_document
from pipeline.forms.layout import rows_of
from pipeline.forms.parse import MIN_PRINT_CHARS, RECURRING_SCORE, RecurringLines, explains
from pipeline.forms.slips import Slip

log = logging.getLogger(__name__)


def parse_slips(ctx: RunContext, item: IntakeItem, mode: SplitMode | None = None) -> list[IntakeItem]:
    """The OCR'd item as one item per slip (at least one; ``mode`` defaults to ``forms.split``).

    Raises:
        StorageError: the database failed while reading or counting recurring lines.
    """
    settings: FormSettings = ctx.settings.forms
    page_keys = [line_keys(page) for page in item.pages]
    # counted first, so that the third scan of a form already knows its print
    _count_lines(ctx, page_keys)
    with ctx.db.reader() as session:
        known = storage.recurring_form_lines(session, min_pages=settings.recurring_min)
    recurring = RecurringLines([*known, *recurring_within(page_keys, settings.recurring_min)])
    slips = parse_document(item.pages, settings.all_templates(), recurring, mode or settings.split)
    return [slip_item(item, slip, part) for part, slip in enumerate(slips)] or [item]


def slip_item(item: IntakeItem, slip: Slip, part: int) -> IntakeItem:
    """One slip of ``item`` as its own item: the content as text, the form's fields, number and OCR text."""
    fields = tuple(ExtractedField(f.name, f.value, -1, -1, f.confidence) for f in slip.fields)
    return dataclasses.replace(item, text=slip.content, pages=slip.pages, fields=fields,
                               ocr_text=slip.ocr_text, slip_number=slip.slip_number, form=slip.template,
                               part=part)


def recurring_within(page_keys: Sequence[set[str]], min_pages: int) -> list[str]:
    """Lines of this document that (nearly) recur on ``min_pages`` of its pages: a batch of one form."""
    keys = [(n, k) for n, ks in enumerate(page_keys) for k in sorted(ks)]
    if len(page_keys) < min_pages or not keys:
        return []
    texts = [k for _, k in keys]
    scores = process.cdist(texts, texts, scorer=fuzz.partial_ratio, score_cutoff=RECURRING_SCORE, workers=1)
    lengths = np.array([len(t) for t in texts], dtype=float)
    # the same bounds as ``explains``: about as long as each other
    ratio = lengths[None, :] / lengths[:, None]
    similar = (scores > 0) & (ratio >= 0.5) & (ratio <= 1.6)
    pages = np.array([n for n, _ in keys])
    return [text for i, text in enumerate(texts) if len(set(pages[similar[i]].tolist())) >= min_pages]


def line_keys(page: PageText) -> set[str]:
    """The normalized rows of an OCR'd page that could be print (long enough, not prose-long)."""
    if not page.words:  # text layers and typed text have no print to learn
        return set()
    return {row.key for row in rows_of(page) if MIN_PRINT_CHARS <= len(row.key) <= storage.forms.MAX_KEY}


def _count_lines(ctx: RunContext, page_keys: Sequence[set[str]]) -> None:
    try:
        with ctx.db.session() as session:
            recent = storage.recent_form_lines(session)
            for keys in page_keys:
                counted = {_known_reading(key, recent) for key in keys}
                storage.count_form_lines(session, counted)
                recent += sorted(counted - set(recent))
    except storage.StorageError:
        # two scans counting the same new line at once: one count is lost, which only delays learning it
        log.warning("could not count this scan's lines as recurring form print", exc_info=True)


def _known_reading(key: str, recent: Sequence[str]) -> str:
    """The known line this reading of a line is (OCR reads the same print a little differently each
    time, the other language's half often as junk), else the reading itself."""
    for known, _, _ in process.extract(key, recent, scorer=fuzz.partial_ratio, score_cutoff=RECURRING_SCORE,
                                       limit=5):
        if explains(known, key) and explains(key, known):
            return known
    return key
