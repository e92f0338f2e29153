"""What the CLI prints on a terminal: the consoles, ``safe`` for every value from outside, and result tables.

Case texts, file names, reasons, Message-IDs and subjects come from the public. Printed raw, ``[/]``
makes rich raise ``MarkupError`` (the command fails after its work is done, and ``cases list`` fails
for the whole database), ``[red]`` or ``[link=...]`` restyle or hide text, and an ESC sequence in a
file name reaches the terminal. So every such value goes through ``safe`` before it is printed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Piped output (CI logs, `| less`) has no terminal width; rich would assume 80 columns and wrap every
# table cell over many lines, so use a wide fixed width unless COLUMNS says otherwise.
# emoji=False: rich would turn ":fire:" in a citizen's text into an emoji.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160, emoji=False)
err_console = Console(stderr=True, emoji=False)

# C0 and C1 control characters (ESC, BEL, backspace, CR...) and the bidirectional overrides that
# reorder what a terminal shows; newline and tab are handled separately.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as text with control characters shown as ``\\x1b``-style escapes (no markup escaping).

    For output that rich does not parse (log lines, ``print``). Newlines and tabs become spaces unless
    ``keep_newlines``.
    """
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n")
    if not keep_newlines:
        text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROL.sub(_visible, text)


def safe(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` ready for ``console.print`` or a table cell: control characters made visible, markup
    escaped."""
    return escape(plain(value, keep_newlines=keep_newlines))


class SafeFormatter(logging.Formatter):
    """Log lines carry file names and Message-IDs too: show their control characters instead of sending
    them."""

    def format(self, record: logging.LogRecord) -> str:
        return plain(super().format(record), keep_newlines=True)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``--log-format json``) for log collectors; ASCII-escaped, so no
    control character or bidirectional override reaches a terminal or a log file raw."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                 "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                 "process": record.process}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def configure_logging(verbose: bool, log_format: str = "text") -> None:
    """Log to standard error: INFO with ``--verbose``, else WARNING; lines for people through
    ``SafeFormatter``, or JSON objects (``log_format="json"``)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler], force=True)


def compact_table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, keep: int = 1) -> Table:
    """One line per row: the first ``keep`` columns (the reference) are never cut; the last (free text)
    takes what is left. On a narrow terminal the columns in between are cut with an ellipsis, widest
    first, down to 4 cells, and then left out from the right.

    Cells are printed as given: pass them through ``safe`` first.
    """
    # cell_len, not len: a Chinese file name is two terminal cells per character
    widths = [max([cell_len(header), *(cell_len(r[i]) for r in rows)])
              for i, header in enumerate(headers[:-1])]
    shown = list(range(len(widths)))

    def excess() -> int:
        # each column costs its width plus 3 for borders and padding, plus 1 for the last border;
        # the free text column gets at least 12 cells
        return sum(widths[i] for i in shown) + 12 + 3 * (len(shown) + 1) + 1 - console.width

    # a cut reference cannot be typed back into `cases show`, so the kept columns never shrink
    for i in sorted(range(keep, len(widths)), key=lambda i: -widths[i]):
        if excess() <= 0:
            break
        widths[i] -= min(excess(), max(widths[i] - 4, 0))
    while excess() > 0 and len(shown) > keep:
        shown.pop()
    table = Table()
    for i in shown:
        table.add_column(headers[i], no_wrap=True, width=widths[i], min_width=widths[i] if i < keep else None,
                         overflow="ellipsis")
    free = console.width - sum(widths[i] for i in shown) - 3 * (len(shown) + 1) - 1
    table.add_column(headers[-1], no_wrap=True, overflow="ellipsis", width=max(free, 12))
    for row in rows:
        table.add_row(*(row[i] for i in shown), row[-1])
    return table


def label(row: dict[str, Any], name: str) -> str:
    """``department (0.93)``: a case's label of one label set with its confidence, ready to print."""
    value = row.get(name)
    if not value:
        return ""
    conf = row.get(f"{name}_confidence")
    return safe(f"{value} ({conf:.2f})" if isinstance(conf, float) else value)


def snippet(text: str | None, width: int = 40) -> str:
    """The text on one line, cut to ``width`` characters, ready to print."""
    flat = " ".join(plain(text).split())
    return safe(flat if len(flat) <= width else flat[: width - 1] + "…")


def redact(url: str) -> str:
    """Hide a password in a database URL before printing it."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


def outcome_json(outcome: Any) -> dict[str, Any]:
    """The JSON form of one intake outcome (``--json``): the case, or where it came from and why not."""
    if outcome.case is not None:
        return {"outcome": str(outcome.kind), **outcome.case}
    return {
        "outcome": str(outcome.kind), "reference": outcome.reference, "channel": str(outcome.source.channel),
        "source": outcome.source.name, "sha256": outcome.source.sha256, "reason": outcome.reason,
    }


def print_outcomes(outcomes: list[Any], *, show_text: bool = False) -> None:
    """A table of intake outcomes, one line each, and a count per kind."""
    rows = []
    for o in outcomes:
        row = o.case or {}
        conf = row.get("ocr_confidence")
        source = Path(o.source.name).name if o.source.channel == "slip" else o.source.name
        rows.append((
            snippet(source, 28), str(o.kind), safe(o.reference or ""), label(row, "department"),
            label(row, "sentiment"), label(row, "kind"),
            f"{conf:.0f}" if isinstance(conf, (int, float)) and conf >= 0 else "",
            snippet(row.get("text", ""), 80 if show_text else 40) if row else snippet(o.reason or "", 200),
        ))
    console.print(compact_table(
        ("source", "outcome", "reference", "department", "sentiment", "kind", "OCR conf", "text / reason"),
        rows,
        keep=3,
    ))
    counts = Counter(str(o.kind) for o in outcomes)
    console.print(", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do")
