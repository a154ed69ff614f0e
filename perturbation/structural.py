"""Structural perturbations: who the message is about, whether it is written in sentences,
and whether the story runs backwards.

All three change how a message must be read rather than what it says, so none of them
offers a correction: rewriting "my son has a fever, he..." or reordering a story would put
words in the patient's mouth. Cue lists live in `lexicons/structural.yaml`.

Incomplete grammar and clinical notes: notes are fragmentary by design ("Pt c/o chest pain
x2d. Denies SOB."). We flag fragments only in messages that do not look like a note (two
note markers, or one marker and no first-person words, switch the detector off) and only
with a telegraphic cue: symptom words juxtaposed with no connector, a dangling word after
a fragment ("headache since yesterday bad"), a run of very short verbless units ("fever.
cough. 3 days. help"), space-separated Chinese words, or a whole message of fragments.
Patients also drop the subject ("Been coughing all week", "Fell off the ladder", "...,
had them for weeks") or the article ("Throat hurts"), and Chinese writers cut clauses to
notes ("头疼4天", "发烧头疼", "没吐没晕", "耳朵疼。周六开始。晚上更重。"); each of those
is a cue of its own.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from functools import cache
from typing import Any

from perturbation.analysis import Finding
from perturbation.cuescan import CueScan
from perturbation.document import Document
from perturbation.lexicon import load
from perturbation.symptoms import (
    alternation,
    any_between,
    find_sites,
    find_symptoms,
    form_key,
    sentence_span,
    symptom_starts,
    word_regex,
)

PERSPECTIVE = "structural.perspective_misalignment"
GRAMMAR = "structural.incomplete_grammar"
ORDER = "structural.reversed_order"

_EN_TOKEN = re.compile(r"[a-z0-9][a-z0-9'’/&]*|\?\?|!!")
_ZH_UNIT_SPLIT = re.compile(
    r"[。！？；;!?\n，,、]+|(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff])"
)
_HAN = re.compile(r"[\u4e00-\u9fff]")
_ZH_CLAUSE = re.compile(r"[^。！？；;!?\n，,、]+")
_ZH_STOP_UNIT = re.compile(r"[^。！？!?\n，,、]{1,5}[。！？!?]")
# "头疼4天", "怀孕28周": a complaint and a bare quantity, with no 了 or 有 to join them
_ZH_BARE_QUANTITY = re.compile(r"[\d一二两三四五六七八九十半几]+(?:天|周|小时|年)$")
# "没吐没晕", "不咳不喘": paired denials with the verbs cut to one or two characters
_ZH_PAIRED_DENIAL = re.compile(r"([没不])[^\W\d也还又都就a-zA-Z]{1,2}\1[\u4e00-\u9fff]")
_CLAUSE_END = re.compile(r"\s*(?:[.!?。！？；;\n,，]|$)")
# "my 3 month old", "our 2yo", "my 6-year-old": an age stands for the child
_EN_AGE = r"\d+\s*-?\s*(?:days?|weeks?|wks?|months?|mos?|years?|yrs?|y)\s*-?\s*(?:old|o)\b"
_CLAUSE_SPLIT = re.compile(r"[.!?。！？；;\n,，]+|\b(?:and then|then|but)\b")
# The first word of every sentence or comma clause, and whether a comma opened it.
_EN_OPENER = re.compile(r"(?:^|([.!?;:\n]+)|(,))[\s\"'(]*([a-z][a-z'’]*)")
# "Pregnant 28 wks", "fever 3 days": a word and a bare quantity, nothing to join them.
_EN_WORD_QUANTITY = re.compile(
    r"(?!(?:my|our|his|her|their|the|a|an|about|for|since|after|over|around|every|last)\b)"
    r"[a-z]+\s+\d+\s*(?:wks?|weeks?|days?|d|hrs?|hours?|mins?|minutes?|months?|yrs?|years?)\b"
)


@dataclass(frozen=True)
class _Cues:
    raw: dict[str, Any]
    scans: dict[str, CueScan]  # the lists every message is scanned for, whole
    en_intro: re.Pattern[str]
    en_definite: re.Pattern[str]
    en_proxy: re.Pattern[str]
    zh_intro: re.Pattern[str]
    zh_proxy: re.Pattern[str]
    not_patient: dict[str, re.Pattern[str]]
    health: dict[str, re.Pattern[str]]
    third: dict[str, re.Pattern[str]]
    first: dict[str, re.Pattern[str]]
    en_clause: re.Pattern[str]
    en_connector: re.Pattern[str]
    en_openers: frozenset[str]
    en_comma_openers: frozenset[str]
    zh_function: re.Pattern[str]
    anchor_ranks: dict[str, dict[str, int]]


@cache
def _cues() -> _Cues:
    raw = load("structural")
    p, g, o = raw["perspective"], raw["grammar"], raw["order"]
    rel_en = alternation(p["en_relations"], True)
    poss = alternation(p["en_possessives"], True)
    en_only = {"pregnancy": p["en_pregnancy"], "informal": g["en_informal"]}
    scans = {
        lang: CueScan(
            {
                "note": g[f"{lang}_note_markers"],
                **{key: o[f"{lang}_{key}"] for key in ("strong", "weak", "present", "anchors")},
                **(en_only if lang == "en" else {}),
            },
            lang == "en",
        )
        for lang in ("en", "zh")
    }
    return _Cues(
        raw=raw,
        scans=scans,
        en_intro=re.compile(rf"\b(?:{poss})\s+(?:(?:{rel_en})|{_EN_AGE})(?:['’]s)?\b"),
        en_definite=re.compile(
            rf"\bthe\s+(?:{alternation(p['en_definite_children'], True)})(?:['’]s)?\b"
        ),
        en_proxy=re.compile(
            rf"\b(?:{alternation(p['en_proxy_verbs'], True)})\s+(?:my|our|a)\s+(?:{rel_en})\b"
            rf"|\b(?:{alternation(p['en_proxy_fixed'], True)})"
            rf"|\b(?:{alternation(p['en_self_as_relation'], True)})\s+(?:{rel_en})\b",
        ),
        zh_intro=_zh_intro(p["zh_relations"]),
        zh_proxy=_zh_proxy(p),
        not_patient={
            "en": re.compile(rf"\s*(?:{alternation(p['en_not_patient_after'], True)})"),
            "zh": re.compile(alternation(p["zh_not_patient_after"], False)),
        },
        health={
            "en": word_regex(p["health_words_en"], True),
            "zh": word_regex(p["health_words_zh"], False),
        },
        third={
            "en": word_regex(p["en_third_person"], True),
            "zh": re.compile(r"[他她](?![们])"),
        },
        first={
            "en": re.compile(rf"(?<![\w'’])(?:{alternation(p['en_first_person'], True)})\b"),
            "zh": re.compile("我"),
        },
        en_clause=word_regex([*g["en_subjects"], *g["en_verbs"]], True),
        en_connector=word_regex(g["en_connectors"], True),
        en_openers=frozenset(form_key(w) for w in g["en_dropped_openers"]),
        en_comma_openers=frozenset(form_key(w) for w in g["en_dropped_after_comma"]),
        zh_function=word_regex(g["zh_function"], False),
        anchor_ranks={
            "en": {form_key(k): v for k, v in o["en_anchors"].items()},
            "zh": dict(o["zh_anchors"]),
        },
    )


def _branches(words: list[Any]) -> list[str]:
    """`alternation(words, False)` split into its branches, one per first character, each
    opening with that character. A pattern written as a plain '|' of such branches lets
    `re` jump between the characters that can start a match instead of trying each of a
    message's 2,000 positions (a leading group, optional part or look-ahead prevents that);
    the branches start with different characters, so their order cannot change a match."""
    forms = [form for form in (str(word).lower().strip() for word in words) if form]
    return [
        alternation([form for form in forms if form[0] == first], False)
        for first in sorted({form[0] for form in forms})
    ]


def _zh_intro(relations: list[Any]) -> re.Pattern[str]:
    """A relation ('我妈', '我们家孩子', '孩子他'), with an optional possessive in front and a
    he/she after: `(?:我们家|我家|我的|我)?R T` written out as `我(?:们家|家|的|)R T|R1 T|...`
    (R1 ...: the branches of R), which tries the same alternatives in the same order."""
    after = "(?:[他她](?![们]))?"
    mine = f"我(?:们家|家|的|)(?:{alternation(relations, False)}){after}"
    return re.compile("|".join([mine] + [branch + after for branch in _branches(relations)]))


def _zh_proxy(p: dict[str, Any]) -> re.Pattern[str]:
    """Asking for someone else ('帮我妈问一下', '给孩子吃', '我是家属'), each leading group
    distributed over what follows it (as in `_zh_intro`)."""
    rel = alternation(p["zh_relations"], False)
    asks = f"(?:我们家|我家|我)?(?:{rel})(?:{alternation(p['zh_proxy_after'], False)})"
    gives = f"给(?:我们家|我家|我)?(?:{rel})(?:{alternation(p['zh_give_verbs'], False)})"
    verbs = [verb + asks for verb in _branches(p["zh_proxy_verbs"])]
    return re.compile("|".join([*verbs, gives, *_branches(p["zh_self_as_relation"])]))


_LAST_SITES: list[tuple[Document, list[int]]] = []


def site_starts(doc: Document) -> list[int]:
    """Where body-site words start, in order; the last document's answer is kept (by
    identity) because the grammar and irrelevant-information detectors both ask."""
    if _LAST_SITES and _LAST_SITES[0][0] is doc:
        return _LAST_SITES[0][1]
    starts = sorted(site.start for site in find_sites(doc))
    _LAST_SITES[:] = [(doc, starts)]
    return starts


def _finding(doc: Document, sub: str, start: int, end: int, confidence: float) -> Finding:
    return Finding(sub, start, end, doc.text[start:end], confidence, None)


# --- perspective ---------------------------------------------------------------------


def detect_perspective_misalignment(doc: Document) -> list[Finding]:
    """A third person is the patient ('my son has had a fever', '帮我妈问一下'), or the
    narration switches person for the same patient ('I have a headache ... she vomited')."""
    c = _cues()
    lang = doc.language
    symptoms = symptom_starts(doc)
    out: list[Finding] = []
    proxy = c.en_proxy if lang == "en" else c.zh_proxy
    for match in proxy.finditer(doc.lower):
        out.append(_finding(doc, PERSPECTIVE, match.start(), match.end(), 0.9))
    intro = c.en_intro if lang == "en" else c.zh_intro
    if lang == "en" and not c.scans["en"].find(doc)["pregnancy"]:
        out.extend(_definite_child(doc, symptoms))
    seen_sentences: set[int] = {sentence_span(doc, f.start)[0] for f in out}
    relation_found = bool(out)
    reach = 60 if lang == "en" else 16
    for match in intro.finditer(doc.lower):
        relation_found = True
        if c.not_patient[lang].match(doc.lower, match.end()):
            continue
        s_start, s_end = sentence_span(doc, match.start())
        if s_start in seen_sentences:
            continue
        # The relation must be the one with the complaint: a symptom or health word soon
        # after it, before any first-person word ("my kids had one, then I got a fever").
        window_end = min(s_end, match.end() + reach)
        first = c.first[lang].search(doc.lower, match.end(), window_end)
        stop = first.start() if first else window_end
        # ... or a he/she in the same sentence that goes on to the complaint ("my dad is
        # 78, he keeps saying his chest feels heavy")
        pronoun = c.third[lang].search(doc.lower, match.end(), stop)
        if pronoun is not None:
            stop = s_end
        if not (
            any_between(symptoms, match.end(), stop)
            or c.health[lang].search(doc.lower, match.end(), stop)
        ):
            continue
        mixed = lang == "zh" and match.group()[-1] in "他她"
        out.append(_finding(doc, PERSPECTIVE, match.start(), match.end(), 0.9 if mixed else 0.8))
        seen_sentences.add(s_start)
    if not relation_found:
        out.extend(_third_person_opening(doc, symptoms) or _person_switch(doc, symptoms))
    return out


def _definite_child(doc: Document, symptoms: list[int]) -> list[Finding]:
    """'The baby's got a rash': a child named with "the" and a complaint right after."""
    c = _cues()
    out: list[Finding] = []
    seen: set[int] = set()
    for match in c.en_definite.finditer(doc.lower):
        s_start, s_end = sentence_span(doc, match.start())
        stop = min(s_end, match.end() + 40)
        me = c.first["en"].search(doc.lower, match.end(), stop)  # "... the kids, now I have"
        stop = me.start() if me else stop
        if s_start in seen or not (
            any_between(symptoms, match.end(), stop)
            or c.health["en"].search(doc.lower, match.end(), stop)
        ):
            continue
        out.append(_finding(doc, PERSPECTIVE, match.start(), match.end(), 0.7))
        seen.add(s_start)
    return out


