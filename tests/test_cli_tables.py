"""Result tables of the console script: one line per row, wide characters measured in terminal cells,
and the reference never cut however narrow the terminal."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console

from pipeline.cli import output


def render(table: object, width: int = 160) -> list[str]:
    out = Console(width=width, file=io.StringIO())
    out.print(table)
    return out.file.getvalue().splitlines()


def test_compact_table_keeps_wide_file_names_whole() -> None:
    # 16 Chinese characters are 32 cells: sized with len() the column would be 16 cells and cut them
    name = "投诉建议二零二六年十一月窗口七号.png"
    table = output.compact_table(
        ("source", "outcome", "text / reason"), [(name, "created", "窗口排队太久" * 40)]
    )
    lines = render(table)
    body = [line for line in lines if "created" in line]
    assert len(body) == 1, lines  # one line per row
    assert name in body[0]
    assert "…" in body[0]  # the free text column is the one that is cut


@pytest.mark.parametrize("width", [80, 60, 40])
def test_narrow_terminal_cuts_the_middle_columns_never_the_reference(width: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "width", width)
    headers = ("reference", "status", "channel", "department", "sentiment", "kind", "due", "text")
    row = ("2026-000123", "waiting_citizen", "email", "public_security (0.91)", "negative (0.77)",
           "complaint (0.85)", "2026-12-16", "窗口排队太久" * 10)
    lines = render(output.compact_table(headers, [row]), width=width)
    body = [line for line in lines if "2026-000123" in line]
    assert len(body) == 1, lines
    assert all(cell_len(line) <= width for line in lines)
