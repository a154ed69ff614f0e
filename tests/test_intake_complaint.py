"""Chief complaint extraction, the symptom lexicon and its ICD-10-CM codes (en and zh)."""

from __future__ import annotations

import random

import pytest

from perturbation.analysis import ChiefComplaint
from perturbation.complaint import extract_chief_complaint, format_duration, zh_number
from perturbation.document import Document
from perturbation.lexicon import load
from perturbation.symptoms import find_symptoms, icd10cm, tables


def _cc(text: str) -> ChiefComplaint:
    return extract_chief_complaint(Document.of(text))


def _terms(cc: ChiefComplaint, negated: bool) -> list[str]:
    return [s.term for s in cc.symptoms if s.negated is negated]


# --- lexicon and codes ---------------------------------------------------------------


def test_lexicon_is_large_and_every_code_is_valid() -> None:
    cm = icd10cm()
    entries = load("symptoms")["symptoms"]
    assert len(entries) >= 60
    for entry in entries:
        assert entry["en"] and entry["zh"], entry["term"]
        if entry.get("icd10") is not None:
            assert cm.is_valid_item(entry["icd10"]), (entry["term"], entry["icd10"])
    tables()  # the loader validates too: a bad code is a load error


@pytest.mark.parametrize(
    ("term", "words"),
    [
        ("fever", ["fever"]),
        ("cough", ["cough"]),
        ("headache", ["headache"]),
        ("chest pain", ["chest pain"]),
        ("shortness of breath", ["shortness of breath"]),
        ("nausea", ["nausea"]),
        ("vomiting", ["vomiting"]),
        ("diarrhea", ["diarrhea"]),
        ("abdominal pain", ["abdominal pain"]),
        ("dizziness", ["dizziness"]),
        ("fatigue", ["fatigue"]),
        ("sore throat", ["pain in throat"]),
        ("rash", ["rash"]),
        ("palpitations", ["palpitations"]),
        ("back pain", ["dorsalgia"]),
        ("blood in urine", ["hematuria"]),
        ("painful urination", ["dysuria"]),
        ("fainting", ["syncope"]),
        ("nosebleed", ["epistaxis"]),
        ("coughing up blood", ["hemoptysis"]),
        ("itching", ["pruritus"]),
        ("insomnia", ["insomnia"]),
        ("wheezing", ["wheezing"]),
        ("chills", ["chills"]),
        ("loss of appetite", ["anorexia"]),
        ("slurred speech", ["slurred speech"]),
    ],
)
def test_code_descriptions_match_the_term(term: str, words: list[str]) -> None:
    entry = tables().entries[term]
    assert entry.icd10 is not None
    description = icd10cm().get_description(entry.icd10).lower()
    assert all(word in description for word in words), (term, entry.icd10, description)


def test_a_bad_code_is_rejected() -> None:
    from perturbation.lexicon import LexiconError
    from perturbation.symptoms import _validate_code

    with pytest.raises(LexiconError):
        _validate_code("fever", "R50.99X")
    assert _validate_code("fever", None) is None


# --- extraction ----------------------------------------------------------------------


def test_english_complaint() -> None:
    text = "I've had a fever and a cough for 3 days, no vomiting. My tummy hurts a bit."
    cc = _cc(text)
    assert _terms(cc, negated=False) == ["fever", "cough", "abdominal pain"]
    assert _terms(cc, negated=True) == ["vomiting"]
    assert cc.duration == "3 days"
    assert cc.site == "abdomen"
    assert cc.severity == "mild"
    codes = {s.term: s.icd10 for s in cc.symptoms}
    assert codes == {"fever": "R50.9", "cough": "R05.9", "vomiting": "R11.10",
                     "abdominal pain": "R10.9"}  # fmt: skip
    for symptom in cc.symptoms:
        assert text[symptom.start : symptom.end] == symptom.text


def test_chinese_complaint() -> None:
    text = "我发烧三天了，没有咳嗽，肚子好疼，从昨天开始拉肚子"
    cc = _cc(text)
    assert _terms(cc, negated=False) == ["fever", "abdominal pain", "diarrhea"]
    assert _terms(cc, negated=True) == ["cough"]
    assert cc.duration == "3 days"
    assert cc.onset == "yesterday"
    assert cc.site == "abdomen"
    for symptom in cc.symptoms:
        assert text[symptom.start : symptom.end] == symptom.text


@pytest.mark.parametrize(
    ("text", "site", "term"),
    [
        ("my left knee hurts when I walk", "left knee", "knee pain"),
        ("pain in my lower back since Monday", "lower back", "low back pain"),
        ("I have a rash on my arm", "arm", "rash"),
        ("右膝盖疼得厉害", "right knee", "knee pain"),
        ("嗓子疼，咽东西困难", "throat", "sore throat"),
    ],
)
def test_site(text: str, site: str, term: str) -> None:
    cc = _cc(text)
    assert cc.site == site
    assert term in _terms(cc, negated=False)