def _third_person_opening(doc: Document, symptoms: list[int]) -> list[Finding]:
    """The message opens on "she"/"他" and goes on to a complaint: the writer has the
    patient in mind and never names them ("She's been weeing a lot...", "他发高烧...")."""
    if not doc.sentences or not symptoms:
        return []
    c = _cues()
    lang = doc.language
    first = doc.sentences[0]
    start = first.start + len(first.text) - len(first.text.lstrip())
    match = c.third[lang].match(doc.lower, start)
    if match is None:
        return []
    # "She says I have a fever": the complaint comes after "I", so the writer is the patient
    me = c.first[lang].search(doc.lower, match.end(), first.end)
    stop = me.start() if me else first.end
    if not (
        any_between(symptoms, match.end(), stop)
        or c.health[lang].search(doc.lower, match.end(), stop)
    ):
        return []
    return [_finding(doc, PERSPECTIVE, match.start(), match.end(), 0.65)]


def _person_switch(doc: Document, symptoms: list[int]) -> list[Finding]:
    """'I have a headache ... she also vomited' with no third party introduced."""
    c = _cues()
    lang = doc.language
    first_seen = False
    for sentence in doc.sentences:
        if not any_between(symptoms, sentence.start, sentence.end):
            continue
        text = doc.lower[sentence.start : sentence.end]
        third = c.third[lang].search(text)
        if first_seen and third and not c.first[lang].search(text[: third.start()]):
            start = sentence.start + third.start()
            return [_finding(doc, PERSPECTIVE, start, sentence.start + third.end(), 0.6)]
        if c.first[lang].search(text):
            first_seen = True
    return []


