"""Red-flag thresholds (`rules/thresholds.json`) and which recent measurements cross them.

A rule is matched by LOINC code and applies only in the units it lists: a value in another
unit is skipped, never converted by guesswork (an HbA1c of 75 in mmol/mol is not 75 %).
Only recent values count (each rule's `max_age_days`), and an undated value is not flagged:
a card that calls an old or undated reading critical is noise that teaches clinicians to
ignore the cards.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any

from server.cds.models import Indicator
from server.fhir.summary import Measurement

LOINC = "http://loinc.org"
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


BP_PANELS = frozenset({"85354-9", "55284-4", "35094-2"})
SYSTOLIC, DIASTOLIC = "8480-6", "8462-4"
_PAIR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def _unit(unit: str | None) -> str | None:
    return None if unit is None else unit.strip().lower()


def readings(measurement: Measurement) -> list[tuple[str, float]]:
    """(LOINC code, number) pairs a measurement holds: its own value, or for a blood
    pressure panel ("152/98", as `server.fhir.reduce` writes it) the systolic and diastolic
    values under their own codes."""
    concept, value = measurement.concept, measurement.value
    if concept.system != LOINC or concept.code is None:
        return []
    if isinstance(value, int | float):
        return [(concept.code, float(value))]
    pair = _PAIR.match(value) if concept.code in BP_PANELS else None
    if pair is None:
        return []
    return [(SYSTOLIC, float(pair.group(1))), (DIASTOLIC, float(pair.group(2)))]


@dataclass(frozen=True)
class Threshold:
    id: str
    label: str
    loinc: frozenset[str]
    units: frozenset[str | None]  # lower-cased; None: a value without a unit
    op: str
    value: float
    indicator: Indicator
    max_age_days: int
    advice: str
    when_taking: frozenset[str] = frozenset()  # drug class ids

    def crossed_by(self, measurement: Measurement, today: date) -> bool:
        if _unit(measurement.unit) not in self.units or measurement.when is None:
            return False
        taken = measurement.when
        day = taken.date() if isinstance(taken, datetime) else taken
        if (today - day).days > self.max_age_days:
            return False
        return any(
            code in self.loinc and _OPS[self.op](value, self.value)
            for code, value in readings(measurement)
        )

    def describe(self) -> str:
        """The threshold as a reader would write it, e.g. "below 90"."""
        words = {"<": "below", "<=": "at or below", ">": "above", ">=": "at or above"}
        return f"{words[self.op]} {self.value:g}"


@dataclass(frozen=True)
class RedFlag:
    rule: Threshold
    measurement: Measurement


def load_thresholds(raw: dict[str, Any] | None = None) -> tuple[Threshold, ...]:
    """The packaged rules (or `raw`, the same JSON shape, for tests)."""
    if raw is None:
        text = resources.files("server.cds").joinpath("rules/thresholds.json").read_text()
        raw = json.loads(text)
    rules = []
    for item in raw["rules"]:
        if item["op"] not in _OPS or item["indicator"] not in ("info", "warning", "critical"):
            raise ValueError(f"threshold {item['id']}: bad op or indicator")
        rules.append(
            Threshold(
                id=item["id"],
                label=item["label"],
                loinc=frozenset(item["loinc"]),
                units=frozenset(_unit(u) for u in item["units"]),
                op=item["op"],
                value=float(item["value"]),
                indicator=item["indicator"],
                max_age_days=int(item["max_age_days"]),
                advice=item["advice"],
                when_taking=frozenset(item.get("when_taking", [])),
            )
        )
    return tuple(rules)


def red_flags(
    rules: Iterable[Threshold],
    measurements: Iterable[Measurement],
    taking: frozenset[str],
    today: date,
) -> list[RedFlag]:
    """Every (rule, measurement) pair that fires; `taking` is the drug classes the patient's
    active medications belong to (for rules such as INR on a vitamin K antagonist)."""
    rules = tuple(rules)
    found = []
    for measurement in measurements:
        for rule in rules:
            if rule.when_taking and not rule.when_taking & taking:
                continue
            if rule.crossed_by(measurement, today):
                found.append(RedFlag(rule, measurement))
    return found
