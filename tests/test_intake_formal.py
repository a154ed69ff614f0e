"""Formal perturbations: internet slang, dialect and spelling errors, in English and Chinese."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import pytest

from perturbation import drugs, formal, spelling
from perturbation.analysis import Finding
from perturbation.document import Document


def found(detector: Callable[[Document], list[Finding]], text: str) -> dict[str, str | None]:
    """{text as written: correction} of one detector's findings."""
    findings = detector(Document.of(text))
    for f in findings:
        assert text[f.start : f.end] == f.text
        assert 0.0 < f.confidence <= 1.0
    return {f.text: f.correction for f in findings}


def subcategories(text: str) -> set[str]:
    doc = Document.of(text)
    detectors = (formal.detect_internet_slang, formal.detect_dialect, formal.detect_spelling_error)
    return {f.subcategory for detect in detectors for f in detect(doc)}


# --- internet slang -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tbh my tummy is killing me rn", {"tbh": None, "tummy": "abdomen", "rn": None,
                                           "is killing me": "is causing severe pain"}),
        ("been puking all night and now I have the runs lol",
         {"puking": "vomiting", "the runs": "diarrhea", "lol": None}),
        ("ngl I threw up twice and my hands have pins and needles",
         {"ngl": None, "threw up": "vomited", "pins and needles": "paresthesia"}),
        ("My heart is racing and I can't catch my breath, idk what to do",
         {"My heart is racing": "palpitations", "can't catch my breath": "shortness of breath",
          "idk": None}),
        ("I think I'm preggers, so gassy and throwing up every morning smh",
         {"preggers": "pregnant", "gassy": "flatulent", "throwing up": "vomiting", "smh": None}),
        ("Throwing Up since Monday, fr", {"Throwing Up": "vomiting", "fr": None}),
        ("I can\u2019t catch my breath", {"can\u2019t catch my breath": "shortness of breath"}),
    ],
)  # fmt: skip
def test_english_internet_slang(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_internet_slang, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("肚子疼死了，xswl，吃啥吐啥", {"肚子疼死了": "剧烈腹痛", "xswl": None}),
        ("最近emo了，头疼得要炸了", {"emo了": "情绪低落", "头疼得要炸了": "剧烈头痛"}),
        ("这药yyds，吃完就不疼了，绝绝子", {"yyds": None, "绝绝子": None}),
        ("半夜牙疼死了，真的破防了，栓Q", {"牙疼死了": "剧烈牙痛", "破防了": None, "栓Q": None}),
        ("胃痛死我了，家人们谁懂啊", {"胃痛死我了": "剧烈胃痛", "家人们": None}),
    ],
)
def test_chinese_internet_slang(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_internet_slang, text) == expected


def test_clinical_abbreviations_that_look_like_chat_are_not_slang() -> None:
    assert found(formal.detect_internet_slang, "The RN said to come back if it gets worse") == {}


def test_drug_street_names_are_slang_with_the_generic_name() -> None:
    assert found(formal.detect_internet_slang, "someone slipped me roofies at the party") == {
        "roofies": "flunitrazepam"
    }


# --- dialect --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My mum's been poorly and off her food since Tuesday",
         {"poorly": "unwell", "off her food": "loss of appetite"}),
        ("He's got the sugar and high blood, takes water tablets",
         {"the sugar": "diabetes", "high blood": "hypertension", "water tablets": "diuretics"}),
        ("chesty cough for a week, feeling under the weather and sick to my stomach",
         {"chesty cough": "productive cough", "under the weather": "unwell",
          "sick to my stomach": "nauseated"}),
        ("she has bad nerves and dizzy spells, a bit fainty in the mornings",
         {"bad nerves": "anxiety", "dizzy spells": "episodes of dizziness",
          "fainty": "lightheaded"}),
        ("gippy tummy after the holiday and trouble with my waterworks",
         {"gippy tummy": "diarrhea", "my waterworks": "urination"}),
        ("Got a stitch in my side and a sair heid", {"a stitch": "side pain",
                                                      "sair heid": "headache"}),
        ("I have pressure and take pills for it", {"pressure": "hypertension"}),
    ],
)  # fmt: skip
def test_english_dialect(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_dialect, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("脑壳疼了两天，还打摆子", {"脑壳疼": "头痛", "打摆子": "寒战"}),
        ("昨晚闹肚子，今天拉稀好几次，还发烧", {"闹肚子": "腹泻", "拉稀": "腹泻", "发烧": "发热"}),
        ("嗓子眼干，胳肢窝起疙瘩", {"嗓子眼": "咽喉", "胳肢窝": "腋窝", "起疙瘩": "皮疹"}),
        ("半夜腿肚子转筋，脚脖子也肿了", {"腿肚子转筋": "小腿抽筋", "脚脖子": "踝部"}),
        ("老是心慌，喘不上气，有时候犯迷糊", {"心慌": "心悸", "喘不上气": "呼吸困难",
                                          "犯迷糊": "意识模糊"}),
        ("最近上火了，心口疼", {"上火": None, "心口疼": "上腹痛"}),
    ],
)  # fmt: skip
def test_chinese_dialect(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_dialect, text) == expected


def test_ambiguous_folk_terms_carry_lower_confidence() -> None:
    (finding,) = formal.detect_dialect(Document.of("心口疼"))
    assert finding.confidence < 0.7