# --- incomplete grammar --------------------------------------------------------------


def _note_like(doc: Document) -> bool:
    c = _cues()
    markers = len(c.scans[doc.language].find(doc)["note"])
    return markers >= 2 or (markers == 1 and not c.first[doc.language].search(doc.lower))


def detect_incomplete_grammar(doc: Document) -> list[Finding]:
    """Telegraphic fragments in a patient message (see the module docstring)."""
    if _note_like(doc):
        return []
    units = _en_units(doc) if doc.language == "en" else _zh_units(doc)
    out = _fragment_runs(doc, units)
    extra = _en_dropped_subjects(doc) if doc.language == "en" else _zh_telegraphic(doc)
    return drop_overlaps(out + extra)


def _fragment_runs(doc: Document, units: list[tuple[int, int, float]]) -> list[Finding]:
    """Consecutive scored units as one finding each, at the run's highest score."""
    out: list[Finding] = []
    run: list[tuple[int, int, float]] = []
    for start, end, score in units + [(len(doc.text), len(doc.text), 0.0)]:
        if score > 0:
            run.append((start, end, score))
            continue
        if run:
            confidence = max(s for _, _, s in run)
            out.append(_finding(doc, GRAMMAR, run[0][0], run[-1][1], confidence))
            run = []
    return out


