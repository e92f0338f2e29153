"""Field extraction: names, phones, e-mails, window and badge numbers, dates, times, places.

English names and places are found with a spaCy ``Matcher`` over a blank English tokenizer; the
rest are regular expressions per language that tolerate OCR damage (``Wind0w``, ``Narne:``, spaces
inside phone numbers, full-width colons). Every field's ``value`` is exactly ``text[start:end]``;
for window and badge numbers the span covers the number only. Overlapping candidates are resolved
by keeping the earliest, then the longest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.matcher import Matcher

from pipeline.core.model import ExtractedField

_HAN = "\u4e00-\u9fff"
_CN_NUM = "0-9一二三四五六七八九十两"
# Common Chinese surnames: "我是李明" names someone, "我是来办事的" does not.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜"
    "崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)

# (field name, pattern, group holding the value) — group 0 is the whole match.
_RULES_ANY: list[tuple[str, re.Pattern[str], int]] = [
    # starts only where a run of address characters starts: tried from every letter of a long word,
    # the pattern was quadratic (20,000 letters: 5 s; a 200 KB one-word e-mail: minutes)
    ("email", re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+ ?@ ?[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                         r"\.[A-Za-z]{2,}"), 0),
    # China mobile: 13812345678, 138 1234 5678, 138-1234-5678, +86 138...
    ("phone", re.compile(r"(?<![\d+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)"), 0),
    # China landline: 020-8888-1234, 010-12345678, (020) 88881234
    ("phone", re.compile(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3})[ -]?\d{3,4}[ -]?\d{4}(?!\d)"), 0),
    # UK: +44 20 7946 0018, +44 (0)7700 900123, 07700 900123
    ("phone", re.compile(r"(?<![\d+])\+44[ ]?(?:\(0\)[ ]?)?\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}(?!\d)"), 0),
    ("phone", re.compile(r"(?<!\d)07\d{3}[ -]?\d{3}[ -]?\d{3}(?!\d)"), 0),
    ("date", re.compile(r"(?<!\d)(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.]"
                        r"(?:0?[1-9]|[12]\d|3[01])(?!\d)"), 0),
    ("date", re.compile(r"(?<!\d)(?:0?[1-9]|[12]\d|3[01])[/.](?:0?[1-9]|1[0-2])[/.]"
                        r"(?:19|20)?\d{2}(?!\d)"), 0),
    ("time", re.compile(r"(?<![\d:])(?:[01]?\d|2[0-3])[:：][0-5]\d"
                        r"(?:\s?(?:[ap]m\b|[ap]\.m\.))?(?![\d:])", re.I), 0),
    ("time", re.compile(r"(?<![\d:])(?:1[0-2]|0?[1-9])\s?(?:[ap]m\b|[ap]\.m\.)", re.I), 0),
]

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_RULES_EN: list[tuple[str, re.Pattern[str], int]] = [
    ("date", re.compile(rf"(?<![\dA-Za-z])(?:[0-3]?\d(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\.?"
                        rf"(?:,?\s+(?:19|20)\d{{2}})?)(?![A-Za-z])", re.I), 0),
    ("date", re.compile(rf"(?<![A-Za-z]){_MONTHS}\.?\s+[0-3]?\d(?:st|nd|rd|th)?"
                        rf"(?:,?\s+(?:19|20)\d{{2}})?(?![A-Za-z\d])", re.I), 0),
    ("window", re.compile(r"(?<![A-Za-z])(?:wind[o0]w|c[o0]unter|desk)\s*(?:n[o0]\.?|number|#)?"
                          r"\s*[:：]?\s*(\d{1,3})(?!\d)", re.I), 1),
    ("badge", re.compile(r"(?<![A-Za-z])(?:badge|staff|empl[o0]yee|w[o0]rker)\s*(?:id|n[o0]\.?|number|#)?"
                         r"\s*[:：]?\s*(\d{3,6})(?!\d)", re.I), 1),
]
_RULES_ZH: list[tuple[str, re.Pattern[str], int]] = [
    ("name", re.compile(rf"(?:姓\s?名|联系人|投诉人|署名)\s*[:：]?\s*([{_HAN}]{{2,4}}?)"
                        rf"(?=[\s,，。;；、(（0-9]|电话|手机|$)"), 1),
    ("name", re.compile(rf"我(?:是|叫)\s*([{_SURNAMES}][{_HAN}]{{1,2}}?)(?=[\s,，。;；、!！]|$)"), 1),
    ("date", re.compile(rf"(?:(?:19|20)\d{{2}}\s?年\s?)?[{_CN_NUM}]{{1,3}}\s?月"
                        rf"\s?[{_CN_NUM}]{{1,3}}\s?[日号]"), 0),
    ("date", re.compile(r"(?:今天|昨天|前天|上周[一二三四五六日天]?"
                        r"|周[一二三四五六日天]|星期[一二三四五六日天])"), 0),
    # "下午3点半", "上午十点", "3点20分"; a bare Chinese numeral + 点 is not a time ("快一点")
    ("time", re.compile(rf"(?:(?:凌晨|早上|上午|中午|下午|晚上|傍晚)\s?[{_CN_NUM}]{{1,3}}"
                        rf"|(?<!\d)\d{{1,2}})\s?点(?:\s?[{_CN_NUM}]{{1,3}}\s?分|半|一刻)?"), 0),
    ("window", re.compile(r"(?<!\d)(\d{1,3})\s*号\s*(?:窗口|窗|柜台)"), 1),
    ("window", re.compile(r"(?:窗口|柜台)\s*(?:第|号)?\s*(\d{1,3})(?!\d)"), 1),
    ("window", re.compile(r"第\s*(\d{1,3})\s*(?:号)?\s*(?:窗口|窗|柜台)"), 1),
    ("badge", re.compile(r"(?:工\s?号|工牌号?|员工号|胸牌号?|编号)\s*(?:是|为)?"
                         r"\s*[:：]?\s*(\d{3,6})(?!\d)"), 1),
    ("place", re.compile(rf"(?:[{_CN_NUM}B]{{1,2}}\s?楼|负[一二三]楼|地下[一二三]?层)(?:的)?"
                         r"(?:卫生间|厕所|洗手间|大厅|电梯|走廊|楼梯|停车场|餐厅|饮水机|候诊区|等候区)?"), 0),
    ("place", re.compile(r"(?:地铁站?)?\s?[A-H]\d?\s?(?:出口|口|入口)"), 0),
    ("place", re.compile(r"(?:[东西南北]门|地下通道|停车场|公交站|医务室|大厅|服务大厅)"), 0),
]

_FACILITIES = [
    "toilet", "toilets", "restroom", "restrooms", "bathroom", "lobby", "hall", "corridor", "lift", "lifts",
    "elevator", "elevators", "stairs", "entrance", "waiting", "area", "canteen", "cafe", "car", "park",
]


@lru_cache(maxsize=1)
def _english() -> tuple[Language, Matcher]:
    """A blank English tokenizer and the Matcher with name and place patterns (built once)."""
    nlp = spacy.blank("en")
    m = Matcher(nlp.vocab)
    cap = {"TEXT": {"REGEX": r"^[A-Z][A-Za-z'\-]+$"}}
    m.add("name", [
        [{"LOWER": "my"}, {"LOWER": {"IN": ["name", "narne"]}}, {"LOWER": "is"}, cap, {**cap, "OP": "?"}],
        [{"LOWER": {"IN": ["name", "narne", "signed", "complainant"]}}, {"ORTH": {"IN": [":", "：", "-"]}},
         cap, {**cap, "OP": "?"}],
    ])
    ordinal = {"LOWER": {"REGEX": r"^(\d{1,2}(st|nd|rd|th)|ground|first|second|third|fourth|fifth|top"
                                  r"|basement)$"}}
    m.add("place", [
        [{"LOWER": {"IN": ["metro", "subway", "underground", "station"]}, "OP": "?"}, {"LOWER": "exit"},
         {"TEXT": {"REGEX": r"^([A-H]\d?|\d{1,2})$"}}],
        [ordinal, {"LOWER": "floor"}, {"LOWER": {"IN": _FACILITIES}, "OP": "?"}],
        [{"LOWER": {"IN": ["floor", "level", "gate", "hall", "zone", "entrance"]}},
         {"TEXT": {"REGEX": r"^([A-H]|B?\d{1,2})$"}}],
        [{"LOWER": {"IN": ["north", "south", "east", "west", "main"]}},
         {"LOWER": {"IN": ["entrance", "gate", "exit"]}}],
        [{"LOWER": {"IN": ["underground", "pedestrian"]}},
         {"LOWER": {"IN": ["passage", "crossing", "tunnel"]}}],
        [{"LOWER": {"IN": ["car", "bus"]}}, {"LOWER": {"IN": ["park", "bay", "stop"]}}],
    ])
    return nlp, m


def _matcher_fields(text: str) -> Iterator[tuple[str, int, int]]:
    nlp, matcher = _english()
    doc = nlp.make_doc(text)
    for match_id, start, end in matcher(doc):
        name = nlp.vocab.strings[match_id]
        span = doc[start:end]
        if name == "name":
            # the value is the capitalised words after the cue
            words = [t for t in span if re.match(r"^[A-Z][A-Za-z'\-]+$", t.text) and t.lower_ not in
                     {"my", "name", "narne", "is", "signed", "complainant"}]
            if not words:
                continue
            yield name, words[0].idx, words[-1].idx + len(words[-1].text)
        else:
            yield name, span.start_char, span.end_char


def _regex_fields(text: str, rules: list[tuple[str, re.Pattern[str], int]]) -> Iterator[tuple[str, int, int]]:
    for name, pattern, group in rules:
        for m in pattern.finditer(text):
            start, end = m.span(group)
            if end > start:
                yield name, start, end


def extract_fields(text: str, language: str) -> tuple[ExtractedField, ...]:
    """Fields found in ``text`` (language ``"en"``, ``"zh"``, ``"mixed"`` or ``""``), in text order.

    ``"mixed"`` and ``""`` apply the rules of both languages.
    """
    candidates = list(_regex_fields(text, _RULES_ANY))
    if language in ("en", "mixed", ""):
        candidates += list(_regex_fields(text, _RULES_EN)) + list(_matcher_fields(text))
    if language in ("zh", "mixed", ""):
        candidates += list(_regex_fields(text, _RULES_ZH))
    chosen: list[tuple[str, int, int]] = []
    for name, start, end in sorted(set(candidates), key=lambda c: (c[1], -(c[2] - c[1]))):
        # trim whitespace so the value slices back exactly without padding
        value = text[start:end]
        start, end = start + (len(value) - len(value.lstrip())), end - (len(value) - len(value.rstrip()))
        if end <= start or any(start < e and s < end for _, s, e in chosen):
            continue
        chosen.append((name, start, end))
    return tuple(ExtractedField(name, text[s:e], s, e) for name, s, e in chosen)
