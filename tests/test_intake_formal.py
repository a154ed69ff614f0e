"""Formal perturbations: internet slang, dialect and spelling errors, in English and Chinese."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import pytest

from perturbation import drugs, edit_distance, formal, spelling
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
         {"puking": "vomiting", "lol": None}),
        ("ngl I threw up twice and my hands have pins and needles",
         {"ngl": None, "threw up": "vomited", "pins and needles": "paresthesia"}),
        ("My heart is racing and I can't catch my breath, idk what to do",
         {"My heart is racing": "palpitations", "idk": None}),
        ("I think I'm preggers, so gassy and throwing up every morning smh",
         {"preggers": "pregnant", "gassy": "flatulent", "throwing up": "vomiting", "smh": None}),
        ("Throwing Up since Monday, fr", {"Throwing Up": "vomiting", "fr": None}),
        ("he\u2019s killing me, puking all day",
         {"killing me": "causing severe pain", "puking": "vomiting"}),
        # chat shorthand for ordinary words
        ("feels v hot, thank u, my lil one is fine tho, prob nothing",
         {"v": "very", "u": "you", "lil": "little", "tho": "though", "prob": "probably"}),
        ("My husband's back is killing him", {"killing him": "causing severe pain"}),
        ("Hubby's cough is driving me insane, ppl say wait till tmrw",
         {"Hubby": "husband", "driving me insane": None, "ppl": "people", "tmrw": "tomorrow"}),
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("痒死了，热死了，冻死人了，恶心死了", {"痒死了": None, "热死了": None, "冻死人了": None,
                                          "恶心死了": None}),
        ("救命，嘴巴肿成香肠嘴了哈哈", {"救命": None, "香肠嘴": "嘴唇肿胀", "哈哈": None}),
        ("累成狗，yue了，在线等", {"累成狗": "极度疲劳", "yue了": "恶心", "在线等": None}),
        ("我是不是要挂了", {"要挂了": None}),
    ],
)  # fmt: skip
def test_chinese_hyperbole_and_chat_interjections(
    text: str, expected: dict[str, str | None]
) -> None:
    assert found(formal.detect_internet_slang, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sooo tired coz my chest hurts, srsly", {"sooo": None, "coz": "because",
                                                  "srsly": "seriously"}),
        ("hhhh 笑死，头疼得不行，肿么办", {"hhhh": None, "笑死": None, "肿么办": "怎么办"}),
        ("最近爆肝，压力山大", {"爆肝": "熬夜", "压力山大": "压力很大"}),
    ],
)  # fmt: skip
def test_more_chat_abbreviations_and_held_letters(
    text: str, expected: dict[str, str | None]
) -> None:
    assert found(formal.detect_internet_slang, text) == expected


def test_chinese_slang_is_found_after_a_character_whose_lower_case_is_longer() -> None:
    """`"İ".lower()` is two characters: the Chinese tables must search a lowered copy whose
    offsets are the text's, or every term after it is missed."""
    assert found(formal.detect_internet_slang, "İ 肚子疼死了") == found(
        formal.detect_internet_slang, "肚子疼死了"
    )
    assert found(formal.detect_internet_slang, "İ 肚子疼死了")


def test_numbness_and_web_addresses_are_not_slang() -> None:
    assert found(formal.detect_internet_slang, "腿麻了，手也麻了") == {}
    assert found(formal.detect_internet_slang, "www.nhs.uk says to rest") == {}


def test_chinese_look_alikes_are_not_slang() -> None:
    assert found(formal.detect_internet_slang, "他是我的救命恩人，我要挂了号再去，我爸死了") == {}


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
         {"bad nerves": "anxiety", "fainty": "lightheaded"}),
        ("been having the runs, feeling really rough", {"the runs": "diarrhea",
                                                        "feeling really rough": "feeling unwell"}),
        ("heart going like the clappers, breathing ever so fast",
         {"going like the clappers": "racing", "ever so fast": "very"}),
        ("I reckon I went over on my ankle, she's awfy tired",
         {"I reckon": "I think", "went over on my ankle": "twisted an ankle", "awfy": "very"}),
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
        ("昨晚闹肚子，今天拉稀好几次，还发烧", {"闹肚子": "腹泻", "拉稀": "腹泻"}),
        ("嗓子眼干，夹肢窝起疙瘩", {"嗓子眼": "咽喉", "夹肢窝": "腋窝", "起疙瘩": "皮疹"}),
        ("浑身不得劲，孩子蔫蔫的", {"不得劲": "不适", "蔫蔫": "精神萎靡"}),
        ("半夜腿肚子转筋，脚脖子也肿了", {"腿肚子转筋": "小腿抽筋", "脚脖子": "踝部"}),
        ("老是心慌，上不来气，有时候犯迷糊", {"心慌": "心悸", "上不来气": "呼吸困难",
                                          "犯迷糊": "意识模糊"}),
        ("最近上火了，心口窝不舒服", {"上火": None, "心口窝": "上腹部"}),
    ],
)  # fmt: skip
def test_chinese_dialect(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_dialect, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("me head's banging and I'm proper poorly",
         {"me": "my", "head's banging": "severe headache", "proper": "very", "poorly": "unwell"}),
        ("she's got a wee temperature", {"wee": "little"}),
        ("it's been giving me gyp all week", {"giving me gyp": "causing pain"}),
        ("颈子僵，喉咙管痛", {"颈子": "颈部", "喉咙管": "咽喉"}),
        ("肚皮疼得很，遭不住了", {"肚皮疼": "腹痛", "遭不住": "受不了"}),
        ("贼疼，好几天了", {"贼疼": None}),
    ],
)  # fmt: skip
def test_regional_intensifiers_possessives_and_body_words(
    text: str, expected: dict[str, str | None]
) -> None:
    assert found(formal.detect_dialect, text) == expected


