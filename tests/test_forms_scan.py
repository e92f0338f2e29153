"""Scanning rendered slip forms with real Tesseract: one case per slip, its text what the citizen wrote.

Two forms: the bundled "standard" one (a template ships for it) and "feedback", with other bilingual
titles, instructions and labels and no template. Single files and batch files (PDF, TIFF) with a
continuation sheet; printed and handwriting-style (another font, jitter), clean and degraded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import storage
from ocr.synth import LATIN_FONT_ALT, MILD
from ocr.synth_forms import FEEDBACK, STANDARD, SlipFill, make_batch, make_form_slip
from pipeline.context import RunContext
from pipeline.core.model import OutcomeKind
from pipeline.forms.layout import normalize
from pipeline.forms.parse import SPLIT_SCRIPTS
from pipeline.intake import scan_files
from tests.cli_support import cli
from tests.mail_support import make_context
from tests.ocr_fixtures import cer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("forms_scan")]

LIFT = SlipFill(
    "The lift by the east gate has been broken for two weeks and old people must climb six floors. "
    "Please repair it soon. " * 5,  # long: runs onto a continuation sheet
    serial=457, fields={"date": "2026-05-03", "window": "3", "name": "Wang Fang", "phone": "139 1234 5678"})
PRAISE = SlipFill(
    "Thank you to the officer at window 4 who explained the residence permit forms patiently.",
    serial=123, fields={"date": "2026-05-04", "window": "4", "name": "Li Wei", "phone": "138 1234 5678",
                        "email": "li.wei@example.com"})
FEEDBACKS = (
    SlipFill("The air conditioning in the waiting hall is far too cold in the morning.", serial=11,
             fields={"name": "Zhao Min", "phone": "137 5555 0101"}),
    SlipFill("The queue number screen at the tax desk has been broken since Monday.", serial=12,
             fields={"window": "9", "name": "Sun Hao"}),
    SlipFill("Please add more chairs near the entrance for elderly visitors.", serial=13,
             fields={"date": "2026-05-06"}),
)


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunContext, Path, list]]:
    # Known gap (closing note of stop 9): form parsing was built on Tesseract's word boxes; with the
    # PP-OCR words of the `auto` policy the batch split still comes out wrong, so these tests pin
    # the Tesseract policy until the parser is taught PP-OCR's word boxes.
    folder = tmp_path_factory.mktemp("forms")
    (folder / "scans").mkdir()
    # a standard-form batch: one slip, then one with a continuation sheet; handwriting-style font
    # (the slip scanned again below is the degraded capture)
    (folder / "scans" / "standard_batch.pdf").write_bytes(
        make_batch([PRAISE, LIFT], STANDARD, seed=5, font=LATIN_FONT_ALT, fmt="pdf"))
    # three slips on a form nobody described, printed, clean, as a TIFF
    (folder / "scans" / "feedback_batch.tif").write_bytes(make_batch(FEEDBACKS, FEEDBACK, seed=9, fmt="tiff"))
    ctx = make_context(f"sqlite:///{folder / 'cd.db'}", folder / "home")
    tesseract = ctx.settings.ocr.model_copy(update={"policy": "tesseract"})
    ctx = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"ocr": tesseract}))
    outcomes = list(scan_files(sorted((folder / "scans").iterdir()), ctx))
    yield ctx, folder, outcomes
    ctx.db.dispose()


def _cases(ctx: RunContext) -> list[dict]:
    with ctx.db.reader() as s:
        return [storage.case_to_dict(c) for c in storage.list_cases(s)]


def _words_found(truth: str, text: str) -> float:
    words = [normalize(w) for w in truth.split() if normalize(w)]
    found = normalize(text)
    return sum(w in found for w in words) / len(words)


def test_a_batch_file_becomes_one_case_per_slip(scanned: tuple[RunContext, Path, list]) -> None:
    ctx, _, outcomes = scanned
    assert [o.kind for o in outcomes] == [OutcomeKind.created] * 5
    by_file: dict[str, int] = {}
    for o in outcomes:
        by_file[Path(o.source.name).name] = by_file.get(Path(o.source.name).name, 0) + 1
    assert by_file == {"standard_batch.pdf": 2, "feedback_batch.tif": 3}
    cases = {c["slip_number"]: c for c in _cases(ctx)}
    lift = cases["2026-000457"]
    assert [p["number"] for p in lift["pages"]] == [2, 3]  # its continuation sheet stayed with it
    assert _words_found(LIFT.content, lift["text"]) >= 0.9


def test_the_case_text_is_what_the_citizen_wrote(scanned: tuple[RunContext, Path, list]) -> None:
    ctx, _, _ = scanned
    cases = _cases(ctx)
    for case in cases:
        text = normalize(case["text"])
        for printed in (*STANDARD.printed_lines(), *FEEDBACK.printed_lines()):
            for part in SPLIT_SCRIPTS.findall(printed):  # neither its English nor its Chinese half
                assert len(normalize(part)) < 6 or normalize(part) not in text, (part, case["text"])
        assert "opinion slip" in case["ocr_text"].lower() or "feedback" in case["ocr_text"].lower()
    praise = next(c for c in cases if c["slip_number"] == "2026-000123")
    assert _words_found(PRAISE.content, praise["text"]) >= 0.9
    assert praise["sentiment"] == "positive"


def test_the_form_s_fields_are_taken(scanned: tuple[RunContext, Path, list]) -> None:
    ctx, _, _ = scanned
    cases = {c["slip_number"]: c for c in _cases(ctx)}
    fields = {f["name"]: f for f in cases["2026-000123"]["fields"] if f["start"] == -1}
    assert fields["window"]["value"] == "4" and fields["phone"]["value"].replace(" ", "") == "13812345678"
    assert fields["name"]["value"].replace(" ", "").lower() == "liwei"
    assert fields["email"]["value"] == "li.wei@example.com"
    assert all(0 < f["confidence"] <= 1 for f in fields.values())
    # the form without a template: fields by their label-like prefixes, and its own numbers
    feedback = [c for c in cases.values() if c["form"] == "" and c["slip_number"].startswith("FB")]
    assert sorted(c["slip_number"] for c in feedback) == ["FB2600011", "FB2600012", "FB2600013"]
    first = next(c for c in feedback if c["slip_number"] == "FB2600011")
    names = {f["name"]: f["value"] for f in first["fields"] if f["start"] == -1}
    assert names.get("phone", "").replace(" ", "") == "13755550101"


def test_the_same_paper_scanned_again_matches_its_case(scanned: tuple[RunContext, Path, list]) -> None:
    ctx, folder, _ = scanned
    again = folder / "praise_rescanned.jpg"  # new bytes: another capture of the same slip
    again.write_bytes(make_form_slip(PRAISE, STANDARD, MILD, seed=77, font=LATIN_FONT_ALT))
    before = len(_cases(ctx))
    (outcome,) = scan_files([again], ctx)
    original = next(c for c in _cases(ctx) if c["slip_number"] == "2026-000123")
    assert (outcome.kind, outcome.reference) == (OutcomeKind.matched, original["reference"])
    assert "scanned before" in outcome.reason and len(_cases(ctx)) == before


def test_forms_check_shows_how_a_scan_parses(scanned: tuple[RunContext, Path, list],
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, folder, _ = scanned
    monkeypatch.setenv("COMPLAINTDESK_OCR_LANGUAGES", "eng")  # as the scans above: English slips
    run = cli(capsys, "forms", "check", str(folder / "scans" / "standard_batch.pdf"), "--json")
    assert run.code == 0, run.err
    slips = [json.loads(line) for line in run.out.splitlines()]
    assert [(s["template"], s["slip_number"], s["pages"]) for s in slips] == [
        ("standard", "2026-000123", [1]), ("standard", "2026-000457", [2, 3])]
    assert cer(PRAISE.content, slips[0]["content"].replace("\n", " ")) < 0.1
