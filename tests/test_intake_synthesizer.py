"""The perturbation synthesizer: deterministic, labelled, and safe for negations and key terms.

Synthetic messages train and test the intake pipeline, so their two safety properties are
checked over many seeds: a denied symptom ("no fever", "没发烧") stays denied, a present
symptom is never turned into a denied one, and every changed key term can be recovered from
the recorded edits.
"""

from __future__ import annotations

import random
import re

import pytest

from perturbation.analysis import Language
from perturbation.document import Document
from perturbation.lexicon import load
from perturbation.synthesizer import Severity, Synthesized, synthesize
from perturbation.taxonomy import BY_ID

SEVERITIES: tuple[Severity, ...] = ("light", "moderate", "heavy")

# (text, denied terms, present terms, key terms)
EN: list[tuple[str, list[str], list[str], list[str]]] = [
    (
        "I have had a headache for 3 days and my temperature was 38.5°C yesterday. "
        "I have no fever now but my stomach really hurts. I took 2 tablets of ibuprofen.",
        ["fever"],
        ["headache"],
        ["headache", "stomach", "ibuprofen"],
    ),
    (
        "My throat is very sore and I feel exhausted. I don't have a cough, and there is no "
        "rash. I've been dizzy for two weeks and I lost my appetite.",
        ["cough", "rash"],
        ["throat"],
        ["throat", "dizzy", "appetite"],
    ),
    (
        "I have diarrhea and nausea since yesterday. No vomiting, no blood in the stool. "
        "I am worried because I have a temperature of 38 degrees.",
        ["vomiting", "blood"],
        ["diarrhea", "nausea"],
        ["diarrhea", "nausea"],
    ),
    (
        "I have no fever, my throat is sore. I was unwell for 4 days and I feel tired.",
        ["fever"],
        ["throat"],
        ["throat"],
    ),
]
ZH: list[tuple[str, list[str], list[str], list[str]]] = [
    (
        "我头疼三天了，昨天量体温38.5度。现在没发烧，但是肚子很疼。吃了两片布洛芬。没有拉肚子。",
        ["发烧", "拉肚子"],
        ["头疼"],
        ["头疼", "肚子", "布洛芬"],
    ),
    (
        "我咳嗽两个星期了，喉咙发炎。不发烧，也没有呕吐。晚上睡不好，特别累。",
        ["发烧", "呕吐"],
        ["咳嗽"],
        ["咳嗽", "喉咙", "累"],
    ),
    (
        "我妈头晕好几天了，今天恶心。没有胸痛，没有气短。我很担心她。",
        ["胸痛", "气短"],
        ["头晕"],
        ["头晕", "恶心"],
    ),
]
SAMPLES: list[tuple[Language, str, list[str], list[str], list[str]]] = [
    ("en", *sample) for sample in EN
] + [("zh", *sample) for sample in ZH]


def _spans_valid(result: Synthesized) -> None:
    for edit in result.edits:
        start, end = edit.span
        assert 0 <= start <= end <= len(result.text)
        assert result.text[start:end] == edit.text, edit
        assert edit.subcategory in result.labels


def _occurrences(text: str, term: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(re.escape(term), text, re.IGNORECASE)]


def _restore(result: Synthesized) -> str:
    """Undo every recorded edit, right to left (insertions vanish, replacements revert)."""
    text = result.text
    for edit in sorted(result.edits, key=lambda e: e.span, reverse=True):
        start, end = edit.span
        text = text[:start] + edit.original + text[end:]
    return text


@pytest.mark.parametrize("language", ["en", "zh"])
def test_same_seed_same_output_and_seeds_differ(language: str) -> None:
    text = EN[0][0] if language == "en" else ZH[0][0]
    for severity in SEVERITIES:
        assert synthesize(text, None, severity, seed=7) == synthesize(text, None, severity, 7)
    outputs = {synthesize(text, None, "moderate", seed).text for seed in range(12)}
    assert len(outputs) > 6


