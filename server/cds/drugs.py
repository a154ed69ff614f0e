"""The drug table (`rules/drug_classes.json`) and how a coded concept is recognised in it.

A medication or allergy is recognised by its RxNorm ingredient code or SNOMED code when the
record carries one of ours, and by name otherwise: whole-word phrases for English
("Amoxicillin 500 mg oral capsule" is amoxicillin, "Sulfa drugs" the sulfonamide
antibiotics), substrings for Chinese (阿莫西林克拉维酸钾 contains 阿莫西林). An allergy may
name a class ("penicillins") as well as a drug; a drug brings its classes with it. What the
table does not know is not guessed at: an unrecognised drug is checked against nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from retrieval.documents import HAN
from server.cds.models import Indicator
from server.fhir.summary import Concept

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
_WORD = re.compile(r"[a-z0-9]+")
_HAN = re.compile(f"[{HAN}]")


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class DrugClass:
    id: str
    name: str
    zh: str
    duplicate: Indicator | None  # duplicate therapy within the class is flagged this high


@dataclass(frozen=True)
class Ingredient:
    name: str
    rxnorm: str | None
    classes: frozenset[str]


@dataclass(frozen=True)
class CrossReactivity:
    allergy: str  # class id
    order: str  # class id
    note: str


@dataclass(frozen=True)
class Drug:
    """What a concept was recognised as: ingredient names and class ids (both may be empty)."""

    ingredients: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()

    @property
    def known(self) -> bool:
        return bool(self.ingredients or self.classes)

    @property
    def selectors(self) -> frozenset[str]:
        return frozenset(
            [f"ingredient:{name}" for name in self.ingredients]
            + [f"class:{cls}" for cls in self.classes]
        )


@dataclass(frozen=True)
class Interaction:
    id: str
    sides: tuple[frozenset[str], frozenset[str]]  # selectors: class:<id> / ingredient:<name>
    indicator: Indicator
    summary: str  # with {order} and {current}
    detail: str

    def between(self, first: Drug, second: Drug) -> bool:
        a, b = self.sides
        return bool(
            (first.selectors & a and second.selectors & b)
            or (first.selectors & b and second.selectors & a)
        )


class DrugTable:
    def __init__(
        self,
        classes: dict[str, DrugClass],
        ingredients: dict[str, Ingredient],
        phrases: dict[tuple[str, ...], set[str]],
        han: dict[str, set[str]],
        codes: dict[tuple[str, str], set[str]],
        cross: tuple[CrossReactivity, ...],
        interactions: tuple[Interaction, ...],
    ) -> None:
        self.classes = classes
        self.ingredients = ingredients
        self._phrases = phrases  # word tuple -> selectors
        self._longest = max((len(p) for p in phrases), default=1)
        self._han = han  # Chinese name -> selectors
        self._codes = codes  # (system, code) -> selectors
        self.cross = cross
        self.interactions = interactions

    @classmethod
    def load(cls, raw: dict[str, Any] | None = None) -> DrugTable:
        """The packaged table (or `raw`, the same JSON shape, for tests)."""
        if raw is None:
            text = resources.files("server.cds").joinpath("rules/drug_classes.json").read_text()
            raw = json.loads(text)
        classes: dict[str, DrugClass] = {}
        phrases: dict[tuple[str, ...], set[str]] = {}
        han: dict[str, set[str]] = {}
        codes: dict[tuple[str, str], set[str]] = {}
        for entry in raw["classes"]:
            selector = f"class:{entry['id']}"
            classes[entry["id"]] = DrugClass(
                entry["id"], entry["name"], entry["zh"], entry.get("duplicate")
            )
            for alias in [entry["name"], *entry.get("aliases", [])]:
                phrases.setdefault(words(alias), set()).add(selector)
            for alias in [entry["zh"], *entry.get("zh_aliases", [])]:
                han.setdefault(alias, set()).add(selector)
            for system, key in ((SNOMED, "snomed"), (RXNORM, "rxnorm")):
                for code in entry.get(key, []):
                    codes.setdefault((system, code), set()).add(selector)
        ingredients: dict[str, Ingredient] = {}
        for entry in raw["ingredients"]:
            unknown = set(entry["classes"]) - set(classes)
            if unknown:
                raise ValueError(f"{entry['name']}: unknown classes {sorted(unknown)}")
            name = entry["name"].lower()
            ingredients[name] = Ingredient(name, entry.get("rxnorm"), frozenset(entry["classes"]))
            selector = f"ingredient:{name}"
            for alias in [name, *entry.get("aliases", [])]:
                phrases.setdefault(words(alias), set()).add(selector)
            if entry.get("zh"):
                han.setdefault(entry["zh"], set()).add(selector)
            if entry.get("rxnorm"):
                codes.setdefault((RXNORM, entry["rxnorm"]), set()).add(selector)
        cross = tuple(
            CrossReactivity(item["allergy"], item["order"], item["note"])
            for item in raw["cross_reactivity"]
        )
        interactions = tuple(
            Interaction(
                item["id"],
                (frozenset(item["between"][0]), frozenset(item["between"][1])),
                item["indicator"],
                item["summary"],
                item["detail"],
            )
            for item in raw["interactions"]
        )
        known = {f"class:{c}" for c in classes} | {f"ingredient:{i}" for i in ingredients}
        for interaction in interactions:
            stray = (interaction.sides[0] | interaction.sides[1]) - known
            if stray:
                raise ValueError(f"interaction {interaction.id}: unknown {sorted(stray)}")
        for pair in cross:
            if {pair.allergy, pair.order} - set(classes):
                raise ValueError(f"cross-reactivity {pair.allergy}/{pair.order}: unknown class")
        return cls(classes, ingredients, phrases, han, codes, cross, interactions)

    def recognise(self, concept: Concept) -> Drug:
        """The ingredients and classes `concept` names (by code, and by name)."""
        selectors: set[str] = set()
        if concept.system and concept.code:
            selectors |= self._codes.get((concept.system, concept.code), set())
        tokens = words(concept.text)
        for size in range(1, self._longest + 1):
            for start in range(len(tokens) - size + 1):
                selectors |= self._phrases.get(tokens[start : start + size], set())
        if _HAN.search(concept.text):
            selectors |= self._han_names(concept.text)
        ingredients = {s.split(":", 1)[1] for s in selectors if s.startswith("ingredient:")}
        classes = {s.split(":", 1)[1] for s in selectors if s.startswith("class:")}
        for name in ingredients:
            classes |= self.ingredients[name].classes
        return Drug(frozenset(ingredients), frozenset(classes))

    def _han_names(self, text: str) -> set[str]:
        """Chinese names found in `text`, except those inside a longer one found there
        (肝素, heparin, inside 依诺肝素, enoxaparin, is not a second drug)."""
        spans = [
            (start, start + len(name), name)
            for name in self._han
            for start in _occurrences(text, name)
        ]
        selectors: set[str] = set()
        for start, end, name in spans:
            if not any(s <= start and end <= e and e - s > end - start for s, e, _ in spans):
                selectors |= self._han[name]
        return selectors

    def class_name(self, class_id: str) -> str:
        return self.classes[class_id].name

    def label(self, drug: Drug, fallback: str) -> str:
        """The drug's ingredient names, e.g. "amoxicillin"; `fallback` if it names none."""
        return " + ".join(sorted(drug.ingredients)) or fallback


def _occurrences(text: str, name: str) -> list[int]:
    found, start = [], text.find(name)
    while start != -1:
        found.append(start)
        start = text.find(name, start + 1)
    return found
