"""Drug-name misspellings and street slang from the redmed lexicon, filtered and loaded once.

redmed (Lavertu & Altman, 2019) lists, per DrugBank drug, phonetic misspellings
(`misspellingPhon`), edit-distance-1 misspellings (`edOne`), further noisy candidates
(`edTwo`, `google_*`, `missed`) and Urban Dictionary slang (`ud_slang`). We read the TSV that
ships inside the package (its tagger is not imported: it pulls in heavy dependencies and is
slow) and keep only the entries a patient message can safely be corrected with:

* misspellings from `misspellingPhon` and `edOne` only (the other columns are mostly
  related words, not misspellings);
* one token of letters (a hyphen allowed), at least 5 characters;
* not a common English word, not a clinical word, not a correct drug name itself (redmed's
  `known` column of any drug), and not on the reviewed exclusion list in spelling.yaml;
* close to a name of the drug it is said to misspell (difflib ratio >= 0.75), which drops
  entries such as 'vitamen' listed under riboflavin;
* a spelling claimed by two different drugs is ambiguous and dropped.

`stats()` reports how many entries survive each filter (see the tests and the report).
"""

from __future__ import annotations

import csv
import difflib
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from perturbation.lexicon import load

_TOKEN = re.compile(r"[a-z][a-z-]*[a-z]")
_MIN_CHARS = 5
_MIN_SIMILARITY = 0.75


@dataclass(frozen=True)
class DrugLexicon:
    misspellings: dict[str, str]  # misspelling -> generic drug name
    slang: dict[str, str]  # street slang (lower-case, spaces) -> generic drug name
    known: frozenset[str]  # correct drug names (generic and brand), single tokens
    counts: dict[str, int]


def _tsv_path() -> Path | None:
    try:
        path = resources.files("redmed") / "data" / "redmed_drug_lexicon.tsv"
    except ModuleNotFoundError:  # redmed is a declared dependency; stay usable without it
        return None
    return Path(str(path)) if path.is_file() else None


def _cells(value: str) -> list[str]:
    return [] if value in ("", "-") else [item.strip().lower() for item in value.split(",")]


def _name_tokens(names: list[str]) -> list[str]:
    """Single-word drug names (multi-word entries split), the targets of a misspelling."""
    return sorted({part for name in names for part in re.split(r"[_\s]", name) if len(part) >= 3})


def _similar(candidate: str, names: list[str]) -> bool:
    """Is `candidate` a plausible misspelling of one of `names`? The cheap upper bounds of
    difflib run first: the full ratio is the slow part of loading the lexicon."""
    matcher = difflib.SequenceMatcher(None, b=candidate)
    for name in names:
        matcher.set_seq1(name)
        if (
            matcher.real_quick_ratio() >= _MIN_SIMILARITY
            and matcher.quick_ratio() >= _MIN_SIMILARITY
            and matcher.ratio() >= _MIN_SIMILARITY
        ):
            return True
    return False


def _guard_words() -> frozenset[str]:
    spelling = load("spelling")
    words = set(spelling["common_words"]) | set(spelling["vocabulary"])
    words |= {key.lower() for key in spelling["en"]}
    return frozenset(str(word).lower() for word in words)


@cache
def drug_lexicon() -> DrugLexicon:
    """Read and filter redmed once per process."""
    path = _tsv_path()
    counts: Counter[str] = Counter()
    if path is None:
        return DrugLexicon({}, {}, frozenset(), dict(counts))
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    known: set[str] = set()
    for row in rows:
        for name in [row["drug"].lower(), *_cells(row["known"])]:
            known.update(part for part in re.split(r"[_\s]", name) if len(part) >= _MIN_CHARS)
    guard = _guard_words()
    exclude = {str(word).lower() for word in load("spelling")["redmed_exclude"]}

    claims: dict[str, set[str]] = {}
    for row in rows:
        generic = row["drug"].replace("_", " ").lower()
        names = _name_tokens([row["drug"].lower(), *_cells(row["known"])])
        for candidate in _cells(row["misspellingPhon"]) + _cells(row["edOne"]):
            counts["misspelling_raw"] += 1
            if not _TOKEN.fullmatch(candidate) or len(candidate) < _MIN_CHARS:
                counts["drop_shape"] += 1
            elif candidate in guard or candidate in exclude:
                counts["drop_common_word"] += 1
            elif candidate in known:
                counts["drop_correct_name"] += 1
            elif not _similar(candidate, names):
                counts["drop_dissimilar"] += 1
            else:
                claims.setdefault(candidate, set()).add(generic)
    misspellings = {word: next(iter(drugs)) for word, drugs in claims.items() if len(drugs) == 1}
    counts["drop_ambiguous"] = len(claims) - len(misspellings)
    counts["misspelling_kept"] = len(misspellings)

    slang: dict[str, str] = {}
    for row in rows:
        for raw in _cells(row["ud_slang"]):
            counts["slang_raw"] += 1
            phrase = raw.replace("_", " ")
            if raw in exclude or phrase in guard or not _MIN_CHARS <= len(raw) <= 20:
                counts["slang_dropped"] += 1
            elif not _TOKEN.fullmatch(raw):  # multi-word entries are mostly descriptions
                counts["slang_dropped"] += 1
            else:
                slang[phrase] = row["drug"].replace("_", " ").lower()
    counts["slang_kept"] = len(slang)
    return DrugLexicon(misspellings, slang, frozenset(known), dict(counts))


def stats() -> dict[str, int]:
    """How many redmed entries each filter dropped and how many were kept."""
    return dict(drug_lexicon().counts)