def _strip(doc: Document, start: int, end: int) -> tuple[int, int]:
    while start < end and not doc.text[start].isalnum() and not _HAN.match(doc.text[start]):
        start += 1
    while end > start and doc.text[end - 1] in " \t\u3000,，":
        end -= 1
    return start, end


def _en_dropped_subjects(doc: Document) -> list[Finding]:
    """Sentences and comma clauses that open without their subject: on a past or
    progressive verb ("Fell off the ladder", "Been bitten by something", "..., had them for
    weeks"), on a bare body part ("Throat hurts", "Eyes itchy") or on a word and a bare
    quantity ("Pregnant 28 wks")."""
    c = _cues()
    sites = site_starts(doc)
    out: list[Finding] = []
    for match in _EN_OPENER.finditer(doc.lower):
        start = match.start(3)
        word = form_key(match.group(3))
        after_comma = match.group(2) is not None
        if after_comma:
            hit = word in c.en_comma_openers
        else:
            hit = (
                word in c.en_openers
                or any_between(sites, start, start + 1)
                or _EN_WORD_QUANTITY.match(doc.lower, start) is not None
            )
        if hit:
            end = _clause_end(doc, start)
            out.append(_finding(doc, GRAMMAR, start, end, 0.65))
    return out


def _clause_end(doc: Document, start: int) -> int:
    """Where the comma clause or sentence starting at `start` ends."""
    stop = _CLAUSE_END.search(doc.text, start)
    return stop.start() if stop else len(doc.text.rstrip())


