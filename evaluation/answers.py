"""Which option a model chose: from its answer text, or from its first token's logprobs.

Letters come first and are read by `training.rewards.extract_choice`, the same code the GRPO
run rewards answers by, so an evaluation and a training run agree on what counts as "B".
Only when no letter can be read does the answer's wording count: a model that replies
"Furosemide" or "I think it's aspirin." has answered, and scoring it as invalid would
understate it. Wording is matched conservatively: the whole text of exactly one option must
appear (longest wins when one option's text contains another's), anything else is None.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from training.rewards import extract_choice

# The part of a reply that is the answer, read as extract_choice reads it: the last
# <answer> tag when there is one, else the text without <think> blocks (an unclosed one
# runs to the end) and without whatever precedes a stray </think>.
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_BEFORE_CLOSE = re.compile(r"^.*</think>", re.DOTALL | re.IGNORECASE)
_NOT_WORD = re.compile(r"[\W_]+")
# Scripts written without spaces between words: an option in them may sit inside a longer
# run of characters ("考虑局灶性手部肌张力障碍可能").
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_TOKEN_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


def _normalize(text: str) -> str:
    """Case-, width-, space- and punctuation-insensitive form: words joined by single spaces.

    >>> _normalize("  Type-1 Diabetes, mellitus.")
    'type 1 diabetes mellitus'
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NOT_WORD.sub(" ", folded).strip()


def _answer_part(text: str) -> str:
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        return str(tagged[-1])
    return _BEFORE_CLOSE.sub(" ", _THINK.sub(" ", text))


def _bounded(haystack: str, start: int, end: int) -> bool:
    """Whether haystack[start:end] is whole words: not glued to letters or digits on either
    side, unless the characters meeting there are from an unspaced script."""
    left_ok = (
        start == 0
        or haystack[start - 1] == " "
        or bool(_UNSPACED.match(haystack[start - 1]) or _UNSPACED.match(haystack[start]))
    )
    right_ok = (
        end == len(haystack)
        or haystack[end] == " "
        or bool(_UNSPACED.match(haystack[end]) or _UNSPACED.match(haystack[end - 1]))
    )
    return left_ok and right_ok


def _spans(haystack: str, needle: str) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    start = haystack.find(needle)
    while start != -1:
        if _bounded(haystack, start, start + len(needle)):
            found.append((start, start + len(needle)))
        start = haystack.find(needle, start + 1)
    return found


def _option_named(answer: str, options: Mapping[str, str]) -> str | None:
    """The one option whose whole text the answer names, or None (none, or several).

    A mention inside a longer option's mention does not count ("diabetes mellitus" inside
    "type 1 diabetes mellitus"); two options named apart, or two options with the same
    text, leave the answer ambiguous.
    """
    said = _normalize(answer)
    spans: dict[str, list[tuple[int, int]]] = {}
    for letter, text in options.items():
        wording = _normalize(text)
        if wording and (found := _spans(said, wording)):
            spans[letter] = found
    every = [(letter, span) for letter, found in spans.items() for span in found]

    def inside_longer(letter: str, span: tuple[int, int]) -> bool:
        start, end = span
        return any(
            other != letter and o_start <= start and end <= o_end and o_end - o_start > end - start
            for other, (o_start, o_end) in every
        )

    named = {letter for letter, span in every if not inside_longer(letter, span)}
    return named.pop() if len(named) == 1 else None


def read_answer(text: str, item_letters: str, options: Mapping[str, str]) -> str | None:
    """The option letter(s) an answer chose, as "B" or "A,C"; None when it is unclear.

    >>> options = {"A": "Aspirin", "B": "Furosemide", "C": "Metformin"}
    >>> read_answer("Answer: (C)", "ABC", options)
    'C'
    >>> read_answer("<think>maybe A</think>I'd give furosemide.", "ABC", options)
    'B'
    >>> read_answer("Aspirin or metformin", "ABC", options) is None
    True
    """
    if not text or not text.strip():
        return None
    letters = extract_choice(text, item_letters)
    if letters:
        return letters
    return _option_named(_answer_part(text), options)


def letter_from_logprobs(
    top_logprobs: Sequence[Mapping[str, Any]], item_letters: str
) -> str | None:
    """The letter most probable as the first token, summing the variants of each letter.

    `top_logprobs` is the OpenAI chat shape for one position:
    `[{"token": " B", "logprob": -0.1}, ...]`. A tokenizer spreads one letter over several
    tokens (" B", "B", "(B", "**B"); their probabilities are added before comparing. None
    when no option letter is among the tokens, or when two letters tie.

    >>> top = [{"token": " B", "logprob": math.log(0.3)}, {"token": "A", "logprob": math.log(0.4)},
    ...        {"token": "(B", "logprob": math.log(0.2)}, {"token": "The", "logprob": -1.0}]
    >>> letter_from_logprobs(top, "ABCD")
    'B'
    """
    mass: dict[str, float] = {}
    for entry in top_logprobs:
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            continue
        if math.isnan(logprob):
            continue
        letter = _TOKEN_EDGES.sub("", token)
        if len(letter) == 1 and letter in item_letters:
            mass[letter] = mass.get(letter, 0.0) + math.exp(logprob)
    if not mass:
        return None
    best = max(mass.values())
    winners = [letter for letter, probability in mass.items() if probability == best]
    return winners[0] if len(winners) == 1 else None
