"""The bilingual symptom lexicon, compiled once, and symptom mentions found in a Document.

Why a module of its own: chief-complaint extraction, the structural detectors (does a
fragment name a symptom? is a third person the patient?) and the contextual ones (does a
sentence have a clinical hook?) all need the same answer to "which symptoms are written
here, where". The data lives in `lexicons/symptoms.yaml`; every ICD-10-CM code in it is
checked against `simple_icd_10_cm` when the tables are built, so a typo in a code is a load
error, never a wrong code in an API response.

Matching is bucketed by first character: for English we try only the forms that start with
the letter at each word start, for Chinese only the forms that start with each Han
character, which keeps a 2,000-character message well inside the latency budget.
"""

from __future__ import annotations

import re
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from perturbation.document import Document, per_document
from perturbation.lexicon import LexiconError, load


@dataclass(frozen=True)
class SymptomEntry:
    term: str
    icd10: str | None
    site: str | None


class Mention(NamedTuple):
    """A symptom as written: standard term, its code, the site it implies, where.

    A NamedTuple rather than a frozen dataclass: a long message has hundreds of these, and
    frozen dataclasses are several times slower to build."""

    term: str
    icd10: str | None
    site: str | None
    start: int
    end: int
    text: str


class SiteMention(NamedTuple):
    site: str
    start: int
    end: int


def form_key(text: str) -> str:
    """How a matched phrase is looked up: lower case, single spaces, no apostrophes."""
    return " ".join(text.lower().replace("'", "").replace("’", "").split())


def alternation(words: Iterable[Any], english: bool) -> str:
    """Lexicon forms as one regex, factored into a trie.

    Python's `re` tries every branch of a flat alternation at every position; a trie
    lets it reject a position on the first character, which is what keeps the detectors
    within the latency budget. Deeper branches come before a form's end, so the longest
    form wins. English forms: flexible spaces, either apostrophe (or none), a trailing
    `*` for any word ending, and no match inside a longer word. Match against
    `Document.lower`: forms are lower-cased here and no pattern is case-blind (IGNORECASE
    makes these patterns several times slower).
    """
    trie: dict[str, Any] = {}
    for word in words:
        form = str(word).lower().strip()
        wild = english and form.endswith("*")
        form = form.rstrip("*")
        if not form:
            continue
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node["*" if wild else ""] = {}
    return _trie_pattern(trie, english, last="")


def _trie_pattern(node: dict[str, Any], english: bool, last: str) -> str:
    branches: list[str] = []
    for char in sorted(k for k in node if k not in ("", "*")):
        if english and char == " ":
            piece = r"\s+"
        elif english and char in "'’":
            piece = "['’]?"
        else:
            piece = re.escape(char)
        branches.append(piece + _trie_pattern(node[char], english, char))
    if "*" in node:
        branches.append(r"\w*")
    elif "" in node:
        branches.append(r"(?!\w)" if english and (last.isalnum() or last == "_") else "")
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def word_regex(words: Iterable[Any], english: bool) -> re.Pattern[str]:
    """Forms as one compiled pattern (English: starting at a word start). Use on `.lower`."""
    if english:
        return re.compile(rf"(?<![\w'’])(?:{alternation(words, True)})")
    return re.compile(alternation(words, False))


class _FormIndex:
    """Which lexicon key a matched phrase belongs to (exact forms, then `*` stems)."""

    def __init__(self, forms: Iterable[tuple[str, str]], english: bool) -> None:
        items = list(forms)
        self.pattern = word_regex([form for form, _ in items], english)
        self.exact: dict[str, str] = {}
        self.stems: dict[str, str] = {}
        for form, key in items:
            if english and form.endswith("*"):
                self.stems.setdefault(form_key(form.rstrip("*")), key)
            else:
                self.exact.setdefault(form_key(form) if english else form.lower(), key)

    def key(self, matched: str, english: bool) -> str | None:
        text = form_key(matched) if english else matched
        if text in self.exact:
            return self.exact[text]
        for size in range(len(text), 0, -1):
            if text[:size] in self.stems:
                return self.stems[text[:size]]
        return None

    def scan(self, lower: str, english: bool) -> list[tuple[int, int, str]]:
        out = []
        for match in self.pattern.finditer(lower):
            key = self.key(match.group(), english)
            if key is not None:
                out.append((match.start(), match.end(), key))
        return out


@dataclass(frozen=True)
class Tables:
    entries: dict[str, SymptomEntry]
    symptoms: dict[str, _FormIndex]
    sites: dict[str, _FormIndex]
    site_pain: dict[str, str]
    composed: dict[str, tuple[re.Pattern[str], ...]]
    site_names: dict[str, dict[str, str]]
    raw: dict[str, Any]