def test_ordinary_me_dead_wee_and_plain_de_hen_are_not_dialect() -> None:
    for text in ["call me back later", "I need to wee a lot", "dead skin on my feet", "疼得很厉害"]:
        assert found(formal.detect_dialect, text) == {}, text


def test_ambiguous_folk_terms_carry_lower_confidence() -> None:
    (finding,) = formal.detect_dialect(Document.of("心口窝"))
    assert finding.confidence < 0.7


def test_common_mandarin_symptom_words_are_not_dialect() -> None:
    # plain spoken Mandarin, not regional wording
    for text in [
        "发烧38度",
        "发高烧一晚上",
        "嗓子疼",
        "喘不上气",
        "胸口闷",
        "心口疼",
        "打哆嗦",
        "人迷迷糊糊的",
        "睡觉憋气",
        "胳肢窝起疹子",
    ]:
        assert found(formal.detect_dialect, text) == {}, text


def test_plain_english_is_not_dialect_or_slang() -> None:
    assert found(formal.detect_dialect, "dizzy spells and a croaky voice") == {}
    assert found(formal.detect_internet_slang, "it hurts when I pee, peeing a lot") == {}
    assert found(formal.detect_internet_slang, "I can't catch my breath") == {}


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
        # missing apostrophes count as spelling errors
        ("I cant sleep, he wont feed and it doesnt fade, im 58",
         {"cant": "can't", "wont": "won't", "doesnt": "doesn't", "im": "I'm"}),
        ("its keeping me awake at nite", {"its": "it's", "nite": "night"}),
        # homophones in context
        ("sum pain in my rite side", {"sum": "some", "rite": "right"}),
        # common words, not only clinical ones
        ("it started yesturday and its been definately wierd", {"yesturday": "yesterday",
                                                           "its": "it's",
                                                           "definately": "definitely",
                                                           "wierd": "weird"}),
    ],
)  # fmt: skip
def test_english_spelling_errors(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_spelling_error, text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bad pian and feever since monday", {"pian": "pain", "feever": "fever"}),
        ("喉龙痛，鼻梯很多", {"喉龙": "喉咙", "鼻梯": "鼻涕"}),
    ],
)
def test_everyday_slips_and_pinyin_homophones(text: str, expected: dict[str, str | None]) -> None:
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
        ("扁桃体发言了，嗓子发严", {"发言": "发炎", "发严": "发炎"}),
        ("老是心荒，胃里饿心，布洛分不管用", {"心荒": "心慌", "饿心": "恶心", "布洛分": "布洛芬"}),
    ],
)
def test_chinese_spelling_errors(text: str, expected: dict[str, str | None]) -> None:
    assert found(formal.detect_spelling_error, text) == expected


def test_english_contextual_slips_leave_real_words_alone() -> None:
    clean = "The dose is IM. Its label says take some. The sum of two. A rite of passage."
    assert found(formal.detect_spelling_error, clean) == {}


def test_homophone_slips_leave_real_words_alone() -> None:
    assert found(formal.detect_spelling_error, "他在会上发言，病情发严重了，饿心慌") == {}


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
    assert doctest.testmod(edit_distance).failed == 0


def test_chinese_prefilter_knows_every_first_character() -> None:
    assert formal._first_chars("(?<![饥肚])饿心(?![慌里])") == {"饿"}
    assert formal._first_chars("(?:我|人)?要挂了") == {"我", "人", "要"}
    assert formal._first_chars("(?P<t>发[言严])") == {"发"}
    assert formal._first_chars("(?:我)?") is None  # may match the empty string: no prefilter
    assert formal._first_chars("\\w+病") is None
