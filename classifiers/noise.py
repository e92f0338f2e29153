"""OCR-like damage to a text, deterministic for a seed.

Training scores its candidate settings on an OCR-noised copy of the dev split as well as the clean one
(slips arrive through OCR), and ``bench/classify.py`` damages the test texts the same way (with other
seeds): character confusions, dropped characters, full-width letters, hyphenated line breaks and
dropped/doubled spaces.
"""

from __future__ import annotations

import random

_CONFUSE = {
    "o": "0", "O": "0", "l": "1", "i": "l", "I": "l", "e": "c",
    "a": "o", "s": "5", "m": "rn", "B": "8", "g": "q",
}


def ocr_noise(text: str, seed: int, rate: float = 0.05) -> str:
    """A copy of ``text`` damaged the way OCR damages slips, deterministically for ``seed``."""
    rng = random.Random(seed)
    out: list[str] = []
    for word in text.split(" "):
        if len(word) > 6 and rng.random() < rate * 2:
            cut = rng.randrange(3, len(word) - 2)
            word = f"{word[:cut]}-\n{word[cut:]}"
        chars = []
        for ch in word:
            r = rng.random()
            if r < rate and ch in _CONFUSE:
                chars.append(_CONFUSE[ch])
            elif r < rate * 1.3 and ch.isascii() and ch.isalnum():
                chars.append(chr(ord(ch) + 0xFEE0))  # full-width
            elif r < rate * 1.5:
                continue  # dropped character
            else:
                chars.append(ch)
        out.append("".join(chars))
        out.append(rng.choice([" "] * 12 + ["", "  ", "\n"]))
    return "".join(out).strip()
