"""Negation scopes in English and Chinese, NegEx-style: trigger, then a bounded scope.

Safety rule for the whole package: a symptom inside a negation scope is reported as denied
and is never corrected into a present symptom. "No fever" and "没发烧" stay negative.

This is the package's only negation logic; every detector reads the scopes through
`Document` (`negated`, `is_negated` for a whole span, `starts_negated` for a lexicon cue).

* Phrases that contain a negation word but state a symptom ("can't breathe", "no appetite",
  "没劲", "睡不着", "烧不退") are pseudo-negations: they open no scope. A symptom phrase that
  itself begins with the trigger is not inside the scope either, because scopes start after
  the trigger.
* A negation of a wish or an opinion ("I do not want to bother you", "never want to make a
  fuss", "don't like") denies nothing that follows it, so it opens no scope either; "don't
  want to die" is not such a wish.
* A scope ends at the end of its clause; in English a comma followed by a new subject ("not
  suicidal or anything, I just...") ends the clause, so an early denial never swallows a
  later statement.
* A denied Chinese enumeration stays denied as a whole ("否认发烧、咳嗽、腹泻、胸痛"): when the
  length limit cuts a scope inside or right before a '、' list, it runs on to the clause end.

English is matched on `Document.lower` (lower case, same offsets): much faster than
IGNORECASE, and a pseudo-negation is only tried where a trigger was found.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perturbation.document import Document

_EN_TRIGGER = re.compile(
    r"\b(?:no|not|never|without|denie[sd]|deny|denying|negative for|free of|absence of|"
    r"(?:do|does|did|have|has|had)n'?t(?: have| had| got| get| notice)?|"
    r"(?:do|does|did) not(?: have| notice)?|ha(?:ve|s|d) not had)\b"
)
_EN_PSEUDO = re.compile(
    r"\b(?:not able to|not stop\w*|(?:does|did|do|has|have|had)n'?t (?:stop\w*|go(?:ne)? away|"
    r"improv\w*|get(?:ting)? better|help\w*|work\w*)|not (?:improv\w*|getting better|going away|"
    r"go away|sure|only|just|feeling (?:well|good|great|right)|well|right)|no (?:appetite|"
    r"energy|strength|feeling|sensation|pulse|idea|longer|matter|better|relief|change|sleep)|"
    r"without (?:any )?(?:reason|warning|cause|relief))\b"
)
# What follows a trigger when it negates a wish or an opinion rather than a symptom.
_EN_WISH = re.compile(
    r"\s*(?:want|wanna|wish|mean|think|know|like|care|mind|need)\b(?!\s+to (?:die|kill|end|hurt))"
)
_EN_END = re.compile(
    r"[.;:!?\n]|,\s*(?:just|only|mainly|mostly|though|although|instead|rather|i|she|he|we|they)"
    r"\b|"
    r"\b(?:but|however|although|though|yet|except|apart from|aside from|"
    r"because|since|so|which|who|that|while|and (?:i|she|he|it|my|now|then)|i (?:have|had|am|"
    r"feel|get|got)|i'(?:m|ve)|my|now|still)\b"
)
_EN_MAX_CHARS = 60

_ZH_TRIGGER = re.compile(r"否认|并无|并未|从未|从没|没有|没|无|未|不")
_ZH_PSEUDO = re.compile(
    r"没劲|没力|没胃口|没食欲|没精神|没感觉|没知觉|没反应|没呼吸|没意识|没法|没办法|没用|没完|没停|"
    r"没睡|没怎么睡|没好|无力|无法|无缘无故|不舒服|不适|不好|不停|不退|不止|不断|不行|不对|不能|不来气|"
    r"不了|不出|不下|不着|不过|不住|不起|不清|不动|不上|不开|不到|不得|不知|不太好|不见好|"
    r"不管|不少|不同|不会吧|不一定|不然|不是很好|未愈|未好|未见好"
)
_ZH_END = re.compile(r"[，,。；;！!？?\n]|但是|但|可是|不过|却|就是|然后|现在|而且|还")
_ZH_SHORT_TRIGGERS = {"不": 3, "无": 4}  # characters of scope for these single-char triggers
_ZH_MAX_CHARS = 12

_LIST_SEPARATOR = "、"
_LIST_MAX_CHARS = 80


def negation_scopes(document: Document) -> tuple[tuple[int, int], ...]:
    """Character ranges under a negation, in trigger order (they may overlap)."""
    if document.language == "zh":
        return tuple(_zh_scopes(document.text))
    return tuple(_en_scopes(document.lower))


def _en_scopes(text: str) -> list[tuple[int, int]]:
    scopes = []
    for match in _EN_TRIGGER.finditer(text):
        if _EN_PSEUDO.match(text, match.start()) or _EN_WISH.match(text, match.end()):
            continue
        scope = _scope(text, match.end(), _EN_MAX_CHARS, _EN_END, through_list=True)
        if scope is not None:
            scopes.append(scope)
    return scopes


def _zh_scopes(text: str) -> list[tuple[int, int]]:
    pseudo_starts = {match.start() for match in _ZH_PSEUDO.finditer(text)}
    scopes = []
    for match in _ZH_TRIGGER.finditer(text):
        if match.start() in pseudo_starts:
            continue
        limit = _ZH_SHORT_TRIGGERS.get(match.group(), _ZH_MAX_CHARS)
        scope = _scope(text, match.end(), limit, _ZH_END, through_list=limit == _ZH_MAX_CHARS)
        if scope is not None:
            scopes.append(scope)
    return scopes


def _scope(
    text: str, start: int, limit: int, end: re.Pattern[str], through_list: bool
) -> tuple[int, int] | None:
    """The scope opened at `start`: to the clause end, at most `limit` characters, except
    that a denied list cut by the limit runs on: always when the cut falls right before a
    '、', and for the long triggers (`through_list`: 否认, 没有, English) whenever the
    clause is a '、' list."""
    stop = min(len(text), start + limit)
    terminator = end.search(text, start, stop)
    if terminator is not None:
        stop = terminator.start()
    elif through_list or text.startswith(_LIST_SEPARATOR, stop):
        stop = _through_list(text, start, stop, end)
    return (start, stop) if stop > start else None


def _through_list(text: str, start: int, stop: int, end: re.Pattern[str]) -> int:
    """The clause end (at most _LIST_MAX_CHARS from `start`) when the clause is a '、'
    list, else `stop`."""
    cap = min(len(text), start + _LIST_MAX_CHARS)
    terminator = end.search(text, start, cap)
    clause_end = terminator.start() if terminator is not None else cap
    return clause_end if _LIST_SEPARATOR in text[start:clause_end] else stop
