"""Form templates as configuration: what is printed on a slip form, and which field holds the complaint.

One template ships for the bundled form (``standard.toml`` beside this file); a center describes its
own forms under ``[[forms.templates]]`` in its config file, with the same keys, and no code::

    [[forms.templates]]
    name = "hall-feedback"
    header = ["Municipal Affairs Hall", "Public Feedback Card 政务大厅群众反馈单"]
    number = 'Serial\\W*编号\\W*(?P<number>FB\\d{7})'
    content = "details"
    [[forms.templates.fields]]
    name = "details"
    kind = "text"
    labels = ["Details of your feedback", "反馈内容"]

``complaintdesk forms check SCAN`` shows how a scan parses against the templates.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.core.errors import ConfigError

SHIPPED_DIR = Path(__file__).resolve().parent
FieldKind = Literal["date", "window", "name", "phone", "email", "text"]


class FieldSpec(BaseModel):
    """One labelled field of a form: its name, what kind of value it holds, its printed labels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    kind: FieldKind = "text"
    labels: list[str] = Field(min_length=1)  # each language's wording, e.g. ["Name", "姓名"]


class FormTemplate(BaseModel):
    """What is printed on one form: titles, the slip number's pattern, other print, and the fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    header: list[str] = Field(min_length=1)  # printed titles: a page showing one starts a slip
    continuation: list[str] = []  # a continuation sheet's title: it continues the slip with its number
    number: str = ""  # regular expression with a group "number" for the printed slip number
    printed: list[str] = []  # instructions, footer: print that is never the citizen's
    content: str = "content"  # the field whose box holds what the citizen wrote
    fields: list[FieldSpec] = []

    @field_validator("number")
    @classmethod
    def _number_pattern(cls, v: str) -> str:
        if not v:
            return v
        try:
            pattern = re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from e
        if "number" not in pattern.groupindex:
            raise ValueError("the pattern needs a group named number: (?P<number>...)")
        return v

    @model_validator(mode="after")
    def _content_is_a_field(self) -> FormTemplate:
        names = [f.name for f in self.fields]
        if self.fields and self.content not in names:
            raise ValueError(f"content names {self.content!r}, which is not one of the fields {names}")
        return self

    def number_pattern(self) -> re.Pattern[str] | None:
        return re.compile(self.number, re.IGNORECASE) if self.number else None

    def printed_strings(self) -> list[str]:
        """Every piece of print: titles, labels, instructions (for telling print from handwriting)."""
        labels = [label for f in self.fields for label in f.labels]
        return [*self.header, *self.continuation, *self.printed, *labels]


def shipped_templates() -> list[FormTemplate]:
    """The templates that ship with complaintdesk (``pipeline/forms/*.toml``).

    Raises:
        ConfigError: a shipped file is broken (a packaging error).
    """
    return [load_template(path) for path in sorted(SHIPPED_DIR.glob("*.toml"))]


def load_template(path: Path) -> FormTemplate:
    """One template from a TOML file.

    Raises:
        ConfigError: unreadable, not TOML, or not a valid template (the message names the key).
    """
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read the form template {path}: {e}") from e
    try:
        return FormTemplate.model_validate(values)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"form template {path}: {where}: {first['msg']}") from e