@pytest.mark.parametrize(
    ("text", "onset"),
    [
        ("Can't breathe since last night", "last night"),
        ("the headache started this morning", "this morning"),
        ("It started 2 days ago with a cough", "2 days ago"),
        ("It started last Monday with a sore throat", "last Monday"),
        ("suddenly got chest pain", "sudden"),
        ("从昨天开始发烧", "yesterday"),
        ("一个半月前开始头晕", "1.5 months ago"),
        ("上周一开始咳嗽", "last Monday"),
        ("突然胸口疼", "sudden"),
    ],
)
def test_onset(text: str, onset: str) -> None:
    assert _cc(text).onset == onset


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("cough for 3 days", "3 days"),
        ("headache for the past two weeks", "2 weeks"),
        ("dizzy for a couple of days", "a couple of days"),
        ("sore throat three days now", "3 days"),
        ("三天了一直发烧", "3 days"),
        ("咳嗽两周了", "2 weeks"),
        ("咳嗽半个月了", "half a month"),
        ("头疼两个星期了", "2 weeks"),
        ("拉肚子十几天了", "10+ days"),
        ("发烧两三天了", "2-3 days"),
        ("腰疼一个多月了", "over 1 month"),
        ("胸闷二十天了", "20 days"),
        ("好几天了，一直咳", "several days"),
        ("每天头疼，已经两个星期了", "2 weeks"),
    ],
)
def test_duration(text: str, duration: str) -> None:
    assert _cc(text).duration == duration


def test_frequencies_and_ago_are_not_durations() -> None:
    assert _cc("头疼，一天三次").duration is None
    assert _cc("two days ago I vomited").duration is None
    assert _cc("two days ago I vomited").onset == "2 days ago"


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("三", "3"), ("两", "2"), ("十", "10"), ("十五", "15"), ("二十三", "23"), ("一百", "100"),
     ("两三", "2-3"), ("几", "a few"), ("好几", "several"), ("十几", "10+"), ("半", "half a")],
)  # fmt: skip
def test_chinese_numerals(numeral: str, value: str) -> None:
    assert zh_number(numeral) == value


def test_format_duration() -> None:
    assert format_duration("1", "day") == "1 day"
    assert format_duration("3", "week") == "3 weeks"
    assert format_duration("half a", "hour") == "half an hour"


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("the worst headache of my life", "severe"),
        ("chest pain, 8/10", "severe"),
        ("mild sore throat", "mild"),
        ("肚子疼得受不了", "severe"),
        ("有点头疼", "mild"),
    ],
)
def test_severity(text: str, severity: str) -> None:
    assert _cc(text).severity == severity


def test_severity_is_not_taken_from_a_denial() -> None:
    assert _cc("the pain is not severe, just a dull headache").severity is None


# --- safety --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "denied", "present"),
    [
        ("no fever", ["fever"], []),
        ("I don't have a headache but my left knee hurts", ["headache"], ["knee pain"]),
        ("denies chest pain or shortness of breath", ["chest pain", "shortness of breath"], []),
        ("without vomiting, but with diarrhoea", ["vomiting"], ["diarrhea"]),
        ("没发烧，就是拉肚子", ["fever"], ["diarrhea"]),
        ("没有咳嗽，也不头疼", ["cough", "headache"], []),
        ("否认胸痛", ["chest pain"], []),
    ],
)
def test_negations_stay_negative(text: str, denied: list[str], present: list[str]) -> None:
    cc = _cc(text)
    assert _terms(cc, negated=True) == denied
    assert _terms(cc, negated=False) == present
    assert all(term not in cc.summary.split("denies")[0] for term in denied)


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("I can't breathe", "shortness of breath"),
        ("no appetite at all", "loss of appetite"),
        ("I can't sleep at night", "insomnia"),
        ("喘不上气", "shortness of breath"),
        ("睡不着觉", "insomnia"),
        ("没胃口", "loss of appetite"),
        ("烧不退", "fever"),
        ("浑身无力", "weakness"),
    ],
)
def test_pseudo_negations_are_present_symptoms(text: str, term: str) -> None:
    assert _terms(_cc(text), negated=False) == [term]


def test_a_denied_and_a_present_mention_are_both_kept() -> None:
    cc = _cc("no fever yesterday, but now I have a fever")
    assert [(s.term, s.negated) for s in cc.symptoms] == [("fever", True), ("fever", False)]


def test_repeated_mentions_keep_the_first_span() -> None:
    text = "Cough all night. The cough is worse. coughing again"
    cc = _cc(text)
    assert [(s.term, s.start) for s in cc.symptoms] == [("cough", 0)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Hello, can I book an appointment for next Tuesday?",
        "我想预约下周二的门诊。",
        "Thanks for your help last time!",
    ],
)
def test_no_symptom_is_invented(text: str) -> None:
    cc = _cc(text)
    assert cc.symptoms == ()
    assert cc.summary == "" or cc.symptoms == ()


def test_only_lexicon_codes_are_reported() -> None:
    cc = _cc("my arm hurts and I have a runny nose")
    codes = {s.term: s.icd10 for s in cc.symptoms}
    assert codes == {"arm pain": None, "runny nose": None}


def test_fast_negation_lookup_is_containment_in_a_scope() -> None:
    """`Document.is_negated` bisects; it must still mean "inside one scope"."""
    rng = random.Random(7)
    for text in [
        "no fever, no cough but I have a headache and don't feel sick, not dizzy either",
        "没发烧，不咳嗽，但是头疼，也没有拉肚子，不想吃饭，无力",
    ]:
        doc = Document.of(text)
        for _ in range(500):
            start = rng.randrange(len(text))
            end = rng.randrange(start, len(text) + 1)
            inside = any(s <= start and end <= e for s, e in doc.negated)
            assert doc.is_negated(start, end) == inside


def test_mentions_do_not_overlap() -> None:
    doc = Document.of("coughing up blood and a bad cough, stomach pain vomit, 肚子疼")
    mentions = find_symptoms(doc)
    for a, b in zip(mentions, mentions[1:], strict=False):
        assert a.end <= b.start
    assert mentions[0].term == "coughing up blood"
