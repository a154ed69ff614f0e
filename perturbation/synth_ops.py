"""The twelve perturbation operations, one function per PrMed subcategory.

Each operation edits a `Buffer` in place and returns whether it changed anything, so the
synthesizer labels only what was really applied. `strength` is 1 (light), 2 (moderate) or
3 (heavy): it bounds how many words an operation may touch, keeping clinical key terms
recoverable. All wording comes from `lexicons/synth.yaml`; no edit touches a protected range.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from perturbation.lexicon import load
from perturbation.synth_buffer import Buffer

Op = Callable[[Buffer, Mapping[str, Any], random.Random, int], bool]
_TERMINAL = ".!?。！？；;\n"
_I_START = re.compile(r"I\b|I'")


def lexicon(language: str) -> Mapping[str, Any]:
    """The language's section of synth.yaml (parsed once by `perturbation.lexicon.load`)."""
    section: Mapping[str, Any] = load("synth")[language]
    return section


@cache
def _alternation(keys: tuple[str, ...], zh: bool, ignore_case: bool) -> re.Pattern[str]:
    body = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    pattern = body if zh else rf"(?<![\w'])(?:{body})(?![\w'])"
    return re.compile(pattern, re.IGNORECASE if ignore_case else 0)


def _match_case(source: str, new: str) -> str:
    if source[:1].isupper() and new[:1].islower() and not source.startswith("I "):
        return new[:1].upper() + new[1:]
    return new


def replace_terms(
    buf: Buffer, pairs: Mapping[str, str], sub: str, rng: random.Random, limit: int
) -> int:
    """Swap up to `limit` free occurrences of the pairs' keys; record the standard wording."""
    if not pairs or limit <= 0:
        return 0
    zh = buf.language == "zh"
    pattern = _alternation(tuple(pairs), zh, not zh)
    lowered = {k.lower(): v for k, v in pairs.items()}
    found = [m for m in pattern.finditer(buf.text) if buf.is_free(m.start(), m.end())]
    chosen = sorted(rng.sample(found, min(limit, len(found))), key=lambda m: -m.start())
    for match in chosen:
        new = _match_case(match.group(), lowered[match.group().lower()])
        buf.replace(match.start(), match.end(), new, sub)
        buf.record(sub, match.start(), match.start() + len(new), match.group())
    return len(chosen)


def insert_phrase(buf: Buffer, pos: int, phrase: str, sub: str) -> None:
    """Insert a whole sentence at a boundary, adding the punctuation and spaces it needs."""
    zh = buf.language == "zh"
    text = buf.text
    if pos == len(text) and text.rstrip() and text.rstrip()[-1].isalnum():
        pos = len(text.rstrip())
        buf.replace(pos, pos, "。" if zh else ".", None)
        pos += 1
    if not zh and pos > 0 and not buf.text[pos - 1].isspace():
        buf.replace(pos, pos, " ", None)
        pos += 1
    buf.replace(pos, pos, phrase, sub)
    end = pos + len(phrase)
    if not zh and end < len(buf.text) and not buf.text[end].isspace():
        buf.replace(end, end, " ", None)


def prefix_clause(buf: Buffer, phrase: str, sub: str) -> None:
    """Put a lead-in clause ("Sorry to bother you, ") before the message."""
    buf.replace(0, 0, phrase, sub)
    at = len(phrase)
    rest = buf.text[at:]
    if (
        buf.language == "en"
        and phrase.rstrip().endswith((",", ":"))
        and rest[:1].isupper()
        and not _I_START.match(rest)
        and buf.is_free(at, at + 1)
    ):
        buf.replace(at, at + 1, rest[0].lower(), None)


def _suffix_clause(buf: Buffer, phrase: str, sub: str) -> None:
    """Append a tag (" lol", "，破防了") before the message's final punctuation."""
    text = buf.text.rstrip()
    pos = len(text) - 1 if text and text[-1] in _TERMINAL else len(text)
    if not buf.is_free(pos, pos):
        pos = len(buf.text)
    buf.replace(pos, pos, phrase, sub)


