"""Render the bundled sample slips (pipeline/samples/slips/) and the unseen test slips.

    .venv/bin/python -m bench.ocr_make_samples

Deterministic: the same seeds give the same bytes, so re-running it changes nothing in git unless
this script, ``ocr/synth.py`` or a library changed. The unseen slips (tests/resources/ocr/unseen/)
use another font and other seeds than anything the OCR chain was tuned on.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ocr.synth import LATIN_FONT_ALT, Degradation, degrade, render_slip

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "pipeline" / "samples" / "slips"
UNSEEN = ROOT / "tests" / "resources" / "ocr" / "unseen"
DPI = 150
FIXED_DATE = time.strptime("2026-03-01", "%Y-%m-%d")  # Pillow writes a struct_time as a PDF date


@dataclass(frozen=True)
class Sample:
    """One slip to render: file name, text (pages separated by a form feed), capture, paper, seed."""

    name: str
    text: str
    how: Degradation
    paper: str = "yellowed"
    seed: int = 0
    quality: int = 70  # JPEG quality, 0 for PNG
    font: Path | None = None
    # What a person would file the slip under, per label set; several where the taxonomy overlaps
    # (an ID-card window belongs to the police desk and is also a hall window).
    labels: tuple[tuple[str, tuple[str, ...]], ...] = ()


SAMPLE_SLIPS: tuple[Sample, ...] = (
    Sample(
        "en_window7_complaint.jpg",
        "On 12 March 2026 I waited two hours at Window 7 for my business licence approval, and the "
        "staff member with Badge No. 1043 was rude to me. Please call me back on 138-1234-5678.",
        Degradation(angle=3.5, blur=0.6, noise=6, contrast=0.85, uneven_light=0.3),
        seed=11,
    ),
    Sample(
        "en_toilets_complaint.png",
        "The toilets on the second floor have had no soap or paper towels for a week, and the hand "
        "dryer is broken. Please fix this soon.",
        Degradation(angle=-4.5, blur=0.8, contrast=0.9),
        paper="grey",
        seed=12,
        quality=0,
    ),
    Sample(
        "en_police_praise.jpg",
        "Thank you to the officer at the police desk who helped me renew my residence permit in ten "
        "minutes. Very patient and friendly service.",
        Degradation(angle=1.5, turn=180, blur=0.6, noise=5, contrast=0.85),
        paper="white",
        seed=13,
    ),
    Sample(
        "en_online_question.jpg",
        "How long does the online approval platform take for a residence permit? My application has "
        "shown pending since 3 May. Please email me at chen.ming@example.com",
        Degradation(angle=-2.0, turn=90, blur=0.7, noise=6, contrast=0.8, uneven_light=0.3),
        seed=14,
    ),
    Sample(
        "zh_window_complaint.jpg",
        "2026年3月12日我在7号窗口排队两个小时，工号1043的工作人员态度很差。请联系我：138-1234-5678。",
        Degradation(angle=3.0, blur=0.6, noise=5, contrast=0.85, uneven_light=0.25),
        seed=15,
    ),
    Sample(
        "zh_metro_suggestion.jpg",
        "地铁站B出口的楼梯下雨天很滑，建议加防滑垫和扶手，方便老人和小孩。",
        Degradation(angle=-5.0, blur=0.8, noise=7, contrast=0.8, uneven_light=0.4),
        paper="grey",
        seed=16,
    ),
    Sample(
        "scanner_batch_two_pages.pdf",
        "The bank machine in the lobby swallowed my card on 20 April and nobody at the counter could "
        "help. Contact me on 020 7946 0321.\f"
        "东门旁边的电梯又坏了，老年人只能走楼梯，希望尽快修好。",
        Degradation(angle=1.0, blur=0.5, noise=4, contrast=0.9),
        paper="white",
        seed=17,
    ),
    Sample(
        "scanner_batch_two_pages.tif",
        "The air conditioning in the waiting hall is far too cold. Many people were shivering this "
        "morning.\f"
        "The medical office nurse was kind and patient when my father felt dizzy. Many thanks.",
        Degradation(angle=-1.5, blur=0.5, noise=4, contrast=0.9),
        paper="grey",
        seed=18,
        quality=50,
    ),
)

UNSEEN_SLIPS: tuple[Sample, ...] = (
    Sample(
        "unseen_en_queue.jpg",
        "The queue at the ID card window was over ninety minutes today and only two of six windows "
        "were open. Please open more windows at lunch time. Call 139-8765-4321.",
        Degradation(angle=-3.0, blur=0.7, noise=6, contrast=0.8, uneven_light=0.35),
        seed=101,
        font=LATIN_FONT_ALT,
        labels=(("department", ('window_services', 'public_security')), ("sentiment", ('negative',)),
                ("kind", ('complaint', 'suggestion'))),
    ),
    Sample(
        "unseen_en_praise.jpg",
        "Many thanks to the staff at Window 5 (Badge No. 2087) who explained the online booking "
        "system to my mother with great patience.",
        Degradation(angle=2.5, turn=180, blur=0.6, noise=5, contrast=0.85),
        paper="white",
        seed=102,
        font=LATIN_FONT_ALT,
        labels=(("department", ('window_services', 'online_services')), ("sentiment", ('positive',)),
                ("kind", ('praise',))),
    ),
    Sample(
        "unseen_zh_aircon.jpg",
        "大厅空调温度太低，等候区很冷，老人和孩子都受不了，建议调高温度。",
        Degradation(angle=-4.0, blur=0.7, noise=6, contrast=0.8, uneven_light=0.3),
        seed=103,
        labels=(("department", ('facilities',)), ("sentiment", ('negative',)),
                ("kind", ('complaint', 'suggestion'))),
    ),
    Sample(
        "unseen_en_first_aid.jpg",
        "I felt faint while waiting for my health certificate and the first aid room on the ground "
        "floor was locked. No nurse came for twenty minutes.",
        Degradation(angle=1.8, blur=0.6, noise=6, contrast=0.85, uneven_light=0.3),
        seed=104,
        font=LATIN_FONT_ALT,
        labels=(("department", ('medical',)), ("sentiment", ('negative',)), ("kind", ('complaint',))),
    ),
    Sample(
        "unseen_en_bus_stop.jpg",
        "Buses no longer stop at the bay outside the north gate, so we have to walk across the car "
        "park in the rain. Could the stop be moved back?",
        Degradation(angle=-2.2, turn=90, blur=0.6, noise=5, contrast=0.85),
        paper="grey",
        seed=105,
        font=LATIN_FONT_ALT,
        labels=(("department", ('transport',)), ("sentiment", ('negative', 'neutral')),
                ("kind", ('suggestion', 'question', 'complaint'))),
    ),
    Sample(
        "unseen_en_post_office.png",
        "The post office counter closed at 4 pm although the sign on the door says 5 pm, and I could "
        "not send my registered letter. This is the second time.",
        Degradation(angle=3.2, blur=0.7, contrast=0.9),
        paper="grey",
        seed=106,
        quality=0,
        font=LATIN_FONT_ALT,
        labels=(("department", ('banking_postal',)), ("sentiment", ('negative',)), ("kind", ('complaint',))),
    ),
    Sample(
        "unseen_en_website.jpg",
        "The appointment website keeps logging me out before I can pay the fee online. I tried three "
        "times on Sunday evening and gave up.",
        Degradation(angle=-1.2, blur=0.5, noise=4, contrast=0.9, uneven_light=0.2),
        paper="white",
        seed=107,
        font=LATIN_FONT_ALT,
        labels=(("department", ('online_services',)), ("sentiment", ('negative',)), ("kind", ('complaint',))),
    ),
    Sample(
        "unseen_en_signs_praise.jpg",
        "Overall the center is well organised and the new signs make it easy to find every "
        "department. Keep up the good work, everyone.",
        Degradation(angle=4.0, blur=0.6, noise=5, contrast=0.85, uneven_light=0.3),
        seed=108,
        font=LATIN_FONT_ALT,
        labels=(("department", ('general',)), ("sentiment", ('positive',)), ("kind", ('praise',))),
    ),
    Sample(
        "unseen_en_passport.jpg",
        "Can I apply for my son's passport at the police desk here, or only at the district office? "
        "Which documents should we bring?",
        Degradation(angle=-3.5, blur=0.6, noise=5, contrast=0.85),
        paper="white",
        seed=109,
        font=LATIN_FONT_ALT,
        labels=(("department", ('public_security',)), ("sentiment", ('neutral',)), ("kind", ('question',))),
    ),
    Sample(
        "unseen_zh_nurse.jpg",
        "医务室的护士很耐心，帮我量了血压，还给我倒了一杯温水，非常感谢。",
        Degradation(angle=2.0, blur=0.6, noise=5, contrast=0.85, uneven_light=0.25),
        paper="white",
        seed=110,
        labels=(("department", ('medical',)), ("sentiment", ('positive',)), ("kind", ('praise',))),
    ),
    Sample(
        "unseen_zh_bank.jpg",
        "银行网点只开了一个柜台，取钱排了四十分钟，希望高峰期多开几个柜台。",
        Degradation(angle=-2.5, blur=0.7, noise=6, contrast=0.8, uneven_light=0.3),
        seed=111,
        labels=(("department", ('banking_postal',)), ("sentiment", ('negative',)),
                ("kind", ('complaint', 'suggestion'))),
    ),
    Sample(
        "unseen_zh_booking.jpg",
        "网上预约系统总是提示验证码错误，请问怎样才能预约周六的号？",
        Degradation(angle=1.5, turn=180, blur=0.6, noise=5, contrast=0.85),
        paper="grey",
        seed=112,
        labels=(("department", ('online_services',)), ("sentiment", ('neutral', 'negative')),
                ("kind", ('question',))),
    ),
)


def pages(sample: Sample) -> list[Image.Image]:
    """The degraded page images of one sample (one per form-feed-separated text)."""
    out = []
    for number, text in enumerate(sample.text.split("\f")):
        seed = sample.seed * 10 + number
        clean = render_slip(text, seed=seed, font=sample.font, font_px=30, paper=sample.paper)
        out.append(degrade(clean, sample.how, seed=seed).convert("L" if sample.quality == 0 else "RGB"))
    return out


def encode(sample: Sample, images: list[Image.Image]) -> bytes:
    """The file bytes: JPEG, PNG, a multi-page PDF (images only, no text layer) or a multi-page TIFF."""
    buffer = io.BytesIO()
    first, rest = images[0], images[1:]
    suffix = Path(sample.name).suffix
    if suffix == ".pdf":
        # fixed dates: Pillow would stamp the current time, and the file would change on every run
        first.save(buffer, "PDF", save_all=True, append_images=rest, resolution=DPI, quality=sample.quality,
                   creationDate=FIXED_DATE, modDate=FIXED_DATE)
    elif suffix == ".tif":
        first.save(buffer, "TIFF", save_all=True, append_images=rest, compression="jpeg",
                   quality=sample.quality, dpi=(DPI, DPI))
    elif sample.quality:
        first.save(buffer, "JPEG", quality=sample.quality, dpi=(DPI, DPI))
    else:
        first.save(buffer, "PNG", optimize=True, dpi=(DPI, DPI))
    return buffer.getvalue()


def write(samples: tuple[Sample, ...], folder: Path) -> dict[str, str]:
    """Render every sample into ``folder``; returns file name -> expected text."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for sample in samples:
        data = encode(sample, pages(sample))
        (folder / sample.name).write_bytes(data)
        expected[sample.name] = sample.text.replace("\f", "\n\n")
        print(f"{folder.relative_to(ROOT)}/{sample.name}: {len(data) // 1024} KB")
    return expected


def main() -> None:
    write(SAMPLE_SLIPS, SAMPLES)
    unseen = write(UNSEEN_SLIPS, UNSEEN)
    # Next to the folder, not in it: a scan of the folder must find only slips.
    expected = json.dumps(unseen, ensure_ascii=False, indent=2) + "\n"
    (UNSEEN.parent / "unseen_expected.json").write_text(expected)
    labels = {sample.name: {name: list(allowed) for name, allowed in sample.labels}
              for sample in UNSEEN_SLIPS}
    (UNSEEN.parent / "unseen_labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
