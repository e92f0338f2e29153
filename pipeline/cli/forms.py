"""``complaintdesk forms check SCAN``: how a scan parses against the form templates.

Glue only: OCR the file (no database needed), parse it with the shipped templates, the config
file's ``[[forms.templates]]`` and any ``--template FILE.toml``, and print per slip the template
that matched, each field with its confidence, the slip number and the content, and the rows left
out as print. A center writing a template for its own form runs this on one of its scans.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli.output import console, safe
from pipeline.cli.params import choice
from pipeline.config import Settings, load_settings
from pipeline.core.errors import InputError

forms_app = typer.Typer(help="Check how scans parse as slip forms.", no_args_is_help=True)


def _settings() -> Settings:
    cli = sys.modules.get("pipeline.cli.app")
    if cli is not None and hasattr(cli, "settings"):
        return cli.settings()
    return load_settings()


@forms_app.command("check")
def check(
    scan: Annotated[Path, typer.Argument(help="A scanned slip or batch file (PNG, JPEG, TIFF, PDF).")],
    template: Annotated[
        list[Path] | None,
        typer.Option(
            "--template", help="Also try this template (a TOML file with the keys of [[forms.templates]])."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="auto (one per slip), none (one) or pages.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per slip.")] = False,
) -> None:
    """OCR one scan and show how it parses: template, fields, slip number, content, print left out.

    Nothing is stored. Recurring lines learned from earlier scans are not used here: what you see is
    what the templates alone make of the scan (plus lines recurring on the file's own pages).
    """
    import ocr
    from pipeline.forms import RecurringLines, load_template, parse_document
    from pipeline.forms.stage import line_keys, recurring_within

    s = _settings()
    mode = choice("--split", split or None, ("auto", "none", "pages")) or s.forms.split
    templates = [*s.forms.all_templates(), *(load_template(p) for p in template or [])]
    try:
        data = scan.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {safe(str(scan))}: {e.strerror or e}") from e
    result = ocr.read_document(data, scan.name, s.ocr)
    recurring = RecurringLines(recurring_within([line_keys(p) for p in result.pages], s.forms.recurring_min))
    slips = parse_document(result.pages, templates, recurring, mode)  # type: ignore[arg-type]
    for n, slip in enumerate(slips, start=1):
        report: dict[str, Any] = {
            "slip": n, "pages": [p.number for p in slip.pages], "template": slip.template or None,
            "slip_number": slip.slip_number,
            "fields": [{"name": f.name, "value": f.value, "confidence": f.confidence} for f in slip.fields],
            "content": slip.content,
            "printed": [row for parse in slip.parses for row in parse.printed],
        }
        if as_json:
            print(json.dumps(report, ensure_ascii=False), flush=True)
            continue
        pages = ", ".join(str(p) for p in report["pages"])
        console.print(f"[bold]slip {n}[/bold] (pages {pages}): template "
                      f"{safe(slip.template) if slip.template else 'none matched'}; "
                      f"slip number {safe(slip.slip_number) or 'not found'}")
        for f in slip.fields:
            console.print(f"  {safe(f.name)}: {safe(f.value)}  (confidence {f.confidence:.2f})")
        console.print("  content:")
        for line in slip.content.splitlines() or ["(none)"]:
            console.print(f"    {safe(line)}")
        if report["printed"]:
            console.print("  left out as print: " + " | ".join(safe(r) for r in report["printed"]))
    if not as_json:
        console.print(f"{len(slips)} slip(s) in {safe(scan.name)}")


def register(app: typer.Typer) -> None:
    app.add_typer(forms_app, name="forms")
