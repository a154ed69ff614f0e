"""Chief complaint: the symptoms the patient wrote, in standard terms, with site, onset,
duration and severity where the message states them.

Safety rules kept here: a symptom is reported only when a lexicon form is literally in the
text (never inferred), every mention's negation comes from the Document's negation scopes
(`Document.is_negated`, a bisect look-up: "no fever" / "没发烧" stay denied), and ICD-10-CM
codes come only from the validated lexicon.
Repeated mentions collapse to the first one, separately for present and denied mentions,
so "no fever yesterday, but now I have a fever" keeps both facts.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

from perturbation.analysis import ChiefComplaint, Symptom
from perturbation.document import Document
from perturbation.lexicon import load
from perturbation.symptoms import (
    Mention,
    alternation,
    find_sites,
    find_symptoms,
    form_key,
    sentence_span,
)

_SEVERITY_RANK = {"mild": 1, "moderate": 2, "severe": 3}
_ZH_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5,
              "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_ZH_NUM = r"[零一二两俩三四五六七八九十百几半\d]+"
_PAIN_SCORE = re.compile(r"\b(10|[0-9])\s*(?:/|out of)\s*10\b")
_EN_SITE_CONTEXT = re.compile(r"(?:\b(?:my|his|her|the|on|in|around|of)\s+(?:\w+\s+)?)$")


@dataclass(frozen=True)
class _Patterns:
    severity: dict[str, re.Pattern[str]]
    severity_level: dict[str, dict[str, str]]
    onset: dict[str, tuple[re.Pattern[str], ...]]
    onset_names: dict[str, dict[str, str]]
    sudden: dict[str, re.Pattern[str]]
    duration: dict[str, re.Pattern[str]]
    en_numbers: dict[str, int]
    en_vague: dict[str, str]
    units: dict[str, dict[str, str]]


@cache
def _patterns() -> _Patterns:
    raw = load("symptoms")
    levels: dict[str, dict[str, str]] = {"en": {}, "zh": {}}
    for level, langs in raw["severity"].items():
        for lang in ("en", "zh"):
            for word in langs[lang]:
                levels[lang][form_key(str(word)) if lang == "en" else str(word)] = level
    onset = raw["onset"]
    names = {"en": {form_key(k): v for k, v in onset["en"].items()}, "zh": dict(onset["zh"])}
    dur = raw["duration"]
    en_units = dur["en_units"]
    en_num = "|".join([r"\d+(?:\.\d+)?", alternation(list(dur["en_numbers"]), True),
                       alternation(list(dur["en_vague"]), True), r"half\s+an?"])  # fmt: skip
    en_anchor = alternation(list(names["en"]), True)
    zh_anchor = alternation(list(names["zh"]), False)
    zh_unit = alternation(list(dur["zh_units"]), False)
    en_unit = alternation(list(en_units), True)
    return _Patterns(
        severity={
            "en": re.compile(rf"\b(?:{alternation(list(levels['en']), True)})"),
            "zh": re.compile(alternation(list(levels["zh"]), False)),
        },
        severity_level=levels,
        onset={
            "en": (
                re.compile(
                    rf"\b(?:since|started|starting|start|began|begun|came on|kicked in|"
                    rf"from)\s+(?:about\s+|around\s+|on\s+)?(?P<anchor>{en_anchor})",
                ),
                re.compile(
                    rf"\b(?P<anchor>{en_anchor})\s+(?:it\s+|this\s+|they\s+|that\s+)?"
                    rf"(?:all\s+)?(?:started|began|came on|kicked in)\b",
                ),
                re.compile(rf"\b(?P<num>{en_num})\s+(?P<unit>{en_unit})\s+ago\b"),
            ),
            "zh": (
                re.compile(rf"(?:从|自从|自)(?P<anchor>{zh_anchor})"),
                re.compile(rf"(?P<anchor>{zh_anchor})(?:就)?(?:开始|起|以来)"),
                re.compile(
                    rf"(?P<num>{_ZH_NUM})个?(?P<half>半)?多?(?P<unit>{zh_unit})(?:前|以前|之前)"
                ),
            ),
        },
        onset_names=names,
        sudden={
            "en": re.compile(rf"\b(?:{alternation(onset['sudden']['en'], True)})"),
            "zh": re.compile(alternation(onset["sudden"]["zh"], False)),
        },
        duration={
            "en": re.compile(
                rf"\b(?P<prep>(?:for|past|last|over|since|about|almost|nearly|around|x)\s+"
                rf"(?:the\s+)?(?:past\s+|last\s+)?)?(?P<num>{en_num})\s*-?\s*(?P<unit>{en_unit})"
                rf"(?P<tail>\s+(?:now|already|straight|in a row|ago))?\b",
            ),
            "zh": re.compile(
                rf"(?P<pre>[每第前这那好])?(?P<num>{_ZH_NUM})(?P<ge>个)?(?P<half>半)?(?P<more>多)?"
                rf"(?P<unit>{zh_unit})(?P<post>前|以前|之前|[一二两三四五六七八九十\d]+次)?"
            ),
        },
        en_numbers={str(k).lower(): int(v) for k, v in dur["en_numbers"].items()},
        en_vague={str(k).lower(): str(v) for k, v in dur["en_vague"].items()},
        units={"en": {str(k).lower(): v for k, v in en_units.items()}, "zh": dur["zh_units"]},
    )


def zh_number(text: str) -> str:
    """'三' -> '3', '十五' -> '15', '两三' -> '2-3', '几' -> 'a few', '十几' -> '10+'."""
    if text.isdigit():
        return text
    if "几" in text:
        if text in ("几", "这几"):
            return "a few"
        if text == "好几":
            return "several"
        if text.startswith("十") or text.startswith("一十"):
            return "10+"
        return "dozens of" if text.endswith("十") else "several"
    if text == "半":
        return "half a"
    if len(text) == 2 and all(c in _ZH_DIGITS and c != "零" for c in text):
        a, b = _ZH_DIGITS[text[0]], _ZH_DIGITS[text[1]]
        if b == a + 1 or (a, b) == (3, 5):
            return f"{a}-{b}"
    total, current = 0, 0
    for char in text:
        if char in _ZH_DIGITS:
            current = _ZH_DIGITS[char]
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return text
    return str(total + current)


def format_duration(number: str, unit: str) -> str:
    """'3' + 'day' -> '3 days'; 'a few' + 'week' -> 'a few weeks'; 'half a' -> 'half a day'."""
    if number.startswith("half"):
        return f"half {'an' if unit == 'hour' else 'a'} {unit}"
    plural = number not in ("1", "1.0")
    return f"{number} {unit}{'s' if plural else ''}"


def _en_number(p: _Patterns, word: str) -> str:
    word = re.sub(r"\s+", " ", word.lower())
    if word.startswith("half"):
        return "half a"
    if word in p.en_numbers:
        return str(p.en_numbers[word])
    return p.en_vague.get(word, word)


def find_duration(doc: Document) -> str | None:
    p = _patterns()
    for match in p.duration[doc.language].finditer(doc.lower):
        if doc.language == "en":
            num = match.group("num").lower()
            if match.group("tail") and "ago" in match.group("tail").lower():
                continue
            if not num[0].isdigit() and not match.group("prep") and not match.group("tail"):
                continue
            unit = p.units["en"][match.group("unit").lower()]
            return format_duration(_en_number(p, num), unit)
        if match.group("post") or match.group("pre") in ("每", "第", "前"):
            continue
        pre = match.group("pre") if match.group("pre") in ("这", "好") else ""
        number = zh_number(pre + match.group("num"))
        unit = p.units["zh"][match.group("unit")]
        if match.group("half") and number.isdigit():
            number = f"{number}.5"
        text = format_duration(number, unit)
        return f"over {text}" if match.group("more") else text
    return None


def find_onset(doc: Document) -> str | None:
    p = _patterns()
    lang = doc.language
    best: tuple[int, str] | None = None
    for pattern in p.onset[lang]:
        for match in pattern.finditer(doc.lower):
            if "anchor" in pattern.groupindex:
                key = match.group("anchor")
                value = p.onset_names[lang][form_key(key) if lang == "en" else key]
            elif lang == "en":
                unit = p.units["en"][match.group("unit").lower()]
                value = format_duration(_en_number(p, match.group("num")), unit) + " ago"
            else:
                unit = p.units["zh"][match.group("unit")]
                number = zh_number(match.group("num"))
                if match.group("half") and number.isdigit():
                    number = f"{number}.5"
                value = format_duration(number, unit) + " ago"
            if best is None or match.start() < best[0]:
                best = (match.start(), value)
            break
    if best is not None:
        return best[1]
    sudden = p.sudden[lang].search(doc.lower)
    return "sudden" if sudden and not doc.is_negated(sudden.start(), sudden.end()) else None


def find_severity(doc: Document, present: list[Mention]) -> str | None:
    """The most severe level stated in a sentence that names a present symptom."""
    p = _patterns()
    spans = {sentence_span(doc, m.start) for m in present}
    best = 0
    for match in p.severity[doc.language].finditer(doc.lower):
        if doc.is_negated(match.start(), match.end()):
            continue
        if sentence_span(doc, match.start()) not in spans:
            continue
        key = form_key(match.group()) if doc.language == "en" else match.group()
        level = p.severity_level[doc.language].get(key)
        best = max(best, _SEVERITY_RANK.get(level or "", 0))
    for match in _PAIN_SCORE.finditer(doc.lower):
        score = int(match.group(1))
        best = max(best, 3 if score >= 7 else 2 if score >= 4 else 1 if score else 0)
    return {v: k for k, v in _SEVERITY_RANK.items()}.get(best)


def find_site(doc: Document, present: list[Mention]) -> str | None:
    """The first present symptom's own site, else a site named beside a present symptom."""
    for mention in present:
        if mention.site:
            return mention.site
    if not present:
        return None
    spans = {sentence_span(doc, m.start) for m in present}
    mentions = find_symptoms(doc)  # sorted and non-overlapping: bisect for the one before
    starts = [m.start for m in mentions]
    for site in find_sites(doc):
        i = bisect_right(starts, site.start) - 1
        inside = i >= 0 and site.start < mentions[i].end
        if inside or doc.is_negated(site.start, site.end):
            continue
        if sentence_span(doc, site.start) not in spans:
            continue
        if doc.language == "zh" and site.end - site.start < 2:
            continue
        if doc.language == "en" and not _EN_SITE_CONTEXT.search(doc.lower[: site.start]):
            continue
        return site.site
    return None


def extract_chief_complaint(doc: Document) -> ChiefComplaint:
    symptoms: list[Symptom] = []
    seen: set[tuple[str, bool]] = set()
    present: list[Mention] = []
    for mention in find_symptoms(doc):
        negated = doc.is_negated(mention.start, mention.end)
        if not negated:
            present.append(mention)
        if (mention.term, negated) in seen:
            continue
        seen.add((mention.term, negated))
        symptoms.append(
            Symptom(
                mention.term, mention.text, mention.start, mention.end, negated, mention.icd10
            )  # fmt: skip
        )
    return ChiefComplaint(
        symptoms=tuple(symptoms),
        site=find_site(doc, present),
        onset=find_onset(doc),
        duration=find_duration(doc),
        severity=find_severity(doc, present),
    )
