"""Contextual perturbations: self-diagnosis, irrelevant detail, vague wording (en and zh)."""

from __future__ import annotations

import pytest

from perturbation.analysis import Finding
from perturbation.contextual import (
    IRRELEVANT,
    MISDIAGNOSIS,
    VAGUE,
    detect_irrelevant_information,
    detect_subjective_misdiagnosis,
    detect_vague_expression,
)
from perturbation.document import Document


def _check_spans(text: str, findings: list[Finding], subcategory: str) -> None:
    for finding in findings:
        assert finding.subcategory == subcategory
        assert text[finding.start : finding.end] == finding.text
        assert 0 < finding.confidence <= 1
        assert finding.correction is None  # never corrected: the patient's words stay


# --- subjective misdiagnosis ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("I have diabetes, I googled it", "diabetes"),
        ("pretty sure it's a heart attack", "heart attack"),
        ("I think I have COVID, my chest feels tight", "COVID"),
        ("it's definitely my appendix, the pain is on the right", "appendix"),
        ("Dr Google says it's cancer", "cancer"),
        ("I reckon it's a UTI again", "UTI"),
        ("我觉得是胃炎", "胃炎"),
        ("我查了一下应该是胃溃疡", "胃溃疡"),
        ("肯定是阑尾炎，右下腹疼", "阑尾炎"),
        ("百度说是肠胃炎", "肠胃炎"),
        ("我怀疑我得了糖尿病，老是口渴", "糖尿病"),
        ("我感觉我是得了抑郁症，网上的测试说是中度", "抑郁症"),
        ("I think I have IBS, I read about it on reddit.", "IBS"),
        # hedged everyday self-explanations
        ("bloated after dinner, probably just indigestion", "indigestion"),
        ("my legs feel heavy, think it's my sugar again", "sugar"),
        ("Tingly fingers at night, maybe carpal tunnel?", "carpal tunnel"),
        ("knee swollen after football, sure it's just sprained", "sprained"),
        ("胃里烧得慌，估计是消化不良", "消化不良"),
        ("脖子转不动，我寻思是落枕了", "落枕"),
        ("头疼了三天，我看是没睡好吧", "没睡好"),
        ("脚踝肿了，肯定就是扭了一下", "扭了"),
    ],
)
def test_misdiagnosis_positive(text: str, contains: str) -> None:
    findings = detect_subjective_misdiagnosis(Document.of(text))
    _check_spans(text, findings, MISDIAGNOSIS)
    assert any(contains in f.text for f in findings)


@pytest.mark.parametrize(
    ("with_source", "without_source"),
    [
        ("I googled it and I think it's the flu", "I think it's the flu"),
        ("我在网上查了，我觉得是胃炎", "我觉得是胃炎"),
    ],
)
def test_a_cited_source_raises_confidence(with_source: str, without_source: str) -> None:
    cited = detect_subjective_misdiagnosis(Document.of(with_source))
    plain = detect_subjective_misdiagnosis(Document.of(without_source))
    assert cited and plain
    assert max(f.confidence for f in cited) > max(f.confidence for f in plain)


@pytest.mark.parametrize(
    "text",
    [
        "My doctor diagnosed me with diabetes last year.",
        "I think I have a fever and a sore throat.",
        "I was told it was a sprain at the walk-in centre.",
        "Patient has a history of asthma and hypertension.",
        "医生说是胃炎，开了奥美拉唑。",
        "我觉得头很晕。",
        "去年确诊糖尿病，一直吃二甲双胍。",
    ],
)
def test_misdiagnosis_clean(text: str) -> None:
    assert detect_subjective_misdiagnosis(Document.of(text)) == []


# --- irrelevant information ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("I'm going on holiday next week. I have had a headache for 3 days.",
         "I'm going on holiday next week"),
        ("My team won the match last night! Anyway my knee hurts.",
         "My team won the match last night"),
        ("My boss is so annoying. I keep getting chest pain.", "My boss is so annoying"),
        ("我下周要去旅游，最近头疼。", "我下周要去旅游"),
        ("我家猫特别可爱。我咳嗽一周了", "我家猫特别可爱"),
        ("老板很烦，最近胃疼", "老板很烦"),
    ],
)  # fmt: skip
def test_irrelevant_positive(text: str, span: str) -> None:
    findings = detect_irrelevant_information(Document.of(text))
    _check_spans(text, findings, IRRELEVANT)
    assert span in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        # travel, animals and work can be exposures: a clinical hook keeps them
        "I went on holiday to Thailand last month. Now I have a fever.",
        "My dog bit me yesterday and the wound is red.",
        "My cat scratched my hand and now it is swollen.",
        "I've had diarrhoea since the trip.",
        "I work with chemicals and my skin is itchy.",
        "I have a headache and a fever.",
        "我上个月去泰国旅游回来就开始发烧。",
        "被家里的狗咬了一口，伤口红肿。",
        "同事上周确诊流感，我现在也咳嗽。",
    ],
)
def test_irrelevant_clean(text: str) -> None:
    assert detect_irrelevant_information(Document.of(text)) == []


