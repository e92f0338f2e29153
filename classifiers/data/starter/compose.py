"""Compose ``classifiers/data/starter.jsonl`` from the hand-written parts in this directory.

    .venv/bin/python classifiers/data/starter/compose.py

``parts_en.py`` and ``parts_zh.py`` hold hand-written clauses per department and kind (problems,
things praised, questions, suggestions), the Chinese ones written in Chinese. The frames below
(hand-written too) put a clause into a voice: a one-line slip, an angry note, a formal e-mail with a
greeting and a signature, a hotline note typed by staff, a complaint about two things at once, an
exasperated question, a suggestion that carries a grievance. Names, phone numbers and dates are
made up. A seeded share of the rows gets an OCR-noised copy (``classifiers.noise.ocr_noise``).
The output is deterministic; the blind evaluation set (``classifiers/data/heldout/blind.jsonl``)
was written by hand after this file was frozen and is not produced here.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from classifiers.data.starter.parts_en import EN  # noqa: E402
from classifiers.data.starter.parts_zh import ZH  # noqa: E402
from classifiers.noise import ocr_noise  # noqa: E402

OUT = HERE.parent / "starter.jsonl"
SEED = 13
NOISY_SHARE = 0.15

NAMES = {
    "en": ["Li Wei", "Sarah Chen", "Tom Baker", "Mrs Zhang", "J. Okafor", "Wang Fang", "David Liu",
           "Maria Gonzalez", "Chen Jie (resident, Block 5)", "Peter Hall", "Anonymous", "Zhou Min"],
    "zh": ["王先生", "李女士", "张建国", "刘芳", "市民陈某", "赵老师", "一位老人", "孙女士（5栋居民）",
           "周先生", "匿名", "黄阿姨", "吴磊"],
}
PHONES = ["138 1234 5678", "020-8888-1234", "+44 7700 900123", "139 0000 1111", "136-0000-2222"]
DATES = {
    "en": ["3 March", "last Tuesday", "the 14th", "Monday morning", "yesterday", "12/05", "Friday afternoon"],
    "zh": ["3月5日", "上周二", "昨天", "周一上午", "14号", "本周五下午", "前天"],
}

# (frame, sentiment); {c} clause, {C} clause capitalised, {c2} another clause of the same department
# and kind, {s} a suggestion, {name}/{phone}/{date}/{time} made-up details.
FRAMES: dict[str, dict[str, list[tuple[str, str]]]] = {
    "en": {
        "complaint": [
            ("{c}", "negative"),
            ("{C}!!", "negative"),
            ("{C}. Not good enough.", "negative"),
            ("Unbelievable. {C}. Who is responsible for this?", "negative"),
            ("Dear Sir or Madam,\n\nI visited the centre on {date}. {C}. I would like this to be looked "
             "into and a reply.\n\nYours faithfully,\n{name}", "negative"),
            ("Hotline note {time}: caller says {c}. Wants a call back on {phone}.", "negative"),
            ("I wish to make a complaint: {c}.", "negative"),
            ("{C}. And {c2}. Please sort this out.", "negative"),
            ("hi, {c} - very disappointing", "negative"),
            ("To whom it may concern - {c}. This is the second time this happened to me.", "negative"),
        ],
        "praise": [
            ("Thank you to {c}!", "positive"),
            ("I want to praise {c}.", "positive"),
            ("Hello,\n\nJust a short note to thank {c}. Keep it up!\n\nBest wishes,\n{name}", "positive"),
            ("Hotline note: caller rang to thank {c}.", "positive"),
            ("big thanks to {c} :)", "positive"),
            ("Well done to {c}, much better than my last visit on {date}.", "positive"),
        ],
        "question": [
            ("{C}?", "neutral"),
            ("Hello, {c}? Thanks.", "neutral"),
            ("Dear team,\n\nCould you tell me {c}? I plan to come on {date}.\n\nRegards,\n{name}", "neutral"),
            ("Hotline note: caller asks {c}. Call back on {phone}.", "neutral"),
            ("quick question - {c}?", "neutral"),
            ("I have asked twice already and still nobody can tell me: {c}?", "negative"),
        ],
        "suggestion": [
            ("Suggestion: {c}.", "neutral"),
            ("Could you please {c}?", "neutral"),
            ("My idea: {c}. It would help a lot of people.", "neutral"),
            ("Dear team,\n\nA suggestion after my visit on {date}: please {c}.\n\nThanks,\n{name}",
             "neutral"),
            ("Hotline note: caller suggests that you {c}.", "neutral"),
            ("{C2} again today. Please {c}!", "negative"),
        ],
    },
    "zh": {
        "complaint": [
            ("{c}", "negative"),
            ("{c}！！", "negative"),
            ("{c}，太不像话了！", "negative"),
            ("投诉：{c}。请尽快处理。", "negative"),
            ("您好：\n\n我{date}去中心办事，{c}。希望有关部门重视并给我答复。\n\n此致\n{name}", "negative"),
            ("来电记录（{time}）：市民反映{c}，要求回电{phone}。", "negative"),
            ("真的无语了，{c}", "negative"),
            ("{c}。还有，{c2}。请处理！", "negative"),
            ("{c}，so annoying", "negative"),
            ("这已经是第二次了，{c}。", "negative"),
        ],
        "praise": [
            ("感谢{c}！", "positive"),
            ("表扬一下：{c}。", "positive"),
            ("您好：\n\n特此表扬{c}，辛苦了！\n\n{name}", "positive"),
            ("来电记录：市民来电表扬{c}。", "positive"),
            ("点赞！{c}", "positive"),
            ("比{date}来的时候好多了，{c}，谢谢！", "positive"),
        ],
        "question": [
            ("请问{c}？", "neutral"),
            ("{c}？谢谢", "neutral"),
            ("您好，想咨询一下：{c}？我打算{date}过去。\n\n{name}", "neutral"),
            ("来电记录：市民咨询{c}，回电{phone}。", "neutral"),
            ("问一下，{c}？", "neutral"),
            ("问了好几次都没人说得清楚，{c}？", "negative"),
        ],
        "suggestion": [
            ("{c}。", "neutral"),
            ("提个建议：{c}。", "neutral"),
            ("意见：{c}，这样方便很多人。", "neutral"),
            ("您好：\n\n{date}去办事后有个建议：{c}。\n\n谢谢！\n{name}", "neutral"),
            ("来电记录：市民建议{c}。", "neutral"),
            ("{c2}，今天又是这样！{c}！", "negative"),
        ],
    },
}
FRAMES_PER_CLAUSE = {"complaint": 7, "praise": 6, "question": 6, "suggestion": 6}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def compose(seed: int = SEED) -> list[dict[str, Any]]:
    """The starter rows: every clause in a seeded sample of its kind's frames, plus OCR-noised copies."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for lang, parts in (("en", EN), ("zh", ZH)):
        for department, kinds in parts.items():
            for kind, clauses in kinds.items():
                frames = FRAMES[lang][kind]
                for clause in clauses:
                    for frame, sentiment in rng.sample(frames, FRAMES_PER_CLAUSE[kind]):
                        others = [c for c in clauses if c != clause]
                        complaints = [c for c in kinds["complaint"] if c != clause]
                        text = frame.format(
                            c=clause, C=_cap(clause), c2=rng.choice(complaints if kind == "suggestion"
                                                                    else others),
                            C2=_cap(rng.choice(complaints)),
                            name=rng.choice(NAMES[lang]), phone=rng.choice(PHONES),
                            date=rng.choice(DATES[lang]),
                            time=f"{rng.randrange(8, 18)}:{rng.randrange(60):02d}")
                        rows.append({"text": text, "department": department, "sentiment": sentiment,
                                     "kind": kind, "lang": lang})
    noisy = [{**r, "text": ocr_noise(r["text"], seed * 100_000 + i)} for i, r in enumerate(rows)
             if rng.random() < NOISY_SHARE]
    rows += [r for r in noisy if r["text"].strip()]
    seen: set[str] = set()
    unique = []
    for r in rows:
        if r["text"] not in seen:
            seen.add(r["text"])
            unique.append(r)
    return unique


def main() -> None:
    rows = compose()
    with OUT.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} rows -> {OUT}")


if __name__ == "__main__":
    main()
