"""Structural perturbations: perspective, incomplete grammar, reversed order (en and zh)."""

from __future__ import annotations

import pytest

from perturbation.analysis import Finding
from perturbation.document import Document
from perturbation.structural import (
    GRAMMAR,
    ORDER,
    PERSPECTIVE,
    detect_incomplete_grammar,
    detect_perspective_misalignment,
    detect_reversed_order,
    drop_overlaps,
)


def _check_spans(text: str, findings: list[Finding], subcategory: str) -> None:
    for finding in findings:
        assert finding.subcategory == subcategory
        assert text[finding.start : finding.end] == finding.text
        assert 0 < finding.confidence <= 1
        assert finding.correction is None


# --- perspective misalignment --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("my son has had a fever since yesterday and he won't eat", "my son"),
        ("My mum says she feels dizzy when she stands up", "My mum"),
        ("Hi, asking for my husband, he has chest pain", "asking for my husband"),
        ("our baby keeps vomiting after every feed", "our baby"),
        ("My daughter's had a rash on her arms for two days", "My daughter's"),
        ("我儿子发烧两天了", "我儿子"),
        ("帮我妈问一下，她最近老是头晕", "帮我妈问一下"),
        ("我老公他胃疼得厉害", "我老公他"),
        ("孩子咳嗽一个星期了，晚上咳得更厉害", "孩子"),
        ("My dad is 78, he keeps saying his chest feels heavy", "My dad"),
        ("我爸他最近老是胸口疼，他不肯去医院", "我爸他"),
        # informal relations and non-pain complaints
        ("typing this for my mate, he's been coughing all night", "my mate"),
        ("My grandad gets breathless climbing the stairs", "My grandad"),
        ("my lil one has a temp and won't settle", "my lil one"),
        ("My son swallowed a coin an hour ago", "My son"),
        ("我老婆出血一直止不住", "我老婆"),
        ("宝宝拉了一天肚子了", "宝宝"),
        ("我家闺女喘得厉害", "我家闺女"),
    ],
)
def test_perspective_positive(text: str, span: str) -> None:
    findings = detect_perspective_misalignment(Document.of(text))
    _check_spans(text, findings, PERSPECTIVE)
    assert span in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "I have a headache. She also vomited twice.",
        "我头疼得厉害。她还吐了两次。",
    ],
)
def test_person_switch_is_flagged_with_lower_confidence(text: str) -> None:
    findings = detect_perspective_misalignment(Document.of(text))
    _check_spans(text, findings, PERSPECTIVE)
    assert [f.text for f in findings] in (["She"], ["她"])
    assert findings[0].confidence < 0.8


@pytest.mark.parametrize(
    "text",
    [
        "I have had a headache for three days and I took paracetamol.",
        "My husband drove me to the hospital because I had chest pain.",
        "My wife thinks I have the flu.",
        "I got a sore throat last week, my kids had one the week before.",
        "The patient reports a productive cough for five days.",
        "我发烧三天了，吃了布洛芬。",
        "我妈说我发烧了，让我来问问。",
        "患者男，45岁，胸痛2小时。",
    ],
)
def test_perspective_clean(text: str) -> None:
    assert detect_perspective_misalignment(Document.of(text)) == []


# --- incomplete grammar --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fever. cough. 3 days. help", "fever. cough. 3 days. help"),
        ("headache since yesterday bad", "headache since yesterday bad"),
        ("stomach pain vomit", "stomach pain vomit"),
        ("Help. Chest pain. Cant breathe", "Help. Chest pain"),
        ("hi doctor. sore throat and fever since monday. what should i take?",
         "sore throat and fever since monday"),
        ("发烧 咳嗽 三天", "发烧 咳嗽 三天"),
        ("头疼 恶心 想吐", "头疼 恶心 想吐"),
        ("医生，发烧，咳嗽，流鼻涕，难受", "发烧，咳嗽，流鼻涕，难受"),
    ],
)  # fmt: skip
def test_incomplete_grammar_positive(text: str, expected: str) -> None:
    findings = detect_incomplete_grammar(Document.of(text))
    _check_spans(text, findings, GRAMMAR)
    assert expected in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "I have had a headache for three days and I took paracetamol.",
        "Fever and cough for 3 days.",
        "My throat has been sore since Monday. It hurts when I swallow.",
        "Pt c/o chest pain x2 days. Denies SOB. Hx HTN.",
        "Chest pain radiating to the left arm, onset 2 hours ago. Denies nausea.",
        "Thanks, doctor.",
        "我发烧三天了，一直咳嗽，晚上睡不好。",
        "孩子昨天开始拉肚子，今天好一点了。",
        "患者主诉发热3天，体温38.5℃，否认咳嗽。",
    ],
)
def test_incomplete_grammar_clean(text: str) -> None:
    assert detect_incomplete_grammar(Document.of(text)) == []