def _en_units(doc: Document) -> list[tuple[int, int, float]]:
    """Each sentence with a fragment score (0 = a clause, or no telegraphic cue)."""
    c = _cues()
    g = c.raw["grammar"]
    greetings, dangling = set(g["en_greetings"]), set(g["en_dangling"])
    symptoms = find_symptoms(doc)
    starts = [m.start for m in symptoms]
    rows: list[tuple[int, int, list[str], bool]] = []
    for sentence in doc.sentences:
        start, end = _strip(doc, sentence.start, sentence.end)
        words = [w.strip(",:()'\"’") for w in doc.lower[start:end].split()]
        words = [w for w in words if w]
        if not words or " ".join(words) in greetings:
            continue
        fragment = c.en_clause.search(doc.lower, start, end) is None
        rows.append((start, end, words, fragment))
    if not rows:
        return []
    all_fragments = all(r[3] for r in rows)
    informal = bool(c.scans["en"].find(doc)["informal"]) or doc.text.strip()[:1].islower()
    scored: list[tuple[int, int, float]] = []
    for i, (start, end, words, fragment) in enumerate(rows):
        score = 0.0
        if fragment:
            inside = symptoms[bisect_left(starts, start) : bisect_left(starts, end)]
            gaps = [doc.text[a.end : b.start] for a, b in zip(inside, inside[1:], strict=False)]
            if any(gap.strip() == "" for gap in gaps):
                score = 0.8  # "stomach pain vomit": symptom words juxtaposed
            elif inside and (words[-1] in dangling or " ".join(words[-2:]) in dangling):
                score = 0.75  # "headache since yesterday bad"
            elif len(words) <= 4 and any(
                rows[j][3] and len(rows[j][2]) <= 4 for j in (i - 1, i + 1) if 0 <= j < len(rows)
            ):
                score = 0.7  # "fever. cough. 3 days. help"
            elif len(words) >= 3 and c.en_connector.search(doc.lower, start, end) is None:
                score = 0.6  # a bare chain of content words
            elif all_fragments and (informal or len(rows) > 1):
                score = 0.55
            elif inside and informal:
                score = 0.5  # "hi doc. sore throat and fever since monday. what ..."
        scored.append((start, end, score))
    return scored


def _zh_units(doc: Document) -> list[tuple[int, int, float]]:
    """Chinese units split at punctuation and at spaces between Han characters."""
    c = _cues()
    pieces: list[tuple[int, int, bool]] = []  # start, end, followed by a space
    pos = 0
    for sep in _ZH_UNIT_SPLIT.finditer(doc.text):
        if sep.start() > pos:
            pieces.append((pos, sep.start(), not sep.group().strip()))
        pos = sep.end()
    if pos < len(doc.text):
        pieces.append((pos, len(doc.text), False))
    symptoms = symptom_starts(doc)
    function_words = [m.start() for m in c.zh_function.finditer(doc.lower)]
    greetings = set(c.raw["grammar"]["zh_greetings"])
    bare = [
        b - a <= 12
        and len(doc.text[a:b].strip()) <= 8
        and not any_between(function_words, a, b)
        and _HAN.search(doc.text, a, b) is not None
        and doc.text[a:b].strip() not in greetings
        for a, b, _ in pieces
    ]
    scored: list[tuple[int, int, float]] = []
    last = len(pieces) - 1
    for i, (start, end, spaced) in enumerate(pieces):
        if not bare[i]:
            scored.append((start, end, 0.0))
            continue
        score = 0.0
        prev_spaced = i > 0 and pieces[i - 1][2] and bare[i - 1]
        if (spaced and i < last and bare[i + 1]) or prev_spaced:
            score = 0.8  # "发烧 咳嗽 三天": words separated by spaces
        elif sum(bare[max(0, i - 2) : i + 3]) >= 3:
            run = [j for j in (i - 1, i, i + 1) if 0 <= j <= last and bare[j]]
            if any(any_between(symptoms, pieces[j][0], pieces[j][1]) for j in run):
                score = 0.6  # "发烧，咳嗽，三天，难受": a list of bare words
        scored.append((*_strip(doc, start, end), score))
    return scored


