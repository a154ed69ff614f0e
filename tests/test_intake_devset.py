"""The labelled intake development set: schema and coverage, independent of any detector.

The dev set is the ground truth the rules engine is scored on (micro-F1 over subcategories,
red-flag recall and precision), so it must stay well-formed and keep enough examples of
every subcategory in both languages, clean messages that must not fire, and red flags both
stated plainly and hidden behind slang or minimising.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from perturbation.taxonomy import BY_ID

DEV_SET = Path(__file__).with_name("data") / "intake_dev.jsonl"
RED_FLAGS = {
    "cardiac_chest_pain", "stroke_signs", "suicidal_ideation_self_harm", "anaphylaxis",
    "severe_bleeding", "sepsis", "respiratory_distress", "meningitis", "obstetric_emergency",
    "paediatric_emergency", "overdose_poisoning", "head_injury",
}  # fmt: skip
FIELDS = {"id", "language", "text", "perturbations", "spans", "red_flags", "negated_symptoms",
          "key_terms"}  # fmt: skip
MIN_PER_SUBCATEGORY_PER_LANGUAGE = 15
MIN_CLEAN = 40
MIN_RED_FLAG_MESSAGES = 60


@cache
def rows() -> tuple[dict[str, Any], ...]:
    lines = DEV_SET.read_text(encoding="utf-8").splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def test_size_and_language_balance() -> None:
    languages = Counter(row["language"] for row in rows())
    assert len(rows()) >= 320
    assert set(languages) == {"en", "zh"}
    assert min(languages.values()) >= 0.4 * len(rows())


def test_schema() -> None:
    ids = [row["id"] for row in rows()]
    assert len(ids) == len(set(ids)), "ids must be unique"
    texts = [row["text"] for row in rows()]
    assert len(texts) == len(set(texts)), "texts must be unique"
    for row in rows():
        assert set(row) == FIELDS, row["id"]
        assert row["language"] in ("en", "zh")
        assert row["id"].startswith(f"{row['language']}-")
        assert isinstance(row["text"], str) and row["text"].strip()
        for key in ("perturbations", "red_flags", "negated_symptoms", "key_terms"):
            values = row[key]
            assert isinstance(values, list) and all(isinstance(v, str) and v for v in values)
            assert len(values) == len(set(values)), (row["id"], key)


def test_labels_use_taxonomy_and_red_flag_ids() -> None:
    for row in rows():
        assert set(row["perturbations"]) <= set(BY_ID), row["id"]
        assert set(row["red_flags"]) <= RED_FLAGS, row["id"]


def test_spans_are_substrings_of_labelled_subcategories() -> None:
    for row in rows():
        for span in row["spans"]:
            assert set(span) == {"subcategory", "text"}, row["id"]
            assert span["subcategory"] in row["perturbations"], row["id"]
            assert span["text"] and span["text"] in row["text"], (row["id"], span)
        evidenced = {span["subcategory"] for span in row["spans"]}
        assert evidenced == set(row["perturbations"]), (row["id"], "each label needs a span")


def test_negated_and_key_terms_are_standard_english() -> None:
    for row in rows():
        for term in row["negated_symptoms"] + row["key_terms"]:
            assert term.isascii() and term == term.lower(), (row["id"], term)
        assert not set(row["negated_symptoms"]) & set(row["key_terms"]), row["id"]


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("subcategory", sorted(BY_ID))
def test_each_subcategory_covered_per_language(subcategory: str, language: str) -> None:
    count = sum(
        subcategory in row["perturbations"] for row in rows() if row["language"] == language
    )
    assert count >= MIN_PER_SUBCATEGORY_PER_LANGUAGE, (subcategory, language, count)


def test_clean_negatives() -> None:
    clean = [row for row in rows() if not row["perturbations"]]
    assert len(clean) >= MIN_CLEAN
    assert {row["language"] for row in clean} == {"en", "zh"}
    assert all(not row["spans"] for row in clean)
    # some clean messages deny symptoms, so "no fever" must not be counted as fever
    assert sum(bool(row["negated_symptoms"]) for row in clean) >= 20


def test_red_flags_explicit_hidden_and_look_alikes() -> None:
    flagged = [row for row in rows() if row["red_flags"]]
    assert len(flagged) >= MIN_RED_FLAG_MESSAGES
    per_flag = Counter((flag, row["language"]) for row in flagged for flag in row["red_flags"])
    for flag in RED_FLAGS:
        for language in ("en", "zh"):
            assert per_flag[(flag, language)] >= 3, (flag, language)
    explicit = [row for row in flagged if not row["perturbations"]]
    hidden = [
        row for row in flagged
        if {"emotional.repressed", "formal.internet_slang", "formal.dialect"}
        & set(row["perturbations"])
    ]  # fmt: skip
    assert len(explicit) >= 10 and len(hidden) >= 20
    look_alikes = [
        row for row in rows()
        if not row["red_flags"]
        and any(cue in row["text"].lower() for cue in ("chest", "die", "killing", "死", "胸"))
    ]  # fmt: skip
    assert len(look_alikes) >= 10
