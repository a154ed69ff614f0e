"""Red flags: wording that means the patient may need urgent or emergency care.

Why rules and not a score: a red flag must fire even when the patient hides it behind
minimising or slang ("it's probably nothing but my chest is tight", "不想活了哈哈", "kms fr"),
and must never fire on a denial ("no chest pain", "不想死"). Both are easiest to guarantee,
review and test as explicit patterns. The patterns are data (`lexicons/red_flags.yaml`):
named groups of bilingual regexes, and per flag a list of rules, each a set of groups that
must co-occur within a window (fever + stiff neck, chest pain + sweating). Hits that start
inside a negation scope never count; `unless` groups cancel the weaker rules on safe
look-alikes ("chest day at the gym"); a group's `except` group drops its hits that lie
inside a look-alike ("son" in "my son is 34" is no child); and symptoms in a clause that is
clearly past history ("had chest pain last year, fine now") do not count.

Speed: the regexes run through the prefiltered matcher of `perturbation.patterns`
(shared with `perturbation.emotion`), and groups are scanned lazily, on first need.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cache, cached_property

from perturbation.analysis import RedFlag, Span, Urgency
from perturbation.document import Document
from perturbation.lexicon import LexiconError, load
from perturbation.patterns import BranchSet, Hit, compile_branches, scan

_URGENCY_RANK: dict[str, int] = {"emergency": 0, "urgent": 1}
_DEFAULT_WINDOW = 300
_CLAUSE_BREAK = re.compile(r"[,.;:!?\n，。；：！？]")


@dataclass(frozen=True)
class Rule:
    urgency: Urgency
    groups: tuple[str, ...]
    window: int
    unless: tuple[str, ...]


@dataclass(frozen=True)
class FlagSpec:
    id: str
    label: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class History:
    """Groups whose hits put a clause in the past, or back in the present, and the groups
    whose hits do not count in a past clause."""

    past: str
    present: str
    events: frozenset[str]


@dataclass(frozen=True)
class Tables:
    en: dict[str, BranchSet]
    zh: dict[str, BranchSet]
    flags: tuple[FlagSpec, ...]
    excepts: dict[str, str]  # group -> the group whose hits cover its look-alikes
    history: History


@cache
def tables() -> Tables:
    """The lexicon compiled once: branches per group and language, and the flag rules."""
    data = load("red_flags")
    en: dict[str, BranchSet] = {}
    zh: dict[str, BranchSet] = {}
    excepts: dict[str, str] = {}
    for name, langs in data["groups"].items():
        en[name] = compile_branches(langs.get("en"), f"red_flags group {name!r} (en)", True)
        zh[name] = compile_branches(langs.get("zh"), f"red_flags group {name!r} (zh)", False)
        if "except" in langs:
            excepts[name] = langs["except"]
    history = data["history"]
    named = {*excepts.values(), history["past"], history["present"], *history["events"]}
    if named - set(en):
        raise LexiconError(f"red_flags names unknown groups {named - set(en)}")
    flags = []
    for entry in data["flags"]:
        rules = []
        for rule in entry["rules"]:
            groups = tuple(rule["all"])
            unless = tuple(rule.get("unless", ()))
            missing = (set(groups) | set(unless)) - set(en)
            if missing:
                raise LexiconError(f"red flag {entry['id']!r} names unknown groups {missing}")
            if rule["urgency"] not in _URGENCY_RANK:
                raise LexiconError(f"red flag {entry['id']!r}: bad urgency {rule['urgency']!r}")
            window = int(rule.get("window", _DEFAULT_WINDOW))
            rules.append(Rule(rule["urgency"], groups, window, unless))
        rules.sort(key=lambda r: _URGENCY_RANK[r.urgency])
        flags.append(FlagSpec(entry["id"], entry["label"], tuple(rules)))
    past = History(history["past"], history["present"], frozenset(history["events"]))
    return Tables(en, zh, tuple(flags), excepts, past)


class _Hits:
    """The hits that count per group for one document (not denied, not a look-alike, not
    past history), computed on first need."""

    def __init__(self, doc: Document, t: Tables) -> None:
        self.t = t
        self.doc = doc
        self.has_cjk = doc.cue_index.has_cjk
        self.cache: dict[str, list[Hit]] = {}

    def __call__(self, group: str) -> list[Hit]:
        found = self.cache.get(group)
        if found is not None:
            return found
        sets = (self.t.en[group], self.t.zh[group]) if self.has_cjk else (self.t.en[group],)
        hits = scan(sets, self.doc)
        if hits and group in self.t.excepts:
            hits = _outside(hits, self(self.t.excepts[group]))
        if hits and group in self.t.history.events and self._past_clauses:
            hits = [hit for hit in hits if self._clause(hit[0]) not in self._past_clauses]
        self.cache[group] = hits
        return hits

    @cached_property
    def _clause_breaks(self) -> list[int]:
        """Where the clauses of the message end, for `_clause` (computed only when a past
        time is named)."""
        return [match.start() for match in _CLAUSE_BREAK.finditer(self.doc.text)]

    def _clause(self, pos: int) -> int:
        return bisect_right(self._clause_breaks, pos)

    @cached_property
    def _past_clauses(self) -> frozenset[int]:
        """Clauses with a past time in them and nothing that brings them to the present."""
        past = {self._clause(start) for start, _ in self(self.t.history.past)}
        if past:
            past -= {self._clause(start) for start, _ in self(self.t.history.present)}
        return frozenset(past)


def _outside(hits: list[Hit], covers: list[Hit]) -> list[Hit]:
    """The hits that lie inside none of `covers`."""
    return [(s, e) for s, e in hits if not any(a <= s and e <= b for a, b in covers)]


def _fit(anchor: Hit, others: list[list[Hit]], window: int) -> Hit | None:
    """The span covering `anchor` and the nearest hit of every other group, if it fits."""
    start, end = anchor
    for hits in others:
        i = bisect_left(hits, anchor)
        nearby = hits[max(0, i - 1) : i + 1]
        best = min(nearby, key=lambda h: max(end, h[1]) - min(start, h[0]))
        start, end = min(start, best[0]), max(end, best[1])
    return (start, end) if end - start <= window else None


def _match_rule(rule: Rule, hits: _Hits) -> Hit | None:
    per_group: list[list[Hit]] = []
    for name in rule.groups:  # lazily: most rules stop at their first absent group
        found = hits(name)
        if not found:
            return None
        per_group.append(found)
    if any(hits(name) for name in rule.unless):
        return None
    best: Hit | None = None
    for anchor in per_group[0]:
        span = _fit(anchor, per_group[1:], rule.window)
        if span is not None and (best is None or span[1] - span[0] < best[1] - best[0]):
            best = span
    return best


def find_red_flags(doc: Document) -> list[RedFlag]:
    """One RedFlag per flag id (its strongest rule's evidence), emergencies first."""
    t = tables()
    hits = _Hits(doc, t)
    flags: list[RedFlag] = []
    for spec in t.flags:
        for rule in spec.rules:
            span = _match_rule(rule, hits)
            if span is not None:
                start, end = span
                evidence = Span(start, end, doc.text[start:end])
                flags.append(RedFlag(spec.id, spec.label, rule.urgency, evidence))
                break
    flags.sort(key=lambda f: (_URGENCY_RANK[f.urgency], f.evidence.start, f.id))
    return flags
