"""A literal-prefiltered regex matcher shared by the red-flag and emotion detectors.

Why a module of its own: `perturbation.redflags` and `perturbation.emotion` both run many
small lexicon regexes over one message and both need the same speed tricks and the same
"a hit that starts inside a negation scope does not count" rule. Every regex is compiled
once (first use) with literal prefilters read off its source (`Branch`), so on a
2,000-character message only the few patterns whose words are actually present run.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from perturbation.document import Document
from perturbation.lexicon import LexiconError

# A clause-internal gap (no comma either) with no negation word in it: "chest has been
# really tight" may join its two ends, "chest doesn't hurt" may not.
_EN_GAP = r"(?:(?!n't|n’t|\bnot?\b|\bnever\b|\bwithout\b)[^.,!?;\n]){0,40}?"
_ZH_GAP = r"(?:(?![没不无未])[^，,。.！!？?；;\n]){0,6}?"
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LETTERS = re.compile(r"[a-z]+")
_PREFIX = 4  # letters of each word kept for the prefilter
_ZH_CLAUSE_END = re.compile(r"[，,。；;！!？?\n]|但|可是|不过|却")

Hit = tuple[int, int]


# Scopes opened by a negation that negates a wish or an opinion, not a symptom ("I do not
# want to bother you, chest pain..."). `perturbation.negation` now treats "don't want" and
# kin as pseudo-negations, but not "do not want", "never want" or "don't like": those still
# open a scope there, so they are still ignored here.
_WISH_SCOPE = re.compile(
    r"\s*(?:want|wanna|wish|mean|think|know|like|care|mind|need)\b(?!\s+to (?:die|kill|end|hurt))"
)


def _enumeration_end(text: str, end: int) -> int:
    """Chinese scopes no longer stop at "、" in `perturbation.negation`, but they still stop
    after 12 characters; when that cut falls right before a "、" the list goes on
    ("否认胸闷胸痛心悸气短头晕头痛、大汗淋漓..."), and every item of a denied list stays
    denied: carry the scope on to the end of the clause."""
    if text[end : end + 1] != "、":
        return end
    stop = _ZH_CLAUSE_END.search(text, end)
    return stop.start() if stop else len(text)


class Negations:
    """The negation scopes of one document, indexed for many look-ups per message.

    A hit counts as denied when it STARTS inside a scope: stricter than
    `Document.is_negated` (containment) because English scopes stop at "my" ("no pain in my
    chest"). Two adjustments to the shared scopes are still needed after the fixes in
    `perturbation.negation` (removing them changes red flags: checked): wish scopes not
    covered by its pseudo-negations are ignored (`_WISH_SCOPE`), and a Chinese scope cut
    by the length limit right before "、" runs on through the list (`_enumeration_end`).
    """

    def __init__(self, doc: Document) -> None:
        starts: list[int] = []
        furthest: list[int] = []
        best = -1
        scopes = sorted(
            (s, _enumeration_end(doc.text, e))
            for s, e in doc.negated
            if not _WISH_SCOPE.match(doc.lower, s)
        )
        for s, e in scopes:
            best = max(best, e)
            starts.append(s)
            furthest.append(best)
        self.starts = starts
        self.furthest = furthest  # furthest end among the scopes starting up to here

    def covers(self, start: int) -> bool:
        """Whether some scope has s <= start < e: O(log n) via the running maximum end."""
        i = bisect_right(self.starts, start)
        return i > 0 and start < self.furthest[i - 1]


class TextIndex:
    """What the matchers look up, built once per message: the lower-cased text, the first
    few letters of every English word and the set of characters (for the prefilters), and
    the negation scopes."""

    def __init__(self, doc: Document) -> None:
        self.negations = Negations(doc)
        self.text = doc.text
        # Lower-casing keeps offsets except for a few exotic characters ("İ"); then fall back
        # to the original text, where only lower-case spellings match.
        self.lower = doc.lower if len(doc.lower) == len(doc.text) else doc.text
        words = set(_LETTERS.findall(doc.lower))
        self.prefixes = {word[:n] for word in words for n in range(1, _PREFIX + 1)}
        self.chars = set(doc.text)
        self.has_cjk = _CJK.search(doc.text) is not None


_LAST_INDEX: list[tuple[Document, TextIndex]] = []


def text_index(doc: Document) -> TextIndex:
    """The TextIndex of `doc`; the last one is kept (by identity) for the next detector."""
    if _LAST_INDEX and _LAST_INDEX[0][0] is doc:
        return _LAST_INDEX[0][1]
    index = TextIndex(doc)
    _LAST_INDEX[:] = [(doc, index)]
    return index


@dataclass(frozen=True, eq=False)  # identity hash: cheap de-duplication
class Branch:
    """One compiled pattern plus cheap tests that every match needs, read off its source:
    `keys`, literals one of which a match must start with, and `heads`, the first letters
    of a word (English) or the first character (Chinese) a match must start with (None
    when they cannot be read off). Set look-ups and substring tests skip most patterns
    before the regex engine walks a 2,000-character message."""

    keys: tuple[str, ...] | None
    heads: tuple[str, ...] | None
    english: bool
    regex: re.Pattern[str]

    def may_match(self, index: TextIndex) -> bool:
        """The substring test (the head test is done by BranchSet for many at once)."""
        target = index.lower if self.english else index.text
        return self.keys is None or any(key in target for key in self.keys)

    def finditer(self, index: TextIndex) -> Iterator[re.Match[str]]:
        """Every match. With literal keys, a match can only start where a key occurs, so we
        try the regex at those offsets only (`match` at a position still sees the text
        before it, for `\\b` and look-behinds) instead of walking the whole message."""
        target = index.lower if self.english else index.text
        if self.keys is None:
            yield from self.regex.finditer(target)
            return
        starts: set[int] = set()
        for key in self.keys:
            at = target.find(key)
            while at >= 0:
                starts.add(at)
                at = target.find(key, at + 1)
        for at in sorted(starts):
            match = self.regex.match(target, at)
            if match is not None:
                yield match


class BranchSet:
    """The branches of one lexicon list, indexed by head so that a message only visits the
    branches whose heads it contains (one C-level set intersection per list)."""

    def __init__(self, branches: tuple[Branch, ...], english: bool) -> None:
        self.english = english
        self.always = tuple(b for b in branches if b.heads is None)
        by_head: dict[str, list[Branch]] = {}
        for branch in branches:
            for head in branch.heads or ():
                by_head.setdefault(head, []).append(branch)
        self.by_head = by_head
        self.heads = frozenset(by_head)
        self.size = len(branches)

    def candidates(self, index: TextIndex) -> list[Branch]:
        pool = index.prefixes if self.english else index.chars
        found = list(self.always)
        for head in self.heads & pool:
            found.extend(self.by_head[head])
        if len(found) > 1:
            found = list(dict.fromkeys(found))  # a branch may have several heads present
        return [b for b in found if b.may_match(index)]


def _heads(pattern: str, keys: tuple[str, ...] | None, english: bool) -> tuple[str, ...] | None:
    """English: the leading letters (at most _PREFIX) of each key when the pattern starts at
    a word boundary; Chinese: the first character of each key."""
    if keys is None:
        return None
    if not english:
        return tuple(key[0] for key in keys)
    if not _strip_lookbehinds(pattern).startswith("\\b"):
        return None
    heads = []
    for key in keys:
        match = _LETTERS.match(key)
        if match is None:
            return None
        heads.append(match.group()[:_PREFIX])
    return tuple(heads)


def _expand(pattern: str) -> str:
    return pattern.replace("{gap}", _EN_GAP).replace("{zgap}", _ZH_GAP)


_META = set("\\.^$*+?{}[]|()")


def _optional_next(pattern: str, index: int) -> bool:
    """Whether a quantifier that allows zero repeats follows position `index` (the
    `{gap}` macros are not quantifiers)."""
    rest = pattern[index:]
    if rest.startswith(("{gap}", "{zgap}")):
        return False
    return rest[:1] in ("?", "*", "{")


def _literal_run(alternative: str) -> str:
    run = ""
    for char in alternative:
        if char in _META:
            break
        run += char
    if _optional_next(alternative, len(run)):
        run = run[:-1]  # the last literal is optional
    return run


_LOOKBEHIND = re.compile(r"^\(\?<[!=][^()]*\)")


def _strip_lookbehinds(pattern: str) -> str:
    """`pattern` without its leading look-behinds: they are zero-width, so a match still
    starts with what follows them."""
    while match := _LOOKBEHIND.match(pattern):
        pattern = pattern[match.end() :]
    return pattern


def _literal_keys(pattern: str) -> tuple[str, ...] | None:
    """Literal starts of `pattern` ("\\bchest..." -> ("chest",), "\\b(?:pain|ache)x" ->
    ("pain", "ache")), or None when the pattern may start otherwise. Conservative: any
    construct it does not understand gives None, which only costs speed."""
    body = _strip_lookbehinds(pattern).removeprefix("\\b")
    if body.startswith("(?:"):
        close = body.find(")")
        inner = body[3:close]
        if close < 0 or "(" in inner or "[" in inner or _optional_next(body, close + 1):
            return None
        runs = [_literal_run(alt) for alt in inner.split("|")]
        return tuple(runs) if all(runs) else None
    run = _literal_run(body)
    return (run,) if run else None


def compile_branches(patterns: Any, where: str, english: bool) -> BranchSet:
    """Each lexicon regex compiled on its own with its literal prefilters. English
    patterns are written in lower case and run on the lower-cased text (much faster than
    IGNORECASE)."""
    branches = []
    for raw in patterns or ():
        if not isinstance(raw, str):
            raise LexiconError(f"{where}: pattern {raw!r} is not a string")
        try:
            regex = re.compile(_expand(raw))
        except re.error as exc:
            raise LexiconError(f"{where}: bad regex {raw!r}: {exc}") from exc
        keys = _literal_keys(raw)
        branches.append(Branch(keys, _heads(raw, keys, english), english, regex))
    return BranchSet(tuple(branches), english)


def scan(sets: Iterable[BranchSet], index: TextIndex) -> list[Hit]:
    """Sorted spans of the branches' matches that do not start inside a negation scope."""
    hits: list[Hit] = []
    for branch_set in sets:
        for branch in branch_set.candidates(index):
            for match in branch.finditer(index):
                start, end = match.span()
                if end > start and not index.negations.covers(start):
                    hits.append((start, end))
    hits.sort()
    return hits
