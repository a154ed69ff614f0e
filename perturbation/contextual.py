"""Contextual perturbations: self-diagnosis, irrelevant detail and vague wording.

None of them has a correction. A self-diagnosis is the patient's belief and is kept as
such (the clinician should see it, flagged, not see it erased); irrelevant detail is only
marked; vague wording ("a bit", "好几天") is never replaced by invented precision.

Irrelevant information is judged per comma clause (one sentence often carries a symptom
and an aside): a clause is flagged only when it names an off-topic subject (holidays,
pets, the boss, football, the view) and has no clinical hook (a symptom, a body part, a
named condition, a medication or care word, a duration). Travel and animals can be
exposures, so they are flagged only when no past-contact word ("got back", "回来",
"played with") is present either. What the writer sets aside themselves ("..., but my
actual question is", "言归正传") is flagged too.

Self-diagnosis is a named condition after a hedge ("pretty sure it's"), a bare claim
("I've got a chest infection", "得了流感"), a reference back to a relative's condition
("I think I have it too", "我估计我也是"), a recurrence or treatment question the writer
labels ("my sinus infection is back", "中耳炎要不要吃抗生素"), or a settled cause ("after
the new washing powder", "吃坏了"); never when a clinician said it.
Cue lists live in `lexicons/contextual.yaml`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cache

from perturbation.analysis import Finding
from perturbation.cuescan import CueScan, Span
from perturbation.document import Document
from perturbation.lexicon import load
from perturbation.structural import drop_overlaps, site_starts
from perturbation.symptoms import (
    any_between,
    sentence_span,
    symptom_starts,
    word_regex,
)

MISDIAGNOSIS = "contextual.subjective_misdiagnosis"
IRRELEVANT = "contextual.irrelevant_information"
VAGUE = "contextual.vague_expression"

_HEDGE_CONFIDENCE = {"certain": 0.8, "belief": 0.7, "question": 0.55, "assert": 0.65}
# How far after a hedge the condition may be named; a bare assertion ("I've got ...")
# must name it almost at once ("I've got a bad chest infection").
_REACH = {"en": 45, "zh": 15}
_ASSERT_REACH = {"en": 14, "zh": 3}
_AFTER_REACH = {"en": 12, "zh": 4}  # from a condition to "is back", "又犯了"
_CLAUSE_STOP = re.compile(r"[，,。！？；;!?\n.]")
_ZH_CLAUSE = re.compile(r"[，,。！？；;!?\n]+")
# What joins an aside to the return to the point: ", but", "。", "，"
_ASIDE_TAIL = re.compile(r"[\s,，;；.。!！]*(?:\bbut\s+|\band\s+)?[\s,，;；.。!！]*$")
_EN_CLAUSE = re.compile(r"[,;:]+|\s(?:but|anyway)\s")
_EN_ROUGH_QUANTITY = re.compile(
    r"\b(?:about|around|roughly|approximately|approx|like|nearly|almost)\s+"
    r"(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|twenty|half an?)"
    r"(?:\s*-\s*\d+)?\s*(?:mins?|minutes?|hrs?|hours?|days?|wks?|weeks?|months?|times?)\b"
)
_EN_DURATION = re.compile(r"\b(?:for|since)\s+(?:\d+|a|an|one|two|three|few|several)\b")
_ZH_DURATION = re.compile(r"[\d一二两三四五六七八九十几半]+个?(?:天|周|星期|月|年|小时)了?")


@dataclass
class _Sentence:
    """Cue matches that fall in one sentence."""

    conditions: list[Span] = field(default_factory=list)
    sources: list[Span] = field(default_factory=list)
    clinicians: list[Span] = field(default_factory=list)
    hedges: list[tuple[str, Span]] = field(default_factory=list)


@dataclass(frozen=True)
class _Cues:
    scans: dict[str, CueScan]  # the lists every message is scanned for, whole
    conditions: dict[str, re.Pattern[str]]
    anaphors: dict[str, re.Pattern[str]]
    causes: dict[str, re.Pattern[str]]
    after: dict[str, re.Pattern[str]]
    exposure_topics: dict[str, re.Pattern[str]]
    exposure_hooks: dict[str, re.Pattern[str]]
    hooks: dict[str, re.Pattern[str]]


@cache
def _cues() -> _Cues:
    raw = load("contextual")
    m, i, v = raw["misdiagnosis"], raw["irrelevant"], raw["vague"]

    def both(section: dict[str, list[str]], key: str) -> dict[str, re.Pattern[str]]:
        return {lang: word_regex(section[f"{key}_{lang}"], lang == "en") for lang in ("en", "zh")}

    scans = {
        lang: CueScan(
            {
                **{key: m[f"{key}_{lang}"] for key in ("conditions", "sources", "clinician")},
                **{kind: m[f"hedges_{kind}_{lang}"] for kind in _HEDGE_CONFIDENCE},
                "causes": m[f"causes_{lang}"],
                "topics": i[f"topics_{lang}"],
                "back_to_point": i[f"back_to_point_{lang}"],
                "vague_strong": v[f"strong_{lang}"],
                "vague_weak": v[f"weak_{lang}"],
            },
            lang == "en",
        )
        for lang in ("en", "zh")
    }
    return _Cues(
        scans=scans,
        conditions={lang: scans[lang].patterns["conditions"] for lang in scans},
        anaphors=both(m, "anaphors"),
        causes={lang: scans[lang].patterns["causes"] for lang in scans},
        after=both(m, "after"),
        exposure_topics=both(i, "exposure_topics"),
        exposure_hooks=both(i, "exposure_hooks"),
        hooks=both(i, "hooks"),
    )


def _finding(doc: Document, sub: str, start: int, end: int, confidence: float) -> Finding:
    return Finding(sub, start, end, doc.text[start:end], confidence, None)


def _unit_of(doc: Document, pos: int) -> tuple[int, int]:
    """The comma clause holding `pos`: one sentence often carries a symptom and an aside
    ("my knee is stiff, the views were stunning", "膝盖有点僵，风景绝了")."""
    start, end = sentence_span(doc, pos)
    splitter = _ZH_CLAUSE if doc.language == "zh" else _EN_CLAUSE
    for sep in splitter.finditer(doc.text, start, end):
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
    '我觉得是胃炎', "I've got a chest infection"), claims by reference ('my dad had
    Parkinson's, I think I have it too') or labels as a recurrence ('my sinus infection is
    back'); surer when a source is cited ('I googled it', '百度说')."""
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

    hits = c.scans[lang].find(doc)
    all_conditions = [start for start, _ in hits["conditions"]]
    for span in hits["conditions"]:
        bucket(span[0]).conditions.append(span)
    for span in hits["sources"]:
        bucket(span[0]).sources.append(span)
    for span in hits["clinician"]:
        bucket(span[0]).clinicians.append(span)
    for kind in _HEDGE_CONFIDENCE:
        for span in hits[kind]:
            bucket(span[0]).hedges.append((kind, span))
    out: list[Finding] = []
    symptoms = symptom_starts(doc)
    for start, _ in hits["causes"]:
        bucket(start)
    for (s_start, s_end), sent in sorted(sentences.items()):
        clinicians = [
            start
            for start, _ in sent.clinicians
            if not any(a <= start < b for a, b in sent.sources)  # "Dr Google"
        ]
        found = _hedged(doc, sent, clinicians, all_conditions, out)
        if not clinicians:
            found = _relabelled(doc, sent, out) or found
            found = _blamed(doc, s_start, s_end, symptoms, out) or found
        if sent.sources and not found:
            src = sent.sources[0]
            cond = sent.conditions[0] if sent.conditions and not clinicians else None
            if cond is not None:
                start, end = min(cond[0], src[0]), max(cond[1], src[1])
                out.append(_finding(doc, MISDIAGNOSIS, start, end, 0.85))
            elif re.search(r"says?|said|说", text[src[1] : s_end][:20]):
                out.append(_finding(doc, MISDIAGNOSIS, src[0], src[1], 0.55))
    return drop_overlaps(out)


