"""The retrieval query for a patient's message.

Built from the intake's corrected text (so "feaver" and "tummy" meet guidelines that say
"fever" and "abdominal pain") plus the chief complaint's standard terms that the text does
not already contain (so a Chinese message also carries English terms, which the English
default embedder and the English half of the corpus can match). Denied symptoms are left
out: "no chest pain" should not fetch the chest-pain guideline first.
"""

from __future__ import annotations

from collections.abc import Sequence

from perturbation.analysis import IntakeResult
from perturbation.normalize import search_text

MAX_QUERY_CHARS = 2_000  # the embedder reads ~256 tokens; BM25 gains nothing from more


def build_query(corrected_text: str, present_terms: Sequence[str] = ()) -> str:
    text = " ".join(corrected_text.split())[:MAX_QUERY_CHARS]
    lowered = text.lower()
    extra = [term for term in dict.fromkeys(present_terms) if term.lower() not in lowered]
    return f"{text}\n{'; '.join(extra)}" if extra else text


def present_terms(analysis: IntakeResult) -> list[str]:
    return [s.term for s in analysis.chief_complaint.symptoms if not s.negated]


def query_from_intake(analysis: IntakeResult) -> str:
    """What the gateway searches with: the corrected message without its asides, plus the
    chief complaint's present terms."""
    return build_query(search_text(analysis), present_terms(analysis))
