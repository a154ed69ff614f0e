"""Expression correction: the patient's message rewritten with standard clinical wording.

`normalize` decides WHICH corrections are safe; `apply_corrections` is the pure string edit.

Rules, in order:

* a finding whose correction is None leaves its text as written;
* chat filler with no clinical meaning ('lol', 'tbh', 'xswl', see `filler: true` in
  lexicons/slang.yaml) is dropped from the corrected text when `drop_filler` is true (the
  default): it carries nothing a clinician or a model needs, and the original text and the
  finding keep it for anyone who wants it;
* negation is never touched: a correction whose span contains a negation trigger ('no',
  '没', ...: a negated scope starts inside or at the end of the span) or straddles the end
  of a negated scope is skipped, and so is a correction that would itself introduce a
  negation. Replacing the symptom word after 'no' keeps 'no' ('no feaver' -> 'no fever');
* on overlap the highest confidence wins (then the longer span, then the earlier one);
* nothing is ever added beyond the lexicons' corrections of words the patient wrote: a
  finding whose text no longer matches the message is ignored.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from functools import lru_cache

from perturbation.analysis import Finding, IntakeResult, Language
from perturbation.document import Document
from perturbation.negation import negation_scopes

_CLAUSE_END = ".!?。！？;；,，\n"
_COMMAS = ",，、"
_SLANG = "formal.internet_slang"


def _select(text: str, findings: Sequence[Finding]) -> list[Finding]:
    """Non-overlapping findings with a correction, the most confident first on overlap."""
    usable = [
        f
        for f in findings
        if f.correction is not None and f.end > f.start and text[f.start : f.end] == f.text
    ]
    usable.sort(key=lambda f: (-f.confidence, -(f.end - f.start), f.start))
    chosen: list[Finding] = []
    occupied = bytearray(len(text))  # linear in findings, not quadratic
    for finding in usable:
        if occupied.find(1, finding.start, finding.end) == -1:
            occupied[finding.start : finding.end] = b"\x01" * (finding.end - finding.start)
            chosen.append(finding)
    return sorted(chosen, key=lambda f: f.start)


def _deletion_span(text: str, start: int, end: int, low: int, high: int) -> tuple[int, int]:
    """Widen a deleted span over the comma and space it leaves behind, within [low, high)."""
    at_clause_start = not text[:start].rstrip() or text[:start].rstrip()[-1] in _CLAUSE_END
    if at_clause_start and end < high and text[end] in _COMMAS:
        end += 1
    if (start == low or text[start - 1].isspace()) and end < high and text[end].isspace():
        while end < high and text[end].isspace():
            end += 1
    elif end == high or text[end] in _CLAUSE_END:
        while start > low and text[start - 1] == " ":
            start -= 1
        if start > low and text[start - 1] in _COMMAS:
            start -= 1
    return start, end


def _match_case(original: str, correction: str) -> str:
    if original[:1].isupper() and correction[:1].islower():
        return correction[:1].upper() + correction[1:]
    return correction


def apply_corrections(text: str, findings: Sequence[Finding]) -> str:
    """`text` with the corrections of non-overlapping findings applied (pure, no safety
    checks: `normalize` filters first). A correction of None keeps the text, "" deletes it.

    >>> F = Finding
    >>> apply_corrections("no feaver, just puking", [
    ...     F("formal.spelling_error", 3, 9, "feaver", 0.9, "fever"),
    ...     F("formal.internet_slang", 16, 22, "puking", 0.9, "vomiting")])
    'no fever, just vomiting'
    >>> apply_corrections("Feaver since monday", [
    ...     F("formal.spelling_error", 0, 6, "Feaver", 0.9, "fever")])
    'Fever since monday'
    >>> apply_corrections("tbh my tummy hurts lol", [
    ...     F("formal.internet_slang", 0, 3, "tbh", 0.9, ""),
    ...     F("formal.internet_slang", 7, 12, "tummy", 0.8, "abdomen"),
    ...     F("formal.internet_slang", 19, 22, "lol", 0.9, "")])
    'my abdomen hurts'
    >>> apply_corrections("gippy tummy", [
    ...     F("formal.internet_slang", 6, 11, "tummy", 0.8, "abdomen"),
    ...     F("formal.dialect", 0, 11, "gippy tummy", 0.9, "diarrhea")])
    'diarrhea'
    >>> apply_corrections("没发绕，xswl", [F("formal.spelling_error", 1, 3, "发绕", 0.9, "发烧")])
    '没发烧，xswl'
    """
    chosen = _select(text, findings)
    out: list[str] = []
    pos = 0
    for i, finding in enumerate(chosen):
        start, end = finding.start, finding.end
        correction = finding.correction or ""
        if not correction:
            high = chosen[i + 1].start if i + 1 < len(chosen) else len(text)
            start, end = _deletion_span(text, start, end, pos, high)
        out.append(text[pos:start])
        out.append(_match_case(finding.text, correction))
        pos = end
    out.append(text[pos:])
    return "".join(out)


@lru_cache(maxsize=4096)
def _introduces_negation(correction: str, language: Language) -> bool:
    return bool(correction) and bool(negation_scopes(Document(correction, language)))


def _touches_negation(starts: list[int], ends: list[int], finding: Finding) -> bool:
    """Does replacing this span remove a negation word or cut across a negated scope?
    `starts` and `ends` are the sorted scope boundaries of the document."""
    # a scope starting inside (start, end] means its trigger word is inside the span
    if bisect_right(starts, finding.end) > bisect_right(starts, finding.start):
        return True
    # a scope ending strictly inside the span: the correction would straddle its edge
    return bisect_left(ends, finding.end) > bisect_right(ends, finding.start)


def normalize(doc: Document, findings: Sequence[Finding], drop_filler: bool = True) -> str:
    """The message in standard wording, with every negation exactly as the patient wrote it."""
    from perturbation.formal import filler_terms

    fillers = filler_terms() if drop_filler else frozenset()
    starts = sorted(start for start, _ in doc.negated)
    ends = sorted(end for _, end in doc.negated)
    safe: list[Finding] = []
    for finding in findings:
        if finding.correction is None:
            if finding.subcategory == _SLANG and finding.text.lower() in fillers:
                safe.append(dataclasses.replace(finding, correction=""))
            continue
        if _touches_negation(starts, ends, finding):
            continue
        if _introduces_negation(finding.correction, doc.language) and not _introduces_negation(
            finding.text, doc.language
        ):
            continue
        safe.append(finding)
    return apply_corrections(doc.text, safe)


_ASIDES = frozenset(
    {
        "contextual.irrelevant_information",
        "emotional.positive",
        "emotional.negative",
        "emotional.repressed",
    }
)


def search_text(result: IntakeResult) -> str:
    """The corrected message without its asides, for searching guidelines, never for the
    model: details with no clinical bearing and emotional framing ("my cat", "I'm so
    scared", "probably nothing") pull a search index away from the clinical words. An aside
    that overlaps a symptom mention stays, and so does anything near a negation."""
    from perturbation.symptoms import find_symptoms

    doc = Document.of(result.text, result.language)
    mentions = find_symptoms(doc)
    trimmed = [
        dataclasses.replace(finding, correction="")
        if finding.subcategory in _ASIDES
        and not any(m.start < finding.end and finding.start < m.end for m in mentions)
        else finding
        for finding in result.perturbations
    ]
    return normalize(doc, trimmed)