def _hedged(
    doc: Document,
    sent: _Sentence,
    clinicians: list[int],
    all_conditions: list[int],
    out: list[Finding],
) -> bool:
    """Hedges followed by a condition, or by a reference back to one named earlier in the
    message ("... so I think I have it too"); appends to `out`, says whether any did."""
    lang = doc.language
    text = doc.lower
    found = False
    for kind, hedge in sent.hedges:
        reach = _ASSERT_REACH[lang] if kind == "assert" else _REACH[lang]
        cond = next(
            (x for x in sent.conditions if hedge[0] <= x[0] <= hedge[1] + reach),
            None,
        )
        if cond is None and kind == "assert":
            continue  # a bare "I've got" needs the condition itself, not a reference
        end = cond[1] if cond is not None else _anaphor_end(doc, hedge, all_conditions)
        if end is None:
            continue
        named_at = cond[0] if cond is not None else end
        if any(hedge[0] - _CLINICIAN_BEFORE[lang] < p < named_at for p in clinicians):
            continue  # "I think the doctor said it's the flu", "the GP said it's probably ..."
        if _NEGATED_HEDGE[lang].search(text, max(0, hedge[0] - 8), hedge[0]):
            continue  # "I don't think it's my sugar": the writer rules it out
        confidence = 0.9 if sent.sources else _HEDGE_CONFIDENCE[kind]
        out.append(_finding(doc, MISDIAGNOSIS, hedge[0], end, confidence))
        found = True
    return found


def _anaphor_end(doc: Document, hedge: Span, all_conditions: list[int]) -> int | None:
    """End of "it too" / "也是" right after a hedge, when a condition was named before."""
    if not any_between(all_conditions, 0, hedge[0]):
        return None
    c = _cues()
    lang = doc.language
    window = hedge[1] + _ASSERT_REACH[lang]
    # from the hedge's start: a hedge may end inside the reference ("i think i have it")
    anaphor = c.anaphors[lang].search(doc.lower, hedge[0], window + 12)
    if anaphor is None or anaphor.start() > window:
        return None
    return anaphor.end()