def test_global_random_state_untouched() -> None:
    random.seed(123)
    expected = random.random()
    random.seed(123)
    synthesize(EN[0][0], None, "heavy", seed=5)
    assert random.random() == expected


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("subcategory", sorted(BY_ID))
def test_each_subcategory_applies_and_is_labelled(language: str, subcategory: str) -> None:
    text = EN[0][0] if language == "en" else ZH[0][0]
    for seed in range(5):
        for severity in SEVERITIES:
            result = synthesize(text, [subcategory], severity, seed)
            assert result.labels == (subcategory,)
            assert result.text != text and result.original == text
            assert result.language == language
            assert result.edits and {e.subcategory for e in result.edits} == {subcategory}
            _spans_valid(result)


def test_examples_from_the_brief() -> None:
    assert "tummy" in synthesize("My stomach hurts.", ["formal.internet_slang"], "light").text
    assert "脑壳疼" in synthesize("我头疼。", ["formal.dialect"], "light").text
    typo = synthesize("I have diarrhea.", ["formal.spelling_error"], "light")
    assert "diarea" in typo.text and typo.edits[0].original == "diarrhea"
    assert "咳簌" in synthesize("我咳嗽。", ["formal.spelling_error"], "light").text
    zh_vague = synthesize("头疼三天了。", ["contextual.vague_expression"], "light").text
    assert "三天" not in zh_vague and "几天" in zh_vague
    vague = synthesize("It started 3 days ago.", ["contextual.vague_expression"], "light")
    assert "3 days" not in vague.text and vague.edits[0].original == "3 days"
    order = synthesize("I had a cough. Then a fever.", ["structural.reversed_order"]).text
    assert order.startswith("Then a fever.")
    assert any(ref in order for ref in load("synth")["en"]["backward_refs"])
    zh_order = synthesize("先咳嗽。后发烧。", ["structural.reversed_order"], seed=0).text
    assert zh_order.startswith("后发烧。") and "之前" in zh_order


def test_severity_scales_number_of_labels() -> None:
    text = EN[0][0]
    means = {}
    for severity in SEVERITIES:
        counts = [len(synthesize(text, None, severity, seed).labels) for seed in range(40)]
        means[severity] = sum(counts) / len(counts)
        if severity == "light":
            assert set(counts) == {1}
        if severity == "heavy":
            assert min(counts) >= 4 and max(counts) <= 6
    assert means["light"] < means["moderate"] < means["heavy"]


def test_severity_scales_spelling_errors() -> None:
    text = EN[1][0]
    light = synthesize(text, ["formal.spelling_error"], "light", 3)
    heavy = synthesize(text, ["formal.spelling_error"], "heavy", 3)
    assert len(light.edits) == 1 < len(heavy.edits) <= 4


@pytest.mark.parametrize(("language", "text", "denied", "present", "key_terms"), SAMPLES)
def test_negations_survive_every_perturbation(
    language: Language, text: str, denied: list[str], present: list[str], key_terms: list[str]
) -> None:
    del key_terms
    original = Document(text, language)
    for term in denied:  # the fixtures themselves must say what they claim
        assert all(original.is_negated(*span) for span in _occurrences(text, term)), term
    heavy: Severity = "heavy"
    runs: list[tuple[list[str] | None, Severity]] = [(None, severity) for severity in SEVERITIES]
    runs += [([sub], heavy) for sub in BY_ID]
    for seed in range(25):
        for subs, severity in runs:
            result = synthesize(text, subs, severity, seed, language)
            doc = Document(result.text, language)
            for term in denied:
                spans = _occurrences(result.text, term)
                assert len(spans) == len(_occurrences(text, term)), (term, result.text)
                assert all(doc.is_negated(*span) for span in spans), (term, result.text)
            for term in present:
                for span in _occurrences(result.text, term):
                    assert not doc.is_negated(*span), (term, result.text)


@pytest.mark.parametrize(("language", "text", "denied", "present", "key_terms"), SAMPLES)
def test_key_terms_recoverable_from_edits(
    language: Language, text: str, denied: list[str], present: list[str], key_terms: list[str]
) -> None:
    del denied, present
    word_level = [s for s in BY_ID if s != "structural.reversed_order"]
    for seed in range(25):
        result = synthesize(text, word_level, "heavy", seed, language)
        _spans_valid(result)
        restored = _restore(result).lower()
        for term in key_terms:
            assert term.lower() in restored, (term, result.text)
        spelling = [e for e in result.edits if e.subcategory == "formal.spelling_error"]
        assert len(spelling) <= 4  # none when earlier edits took every eligible word
        for edit in spelling:
            assert edit.original and edit.text != edit.original