def test_blood_sugar_and_chest_pressure_are_not_dialect() -> None:
    assert found(formal.detect_dialect, "My blood sugar level was 7.2 this morning") == {}
    assert found(formal.detect_dialect, "I have pressure in my chest and high blood pressure") == {}


# --- spelling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("had diarea and feaver since friday, very nausious",
         {"diarea": "diarrhea", "feaver": "fever", "nausious": "nauseous"}),
        ("bad headach and stomache pain, cought all night",
         {"headach": "headache", "stomache": "stomach", "cought": "cough"}),
        ("dizzyness and numbnes in my left arm, hard to breth",
         {"dizzyness": "dizziness", "numbnes": "numbness", "breth": "breath"}),
        ("my athsma is worse and I keep vomitting", {"athsma": "asthma",
                                                     "vomitting": "vomiting"}),
        ("sore throte, maybe pnemonia? I have diabetis", {"sore throte": "sore throat",
                                                          "pnemonia": "pneumonia",
                                                          "diabetis": "diabetes"}),
        ("I might be preganant and get migranes", {"preganant": "pregnant",
                                                   "migranes": "migraines"}),
    ],
)  # fmt: skip
def test_english_spelling_errors(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_spelling_error, text) == expected


def test_drug_misspellings_from_redmed_and_the_list() -> None:
    result = found(
        formal.detect_spelling_error, "took ibuprofin and amoxicilin, also on methformin and xoloft"
    )
    assert result["ibuprofin"] == "ibuprofen"  # our list
    assert result["amoxicilin"] == "amoxicillin"
    assert result["methformin"] == "metformin"  # redmed's misspelling columns, generic name
    assert result["xoloft"] == "sertraline"


def test_edit_distance_fallback_is_conservative() -> None:
    assert found(formal.detect_spelling_error, "my ankles are swolllen") == {"swolllen": "swollen"}
    # real words one edit from a clinical term, inflections, names and acronyms stay
    clean = (
        "Never fewer than seven. Couch, rough, kneel, angle, cancel. Coughed, fevers. Dr Swolllen."
    )
    assert found(formal.detect_spelling_error, clean) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("咳簌一个礼拜了，还有点发绕", {"咳簌": "咳嗽", "发绕": "发烧"}),
        ("我有高雪压和糖尿并", {"高雪压": "高血压", "糖尿并": "糖尿病"}),
        ("感帽了，吃了布洛份", {"感帽": "感冒", "布洛份": "布洛芬"}),
        ("对青霉素过明，有孝喘", {"过明": "过敏", "孝喘": "哮喘"}),
        ("味炎犯了，还有心脏并", {"味炎": "胃炎", "心脏并": "心脏病"}),
    ],
)
def test_chinese_spelling_errors(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_spelling_error, text) == expected


def test_chinese_non_typos_are_left_alone() -> None:
    assert (
        found(formal.detect_spelling_error, "拉肚子，头晕晕的，经过明天的检查再说，头运动时疼")
        == {}
    )


# --- clean clinical text --------------------------------------------------------------------

CLEAN_EN = [
    "Patient reports productive cough and fever for 3 days.",
    "Denies chest pain, shortness of breath or haemoptysis. History of hypertension and type 2 "
    "diabetes on metformin. Abdomen soft, non-tender. Impression: community-acquired pneumonia.",
    "I have been feeling tired for two weeks, my knees ache when I climb the stairs and my "
    "blood sugar level was normal. I take ibuprofen occasionally.",
    "The pain started in the middle of my stomach and moved to the lower right side. I vomited "
    "twice this morning and I have no appetite. I stopped smoking in 2019.",
]
CLEAN_ZH = [
    "患者主诉咳嗽、发热三天，伴咽痛，无胸痛、呼吸困难及咯血。",
    "既往高血压病史五年，规律口服氨氯地平。否认糖尿病、心脏病史，否认药物过敏史。",
    "孩子每年春天都会流鼻涕、打喷嚏，今年晚上还会喘，夜里咳醒。",
    "体温38.3℃，咽部充血，双肺呼吸音粗，腹软，无压痛。诊断：急性上呼吸道感染。",
]


@pytest.mark.parametrize("text", CLEAN_EN + CLEAN_ZH)
def test_clean_clinical_text_has_no_formal_findings(text: str) -> None:
    assert subcategories(text) == set()


def test_every_finding_is_a_valid_finding_with_original_offsets() -> None:
    text = "tbh 脑壳疼 and diarea"
    doc = Document.of(text)
    findings: list[Finding] = (
        formal.detect_internet_slang(doc) + formal.detect_dialect(doc)
        + formal.detect_spelling_error(doc)
    )  # fmt: skip
    assert {(f.subcategory, text[f.start : f.end]) for f in findings} == {
        ("formal.internet_slang", "tbh"),
        ("formal.dialect", "脑壳疼"),
        ("formal.spelling_error", "diarea"),
    }


# --- redmed filtering, doctests and speed ---------------------------------------------------


def test_redmed_is_filtered_and_counted() -> None:
    counts = drugs.stats()
    assert counts["misspelling_raw"] > 7000
    assert 3000 < counts["misspelling_kept"] < counts["misspelling_raw"]
    assert counts["slang_kept"] <= 20
    lexicon = drugs.drug_lexicon()
    assert all(len(word) >= 5 for word in lexicon.misspellings)
    for common in ("waking", "never", "angle", "weekend", "balancing"):
        assert common not in lexicon.misspellings


def test_spelling_doctests() -> None:
    assert doctest.testmod(spelling).failed == 0
