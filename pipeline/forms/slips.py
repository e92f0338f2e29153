"""One case per slip: grouping a scanned document's parsed pages into slips.

``auto``: a page that starts a slip (a form's titles, or a slip number other than the current
slip's) starts a new one; a continuation sheet with the same number, or a page with no form on it,
continues the current slip; a document with no form at all stays one slip. ``pages``: every page is
a slip. ``none``: the whole document is one slip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pipeline.core.model import PageText
from pipeline.forms.parse import FormField, PageParse

SplitMode = Literal["auto", "none", "pages"]
SPLIT_MODES: tuple[str, ...] = ("auto", "none", "pages")


@dataclass(frozen=True, slots=True)
class Slip:
    """One slip of a scanned document: its pages, what the citizen wrote on them, its fields and number."""

    pages: tuple[PageText, ...]
    parses: tuple[PageParse, ...]

    @property
    def template(self) -> str:
        return next((p.template for p in self.parses if p.template), "")

    @property
    def is_form(self) -> bool:
        return any(p.is_form for p in self.parses)

    @property
    def slip_number(self) -> str:
        return next((p.slip_number for p in self.parses if p.slip_number), "")

    @property
    def fields(self) -> tuple[FormField, ...]:
        """Each field once: from the first page that has it (continuation sheets have none)."""
        seen: dict[str, FormField] = {}
        for parse in self.parses:
            for f in parse.fields:
                seen.setdefault(f.name, f)
        return tuple(seen.values())

    @property
    def content(self) -> str:
        """What the citizen wrote; a slip with no form on it is its whole text."""
        if not self.is_form:
            return "\n\n".join(p.text.strip() for p in self.pages if p.text.strip())
        return "\n".join(p.content for p in self.parses if p.content.strip())

    @property
    def ocr_text(self) -> str:
        """Everything the OCR read on the slip's pages, print included, for reviewers."""
        return "\n\n".join(p.text.strip() for p in self.pages if p.text.strip())


def split_slips(pages: Sequence[PageText], parses: Sequence[PageParse],
                mode: SplitMode = "auto") -> list[Slip]:
    """The slips of one document, in page order (at least one when it has pages)."""
    if len(pages) != len(parses):
        raise ValueError("one parse per page")
    if not pages:
        return []
    if mode == "none":
        return [Slip(tuple(pages), tuple(parses))]
    if mode == "pages":
        return [Slip((page,), (parse,)) for page, parse in zip(pages, parses, strict=True)]
    groups: list[list[int]] = []
    number = ""  # the current slip's number, once a page showed it
    for n, parse in enumerate(parses):
        starts = parse.first_sheet and not parse.continuation
        # a continuation sheet continues a slip whose own number the OCR could not read
        differs = bool(parse.slip_number) and parse.slip_number != number and (bool(number) or not groups)
        if not groups or starts or differs:
            groups.append([n])
            number = parse.slip_number
        else:
            groups[-1].append(n)
            number = number or parse.slip_number
    return [Slip(tuple(pages[i] for i in g), tuple(parses[i] for i in g)) for g in groups]