def test_spelling_round_trip_is_exact() -> None:
    for language, text, *_ in SAMPLES:
        for seed in range(20):
            result = synthesize(text, ["formal.spelling_error"], "heavy", seed, language)
            assert _restore(result) == text


def test_reversal_keeps_every_sentence() -> None:
    for language, text, *_ in SAMPLES:
        result = synthesize(text, ["structural.reversed_order"], "heavy", 1, language)
        for edit in result.edits:
            assert edit.original == ""
        pieces = re.split(r"(?<=[.。])\s*", text.rstrip("。."))
        for piece in filter(None, pieces):
            assert piece.strip(" .。")[1:] in result.text


def test_inserted_phrases_never_negate_what_follows() -> None:
    """A lead-in like 'Sorry to bother you, ' must not open a negation over the symptom."""
    probes: tuple[tuple[Language, str, str], ...] = (
        ("en", "I have a fever.", "fever"),
        ("zh", "我发烧了。", "发烧"),
    )
    for language, probe, term in probes:
        lex = load("synth")[language]
        phrases = [
            *lex["positive"],
            *lex["negative"],
            *lex["repressed_prefixes"],
            *lex["repressed_suffixes"],
            *lex["irrelevant"],
            *lex["slang_prefixes"],
            *lex["dialect_prefixes"],
            *lex["backward_refs"],
        ]
        phrases += [p.format(noun="X") for p in lex["perspective_prefixes"]]
        phrases += [
            t.format(x=c)
            for t in lex["misdiagnosis_templates"]
            for options in lex["misdiagnosis_conditions"].values()
            for c in options
        ]
        for phrase in phrases:
            text = phrase + ("" if language == "zh" or phrase.endswith(" ") else " ") + probe
            doc = Document(text, language)
            start = text.rindex(term)
            assert not doc.is_negated(start, start + len(term)), phrase


def test_empty_and_blank_text() -> None:
    for text in ("", "   ", "\n"):
        result = synthesize(text, None, "heavy", 1)
        assert result.text == text and result.labels == () and result.edits == ()
    assert synthesize("", ["formal.dialect"], language="zh").language == "zh"


def test_single_clause_cannot_be_reversed() -> None:
    result = synthesize("Headache", ["structural.reversed_order", "emotional.positive"])
    assert result.labels == ("emotional.positive",)


def test_very_long_text() -> None:
    for language, text, denied, *_ in SAMPLES[:1] + SAMPLES[-1:]:
        long_text = (" " if language == "en" else "").join([text] * 40)
        result = synthesize(long_text, None, "heavy", 2, language)
        assert len(result.text) >= len(long_text) * 0.9 and result.labels
        _spans_valid(result)
        doc = Document(result.text, language)
        for term in denied:
            assert all(doc.is_negated(*span) for span in _occurrences(result.text, term))


def test_rejects_unknown_subcategory_and_severity() -> None:
    with pytest.raises(ValueError, match="unknown perturbation subcategory"):
        synthesize("I have a cough.", ["formal.typo"])
    with pytest.raises(ValueError, match="severity"):
        synthesize("I have a cough.", None, "extreme")  # type: ignore[arg-type]


def test_negation_scopes_survive_on_the_dev_set_corpus() -> None:
    """Property check over ~400 realistic messages: every denied span stays denied."""
    import json
    from pathlib import Path

    rows = Path(__file__).with_name("data").joinpath("intake_dev.jsonl").read_text("utf-8")
    for line_no, line in enumerate(rows.splitlines()):
        row = json.loads(line)
        language, text = row["language"], row["text"]
        scopes = [text[s:e] for s, e in Document(text, language).negated if text[s:e].strip()]
        for seed in (line_no, line_no + 1000):
            result = synthesize(text, None, "heavy", seed, language)
            doc = Document(result.text, language)
            for scope in scopes:
                spans = [(m.start(), m.end()) for m in re.finditer(re.escape(scope), result.text)]
                assert any(doc.is_negated(*span) for span in spans), (scope, text, result.text)