# --- reversed order ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "marker"),
    [
        ("I'm in pain now, it started after I fell last week, before that I had a cold",
         "before that"),
        ("My knee is swollen now. Before that it was just stiff.", "Before that"),
        ("Today I can't stop coughing, at first it was only a sore throat", "at first"),
        ("I feel dizzy this morning, yesterday I vomited twice", "yesterday"),
        ("现在头疼得厉害，前几天开始咳嗽，在这之前还发过烧", "在这之前"),
        ("一开始是嗓子疼，后来才发烧", "后来才"),
        ("现在胸闷，前几天开始咳嗽", "前几天"),
        ("肚子疼，之前还拉过肚子", "之前还"),
    ],
)  # fmt: skip
def test_reversed_order_positive(text: str, marker: str) -> None:
    findings = detect_reversed_order(Document.of(text))
    _check_spans(text, findings, ORDER)
    assert marker in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "Yesterday I had a fever and today I have a cough.",
        "It all started when I fell last week. Now my knee hurts.",
        "I have had a cough since last week.",
        "The patient developed fever on day 1 and a rash on day 3.",
        "我昨天开始发烧，今天又开始咳嗽。",
        "上周开始咳嗽，这两天又发烧了。",
    ],
)
def test_reversed_order_clean(text: str) -> None:
    assert detect_reversed_order(Document.of(text)) == []


def test_drop_overlaps_keeps_most_confident() -> None:
    a = Finding(ORDER, 0, 10, "x" * 10, 0.6)
    b = Finding(ORDER, 5, 12, "x" * 7, 0.8)
    c = Finding(ORDER, 12, 14, "xx", 0.5)
    assert drop_overlaps([a, b, c]) == [b, c]


# --- subject-dropped and note-like clauses, ages, self-named relations ---------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Been coughing all week, can't sleep", "Been coughing all week"),
        ("Stung by a wasp. My arm is a bit swollen.", "Stung by a wasp"),
        ("Throat hurts when I swallow", "Throat hurts when I swallow"),
        ("Pregnant 20 wks, some spotting", "Pregnant 20 wks"),
        ("My knee is sore, had it for weeks", "had it for weeks"),
        ("头疼4天，吃药不管用", "头疼4天"),
        ("发烧头疼，浑身没劲", "发烧头疼"),
        ("没吐没晕，精神还行", "没吐没晕"),
        ("耳朵疼。周六开始。晚上更重。", "耳朵疼。周六开始。晚上更重。"),
    ],
)
def test_dropped_subjects_and_note_like_clauses(text: str, expected: str) -> None:
    findings = detect_incomplete_grammar(Document.of(text))
    _check_spans(text, findings, GRAMMAR)
    assert expected in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "I fell off my bike yesterday and my wrist is swollen.",
        "My 3 month old has had a cough for two days.",
        "我头疼四天了",
        "我没发烧，也不咳嗽",
        "咳嗽没完没了的，晚上睡不好",
    ],
)
def test_full_clauses_and_set_phrases_are_not_fragments(text: str) -> None:
    assert detect_incomplete_grammar(Document.of(text)) == []


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("my 3 month old won't stop crying and feels hot", "my 3 month old"),
        ("She's been weeing a lot and says it stings", "She's"),
        ("他发高烧一晚上，咳个不停", "他"),
        ("I'm his mum, he has had a rash since Monday", "I'm his mum"),
        ("我是他妈妈，孩子发烧了", "我是他"),
        ("can I give my son calpol for a temperature", "give my son"),
        ("给孩子吃了退烧药还是烧", "给孩子吃"),
        ("The baby's got a nappy rash that won't go away", "The baby's"),
    ],
)
def test_ages_openings_and_self_named_relations(text: str, span: str) -> None:
    findings = detect_perspective_misalignment(Document.of(text))
    _check_spans(text, findings, PERSPECTIVE)
    assert span in [f.text for f in findings]


@pytest.mark.parametrize(
    "text",
    [
        "She said I have a fever and a cough",
        "他们说我可能是感冒了，我头疼",
        "I'm 30 weeks pregnant and the baby hasn't moved today",
        "I watched the kids all day and now I have a headache",
    ],
)
def test_an_opening_pronoun_before_the_writers_own_complaint_is_clean(text: str) -> None:
    assert detect_perspective_misalignment(Document.of(text)) == []
