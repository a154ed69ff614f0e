"""A literal-prefiltered regex matcher shared by the red-flag and emotion detectors.

Why a module of its own: `perturbation.redflags` and `perturbation.emotion` both run many
small lexicon regexes over one message and both need the same speed tricks and the same
"a hit that starts inside a negation scope does not count" rule (`Document.starts_negated`;
the scopes themselves come from `perturbation.negation`). Every regex is compiled
once (first use) with prefilters read off its source (`Branch`): the literals a match
starts with ("i'?m" -> "i'm", "im"), or a leading character class, and a literal every
match contains. Per message (`TextIndex`, kept on the Document), the words or characters
present rule out most keys with set look-ups, each remaining key is searched for once, and
a regex only runs where one of its keys occurs, so a 2,000-character message costs a few
hundred short `match` calls instead of a whole-text scan per pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from perturbation.document import Document
from perturbation.lexicon import LexiconError

# A clause-internal gap (no comma either) with no negation word in it: "chest has been
# really tight" may join its two ends, "chest doesn't hurt" may not.
_EN_GAP = r"(?:(?!n't|n’t|\bnot?\b|\bnever\b|\bwithout\b)[^.,!?;\n]){0,40}?"
_ZH_GAP = r"[^没不无未，,。.！!？?；;\n]{0,6}?"  # one class, not a look-ahead per character
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LETTERS = re.compile(r"[a-z]+")
_PREFIX = 4  # letters of each word kept for the prefilter

Hit = tuple[int, int]


class TextIndex:
    """What the matchers look up in one message, built once (`Document.cue_index`): the
    lower-cased text, the first few letters of every English word and the set of
    characters (for the head prefilters), and where each literal key occurs."""

    def __init__(self, doc: Document) -> None:
        self.text = doc.text
        self.lower = doc.lower
        self.has_cjk = _CJK.search(doc.text) is not None
        self._found: dict[tuple[bool, str, bool], list[int]] = {}
        self._class_found: dict[tuple[bool, re.Pattern[str]], list[int]] = {}

    @cached_property
    def words(self) -> frozenset[str]:
        """English heads present: every word (a run of letters), its first _PREFIX letters
        and its first letter."""
        words = set(_LETTERS.findall(self.lower))
        words.update([word[:_PREFIX] for word in words] + [word[0] for word in words])
        return frozenset(words)

    @cached_property
    def chars(self) -> frozenset[str]:
        """Chinese heads present: every character."""
        return frozenset(self.text)

    def occurrences(self, key: str, english: bool, word_start: bool) -> list[int]:
        """Where `key` occurs (only at word starts if `word_start`), cached: many
        branches, in both detectors, share keys, and each search walks the whole message."""
        found = self._found.get((english, key, word_start))
        if found is not None:
            return found
        target = self.lower if english else self.text
        if word_start:
            found = [at for at in self.occurrences(key, english, False) if _word_start(target, at)]
        else:
            found = _find_all(target, key)
        self._found[(english, key, word_start)] = found
        return found

    def class_occurrences(self, start: re.Pattern[str], english: bool) -> list[int]:
        """Where a character of the class `start` occurs (one C-level pass), cached."""
        found = self._class_found.get((english, start))
        if found is None:
            target = self.lower if english else self.text
            found = [match.start() for match in start.finditer(target)]
            self._class_found[(english, start)] = found
        return found


def _find_all(text: str, key: str) -> list[int]:
    found = []
    at = text.find(key)
    while at >= 0:
        found.append(at)
        at = text.find(key, at + 1)
    return found


def _word_start(text: str, at: int) -> bool:
    """Whether `\\b` holds before the word character at `at` (`\\w` is `isalnum` or '_')."""
    if at == 0:
        return True
    before = text[at - 1]
    return not before.isalnum() and before != "_"


@dataclass(frozen=True, eq=False)  # identity hash: cheap de-duplication
class Branch:
    """One compiled pattern plus cheap tests that every match needs, read off its source:
    `keys`, literals one of which a match must start with unless it starts with a
    character of one of the `classes` ("\\d", "[一二三]") (`keys` is None when nothing can
    be read off); per key, its head (`_heads`), which the message must contain for the key
    to be worth looking for; `word_start` when a match can only start at a word start. Set
    look-ups skip most keys, and the regex is tried only where a key occurs, instead of
    the regex engine walking a 2,000-character message per pattern."""

    keys: tuple[str, ...] | None
    classes: tuple[re.Pattern[str], ...]
    heads: tuple[str | None, ...]
    english: bool
    regex: re.Pattern[str]
    word_start: bool
    required: str  # a literal every match contains ("" when none can be read off)


# A literal key, a branch whose matches may start with it, and what the message must
# contain for the key to occur in it: words or first letters of words (English, `_needs`),
# characters (Chinese).
Entry = tuple[str, Branch, frozenset[str]]


class BranchSet:
    """The branches of one lexicon list, indexed by the heads of their keys so that a
    message only visits the keys whose heads it contains (one C-level set intersection per
    list)."""

    def __init__(self, branches: tuple[Branch, ...], english: bool) -> None:
        self.english = english
        self.branches = branches
        self.unkeyed = tuple(b for b in branches if b.keys is None)
        self.classed = tuple(b for b in branches if b.classes)
        unheaded: list[Entry] = []
        by_head: dict[str, list[Entry]] = {}
        for branch in branches:
            if branch.classes:
                continue
            for key, head in zip(branch.keys or (), branch.heads, strict=True):
                entry = (key, branch, _needs(key, branch.word_start) if english else frozenset(key))
                if head is None:
                    unheaded.append(entry)
                else:
                    by_head.setdefault(head, []).append(entry)
        self.unheaded = tuple(unheaded)
        self.by_head = by_head
        self.heads = frozenset(by_head)
        self.size = len(branches)

    def matches(self, index: TextIndex) -> Iterator[tuple[Branch, re.Match[str]]]:
        """Every match of every branch. A match can only start where a key of its branch
        occurs, so the regex is tried at those offsets only (`match` at a position still
        sees the text before it, for `\\b` and look-behinds). A branch may report the same
        match once per key found there, and matches at two keys may overlap; a branch that
        starts with a character class reports what a scan of the whole text would."""
        target = index.lower if self.english else index.text
        for branch in self.unkeyed:
            if branch.required in target:
                for found in branch.regex.finditer(target):
                    yield branch, found
        for branch in self.classed:
            if branch.required in target:
                for found in _scan_from(branch, index, target):
                    yield branch, found
        pool = index.words if self.english else index.chars
        entries = list(self.unheaded)
        for head in self.heads & pool:
            entries.extend(self.by_head[head])
        for key, branch, needs in entries:
            if not needs <= pool:
                continue
            match = branch.regex.match
            for at in index.occurrences(key, self.english, branch.word_start):
                matched = match(target, at)
                if matched is not None:
                    yield branch, matched


def _scan_from(branch: Branch, index: TextIndex, target: str) -> Iterator[re.Match[str]]:
    """What `finditer` would report, trying only the offsets where a match may start: in
    order, never inside the previous match (a class such as "\\d+" also occurs there)."""
    english = branch.english
    starts = {at for start in branch.classes for at in index.class_occurrences(start, english)}
    for key in branch.keys or ():
        starts.update(index.occurrences(key, english, branch.word_start))
    resume = 0
    for at in sorted(starts):
        if at < resume:
            continue
        found = branch.regex.match(target, at)
        if found is not None:
            resume = max(found.end(), at + 1)
            yield found


def _heads(pattern: str, keys: tuple[str, ...], english: bool) -> tuple[str | None, ...]:
    """Per key, what `TextIndex.words` (English) or `TextIndex.chars` (Chinese) must hold
    for the key to occur where its pattern can match. Chinese: the key's first character.
    English, when the pattern starts at a word boundary, so that the key starts a word: the
    key's first _PREFIX letters when it has that many, else its whole leading word when a
    non-letter follows it in the key ("i'm" -> "i"), else its first letter ("so" may start
    any longer word). None when nothing says which."""
    if not english:
        return tuple(key[0] for key in keys)
    at_word = _strip_lookbehinds(pattern).startswith("\\b")
    return tuple(_english_head(key) if at_word else None for key in keys)


def _needs(key: str, word_start: bool) -> frozenset[str]:
    """What `TextIndex.words` must hold for an English key to occur ("had the baby" needs
    "had", "the" and "baby"): every run of letters that is a whole word within the key,
    and the first _PREFIX letters of a run the text may carry on (the last one, when it is
    that long). The first run starts a word only when the key does."""
    needs = set()
    for run in _LETTERS.finditer(key):
        starts_word = run.start() > 0 or word_start
        if starts_word and run.end() < len(key):
            needs.add(run.group())
        elif starts_word and len(run.group()) >= _PREFIX:
            needs.add(run.group()[:_PREFIX])
    return frozenset(needs)


def _english_head(key: str) -> str | None:
    match = _LETTERS.match(key)
    if match is None:
        return None
    run = match.group()
    if len(run) >= _PREFIX or match.end() < len(key):
        return run[:_PREFIX]
    return run[0]  # a short key ("so") may start any longer word: only its letter is known


def _starts_at_word(pattern: str, keys: tuple[str, ...]) -> bool:
    """Whether every match starts at a word start: `\\b` right before keys that all begin
    with a word character."""
    begins = _strip_lookbehinds(pattern).startswith("\\b")
    return begins and all(key[0].isalnum() or key[0] == "_" for key in keys)


def _expand(pattern: str) -> str:
    return pattern.replace("{gap}", _EN_GAP).replace("{zgap}", _ZH_GAP)


_META = set("\\.^$*+?{}[]|()")
_AT_LEAST_ONE = re.compile(r"\{[1-9]")
_LITERAL_GROUP = re.compile(r"\(\?:([^\\.^$*+?{}\[\]()]+)\)")  # "(?:a|bc)": literal choices
# A leading character class: digits, or a bracketed class that is not negated.
_CLASS = re.compile(r"\\d|\[(?!\^)(?:\\.|[^\]\\])+\]")
_ANY_CLASS = re.compile(r"\[(?:\\.|[^\]\\])*\]")


def _optional_next(pattern: str, index: int) -> bool:
    """Whether a quantifier that allows zero repeats follows position `index` (the
    `{gap}` macros are not quantifiers)."""
    rest = pattern[index:]
    if rest.startswith(("{gap}", "{zgap}")) or _AT_LEAST_ONE.match(rest):
        return False
    return rest[:1] in ("?", "*", "{")


_MAX_RUNS = 8
_SELECTIVE = 2  # characters after which a key is rare enough: no more choices multiply it


def _literal_runs(alternative: str) -> list[str]:
    """The literal text every match of `alternative` starts with, one string per choice of
    its optional characters and literal groups ("i'?m" -> ["i'm", "im"], "没(?:了)?意识" ->
    ["没了意识", "没意识"], not just "i" or "没": a one-character key occurs everywhere and
    would send the regex to each of those places). The runs stop growing where a choice
    would make more than _MAX_RUNS of them or once they are _SELECTIVE characters long (each
    key costs a search of the whole message). Nothing optional at the very start:
    its variants would start inside one another's matches, which a scan of the whole text
    never reports ("(?:wee )?temperature" reports "wee temperature", not also
    "temperature")."""
    runs = [""]
    i = 0
    while i < len(alternative):
        group = _LITERAL_GROUP.match(alternative, i)
        if group is not None:
            choices, end = group.group(1).split("|"), group.end()
        elif alternative[i] not in _META:
            choices, end = [alternative[i]], i + 1
        else:
            break
        optional = alternative[end : end + 1] == "?"
        if optional and i > 0:
            choices, end = [*choices, ""], end + 1
        elif optional or _optional_next(alternative, end):
            break
        if len(choices) > 1 and (
            len(runs) * len(choices) > _MAX_RUNS or min(map(len, runs)) >= _SELECTIVE
        ):
            break
        runs = [run + choice for choice in choices for run in runs]
        i = end
    return runs


_LOOKBEHIND = re.compile(r"^\(\?<[!=][^()]*\)")


def _strip_lookbehinds(pattern: str) -> str:
    """`pattern` without its leading look-behinds: they are zero-width, so a match still
    starts with what follows them."""
    while match := _LOOKBEHIND.match(pattern):
        pattern = pattern[match.end() :]
    return pattern


Starts = tuple[tuple[str, ...], tuple[str, ...]]  # literal keys, character classes


def _starts(pattern: str) -> Starts | None:
    """How every match of `pattern` starts: literals ("\\bchest..." -> "chest",
    "\\b(?:pain|ache)x" -> "painx", "achex") or, in a leading group, a character class
    ("\\d{1,2}", "(?:\\d+|[一二]+)天"), or None when the pattern may start otherwise.
    Conservative: any construct it does not understand gives None, which only costs speed."""
    body = _strip_lookbehinds(pattern).removeprefix("\\b")
    runs = _literal_runs(body)
    if all(runs):
        return tuple(dict.fromkeys(runs)), ()
    if body.startswith("(?:"):
        close = body.find(")")
        inner = body[3:close]
        if close < 0 or _optional_next(body, close + 1) or not _plain_alternation(inner):
            return None
        alternatives = inner.split("|")
    else:
        alternatives = [body]
    keys: list[str] = []
    classes: list[str] = []
    for alternative in alternatives:
        leading = _CLASS.match(alternative)
        if leading is not None and not _optional_next(alternative, leading.end()):
            classes.append(leading.group())
            continue
        runs = _literal_runs(alternative)
        if leading is not None or not all(runs):
            return None
        keys.extend(runs)
    return tuple(dict.fromkeys(keys)), tuple(dict.fromkeys(classes))


def _plain_alternation(inner: str) -> bool:
    """Whether `inner` (a group's body) is alternatives without groups of their own and
    without '|' or ')' inside its character classes, so splitting at '|' is sound."""
    if any(sep in cls for cls in _ANY_CLASS.findall(inner) for sep in "|()"):
        return False
    rest = _ANY_CLASS.sub("", inner)
    return not any(char in rest for char in "()[]")


_TOKEN = re.compile(
    r"(?P<macro>\{z?gap\})|(?P<quantifier>[?*+]|\{\d*,?\d*\})\??|(?P<escape>\\.)"
    r"|(?P<cls>\[(?:\\.|[^\]\\])*\])|(?P<open>\((?:\?[:!=]|\?<[!=])?)|(?P<close>\))"
    r"|(?P<bar>\|)|(?P<char>.)",
    re.DOTALL,
)
_REPEATED = re.compile(r"\+|\{[1-9]")  # a quantifier after which the literal is still there


def _required(pattern: str) -> str:
    """The longest literal that every match of `pattern` contains, read off the top level
    of the pattern ("(?:\\d+|[一二]+)天大" -> "天大"), or "" (which every text contains). A
    pattern that starts with a character class, or has no literal start at all, is tried
    at many places or walks the whole text; this one substring test skips most messages."""
    tokens = list(_TOKEN.finditer(pattern))
    best = run = ""
    depth = 0
    for i, token in enumerate(tokens):
        kind, text = token.lastgroup, token.group()
        if kind == "open" and not depth:
            best, run = max(best, run, key=len), ""
        depth += (kind == "open") - (kind == "close")
        if depth or kind == "close":
            continue
        if kind == "bar":
            return ""
        literal = _literal_token(kind, text)
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        quantifier = after.group() if after is not None and after.lastgroup == "quantifier" else ""
        if literal and (not quantifier or _REPEATED.match(quantifier)):
            run += literal
            if not quantifier:
                continue
        if kind != "quantifier" or run:
            best, run = max(best, run, key=len), ""
    return max(best, run, key=len)


def _literal_token(kind: str | None, text: str) -> str:
    if kind == "char" and text not in _META:
        return text
    if kind == "escape" and not text[1].isalnum():
        return text[1]
    return ""


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
        starts = _starts(raw)
        keys, classes = starts if starts is not None else (None, ())
        heads = _heads(raw, keys, english) if keys is not None else ()
        word_start = keys is not None and _starts_at_word(raw, keys)
        compiled = tuple(re.compile(start) for start in classes)
        required = _required(raw)
        branches.append(Branch(keys, compiled, heads, english, regex, word_start, required))
    return BranchSet(tuple(branches), english)


def scan(sets: Iterable[BranchSet], doc: Document) -> list[Hit]:
    """Sorted distinct spans of the sets' matches that do not start inside a negation
    scope."""
    index = doc.cue_index
    hits: set[Hit] = set()
    for branch_set in sets:
        for _, match in branch_set.matches(index):
            start, end = match.span()
            if end > start and not doc.starts_negated(start):
                hits.add((start, end))
    return sorted(hits)


def found_any(sets: Iterable[BranchSet], doc: Document) -> bool:
    """Whether the sets match anywhere outside a negation scope (stops at the first such
    match: cheaper than `scan` when only a yes/no is needed)."""
    index = doc.cue_index
    for branch_set in sets:
        for _, match in branch_set.matches(index):
            if match.end() > match.start() and not doc.starts_negated(match.start()):
                return True
    return False