def icd10cm() -> Any:
    """`simple_icd_10_cm`, imported on first use: it parses the whole code set (slow) and,
    in 1.5.0, uses a deprecated importlib.resources call that our test suite makes an
    error; that warning is the library's, so it is silenced here and only here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    return simple_icd_10_cm


def _validate_code(term: str, code: Any) -> str | None:
    if code is None:
        return None
    if not isinstance(code, str) or not icd10cm().is_valid_item(code):
        raise LexiconError(f"symptoms.yaml: {term!r} has an invalid ICD-10-CM code {code!r}")
    return code


@cache
def tables() -> Tables:
    """Parse, validate and compile the lexicon once per process."""
    raw = load("symptoms")
    entries: dict[str, SymptomEntry] = {}
    forms: dict[str, list[tuple[str, str]]] = {"en": [], "zh": []}
    for item in raw["symptoms"]:
        term = item["term"]
        if term in entries:
            raise LexiconError(f"symptoms.yaml: duplicate term {term!r}")
        entries[term] = SymptomEntry(
            term, _validate_code(term, item.get("icd10")), item.get("site")
        )
        for lang in ("en", "zh"):
            forms[lang].extend((str(form), term) for form in item.get(lang) or ())
    site_pain: dict[str, str] = {}
    site_forms: dict[str, list[tuple[str, str]]] = {"en": [], "zh": []}
    site_names: dict[str, dict[str, str]] = {"en": {}, "zh": {}}
    for site in raw["body_sites"]:
        if site.get("pain"):
            if site["pain"] not in entries:
                raise LexiconError(f"symptoms.yaml: site pain term {site['pain']!r} unknown")
            site_pain[site["site"]] = site["pain"]
        for lang in ("en", "zh"):
            for form in site.get(lang) or ():
                site_forms[lang].append((str(form), site["site"]))
                site_names[lang][form_key(str(form))] = site["site"]
    return Tables(
        entries=entries,
        symptoms={lang: _FormIndex(forms[lang], lang == "en") for lang in forms},
        sites={lang: _FormIndex(site_forms[lang], lang == "en") for lang in site_forms},
        site_pain=site_pain,
        composed=_composed_patterns(raw["pain_words"], site_names),
        site_names=site_names,
        raw=raw,
    )


def _composed_patterns(
    pain: dict[str, list[str]], site_names: dict[str, dict[str, str]]
) -> dict[str, tuple[re.Pattern[str], ...]]:
    """'my tummy hurts', 'pain in my left knee', '肚子好疼': a site plus a pain word."""
    en_sites = alternation(site_names["en"], english=True)
    zh_sites = alternation(site_names["zh"], english=False)
    return {
        "en": (
            re.compile(
                rf"(?<![\w'’])(?P<site>{en_sites})\s+(?:{alternation(pain['en_after'], True)})"
            ),
            re.compile(
                rf"(?<![\w'’])(?:{alternation(pain['en_before'], True)})\s+"
                rf"(?:(?P<side>left|right)\s+)?(?P<site>{en_sites})(?!\w)"
            ),
        ),
        # the site comes first so `re` can skip positions on their first character; the
        # side (左/右, "left") in front of it is read back in `find_symptoms`
        "zh": (
            re.compile(
                rf"(?P<site>{zh_sites})部?"
                rf"(?:{alternation(pain['zh_modifiers'], False)})*"
                rf"(?:{alternation(pain['zh_after'], False)})"
            ),
        ),
    }


_SIDE_BEFORE = re.compile(r"(?:(left|right)\s+|([左右])(?:边|侧|面|侧的|边的)?)$")


def _side(doc: Document, match: re.Match[str]) -> tuple[int, str | None]:
    """Where the mention starts and which side it names, if any ('left knee', '右膝盖')."""
    if "side" in match.re.groupindex and match.group("side"):
        return match.start(), "left" if match.group("side") == "left" else "right"
    before = _SIDE_BEFORE.search(doc.lower, max(0, match.start() - 7), match.start())
    if before is None:
        return match.start(), None
    side = before.group(1) or before.group(2)
    return before.start(), "left" if side in ("left", "左") else "right"


@per_document
def find_symptoms(doc: Document) -> tuple[Mention, ...]:
    """Every symptom mention, in text order, overlaps resolved leftmost-longest (kept on
    the document: several detectors ask about the same message in one analysis)."""
    t = tables()
    lang = doc.language
    candidates: list[tuple[int, int, str, str | None]] = []
    for start, end, term in t.symptoms[lang].scan(doc.lower, lang == "en"):
        candidates.append((start, end, term, t.entries[term].site))
    for pattern in t.composed[lang]:
        for match in pattern.finditer(doc.lower):
            site = t.site_names[lang][form_key(match.group("site"))]
            term = t.site_pain.get(site, f"{site} pain")
            start, side = _side(doc, match)
            candidates.append((start, match.end(), term, f"{side} {site}" if side else site))
    candidates.sort(key=lambda c: (c[0], c[0] - c[1]))
    mentions: list[Mention] = []
    last_end = -1
    for start, end, term, implied in candidates:
        if start < last_end:
            continue
        entry = t.entries.get(term)
        code = entry.icd10 if entry else None
        mentions.append(Mention(term, code, implied, start, end, doc.text[start:end]))
        last_end = end
    return tuple(mentions)


@per_document
def find_sites(doc: Document) -> tuple[SiteMention, ...]:
    """Body-site words anywhere (the caller decides which ones describe the complaint)."""
    t = tables()
    return tuple(
        SiteMention(site, start, end)
        for start, end, site in t.sites[doc.language].scan(doc.lower, doc.language == "en")
    )


def has_symptom(doc: Document, start: int, end: int) -> bool:
    """Whether any symptom mention lies within [start, end)."""
    return any(start <= m.start and m.end <= end for m in find_symptoms(doc))


def any_between(starts: list[int], start: int, end: int) -> bool:
    """Whether a sorted list of offsets has one in [start, end) (bisect, not a scan)."""
    i = bisect_left(starts, start)
    return i < len(starts) and starts[i] < end


@per_document
def _sentence_starts(doc: Document) -> list[int]:
    return [s.start for s in doc.sentences]


def sentence_span(doc: Document, pos: int) -> tuple[int, int]:
    """The [start, end) of the sentence holding `pos` (or of the gap after it)."""
    i = bisect_right(_sentence_starts(doc), pos) - 1
    if i >= 0 and pos < doc.sentences[i].end:
        return doc.sentences[i].start, doc.sentences[i].end
    return pos, pos + 1


@per_document
def symptom_starts(doc: Document) -> list[int]:
    """Where each symptom mention starts, in order (shared: do not modify)."""
    return [m.start for m in find_symptoms(doc)]
