"""Interface languages: gettext catalogues (``review/locale/*/LC_MESSAGES/messages.po``), the choice of
language for a request, dates and numbers in the locale (Babel), and label names in both languages.

The ``.po`` files are compiled in memory when the app starts (Babel's ``read_po``/``write_mo``), so a
fresh clone needs no build step and no ``.mo`` file is committed.
"""

from __future__ import annotations

import gettext
import io
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal, format_percent

from classifiers.labels import label_names

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: the interface languages, the first is the default
LANGUAGES = ("en", "zh_Hans")
LANGUAGE_NAMES = {"en": "English", "zh_Hans": "简体中文"}


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark for extraction, translate later"
    return message


#: words that come from the data (statuses, roles, channels, audit actions), for ``pybabel extract -k N_``
DATA_WORDS = (
    N_("new"), N_("triaged"), N_("in_progress"), N_("waiting_citizen"), N_("resolved"), N_("closed"),
    N_("rejected"), N_("scanner"), N_("reviewer"), N_("department"), N_("supervisor"), N_("slip"),
    N_("email"), N_("manual"), N_("web"), N_("created"), N_("status"), N_("label_corrected"),
    N_("label_confirmed"), N_("reviewed"), N_("reclassified"), N_("note"), N_("candidate"), N_("promoted"),
    N_("retired"), N_("assigned"), N_("text_edited"), N_("reply"), N_("message"), N_("in"), N_("out"),
    N_("quarantined"), N_("pending"), N_("matched"), N_("ignored"),
)


#: the retrain policy's reasons (``pipeline.models.retrain``, ``classifiers.retrain.gate``), English
#: sentences kept in the audit trail; ``reason`` finds them to say them in the reader's language
REASONS = (
    (re.compile(r"mean macro-F1 (?P<before>[\d.]+) -> (?P<after>[\d.]+)"),
     N_("mean macro-F1 %(before)s -> %(after)s")),
    (re.compile(r"mean macro-F1 would drop from (?P<before>[\d.]+) to (?P<after>[\d.]+)"),
     N_("mean macro-F1 would drop from %(before)s to %(after)s")),
    (re.compile(r"(?P<label_set>\w+) macro-F1 would drop by (?P<drop>[\d.]+)"
                r" \(more than (?P<limit>[\d.]+)\)"),
     N_("%(label_set)s macro-F1 would drop by %(drop)s (more than %(limit)s)")),
    (re.compile(r"no label set in common to compare on"), N_("no label set in common to compare on")),
    (re.compile(r"no reviewer corrections yet"), N_("no reviewer corrections yet")),
    (re.compile(r"no new corrections: (?P<version>\S+) was already trained on these (?P<n>\d+)"
                r" corrected cases"),
     N_("no new corrections: %(version)s was already trained on these %(n)s corrected cases")),
)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of ``language`` (English is the source language: no catalogue)."""
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def from_accept_language(header: str) -> str:
    """The interface language for a browser's Accept-Language: Chinese for ``zh`` (not Traditional),
    English otherwise."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, index, tag.strip().lower()))
    for q, _, tag in sorted(ranked):
        if q == 0:
            continue
        if tag.startswith("zh") and not any(t in tag for t in ("hant", "-tw", "-hk", "-mo")):
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return LANGUAGES[0]


def choose(user_language: str, accept_language: str) -> str:
    """The user's saved choice, else the browser's."""
    return user_language if user_language in LANGUAGES else from_accept_language(accept_language)


@cache
def _locale(language: str) -> Locale:
    return Locale.parse(language)


@dataclass(frozen=True)
class Formatter:
    """Dates and numbers of one locale, in the deployment's time zone (UTC unless configured)."""

    language: str

    @property
    def locale(self) -> Locale:
        return _locale(self.language)

    def datetime(self, value: datetime | str | None) -> str:
        """A timestamp (or its ISO form, as the service's case dictionaries carry it)."""
        if not value:
            return ""
        when = datetime.fromisoformat(value) if isinstance(value, str) else value
        return format_datetime(when, "medium", locale=self.locale)

    def number(self, value: float | int | None) -> str:
        return "" if value is None else format_decimal(value, locale=self.locale)

    def size(self, value: int) -> str:
        """A size in bytes, as megabytes."""
        return f"{format_decimal(round(value / 1_000_000, 1), locale=self.locale)} MB"

    def percent(self, value: float | None) -> str:
        return "" if value is None else format_percent(value, locale=self.locale)


def reason(language: str, text: str) -> str:
    """A retrain reason (``REASONS``) in ``language``, label set names included; any other text as it is."""
    for pattern, message in REASONS:
        found = pattern.fullmatch(text)
        if found:
            values = found.groupdict()
            if "label_set" in values:
                values["label_set"] = label_names().label_set(values["label_set"])
            return translations(language).gettext(message) % values
    return text
