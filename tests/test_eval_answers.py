"""evaluation.answers: letters first (as the GRPO reward reads them), then an option's wording,
conservatively; and the first token's letter from top logprobs."""

from __future__ import annotations

import doctest
import math
from typing import Any

import pytest

import evaluation.answers
from evaluation.answers import letter_from_logprobs, read_answer

DRUGS = {"A": "Metoprolol", "B": "Aspirin", "C": "Furosemide", "D": "Lisinopril"}
DIABETES = {
    "A": "Diabetes mellitus",
    "B": "Type 1 diabetes mellitus",
    "C": "Diabetes insipidus",
    "D": "Hypothyroidism",
}
JMED = {
    "A": "局灶性手部肌张力障碍",
    "B": "腱鞘炎",
    "C": "帕金森病",
    "D": "特发性震颤",
    "E": "腕管综合征",
}


def test_doctests_pass() -> None:
    result = doctest.testmod(evaluation.answers)
    assert result.failed == 0
    assert result.attempted >= 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("Answer: B", "B"),
        ("<think>maybe A</think><answer>C</answer>", "C"),
        ("The answer is (D).", "D"),
        ("A, C", "A,C"),
        ("Furosemide", "C"),
        ("I think it's aspirin.", "B"),
        ("**FUROSEMIDE**", "C"),
        ("<think>Aspirin? No, the loop diuretic.</think>Furosemide.", "C"),
        ("<answer>furosemide</answer>", "C"),
        ("Lisinopril then furosemide", None),  # two options named apart
        ("Either aspirin or metoprolol.", None),
        ("<think>It is furosemide", None),  # thought cut off before any answer
        ("Nothing here fits.", None),
        ("Aspirinate", None),  # an option inside a longer word is not the option
        ("", None),
        ("   \n", None),
    ],
)
def test_read_answer_on_drug_options(text: str, expected: str | None) -> None:
    assert read_answer(text, "ABCD", DRUGS) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The patient has type 1 diabetes mellitus.", "B"),  # longest wins over its substring
        ("Diabetes mellitus, most likely.", "A"),
        ("Type-1  Diabetes   Mellitus", "B"),  # punctuation, case and spaces do not matter
        ("Diabetes mellitus or diabetes insipidus", None),
        ("Type 1 diabetes mellitus, not hypothyroidism", None),
    ],
)
def test_read_answer_longest_option_text_wins(text: str, expected: str | None) -> None:
    assert read_answer(text, "ABCD", DIABETES) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("答案：A", "A"),
        ("局灶性手部肌张力障碍", "A"),
        ("考虑为局灶性手部肌张力障碍可能性大。", "A"),
        ("最可能的诊断是帕金森病", "C"),
        ("帕金森病或特发性震颤", None),
    ],
)
def test_read_answer_in_chinese(text: str, expected: str | None) -> None:
    assert read_answer(text, "ABCDE", JMED) == expected


def test_two_options_with_the_same_text_are_ambiguous() -> None:
    options = {"A": "None of the above", "B": "Aspirin", "C": "none of the above."}
    assert read_answer("None of the above", "ABC", options) is None


def test_letters_outside_the_item_are_not_read_but_wording_still_is() -> None:
    assert read_answer("Answer: E", "ABCD", DRUGS) is None
    assert read_answer("Answer: E (furosemide)", "ABCD", DRUGS) == "C"


def top(*pairs: tuple[str, float]) -> list[dict[str, Any]]:
    return [{"token": token, "logprob": math.log(p), "bytes": None} for token, p in pairs]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (top((" B", 0.6), ("A", 0.3)), "B"),
        (top(("B", 0.6), (" A", 0.3)), "B"),
        (top(("(C", 0.5), ("A", 0.4)), "C"),
        (top(("**A", 0.5), ("B", 0.4)), "A"),
        (top(("A.", 0.5), ("B)", 0.4)), "A"),
        (top(("（D）", 0.5), ("B", 0.4)), "D"),
        # three spellings of B outweigh the single most probable token
        (top(("A", 0.4), (" B", 0.2), ("B", 0.15), ("(B", 0.1)), "B"),
        (top(("The", 0.9), ("Answer", 0.05)), None),
        (top(("E", 0.9), ("b", 0.05)), None),  # not an option here; lower case is no letter
        (top(("AB", 0.9), ("C", 0.05)), "C"),
        ([{"token": "A", "logprob": -1.0}, {"token": " B", "logprob": -1.0}], None),  # a tie
        ([], None),
    ],
)
def test_letter_from_logprobs(entries: list[dict[str, Any]], expected: str | None) -> None:
    assert letter_from_logprobs(entries, "ABCD") == expected


def test_letter_from_logprobs_skips_malformed_entries() -> None:
    entries: list[dict[str, Any]] = [
        {"token": "A", "logprob": float("nan")},
        {"token": None, "logprob": -0.1},
        {"logprob": -0.1},
        {"token": "C", "logprob": "high"},
        {"token": "B", "logprob": -2.0},
        {"token": "D", "logprob": float("-inf")},
    ]
    assert letter_from_logprobs(entries, "ABCD") == "B"
