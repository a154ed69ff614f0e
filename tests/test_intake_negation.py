"""Negation scopes: what is denied stays denied, and symptom phrases that contain a
negation word stay present."""

from __future__ import annotations

import pytest

from perturbation.document import Document


def denied(text: str) -> list[str]:
    doc = Document.of(text)
    return [doc.text[start:end] for start, end in doc.negated]


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("No fever but bad cough since monday", " fever "),
        ("no fever, just a bad headache", " fever"),
        ("denies chest pain, shortness of breath", " chest pain, shortness of breath"),
        ("没发烧，就是咳嗽", "发烧"),
        ("否认胸痛、胸闷", "胸痛、胸闷"),
        ("否认发烧、咳嗽、腹泻、头痛、胸痛、大汗淋漓", "发烧、咳嗽、腹泻、头痛、胸痛、大汗淋漓"),
    ],
)
def test_scopes(text: str, scope: str) -> None:
    assert scope in denied(text)


@pytest.mark.parametrize(
    "text",
    ["I can't breathe", "I have no appetite", "吃不下饭，烧不退", "上不来气", "没劲",
     "I don't want to bother you, chest pain and sweating"],
)  # fmt: skip
def test_pseudo_negations_open_no_scope(text: str) -> None:
    assert denied(text) == []


def test_is_negated_means_inside_a_scope() -> None:
    doc = Document.of("no fever, just a bad headache")
    fever = doc.text.index("fever")
    headache = doc.text.index("headache")
    assert doc.is_negated(fever, fever + len("fever"))
    assert not doc.is_negated(headache, headache + len("headache"))
