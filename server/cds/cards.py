"""What a hook produced: its cards, most urgent first and bounded, and what to audit."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from retrieval.search import Hit, Mode
from server.cds.models import INDICATOR_RANK, Card


@dataclass(frozen=True)
class CardLimits:
    """How many cards a response holds and how each cites the guidelines."""

    max_cards: int
    passages_per_card: int
    snippet_chars: int
    mode: Mode


@dataclass(frozen=True)
class Drafted:
    """One card with the guideline chunk ids it cites and the rule ids that raised it."""

    card: Card
    citations: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class HookCards:
    cards: tuple[Card, ...] = ()
    citations: tuple[str, ...] = ()  # guideline chunk ids the cards cite
    red_flags: tuple[str, ...] = ()  # threshold and conflict rule ids behind the cards


def chunk_ids(hits: Iterable[Hit]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(hit.chunk.id for hit in hits))


def most_urgent(drafted: Iterable[Drafted], max_cards: int) -> HookCards:
    """At most `max_cards`, critical before warning before info (stable within a level),
    with the citations and flags of the cards kept."""
    ranked = sorted(drafted, key=lambda d: INDICATOR_RANK[d.card.indicator])[:max_cards]
    citations = dict.fromkeys(c for d in ranked for c in d.citations)
    flags = dict.fromkeys(f for d in ranked for f in d.flags)
    return HookCards(tuple(d.card for d in ranked), tuple(citations), tuple(flags))
