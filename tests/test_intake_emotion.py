"""Emotion perception: labels, intensity, and the three emotional subcategories, in English
and Chinese, with negation safety and clean clinical text staying neutral."""

from __future__ import annotations

import pytest

from perturbation.analysis import Finding
from perturbation.document import Document
from perturbation.emotion import perceive


def _run(text: str) -> tuple[str, float, list[Finding]]:
    emotion, findings = perceive(Document.of(text))
    return emotion.label, emotion.intensity, findings


def _subs(findings: list[Finding]) -> set[str]:
    return {f.subcategory for f in findings}


LABELS: list[tuple[str, str]] = [
    # positive
    ("thanks so much doc, feeling much better today", "positive"),
    ("Thank you! The new inhaler is working and I'm feeling better", "positive"),
    ("so relieved the scan was clear, appreciate your help", "positive"),
    ("谢谢医生，好多了", "positive"),
    ("吃了药以后好转了，非常感谢", "positive"),
    ("放心了，太感谢了", "positive"),
    # negative
    ("I'm terrified, my chest hurts so much!!!", "negative"),
    ("so scared, the rash keeps spreading", "negative"),
    ("freaking out about this lump", "negative"),
    ("honestly fed up with this cough, nothing works", "negative"),
    ("好害怕，肚子疼得厉害", "negative"),
    ("急死了，孩子一直发烧", "negative"),
    ("咳了一个月了，烦死了", "negative"),
    ("我快崩溃了，天天失眠", "negative"),
    # repressed: minimising alongside symptoms, even with mild negative cues
    ("it's probably nothing but my chest has been really tight", "repressed"),
    ("I don't want to bother anyone, it's just a little pain in my side", "repressed"),
    ("a bit worried but I'm sure it's nothing, my head aches", "repressed"),
    ("didn't want to make a fuss but I've been coughing blood", "repressed"),
    ("胸口有点闷，应该没什么事吧", "repressed"),
    ("不想麻烦你们，就是有点头疼，忍一忍就好了", "repressed"),
    ("小毛病，肚子有点疼，有点担心", "repressed"),
    # mixed: strong positive and strong negative together
    ("thank you so much, but I'm terrified about the results", "mixed"),
    ("非常感谢，可是我真的吓死了", "mixed"),
    # neutral: clean clinical text, plain questions, negated feelings
    ("Patient reports mild sore throat for two days. No fever.", "neutral"),
    ("What is the usual dose of amoxicillin for adults?", "neutral"),
    ("I'm not scared, just want to know the side effects", "neutral"),
    ("咳嗽三天，无发热。", "neutral"),
    ("我不害怕，只是想问问", "neutral"),
    ("麻烦您看一下这个报告", "neutral"),
]


@pytest.mark.parametrize(("text", "label"), LABELS)
def test_labels(text: str, label: str) -> None:
    got, intensity, _ = _run(text)
    assert got == label, text
    assert (intensity == 0.0) == (label == "neutral")
    assert 0.0 <= intensity <= 1.0


@pytest.mark.parametrize(
    ("text", "subcategory", "cue"),
    [
        ("thanks so much doc", "emotional.positive", "thanks so much"),
        ("feeling much better now", "emotional.positive", "feeling much better"),
        ("谢谢医生", "emotional.positive", "谢谢"),
        ("现在好多了", "emotional.positive", "好多了"),
        ("I'm terrified", "emotional.negative", "terrified"),
        ("so scared right now", "emotional.negative", "scared"),
        ("freaking out", "emotional.negative", "freaking out"),
        ("fed up with it", "emotional.negative", "fed up"),
        ("我好害怕", "emotional.negative", "害怕"),
        ("急死了", "emotional.negative", "急死了"),
        ("我崩溃了", "emotional.negative", "崩溃"),
        ("烦死了", "emotional.negative", "烦死了"),
        ("it's probably nothing", "emotional.repressed", "it's probably nothing"),
        ("I don't want to bother anyone", "emotional.repressed", "don't want to bother"),
        ("I'm fine really", "emotional.repressed", "I'm fine really"),
        ("just a little sore", "emotional.repressed", "just a little"),
        ("I'm sure it's nothing", "emotional.repressed", "I'm sure it's nothing"),
        ("didn't want to make a fuss", "emotional.repressed", "didn't want to make a fuss"),
        ("没什么大事", "emotional.repressed", "没什么大事"),
        ("应该没事吧", "emotional.repressed", "应该没事吧"),
        ("不想麻烦你们", "emotional.repressed", "不想麻烦你们"),
        ("忍一忍就好了", "emotional.repressed", "忍一忍就好了"),
        ("老胃病，小毛病", "emotional.repressed", "小毛病"),
    ],
)
def test_findings_have_exact_spans_and_no_correction(text: str, subcategory: str, cue: str) -> None:
    _, _, findings = _run(text)
    matching = [f for f in findings if f.subcategory == subcategory]
    assert matching, f"{text!r}: no {subcategory} in {findings}"
    finding = matching[0]
    assert finding.text == cue
    assert text[finding.start : finding.end] == finding.text
    assert finding.correction is None
    assert 0.0 < finding.confidence <= 1.0


@pytest.mark.parametrize(
    "text",
    ["not scared at all", "I'm not worried", "我不害怕", "没有担心", "not feeling better"],
)
def test_negated_feelings_are_not_cues(text: str) -> None:
    _, _, findings = _run(text)
    assert not _subs(findings) & {"emotional.negative", "emotional.positive"}


def test_intensity_rises_with_intensifiers_punctuation_and_caps() -> None:
    _, plain, _ = _run("I'm scared about the pain")
    _, intensified, _ = _run("I'm really scared about the pain")
    _, shouted, _ = _run("I'M REALLY SCARED ABOUT THE PAIN!!!")
    assert 0 < plain < intensified < shouted <= 1.0
    _, zh_plain, _ = _run("有点担心")
    _, zh_strong, _ = _run("非常担心，快疯了！！")
    assert zh_plain < zh_strong


def test_evidence_supports_the_label() -> None:
    emotion, _ = perceive(Document.of("thank you so much, but I'm terrified"))
    assert {span.text for span in emotion.evidence} == {"thank you so much", "terrified"}
    emotion, _ = perceive(
        Document.of("it's probably nothing, but I'm a bit worried, my chest hurts")
    )
    assert emotion.label == "repressed"
    assert [span.text for span in emotion.evidence] == ["it's probably nothing"]


def test_minimising_without_symptoms_is_reported_but_not_the_label() -> None:
    label, _, findings = _run("I'm fine really, just a question about my prescription")
    assert label == "neutral"
    assert "emotional.repressed" in _subs(findings)
