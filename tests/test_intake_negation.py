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
     "I don't want to bother you, chest pain and sweating",
     "I do not want to bother you chest pain", "I never want to make a fuss about chest pain",
     "I don't like doctors but my chest hurts"],
)  # fmt: skip
def test_pseudo_negations_and_negated_wishes_open_no_scope(text: str) -> None:
    assert denied(text) == []


def test_a_negated_wish_to_die_is_still_a_denial() -> None:
    assert denied("I don't want to die") == [" want to die"]


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("I'm not suicidal or anything, I just don't see a reason to wake up",
         " suicidal or anything"),
        ("no fever, she says her neck is stiff", " fever"),
        ("denies chest pain, shortness of breath", " chest pain, shortness of breath"),
    ],
)  # fmt: skip
def test_a_comma_and_a_new_subject_end_a_scope(text: str, scope: str) -> None:
    assert denied(text)[0] == scope


@pytest.mark.parametrize(
    ("text", "tail"),
    [("否认胸闷胸痛心悸气短头晕头痛、大汗淋漓伴胸口剧痛", "、大汗淋漓伴胸口剧痛"),
     ("无胸痛胸闷、心悸、气短，有点咳嗽", "胸闷、心悸、气短")],
)  # fmt: skip
def test_a_denied_list_cut_by_the_length_limit_runs_on(text: str, tail: str) -> None:
    assert denied(text)[0].endswith(tail)


def test_starts_negated_means_starting_inside_a_scope() -> None:
    doc = Document.of("no pain in my chest, just a cough")
    assert doc.starts_negated(doc.text.index("pain"))
    assert not doc.is_negated(doc.text.index("pain"), doc.text.index("chest") + len("chest"))
    assert not doc.starts_negated(doc.text.index("cough"))
    assert not doc.starts_negated(0)  # a trigger is not inside its own scope


def test_is_negated_means_inside_a_scope() -> None:
    doc = Document.of("no fever, just a bad headache")
    fever = doc.text.index("fever")
    headache = doc.text.index("headache")
    assert doc.is_negated(fever, fever + len("fever"))
    assert not doc.is_negated(headache, headache + len("headache"))
