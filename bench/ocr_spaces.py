"""Which word table splits the words PP-OCR runs together best (``ocr.spaces``), measured offline.

    .venv/bin/python bench/ocr_spaces.py [--margins 3 4 5 6] [--funsd ../shared/data/funsd-test]

The same segmenter (``ocr.spaces.Segmenter``) over each word table:
  * "own": word counts of the English training rows (classifiers/data train.jsonl and starter.jsonl;
    words seen twice or more, which drops most of the starter's OCR-noised copies);
  * "wordfreq": wordfreq's large English list (the shipped choice);
  * "wordsegment", "wordninja": when installed (they are not dependencies; ``uv pip install`` them
    into a scratch environment and put its site-packages on PYTHONPATH to compare).
Measured on text none of the tables was built from: the held-out and blind English rows
(classifiers/data/heldout, blind) and the OCR benchmark's slip texts:
  * restored: every pair of neighbouring words joined ("waiting" + "room" -> "waitingroom"), unless
    the join is itself a word of some table; the share split back exactly;
  * false splits: the texts' own tokens, and FUNSD's true words (real forms: names, codes, headings),
    that the segmenter changes (each one a word lost).
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# bench/ocr.py would shadow the ``ocr`` package: the package's folder goes first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))
sys.path.append(str(BENCH))

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402

from ocr_texts import ENGLISH  # noqa: E402

from ocr.spaces import MARGIN, Segmenter  # noqa: E402

DATA = ROOT / "classifiers" / "data"


def english_rows(path: Path) -> list[str]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows if r.get("lang") == "en"]


def own_table() -> dict[str, float]:
    counts: Counter[str] = Counter()
    for name in ("train.jsonl", "starter.jsonl"):
        for text in english_rows(DATA / name):
            counts.update(w.lower() for w in re.findall(r"[A-Za-z]+", text))
    kept = {w: n for w, n in counts.items() if n >= 2}
    total = sum(kept.values())
    return {w: n / total for w, n in kept.items()}


def wordfreq_table() -> dict[str, float]:
    from wordfreq import get_frequency_dict

    return dict(get_frequency_dict("en", wordlist="large"))


def wordsegment_table() -> dict[str, float]:
    import wordsegment  # type: ignore[import-not-found]

    counts = {}
    for line in (Path(wordsegment.__file__).parent / "unigrams.txt").read_text().splitlines():
        word, count = line.split("\t")
        counts[word] = float(count)
    total = sum(counts.values())
    return {w: n / total for w, n in counts.items()}


def wordninja_table() -> dict[str, float]:
    import wordninja  # type: ignore[import-not-found]

    path = Path(wordninja.__file__).parent / "wordninja" / "wordninja_words.txt.gz"
    words = gzip.decompress(path.read_bytes()).decode().split()
    scale = math.log(len(words))  # wordninja's own cost: log(rank * log(N)), Zipf's law
    return {w: 1 / ((rank + 1) * scale) for rank, w in enumerate(words)}


TABLES: dict[str, Callable[[], Mapping[str, float]]] = {
    "own (training data)": own_table, "wordfreq": wordfreq_table,
    "wordsegment": wordsegment_table, "wordninja": wordninja_table,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--margins", type=float, nargs="+", default=[MARGIN])
    parser.add_argument("--funsd", type=Path, default=ROOT.parent / "shared" / "data" / "funsd-test")
    args = parser.parse_args()
    tables = {}
    for name, load in TABLES.items():
        try:
            tables[name] = load()
        except ImportError:
            print(f"{name}: not installed, skipped")
    held = english_rows(DATA / "blind" / "blind.jsonl") + english_rows(DATA / "heldout" / "eval.jsonl")
    held += list(ENGLISH)
    funsd = []
    for path in sorted((args.funsd / "annotations").glob("*.json")):
        form = json.loads(path.read_text())["form"]
        funsd += [t for e in form for w in e.get("words", []) for t in w.get("text", "").split()]
    tokens = [t for text in held for t in text.split()]
    words = set().union(*tables.values())
    pairs = []
    for text in held:
        for a, b in zip(text.split(), text.split()[1:], strict=False):
            if a.isalpha() and b.isalpha() and (a + b).lower() not in words:
                pairs.append((a + b, [a, b]))
    print(f"{len(pairs)} joined pairs; {len(tokens)} held-out tokens; {len(funsd)} FUNSD true words")
    header = ("table", "margin", "restored", "false: held-out", "false: FUNSD")
    print(f"{header[0]:22} {header[1]:>6} {header[2]:>9} {header[3]:>16} {header[4]:>13}  examples")
    for margin in args.margins:
        for name, table in tables.items():
            segmenter = Segmenter(table, margin=margin)
            restored = sum(segmenter.split_token(joined) == want for joined, want in pairs) / len(pairs)
            wrong_held = [t for t in tokens if segmenter.split_token(t) != [t]]
            wrong_funsd = [t for t in funsd if segmenter.split_token(t) != [t]]
            wrong = (wrong_held + wrong_funsd)[:4]
            examples = ", ".join(" ".join(segmenter.split_token(t)) for t in wrong)
            print(f"{name:22} {margin:6.1f} {restored:9.3f} {len(wrong_held):16d} {len(wrong_funsd):13d}  "
                  f"{examples}")


if __name__ == "__main__":
    main()
