"""Parsing scanned slips as forms: templates, page parsing, recurring print, one slip per case.

    templates   what is printed on a form, as configuration (``standard.toml`` ships; more in config)
    layout      visual rows rebuilt from the OCR's word boxes
    parse       one page: which template, the slip number, the fields, what the citizen wrote
    slips       a document's pages grouped into slips (``--split auto|none|pages``)

``pipeline.formstage`` runs these as the intake's parse stage.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from pipeline.core.model import PageText
from pipeline.forms.parse import FormField, PageParse, RecurringLines, parse_page
from pipeline.forms.slips import SPLIT_MODES, Slip, SplitMode, split_slips
from pipeline.forms.templates import FieldSpec, FormTemplate, load_template, shipped_templates


class FormSettings(BaseModel):
    """How slips are parsed as forms (the ``[forms]`` table of the config file)."""

    model_config = ConfigDict(extra="forbid")

    #: the center's own forms, in addition to the shipped ones (``[[forms.templates]]``)
    templates: list[FormTemplate] = []
    #: whether the shipped template for the bundled form is used too
    shipped: bool = True
    #: how a scanned document becomes cases: auto (one per slip), none (one per file), pages (one per page)
    split: SplitMode = "auto"
    #: on forms no template describes, a line seen on this many scanned pages is treated as print
    recurring_min: int = Field(default=3, ge=2)

    def all_templates(self) -> list[FormTemplate]:
        return [*(shipped_templates() if self.shipped else []), *self.templates]


def parse_document(pages: Sequence[PageText], templates: Sequence[FormTemplate],
                   recurring: RecurringLines | None = None, mode: SplitMode = "auto") -> list[Slip]:
    """A document's slips: every page parsed, then grouped (see ``split_slips``)."""
    return split_slips(pages, [parse_page(page, templates, recurring) for page in pages], mode)


__all__ = [
    "SPLIT_MODES", "FieldSpec", "FormField", "FormSettings", "FormTemplate", "PageParse", "RecurringLines",
    "Slip", "SplitMode", "load_template", "parse_document", "parse_page", "shipped_templates", "split_slips",
]
