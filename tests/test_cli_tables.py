"""Result tables of the console script: one line per row, wide characters measured in terminal cells."""

from __future__ import annotations

import importlib
import io

from rich.console import Console

# the module, not the Typer object that pipeline.cli re-exports under the same name
cli = importlib.import_module("pipeline.cli.app")


def render(table: object, width: int = 160) -> list[str]:
    out = Console(width=width, file=io.StringIO())
    out.print(table)
    return out.file.getvalue().splitlines()


def test_compact_table_keeps_wide_file_names_whole() -> None:
    # 16 Chinese characters are 32 cells: sized with len() the column would be 16 cells and cut them
    name = "投诉建议二零二六年十一月窗口七号.png"
    table = cli._compact_table(("source", "outcome", "text / reason"), [(name, "created", "窗口排队太久" * 40)])
    lines = render(table)
    body = [line for line in lines if "created" in line]
    assert len(body) == 1, lines  # one line per row
    assert name in body[0]
    assert "…" in body[0]  # the free text column is the one that is cut


def test_cells_are_text_not_markup_and_control_characters_are_escaped() -> None:
    # "[/]" made rich raise MarkupError; "[red]" was taken as a style; ESC reached the terminal
    rows = [("x[/]y.png", "skipped", "a .docx file"), ("[red]a\x1b[2J.png", "created", "line\nbreak [bold]")]
    lines = render(cli._compact_table(("source", "outcome", "text / reason"), rows))
    text = "\n".join(lines)
    assert "x[/]y.png" in text and "[red]a\\x1b[2J.png" in text and "line\\nbreak [bold]" in text
    assert "\x1b" not in text
