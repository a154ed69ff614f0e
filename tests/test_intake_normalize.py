"""Expression correction: standard wording, negation untouched, nothing invented."""

from __future__ import annotations

import doctest

import pytest

from perturbation import normalize as normalize_module
from perturbation.analysis import Finding
from perturbation.document import Document
from perturbation.engine import RulesEngine
from perturbation.formal import detect_dialect, detect_internet_slang, detect_spelling_error
from perturbation.normalize import apply_corrections, normalize, search_text


def corrected(text: str, drop_filler: bool = True) -> str:
    doc = Document.of(text)
    findings = detect_internet_slang(doc) + detect_dialect(doc) + detect_spelling_error(doc)
    return normalize(doc, findings, drop_filler=drop_filler)


def test_doctests() -> None:
    assert doctest.testmod(normalize_module).failed == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no feaver", "no fever"),
        ("No feaver but diarea since monday", "No fever but diarrhea since monday"),
        ("I don't have a cought, just the runs", "I don't have a cough, just diarrhea"),
        ("denies vomitting", "denies vomiting"),
        ("没发绕", "没发烧"),
        ("没有咳簌，就是拉肚子", "没有咳嗽，就是腹泻"),
        ("不心慌", "不心悸"),
    ],
)
def test_negation_is_kept_and_only_the_symptom_word_is_corrected(text: str, expected: str) -> None:
    assert corrected(text) == expected


def test_a_correction_never_replaces_a_negation_word() -> None:
    text = "no feaver"
    doc = Document.of(text)
    # a (wrong) finding that swallows the negation must not be applied
    greedy = Finding("formal.spelling_error", 0, 9, "no feaver", 0.99, "fever")
    assert normalize(doc, [greedy]) == "no feaver"
    assert "没" in normalize(Document.of("没发绕"), [
        Finding("formal.spelling_error", 0, 3, "没发绕", 0.99, "发烧")
    ])  # fmt: skip


def test_a_correction_never_introduces_a_negation() -> None:
    doc = Document.of("feaver today")
    bad = Finding("formal.spelling_error", 0, 6, "feaver", 0.9, "no fever")
    assert normalize(doc, [bad]) == "feaver today"


def test_pseudo_negations_inside_a_slang_phrase_are_corrected() -> None:
    # "上不来气" contains 不 but states a symptom
    assert corrected("爬楼梯就上不来气") == "爬楼梯就呼吸困难"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tbh my tummy is killing me rn", "my abdomen is causing severe pain"),
        ("been puking all night lol", "been vomiting all night"),
        ("Throwing up since Monday, ngl.", "Vomiting since Monday."),
        ("My mum's been poorly and off her food",
         "My mum's been unwell and loss of appetite"),
        ("xswl，肚子疼死了", "剧烈腹痛"),
        ("昨天开始脑壳疼，拉肚子，还打摆子", "昨天开始头痛，腹泻，还寒战"),
        ("咳簌一个礼拜了，有高雪压，吃了布洛份", "咳嗽一个礼拜了，有高血压，吃了布洛芬"),
    ],
)  # fmt: skip
def test_normalized_text_in_both_languages(text: str, expected: str) -> None:
    assert corrected(text) == expected


def test_filler_is_kept_when_asked() -> None:
    assert corrected("tbh my tummy hurts lol", drop_filler=False) == "tbh my abdomen hurts lol"


def test_slang_without_a_standard_term_and_not_filler_is_left_as_written() -> None:
    assert corrected("最近上火了，破防了") == "最近上火了，破防了"


def test_highest_confidence_wins_on_overlap() -> None:
    text = "gippy tummy"
    low = Finding("formal.internet_slang", 6, 11, "tummy", 0.8, "abdomen")
    high = Finding("formal.dialect", 0, 11, "gippy tummy", 0.9, "diarrhea")
    assert apply_corrections(text, [low, high]) == "diarrhea"
    assert apply_corrections(text, [low]) == "gippy abdomen"


def test_stale_findings_are_ignored() -> None:
    # a finding whose text does not match the message (wrong offsets) changes nothing
    stale = Finding("formal.spelling_error", 0, 6, "feaver", 0.9, "fever")
    assert apply_corrections("cough and fever", [stale]) == "cough and fever"


def test_clean_text_is_returned_unchanged() -> None:
    text = "Patient reports productive cough and fever for 3 days. 患者否认胸痛。"
    assert corrected(text) == text


def test_no_symptom_is_added() -> None:
    # every standard term in the output stands for words the patient wrote
    text = "no feaver, no puking, 没发绕"
    out = corrected(text)
    assert out == "no fever, no vomiting, 没发烧"
    assert out.count("no ") == 2 and "没" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no pian in me chest", "no pain in my chest"),
        ("not dead sore, just a wee bit stiff", "not very sore, just a little bit stiff"),
        ("我没发烧，颈子也不疼", "我没发烧，颈部也不疼"),
        ("没有喉龙痛", "没有喉咙痛"),
        ("莫得发烧", "莫得发烧"),  # a regional negation is flagged, never rewritten
    ],
)
def test_regional_words_are_corrected_around_a_kept_negation(text: str, expected: str) -> None:
    assert corrected(text) == expected


@pytest.mark.parametrize(
    ("text", "dropped", "kept"),
    [
        (
            "Honestly I am terrified. My cat knocked over a vase and my husband laughed. "
            "I have had a feaver and a cough for 3 days, no rash.",
            ["terrified", "cat", "vase"],
            ["fever", "cough", "3 days", "no rash"],
        ),
        (
            "我好害怕啊。我家猫昨天打碎了花瓶。咳嗽三天了，没有皮疹。",
            ["害怕", "花瓶"],
            ["咳嗽", "没有皮疹"],
        ),
    ],
)
def test_search_text_drops_asides_and_keeps_symptoms_and_negations(
    text: str, dropped: list[str], kept: list[str]
) -> None:
    query = search_text(RulesEngine().analyze(text))
    assert not [word for word in dropped if word in query]
    assert [word for word in kept if word in query] == kept


def test_a_character_that_lower_cases_to_two_keeps_every_offset() -> None:
    """`"İ".lower()` is two characters; spans must still point into the original text."""
    plain = (
        "No chest pain or anything, just my jaw aches and I feel sick and clammy since I was "
        "shovelling snow."
    )
    dotted = plain.replace("i", "İ")
    engine = RulesEngine()
    expected, result = engine.analyze(plain, "en"), engine.analyze(dotted, "en")
    assert [flag.id for flag in result.red_flags] == [flag.id for flag in expected.red_flags]
    for finding in result.perturbations:
        assert dotted[finding.start : finding.end] == finding.text
    assert normalize(Document.of(dotted, "en"), list(result.perturbations)).startswith("No ")
