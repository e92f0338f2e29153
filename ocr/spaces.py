"""Spaces PP-OCR ran together: "thelifthasbeenbroken" -> "the lift has been broken".

PP-OCR's recogniser reads a line as one string and now and then leaves out the space between two
English words ("floorhave", "Window7wasclosed"). ``Segmenter.split_token`` puts it back, and only
there: a token is split when it is (or holds) a run of Latin letters that is not a known word and
that splits into common words with a clearly better score than it has as one unknown word (a
unigram model: a word's cost is minus the log10 of its frequency; an unknown run of n letters costs
``unknown_cost + n``, as in Norvig's segmenter). Everything else stays as read: known words, numbers,
e-mail addresses, URLs, phone numbers, slip numbers and codes (anything with a character other
than letters and digits inside, or digits with capitals only: "2026-000123", "A1043", "B2"), and
every line with a Han character in it (``spaced`` never inserts a space into Chinese text).

The word table is ``wordfreq``'s English list (``english``: 321,000 words, read from the data files
inside the installed wheel, nothing downloaded; about 0.5 s and 45 MB per process that reads with
PP-OCR, loaded on its first PP-OCR page). A table built from the training data (classifiers/data) was
measured too (bench/ocr_spaces.py): it restores fewer pairs and splits real words it does not know
("paperwork", "tonight", "anyone").
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Mapping

from ocr.engines import Recognition, Word, han_count

#: a part of a split must be at least this frequent (wordfreq's "small" list: Zipf 3 and up), so
#: rare words ("th", "nd", "ing" are in the list) do not make a split
MIN_PART_FREQUENCY = 1e-6
#: two-letter parts must be real words; single letters only "a" and "I"
SHORT_WORDS = frozenset({
    "a", "i", "am", "an", "as", "at", "be", "by", "do", "go", "he", "if", "in", "is", "it", "me", "my", "no",
    "of", "oh", "ok", "on", "or", "so", "to", "up", "us", "we",
})
#: a split must beat the run's cost as one unknown word by at least this much (log10 units). On
#: held-out slip texts (bench/ocr_spaces.py) 5 kept 0.964 of joined word pairs apart against 0.969 at
#: 3, and split 6 of FUNSD's 8,729 true words (names, misspellings) against 13.
MARGIN = 5.0
#: runs shorter than this are left alone ("ofthe" is five letters)
MIN_RUN = 4
#: runs longer than this are left alone (a line of junk; the search is quadratic in it)
MAX_RUN = 60
#: the longest part tried
MAX_PART = 24
_LEAD = "([{\"'\u201c\u2018"
_TRAIL = ")]}\"'\u201d\u2019.,;:!?"
_PIECE = re.compile(r"[A-Za-z]+|[0-9]+")
_TOKEN = re.compile(r"\S+")


class Segmenter:
    """Splits tokens that are English words run together, from a table of word frequencies.

    ``frequencies``: word (lower case) -> share of all words (0-1). Every word in it is known
    (never split); the ones with at least ``min_part`` may be parts of a split.
    """

    def __init__(
        self, frequencies: Mapping[str, float], *, min_part: float = MIN_PART_FREQUENCY,
        margin: float = MARGIN,
    ) -> None:
        self._known = frequencies
        self._costs = {
            w: -math.log10(f)
            for w, f in frequencies.items()
            if f >= min_part and w.isascii() and w.isalpha() and (len(w) > 2 or w in SHORT_WORDS)
        }
        rarest = min(frequencies.values(), default=1e-9)
        #: an unknown word of n letters costs this plus n (Norvig: 10 / (N * 10^n) of the words)
        self.unknown_cost = -math.log10(rarest) - 1.0
        self.margin = margin

    def split_token(self, token: str) -> list[str]:
        """The token as read, or the words it was run together from (punctuation stays attached)."""
        core = token.lstrip(_LEAD)
        lead = token[: len(token) - len(core)]
        stripped = core.rstrip(_TRAIL)
        trail, core = core[len(stripped) :], stripped
        pieces = _PIECE.findall(core)
        if not pieces or "".join(pieces) != core:
            return [token]  # "@", "/", "-", "." or an apostrophe inside: an address, a number, a code
        words = self._split_run(core) if len(pieces) == 1 else self._split_mixed(core, pieces)
        if words is None:
            return [token]
        words[0] = lead + words[0]
        words[-1] = words[-1] + trail
        return words

    def split_line(self, line: str) -> str:
        """The line with its run-together tokens split; a line with a Han character is left as it is."""
        if han_count(line):
            return line
        return _TOKEN.sub(lambda m: " ".join(self.split_token(m.group())), line)

    def _split_mixed(self, core: str, pieces: list[str]) -> list[str] | None:
        # Letters and digits: "Window7wasclosed". Codes ("A1043", "KX3F9", "No1043") stay: a split
        # needs a run that is words run together, or two known words of three letters or more.
        if core.isupper():
            return None
        out: list[str] = []
        evidence = known = 0
        for piece in pieces:
            if piece.isdigit():
                out.append(piece)
                continue
            words = self._split_run(piece)
            if words is not None:
                evidence += 1
                out.extend(words)
            else:
                if len(piece) >= 3 and self._is_common(piece):
                    known += 1
                elif piece.lower() not in self._known:
                    return None
                out.append(piece)
        return out if evidence or known >= 2 else None

    def _is_common(self, word: str) -> bool:
        return word.lower() in self._costs

    def _split_run(self, run: str) -> list[str] | None:
        """The words a run of letters was made of, or None when it is best left as it is."""
        # Capitals only: headings, codes and names on forms ("BUYDOWN", "GREENSBOR") were split wrongly
        # more often than run-together words were found.
        lower = run.lower()
        if not MIN_RUN <= len(run) <= MAX_RUN or run.isupper() or lower in self._known:
            return None
        cost, bounds = self._best(lower)
        if len(bounds) < 2 or cost + self.margin > self.unknown_cost + len(run):
            return None
        out, start = [], 0
        for end in bounds:
            out.append(run[start:end])
            start = end
        if any(w == "i" for w in out):
            return None  # the pronoun is written "I"; a lower-case "i" inside a run is part of a word
        return out

    def _best(self, text: str) -> tuple[float, list[int]]:
        # Viterbi over the run: best[i] is the cheapest split of text[:i] into common words.
        n = len(text)
        best = [0.0] + [math.inf] * n
        back = [0] * (n + 1)
        for end in range(1, n + 1):
            for start in range(max(0, end - MAX_PART), end):
                if best[start] == math.inf:
                    continue
                cost = self._costs.get(text[start:end])
                if cost is not None and best[start] + cost < best[end]:
                    best[end], back[end] = best[start] + cost, start
        if best[n] == math.inf:
            return math.inf, []
        bounds, end = [], n
        while end:
            bounds.append(end)
            end = back[end]
        return best[n], bounds[::-1]


def spaced(result: Recognition, segmenter: Segmenter) -> Recognition:
    """A PP-OCR reading with its run-together words split, in its text and in its word boxes.

    A split word's box is shared among its parts by their length. Lines with Han characters and
    every other token are kept as read.
    """
    lines = [segmenter.split_line(line) for line in result.text.split("\n")]
    han_lines = {w.line for w in result.words if han_count(w.text)}
    words: list[Word] = []
    for word in result.words:
        parts = [word.text] if word.line in han_lines else segmenter.split_token(word.text)
        words.extend(_share_box(word, parts))
    return dataclasses.replace(result, text="\n".join(lines), words=tuple(words))


def _share_box(word: Word, parts: list[str]) -> list[Word]:
    if len(parts) == 1:
        return [word]
    left, top, right, bottom = word.box
    total = sum(len(p) for p in parts)
    out, position = [], 0
    for part in parts:
        start = left + (right - left) * position / total
        position += len(part)
        end = left + (right - left) * position / total
        out.append(dataclasses.replace(word, text=part, box=(int(start), top, int(round(end)), bottom)))
    return out


@functools.cache
def english() -> Segmenter:
    """The segmenter over wordfreq's English word list (from the installed package; cached per process)."""
    from wordfreq import get_frequency_dict  # noqa: PLC0415 - a second of loading, only where PP-OCR reads

    return Segmenter(get_frequency_dict("en", wordlist="large"))