def _is_idiom(text: str, pos: int, idioms: set[str]) -> bool:
    return any(text.startswith(idiom, pos) for idiom in idioms)


def _zh_telegraphic(doc: Document) -> list[Finding]:
    """Chinese clauses cut down to notes: a complaint with a bare quantity ("头疼4天"),
    complaints run together ("发烧头疼"), paired denials ("没吐没晕") and runs of tiny
    full-stopped sentences ("耳朵疼。周六开始。晚上更重。")."""
    c = _cues()
    symptoms = find_symptoms(doc)
    adjacent = [a.start for a, b in zip(symptoms, symptoms[1:], strict=False) if a.end == b.start]
    idioms = set(c.raw["grammar"]["zh_paired_idioms"])
    out: list[Finding] = []
    for unit in _ZH_CLAUSE.finditer(doc.text):
        start, end = _strip(doc, unit.start(), unit.end())
        text = doc.text[start:end]
        bare = c.zh_function.search(doc.lower, start, end) is None
        denial = _ZH_PAIRED_DENIAL.search(text)
        if (
            (bare and _ZH_BARE_QUANTITY.search(text))
            or (bare and any_between(adjacent, start, end))
            or (denial is not None and not _is_idiom(text, denial.start(), idioms))
        ):
            out.append(_finding(doc, GRAMMAR, start, end, 0.65))
    runs = list(_ZH_STOP_UNIT.finditer(doc.text))
    for i, unit in enumerate(runs[:-2]):
        if runs[i + 1].start() == unit.end() and runs[i + 2].start() == runs[i + 1].end():
            out.append(_finding(doc, GRAMMAR, unit.start(), runs[i + 2].end(), 0.7))
    return out


# --- reversed order ------------------------------------------------------------------


def detect_reversed_order(doc: Document) -> list[Finding]:
    """Newest state first, then backward references ('... before that', '之前', or a
    later-mentioned time anchor that is older than an earlier one)."""
    c = _cues()
    lang = doc.language
    symptoms = symptom_starts(doc)
    out: list[Finding] = []
    hits = c.scans[lang].find(doc)
    present = [start for start, _ in hits["present"]]
    for start, end in hits["strong"]:
        told_before = bool(symptoms and symptoms[0] < start) or bool(present and present[0] < start)
        if told_before:
            out.append(_finding(doc, ORDER, start, end, 0.8))
    for start, end in hits["weak"]:
        # the earliest present-state cue is the one most likely in another clause
        if present and present[0] < start and _other_clause(doc, present[0], start):
            out.append(_finding(doc, ORDER, start, end, 0.6))
    ranks = c.anchor_ranks[lang]
    first_at: dict[int, int] = {}  # rank -> where an anchor of that rank was first told
    for start, end in hits["anchors"]:
        anchor = doc.lower[start:end]
        rank = ranks[form_key(anchor) if lang == "en" else anchor]
        newer = [pos for r, pos in first_at.items() if r < rank]
        if newer and _other_clause(doc, min(newer), start):
            out.append(_finding(doc, ORDER, start, end, 0.65))
        first_at.setdefault(rank, start)
    return drop_overlaps(out)


def _other_clause(doc: Document, earlier: int, later: int) -> bool:
    return bool(_CLAUSE_SPLIT.search(doc.lower, earlier, later))


def drop_overlaps(findings: list[Finding]) -> list[Finding]:
    """The most confident of overlapping findings, in text order (bisect, not pairs)."""
    starts: list[int] = []
    ends: list[int] = []
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (-f.confidence, f.start)):
        i = bisect_left(starts, finding.start)
        if i > 0 and ends[i - 1] > finding.start:
            continue  # the kept span before it runs into it
        if i < len(starts) and starts[i] < finding.end:
            continue  # the kept span after it starts inside it
        starts.insert(i, finding.start)
        ends.insert(i, finding.end)
        kept.append(finding)
    return sorted(kept, key=lambda f: f.start)