def _blamed(doc: Document, start: int, end: int, symptoms: list[int], out: list[Finding]) -> bool:
    """A settled cause for a symptom told in the same sentence."""
    if not any_between(symptoms, start, end):
        return False
    cause = _cues().causes[doc.language].search(doc.lower, start, end)
    if cause is None:
        return False
    out.append(_finding(doc, MISDIAGNOSIS, cause.start(), _cause_end(doc, cause.end()), 0.6))
    return True


def _cause_end(doc: Document, pos: int) -> int:
    """The cause phrase runs to the end of its clause."""
    stop = _CLAUSE_STOP.search(doc.text, pos)
    return stop.start() if stop else len(doc.text)


def _relabelled(doc: Document, sent: _Sentence, out: list[Finding]) -> bool:
    """A condition the writer names as a recurrence or asks how to treat ('my sinus
    infection is back', '偏头痛又犯了', '中耳炎要不要吃抗生素')."""
    c = _cues()
    lang = doc.language
    found = False
    for start, end in sent.conditions:
        after = c.after[lang].search(doc.lower, end, end + _AFTER_REACH[lang] + 8)
        if after is None or after.start() > end + _AFTER_REACH[lang]:
            continue
        if doc.is_negated(start, end):
            continue
        out.append(_finding(doc, MISDIAGNOSIS, start, after.end(), 0.65))
        found = True
    return found


# --- irrelevant information ----------------------------------------------------------


def detect_irrelevant_information(doc: Document) -> list[Finding]:
    """Off-topic clauses with no clinical hook, and whatever the writer themselves sets
    aside by returning to the point ("..., but my actual question is", "言归正传")."""
    return drop_overlaps(_off_topic(doc) + _set_aside(doc))


def _off_topic(doc: Document) -> list[Finding]:
    c = _cues()
    lang = doc.language
    symptoms = symptom_starts(doc)
    sites = site_starts(doc)
    duration = _EN_DURATION if lang == "en" else _ZH_DURATION
    out: list[Finding] = []
    done: set[tuple[int, int]] = set()
    for topic, _ in c.scans[lang].find(doc)["topics"]:
        start, end = _unit_of(doc, topic)
        if (start, end) in done:
            continue
        done.add((start, end))
        if any_between(symptoms, start, end) or any_between(sites, start, end):
            continue  # a symptom or a body part ("hit my head snowboarding")
        if (
            c.hooks[lang].search(doc.lower, start, end)
            or duration.search(doc.lower, start, end)
            or c.conditions[lang].search(doc.lower, start, end)  # "my coworker had covid"
        ):
            continue
        exposure = c.exposure_topics[lang].search(doc.lower, start, end)
        # English keeps a trip and its consequence in one sentence ("got back from Spain,
        # now a rash"); a Chinese sentence is often the whole story, so its clause decides
        h_start, h_end = sentence_span(doc, start) if lang == "en" else (start, end)
        if exposure and c.exposure_hooks[lang].search(doc.lower, h_start, h_end):
            continue
        out.append(_trimmed(doc, start, end, 0.6 if exposure else 0.7))
    return out


def _set_aside(doc: Document) -> list[Finding]:
    """The text before a back-to-the-point marker, in its sentence (or the sentence
    before, when the marker opens one)."""
    out: list[Finding] = []
    for marker, _ in _cues().scans[doc.language].find(doc)["back_to_point"]:
        start, _ = sentence_span(doc, marker)
        if not doc.text[start:marker].strip(" ,，、"):
            start, _ = sentence_span(doc, max(0, start - 2))
        end = _ASIDE_TAIL.search(doc.lower, start, marker)
        stop = end.start() if end else marker
        if stop - start > 3:
            out.append(_trimmed(doc, start, stop, 0.6))
    return out


def _trimmed(doc: Document, start: int, end: int, confidence: float) -> Finding:
    while end > start and doc.text[end - 1].isspace():
        end -= 1
    while start < end and doc.text[start].isspace():
        start += 1
    return _finding(doc, IRRELEVANT, start, end, confidence)


# --- vague expression ----------------------------------------------------------------


def detect_vague_expression(doc: Document) -> list[Finding]:
    """Vague amounts, times, frequencies and places: flagged, never replaced."""
    hits = _cues().scans[doc.language].find(doc)
    strong = list(hits["vague_strong"])
    if doc.language == "en":  # "about 10 minutes", "like 3 days", "around 5-6 times"
        strong += [(m.start(), m.end()) for m in _EN_ROUGH_QUANTITY.finditer(doc.lower)]
        strong = sorted(set(strong))
    out = [_finding(doc, VAGUE, a, b, 0.75) for a, b in strong]
    ends = [b for _, b in strong]
    for start, end in hits["vague_weak"]:
        i = bisect_right(ends, start)  # first strong span ending after this start
        if i < len(strong) and strong[i][0] < end:
            continue  # inside or overlapping a strong cue ("a little bit" over "a little")
        out.append(_finding(doc, VAGUE, start, end, 0.5))
    out.sort(key=lambda f: f.start)
    return out
