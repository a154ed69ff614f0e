"""Contextual perturbations: self-diagnosis, irrelevant detail and vague wording.

None of them has a correction. A self-diagnosis is the patient's belief and is kept as
such (the clinician should see it, flagged, not see it erased); irrelevant detail is only
marked; vague wording ("a bit", "好几天") is never replaced by invented precision.

Irrelevant information is judged per sentence (per comma clause in Chinese, where one
sentence often carries a whole story): a sentence is flagged only when it names an
off-topic subject (holidays, pets, the boss, football) and has no clinical hook (a symptom,
a named condition, a medication or care word, a duration). Travel and animals can be
exposures, so they are flagged only when no past-contact word ("got back", "回来",
"played with") is present either.
Cue lists live in `lexicons/contextual.yaml`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache

from perturbation.analysis import Finding
from perturbation.document import Document
from perturbation.lexicon import load
from perturbation.structural import drop_overlaps
from perturbation.symptoms import any_between, sentence_span, symptom_starts, word_regex

MISDIAGNOSIS = "contextual.subjective_misdiagnosis"
IRRELEVANT = "contextual.irrelevant_information"
VAGUE = "contextual.vague_expression"

_HEDGE_CONFIDENCE = {"certain": 0.8, "belief": 0.7, "question": 0.55}
_REACH = {"en": 45, "zh": 15}  # how far after a hedge the condition may be named
_ZH_CLAUSE = re.compile(r"[，,。！？；;!?\n]+")
_EN_DURATION = re.compile(r"\b(?:for|since)\s+(?:\d+|a|an|one|two|three|few|several)\b")
_ZH_DURATION = re.compile(r"[\d一二两三四五六七八九十几半]+个?(?:天|周|星期|月|年|小时)了?")


@dataclass
class _Sentence:
    """Cue matches that fall in one sentence."""

    conditions: list[re.Match[str]] = field(default_factory=list)
    sources: list[re.Match[str]] = field(default_factory=list)
    clinicians: list[re.Match[str]] = field(default_factory=list)
    hedges: list[tuple[str, re.Match[str]]] = field(default_factory=list)


@dataclass(frozen=True)
class _Cues:
    conditions: dict[str, re.Pattern[str]]
    hedges: dict[str, dict[str, re.Pattern[str]]]
    sources: dict[str, re.Pattern[str]]
    clinician: dict[str, re.Pattern[str]]
    topics: dict[str, re.Pattern[str]]
    exposure_topics: dict[str, re.Pattern[str]]
    exposure_hooks: dict[str, re.Pattern[str]]
    hooks: dict[str, re.Pattern[str]]
    vague: dict[str, dict[str, re.Pattern[str]]]


@cache
def _cues() -> _Cues:
    raw = load("contextual")
    m, i, v = raw["misdiagnosis"], raw["irrelevant"], raw["vague"]

    def both(section: dict[str, list[str]], key: str) -> dict[str, re.Pattern[str]]:
        return {lang: word_regex(section[f"{key}_{lang}"], lang == "en") for lang in ("en", "zh")}

    return _Cues(
        conditions=both(m, "conditions"),
        hedges={
            lang: {
                kind: word_regex(m[f"hedges_{kind}_{lang}"], lang == "en")
                for kind in _HEDGE_CONFIDENCE
            }
            for lang in ("en", "zh")
        },  # fmt: skip
        sources=both(m, "sources"),
        clinician=both(m, "clinician"),
        topics=both(i, "topics"),
        exposure_topics=both(i, "exposure_topics"),
        exposure_hooks=both(i, "exposure_hooks"),
        hooks=both(i, "hooks"),
        vague={
            lang: {
                "strong": word_regex(v[f"strong_{lang}"], lang == "en"),
                "weak": word_regex(v[f"weak_{lang}"], lang == "en"),
            }
            for lang in ("en", "zh")
        },  # fmt: skip
    )


def _finding(doc: Document, sub: str, start: int, end: int, confidence: float) -> Finding:
    return Finding(sub, start, end, doc.text[start:end], confidence, None)


def _unit_of(doc: Document, pos: int) -> tuple[int, int]:
    """The sentence holding `pos`; in Chinese, its comma clause."""
    start, end = sentence_span(doc, pos)
    if doc.language == "zh":
        for sep in _ZH_CLAUSE.finditer(doc.text, start, end):
            if sep.end() <= pos:
                start = sep.end()
            else:
                return start, sep.start()
    return start, end


# --- subjective misdiagnosis ---------------------------------------------------------


_CLINICIAN_BEFORE = {"en": 30, "zh": 8}
_NEGATED_HEDGE = {
    "en": re.compile(r"(?:n['’]t|\bnot)\s+$"),
    "zh": re.compile(r"不$"),
}


def detect_subjective_misdiagnosis(doc: Document) -> list[Finding]:
    """A named condition the writer believes they have ('pretty sure it's a heart attack',
    '我觉得是胃炎'), surer when a source is cited ('I googled it', '百度说')."""
    c = _cues()
    lang = doc.language
    text = doc.lower
    sentences: dict[tuple[int, int], _Sentence] = {}

    def bucket(pos: int) -> _Sentence:
        key = sentence_span(doc, pos)
        found = sentences.get(key)
        if found is None:
            found = sentences[key] = _Sentence()
        return found

    for match in c.conditions[lang].finditer(text):
        bucket(match.start()).conditions.append(match)
    for match in c.sources[lang].finditer(text):
        bucket(match.start()).sources.append(match)
    for match in c.clinician[lang].finditer(text):
        bucket(match.start()).clinicians.append(match)
    for kind, pattern in c.hedges[lang].items():
        for match in pattern.finditer(text):
            bucket(match.start()).hedges.append((kind, match))
    out: list[Finding] = []
    for (_, s_end), sent in sorted(sentences.items()):
        if not sent.conditions and not sent.sources:
            continue
        clinicians = [
            m.start()
            for m in sent.clinicians
            if not any(x.start() <= m.start() < x.end() for x in sent.sources)  # "Dr Google"
        ]
        found = False
        for kind, hedge in sent.hedges:
            cond = next(
                (x for x in sent.conditions
                 if hedge.start() <= x.start() <= hedge.end() + _REACH[lang]),
                None,
            )  # fmt: skip
            if cond is None:
                continue
            if any(hedge.start() - _CLINICIAN_BEFORE[lang] < p < cond.start() for p in clinicians):
                continue  # "I think the doctor said it's the flu", "the GP said it's probably ..."
            if _NEGATED_HEDGE[lang].search(text, max(0, hedge.start() - 8), hedge.start()):
                continue  # "I don't think it's my sugar": the writer rules it out
            confidence = 0.9 if sent.sources else _HEDGE_CONFIDENCE[kind]
            out.append(_finding(doc, MISDIAGNOSIS, hedge.start(), cond.end(), confidence))
            found = True
        if sent.sources and not found:
            src = sent.sources[0]
            cond = sent.conditions[0] if sent.conditions and not clinicians else None
            if cond is not None:
                start, end = min(cond.start(), src.start()), max(cond.end(), src.end())
                out.append(_finding(doc, MISDIAGNOSIS, start, end, 0.85))
            elif re.search(r"says?|said|说", text[src.end() : s_end][:20]):
                out.append(_finding(doc, MISDIAGNOSIS, src.start(), src.end(), 0.55))
    return drop_overlaps(out)


# --- irrelevant information ----------------------------------------------------------


def detect_irrelevant_information(doc: Document) -> list[Finding]:
    c = _cues()
    lang = doc.language
    symptoms = symptom_starts(doc)
    duration = _EN_DURATION if lang == "en" else _ZH_DURATION
    out: list[Finding] = []
    done: set[tuple[int, int]] = set()
    for topic in c.topics[lang].finditer(doc.lower):
        start, end = _unit_of(doc, topic.start())
        if (start, end) in done:
            continue
        done.add((start, end))
        if any_between(symptoms, start, end):
            continue
        if (
            c.hooks[lang].search(doc.lower, start, end)
            or duration.search(doc.lower, start, end)
            or c.conditions[lang].search(doc.lower, start, end)  # "my coworker had covid"
        ):
            continue
        exposure = c.exposure_topics[lang].search(doc.lower, start, end)
        if exposure and c.exposure_hooks[lang].search(doc.lower, start, end):
            continue
        while end > start and doc.text[end - 1].isspace():
            end -= 1
        while start < end and doc.text[start].isspace():
            start += 1
        out.append(_finding(doc, IRRELEVANT, start, end, 0.6 if exposure else 0.7))
    return out


# --- vague expression ----------------------------------------------------------------


def detect_vague_expression(doc: Document) -> list[Finding]:
    """Vague amounts, times, frequencies and places: flagged, never replaced."""
    vague = _cues().vague[doc.language]
    strong = [(m.start(), m.end()) for m in vague["strong"].finditer(doc.lower)]
    out = [_finding(doc, VAGUE, a, b, 0.75) for a, b in strong]
    ends = [b for _, b in strong]
    for match in vague["weak"].finditer(doc.lower):
        i = bisect_right(ends, match.start())  # first strong span ending after this start
        if i < len(strong) and strong[i][0] < match.end():
            continue  # inside or overlapping a strong cue ("a little bit" over "a little")
        out.append(_finding(doc, VAGUE, match.start(), match.end(), 0.5))
    out.sort(key=lambda f: f.start)
    return out