# --- vague expression ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I have a bit of a headache", ["a bit"]),
        ("it kind of hurts somewhere in my belly", ["kind of", "somewhere"]),
        ("I've been coughing for a while, sometimes at night", ["for a while", "sometimes"]),
        ("took some pills a few days ago", ["some pills", "a few days"]),
        ("lots of phlegm on and off", ["lots of", "on and off"]),
        ("有点头疼，好几天了", ["有点", "好几天"]),
        ("肚子一阵一阵的疼，有时候还恶心", ["一阵一阵", "有时候"]),
        ("吃了一些药，哪里都疼，老是睡不着", ["一些药", "哪里都疼", "老是"]),
    ],
)
def test_vague_positive(text: str, expected: list[str]) -> None:
    findings = detect_vague_expression(Document.of(text))
    _check_spans(text, findings, VAGUE)
    texts = [f.text for f in findings]
    for phrase in expected:
        assert phrase in texts


def test_vague_prefers_the_longer_cue() -> None:
    findings = detect_vague_expression(Document.of("it hurts a little bit"))
    assert [f.text for f in findings] == ["a little bit"]


@pytest.mark.parametrize(
    "text",
    [
        "I have had a fever of 38.5 for 3 days.",
        "The pain is in the right lower abdomen and started 6 hours ago.",
        "Patient reports a productive cough for five days.",
        "我发烧三天了，体温38.5度。",
        "右下腹疼，从今天早上六点开始。",
    ],
)
def test_vague_clean(text: str) -> None:
    assert detect_vague_expression(Document.of(text)) == []


@pytest.mark.parametrize(
    "text",
    [
        "the doctor said it's probably just a cold",
        "my GP says it's most likely indigestion",
        "I don't think it's my sugar, it's been fine",
        "I'm not sure it's the flu",
        "我不觉得是胃炎",
        "医生说估计是消化不良",
    ],
)
def test_misdiagnosis_not_flagged_when_ruled_out_or_reported(text: str) -> None:
    assert detect_subjective_misdiagnosis(Document.of(text)) == []


# --- stated, inherited, recurring and blamed self-diagnoses --------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("I've got a chest infection, coughing up green stuff", "I've got a chest infection"),
        ("得了流感一个星期了，浑身疼", "得了流感"),
        ("My dad had Parkinson's so I think I have it too", "I think I have it too"),
        ("我爸有帕金森，我估计我也是", "我估计我也是"),
        ("my sinus infection is back after the antibiotics", "sinus infection is back"),
        ("偏头痛又犯了，疼得睁不开眼", "偏头痛又犯了"),
        ("中耳炎要不要吃抗生素", "中耳炎要不要吃"),
        ("hives all over after the new washing powder", "after the new washing powder"),
        ("拉肚子，昨晚吃坏了", "吃坏了"),
    ],
)
def test_stated_inherited_recurring_and_blamed_diagnoses(text: str, span: str) -> None:
    findings = detect_subjective_misdiagnosis(Document.of(text))
    _check_spans(text, findings, MISDIAGNOSIS)
    assert span in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "The doctor said I've got a chest infection",
        "I have a cough and an appointment next week about my diabetes",
        "医生说我得了流感",
        "我头疼三天了",
    ],
)
def test_reported_or_unnamed_conditions_are_not_self_diagnoses(text: str) -> None:
    assert detect_subjective_misdiagnosis(Document.of(text)) == []


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("So my knee has been stiff, the views were stunning.", "the views were stunning"),
        ("Hubby's snoring drives me mad, but my actual question is about my periods.",
         "Hubby's snoring drives me mad"),
        ("膝盖有点僵，上周去爬山了，风景绝了", "风景绝了"),
        ("家里装修吵得要命，言归正传，我最近老是头疼", "家里装修吵得要命"),
    ],
)  # fmt: skip
def test_asides_in_a_clause_and_before_a_return_to_the_point(text: str, span: str) -> None:
    findings = detect_irrelevant_information(Document.of(text))
    _check_spans(text, findings, IRRELEVANT)
    assert span in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "I got back from Spain last week, now I have a rash on my legs",
        "Hit my head snowboarding, now I feel sick",
        "刚从海边回来，身上起了疹子",
    ],
)
def test_exposures_and_injuries_in_a_clause_are_not_asides(text: str) -> None:
    assert detect_irrelevant_information(Document.of(text)) == []


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("had a sore throat for ages", "for ages"),
        ("it lasted about 10 minutes", "about 10 minutes"),
        ("吃了好几颗", "好几"),
        ("说不出话有十来分钟", "十来"),
        ("便秘一个礼拜左右", "左右"),
    ],
)
def test_rough_quantities_are_vague(text: str, span: str) -> None:
    findings = detect_vague_expression(Document.of(text))
    _check_spans(text, findings, VAGUE)
    assert span in [f.text for f in findings]
