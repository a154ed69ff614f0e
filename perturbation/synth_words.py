"""Word-level perturbations: slang, dialect, spelling errors and vague amounts.

These change how symptoms are worded, never which symptoms are there: every replacement
records the standard wording it replaced, and spelling errors touch only a few words, so a
normaliser can be tested on recovering each clinical key term.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from perturbation.synth_buffer import Buffer
from perturbation.synth_ops import insert_phrase, prefix_clause, replace_terms

_EN_WORD = re.compile(r"(?<![\w'])[A-Za-z]{5,}(?![\w'])")


def _tag(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, kind: str, sub: str) -> None:
    """Add a slang or dialect tag at the start ("tbh ", "医生嘞，") or the end (" lol")."""
    if rng.random() < 0.5:
        prefix_clause(buf, str(rng.choice(lex[f"{kind}_prefixes"])), sub)
        return
    phrase = str(rng.choice(lex[f"{kind}_suffixes"]))
    text = buf.text.rstrip()
    pos = len(text) - 1 if text and text[-1] in ".!?。！？" else len(text)
    if buf.is_free(pos, pos):
        buf.replace(pos, pos, phrase, sub)
    else:
        insert_phrase(buf, len(buf.text), phrase.lstrip(" ，,"), sub)


def internet_slang(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    """Chat slang: 'tummy', 'killing me', 'tbh'; '疼死了', '破防了', 'yyds'."""
    sub = "formal.internet_slang"
    count = replace_terms(buf, lex["slang_replace"], sub, rng, strength)
    if count == 0 or strength >= 2 and rng.random() < 0.5 or strength == 3:
        _tag(buf, lex, rng, "slang", sub)
    return True


def dialect(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    """Regional words: 'poorly', 'off my food', 'chesty'; '脑壳疼', '闹肚子', '打摆子'."""
    sub = "formal.dialect"
    count = replace_terms(buf, lex["dialect_replace"], sub, rng, strength)
    if count == 0 or strength == 3:
        _tag(buf, lex, rng, "dialect", sub)
    return True


def _typo(word: str, rows: list[str], rng: random.Random) -> str:
    """One keyboard slip inside a word: adjacent key, dropped, doubled or swapped letter."""
    for _ in range(8):
        i = rng.randrange(1, len(word) - 1)
        kind = rng.randrange(4)
        if kind == 0:
            row = next((r for r in rows if word[i].lower() in r), "")
            j = row.find(word[i].lower())
            if j < 0:
                continue
            near = [row[k] for k in (j - 1, j + 1) if 0 <= k < len(row)]
            out = word[:i] + rng.choice(near) + word[i + 1 :]
        elif kind == 1:
            out = word[:i] + word[i + 1 :]
        elif kind == 2:
            out = word[:i] + word[i] + word[i:]
        else:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        if out != word:
            return out
    return word[:-1] + word[-1] * 2


def spelling_error(buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int) -> bool:
    """Misspell a few words: known slips ('diarea'), keyboard typos, homophones ('咳簌')."""
    sub = "formal.spelling_error"
    limit = {1: 1, 2: 2, 3: 4}[strength]
    if buf.language == "zh":
        return replace_terms(buf, lex["homophones"], sub, rng, limit) > 0
    known = lex["known_misspellings"]
    words = [m for m in _EN_WORD.finditer(buf.text) if buf.is_free(m.start(), m.end())]
    rng.shuffle(words)
    words.sort(key=lambda m: m.group().lower() not in known)  # known slips first, stable
    chosen: list[re.Match[str]] = []
    seen: set[str] = set()
    for match in words:
        if len(chosen) < limit and match.group().lower() not in seen:
            chosen.append(match)
            seen.add(match.group().lower())
    for match in sorted(chosen, key=lambda m: -m.start()):
        word = match.group()
        slip = known.get(word.lower())
        new = (word[0] + slip[1:]) if slip else _typo(word, lex["keyboard_rows"], rng)
        buf.replace(match.start(), match.end(), new, sub)
        buf.record(sub, match.start(), match.start() + len(new), word)
    return bool(chosen)


def vague_expression(
    buf: Buffer, lex: Mapping[str, Any], rng: random.Random, strength: int
) -> bool:
    """Exact amounts made vague: '3 days' -> 'a few days', '38.5°C' -> 'a bit hot', '三天'."""
    sub = "contextual.vague_expression"
    flags = 0 if buf.language == "zh" else re.IGNORECASE
    found: list[tuple[int, int, str, list[str]]] = []
    for entry in lex["vague_numbers"]:
        for m in re.finditer(entry["pattern"], buf.text, flags):
            if buf.is_free(m.start(), m.end()):
                found.append((m.start(), m.end(), m.group(), entry["replace"]))
    found.sort()
    spans: list[tuple[int, int, str, list[str]]] = []
    for item in found:  # drop overlapping matches ("3 days" inside a longer phrase)
        if not spans or item[0] >= spans[-1][1]:
            spans.append(item)
    limit = {1: 1, 2: 2, 3: 4}[strength]
    chosen = sorted(rng.sample(spans, min(limit, len(spans))), reverse=True)
    for start, end, original, options in chosen:
        new = str(rng.choice(options))
        buf.replace(start, end, new, sub)
        buf.record(sub, start, start + len(new), original)
    if chosen:
        return True
    hedges = lex["vague_hedges"]
    if buf.language == "zh":
        hedges = {k: v for k, v in hedges.items() if "有点" + k not in buf.text}
    return replace_terms(buf, hedges, sub, rng, limit) > 0