def reversed_order(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    """Tell the story backwards and point back in time ("Before that, ...", "在这之前，")."""
    if buf.edits:
        return False
    zh = buf.language == "zh"
    units = [buf.text[s:e].strip() for s, e in buf.sentences()]
    if len(units) < 2:
        comma = "，" if zh else ", "
        cuts = [
            m.start()
            for m in re.finditer(re.escape(comma), buf.text)
            if buf.is_free(m.start(), m.end())
        ]
        if not cuts:
            return False
        bounds = [0, *cuts, len(buf.text)]
        units = [
            buf.text[a:b].lstrip(comma).strip() for a, b in zip(bounds, bounds[1:], strict=False)
        ]
        units = [u for u in units if u]
        if len(units) < 2:
            return False
    units.reverse()
    pieces: list[tuple[str, str | None]] = []
    for index, unit in enumerate(units):
        if unit[-1] not in _TERMINAL:
            unit += "。" if zh else "."
        if index == 0 and not zh:
            unit = unit[0].upper() + unit[1:]
        if index > 0 and (strength == 3 or index == 1):
            marker = str(rng.choice(lex["backward_refs"]))
            if not zh and not _I_START.match(unit):
                unit = unit[0].lower() + unit[1:]
            pieces.append((marker, "structural.reversed_order"))
        pieces.append((unit + ("" if zh or index == len(units) - 1 else " "), None))
    buf.replace(0, len(buf.text), "", None)
    for piece, sub in pieces:
        buf.replace(len(buf.text), len(buf.text), piece, sub)
    return True


def perspective(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    """Tell it as a relative ("My husband has...", "我老公...") or mix persons."""
    sub = "structural.perspective_misalignment"
    rel = rng.choice(lex["relatives"])
    zh = buf.language == "zh"
    if zh:
        pattern = re.compile(r"我(?![们老妈爸儿女家])")
        verbs: Mapping[str, str] = {}
    else:
        verbs = lex["first_person_verbs"]
        pattern = _alternation(tuple(verbs), False, False)
    found = [m for m in pattern.finditer(buf.text) if buf.is_free(m.start(), m.end())]
    if not found:
        prefix = str(rng.choice(lex["perspective_prefixes"])).format(noun=rel["noun"])
        prefix_clause(buf, prefix[0].upper() + prefix[1:], sub)
        return True
    for index, match in enumerate(reversed(found)):
        first = index == len(found) - 1
        if not first and strength < 3:
            continue
        who = rel["noun"] if first else rel["pronoun"]
        if zh:
            new = who
        else:
            new = f"{who} {verbs[match.group()]}"
            before = buf.text[: match.start()].rstrip()
            if not before or before[-1] in _TERMINAL:
                new = new[0].upper() + new[1:]
        buf.replace(match.start(), match.end(), new, sub)
        buf.record(sub, match.start(), match.start() + len(new), match.group())
    if strength == 3 and not zh:
        pairs = {k: v.format(**rel) for k, v in lex["possessives"].items()}
        replace_terms(buf, pairs, sub, rng, 6)
    return True


def incomplete_grammar(
    buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int
) -> bool:
    """Drop function words and subjects until the message reads like a telegram."""
    zh = buf.language == "zh"
    words = tuple(lex["function_words"])
    if zh:
        pattern = re.compile(
            "|".join(re.escape(w) + ("(?![们老妈爸儿女家])" if w == "我" else "") for w in words)
        )
    else:
        body = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w'])(?:{body})(?![\w'])\s*", re.IGNORECASE)
    found = [m for m in pattern.finditer(buf.text) if buf.is_free(m.start(), m.end())]
    limit = {1: 2, 2: 4, 3: 8}[strength]
    chosen = sorted(rng.sample(found, min(limit, len(found))), key=lambda m: -m.start())
    for match in chosen:
        buf.replace(match.start(), match.end(), "", "structural.incomplete_grammar")
        buf.record("structural.incomplete_grammar", match.start(), match.start(), match.group())
    return bool(chosen)
