"""Red flags: fire on real patient wording (minimised, slang, both languages), never on a
denial or a safe look-alike. CASES doubles as the labelled set for precision/recall."""

from __future__ import annotations

import pytest

from perturbation import emotion, redflags
from perturbation.document import Document
from perturbation.patterns import Branch
from perturbation.redflags import find_red_flags

# (text, flag id that must fire, or None when no red flag may fire)
CASES: list[tuple[str, str | None]] = [
    # cardiac_chest_pain
    ("Crushing chest pain going down my left arm and I'm sweating", "cardiac_chest_pain"),
    ("it's probably nothing but my chest has been really tight and my left arm feels weird",
     "cardiac_chest_pain"),
    ("lol my chest is killing me", "cardiac_chest_pain"),
    ("feels like an elephant sitting on my chest, kinda sweaty and short of breath",
     "cardiac_chest_pain"),
    ("胸口压着疼，还出冷汗", "cardiac_chest_pain"),
    ("胸闷 出冷汗", "cardiac_chest_pain"),
    ("心口疼了一上午", "cardiac_chest_pain"),
    ("胸口有点闷，应该没什么事吧", "cardiac_chest_pain"),
    ("No chest pain, no shortness of breath.", None),
    ("I don't have any chest pain", None),
    ("没有胸痛，也没有气短", None),
    ("胸口不疼", None),
    ("chest day at the gym yesterday and now my chest is sore", None),
    ("this traffic is killing me", None),
    ("练胸之后胸口有点酸痛", None),
    # stroke_signs
    ("my dad's face is drooping on one side and his speech is slurred", "stroke_signs"),
    ("Mum suddenly can't get her words out and her left side feels weak", "stroke_signs"),
    ("probably just tired but my words are coming out jumbled", "stroke_signs"),
    ("我爸嘴歪了，说话不清楚", "stroke_signs"),
    ("奶奶突然半边身子没劲", "stroke_signs"),
    ("爷爷口齿不清，应该没事吧", "stroke_signs"),
    ("No facial droop, no slurred speech, moves all limbs.", None),
    ("没有嘴歪，说话清楚", None),
    ("my face is red from the sun", None),
    # suicidal_ideation_self_harm
    ("honestly I just want to die", "suicidal_ideation_self_harm"),
    ("kms fr", "suicidal_ideation_self_harm"),
    ("everyone would be better off without me lol", "suicidal_ideation_self_harm"),
    ("there's no point living anymore", "suicidal_ideation_self_harm"),
    ("sometimes I think about how to unalive myself", "suicidal_ideation_self_harm"),
    ("不想活了哈哈", "suicidal_ideation_self_harm"),
    ("活着没意思，想死", "suicidal_ideation_self_harm"),
    ("昨晚割腕了", "suicidal_ideation_self_harm"),
    ("Denies suicidal thoughts.", None),
    ("I'm not suicidal, just exhausted", None),
    ("我不想死，我只是很怕", None),
    ("没有自杀的想法", None),
    ("I ran 5 kms this morning", None),
    ("好久不见，想死你了", None),
    ("this exam is killing me", None),
    # anaphylaxis
    ("ate a peanut and now my lips are swelling and I can't breathe", "anaphylaxis"),
    ("throat feels like it's closing up after the bee sting", "anaphylaxis"),
    ("hives everywhere and wheezing after the new antibiotic", "anaphylaxis"),
    ("吃了海鲜以后嘴唇肿，喘不上气", "anaphylaxis"),
    ("打完青霉素喉咙肿，呼吸困难", "anaphylaxis"),
    ("喉咙发紧，好像被堵住了", "anaphylaxis"),
    ("No lip or tongue swelling, no hives.", None),
    ("嘴唇没有肿", None),
    ("喉咙肿痛两天了", None),
    # severe_bleeding
    ("cut my hand and it won't stop bleeding", "severe_bleeding"),
    ("been vomiting blood since this morning", "severe_bleeding"),
    ("black tarry poop for 2 days, probably just the iron tablets", "severe_bleeding"),
    ("soaking through a pad every hour", "severe_bleeding"),
    ("早上吐血了", "severe_bleeding"),
    ("咳血好几天了", "severe_bleeding"),
    ("伤口血止不住", "severe_bleeding"),
    ("这几天拉黑便", "severe_bleeding"),
    ("No vomiting blood, no black stools.", None),
    ("没有吐血，也没有黑便", None),
    ("my nose bled a little but it stopped", None),
    # sepsis
    ("fever of 39 and he's confused and breathing really fast", "sepsis"),
    ("burning up, skin looks mottled and I feel like I'm dying", "sepsis"),
    ("高烧不退，神志不清", "sepsis"),
    ("发烧39度，人有点糊涂，说胡话", "sepsis"),
    ("Fever, no confusion.", None),
    ("发烧两天，精神还可以", None),
    # respiratory_distress
    ("I can't breathe properly, gasping for air", "respiratory_distress"),
    ("his lips are turning blue", "respiratory_distress"),
    ("so breathless I can't finish a sentence", "respiratory_distress"),
    ("喘不上气，感觉要憋死了", "respiratory_distress"),
    ("孩子嘴唇发紫", "respiratory_distress"),
    ("No shortness of breath, breathing comfortably.", None),
    ("没有喘不上气", None),
    ("can't breathe through my nose with this cold", None),
    # meningitis
    ("high fever and a really stiff neck, light hurts my eyes", "meningitis"),
    ("she has a rash that doesn't fade when I press a glass on it", "meningitis"),
    ("脖子僵硬，发烧", "meningitis"),
    ("身上有红点，皮疹按不褪", "meningitis"),
    ("发高烧，怕光，头疼得厉害", "meningitis"),
    ("Fever, neck supple, no rash.", None),
    ("no stiff neck, no fever", None),
    ("脖子不硬，也不发烧", None),
    # obstetric_emergency
    ("I'm 30 weeks pregnant and bleeding heavily", "obstetric_emergency"),
    ("baby hasn't been moving much today, 34 weeks", "obstetric_emergency"),
    ("my waters broke early at 32 weeks", "obstetric_emergency"),
    ("pregnant and I have a really bad headache and blurred vision", "obstetric_emergency"),
    ("怀孕8周，出血了", "obstetric_emergency"),
    ("孕32周，胎动少了", "obstetric_emergency"),
    ("羊水破了，才35周", "obstetric_emergency"),
    ("I'm not pregnant, period is heavy", None),
    ("pregnant, no bleeding, no pain, just tired", None),
    ("怀孕20周，没有出血，一切正常", None),
    # paediatric_emergency
    ("my 6 week old has a fever of 38.2", "paediatric_emergency"),
    ("baby is floppy and not feeding", "paediatric_emergency"),
    ("my son had a seizure this morning", "paediatric_emergency"),
    ("宝宝 发烧 两个月", "paediatric_emergency"),
    ("孩子抽搐了", "paediatric_emergency"),
    ("孩子叫不醒", "paediatric_emergency"),
    ("宝宝不吃奶，软绵绵的", "paediatric_emergency"),
    ("my 4 year old has a runny nose", None),
    ("孩子有点咳嗽，精神很好", None),
    ("baby is feeding well, no fever", None),
    # overdose_poisoning
    ("I took too many pills on purpose", "overdose_poisoning"),
    ("my toddler swallowed bleach", "overdose_poisoning"),
    ("pretty sure I od'd last night", "overdose_poisoning"),
    ("吃了一整瓶药", "overdose_poisoning"),
    ("他喝了农药", "overdose_poisoning"),
    ("昨晚吃多了安眠药", "overdose_poisoning"),
    ("I think it's food poisoning from the takeaway", None),
    ("没有吃过量的药", None),
    ("took my pills as prescribed", None),
    # head_injury
    ("hit my head on the cabinet and now I keep vomiting", "head_injury"),
    ("fell and banged his head, he's confused and drowsy", "head_injury"),
    ("bumped my head, I'm on warfarin", "head_injury"),
    ("摔到头 吐了", "head_injury"),
    ("撞到头 昏迷了一会儿", "head_injury"),
    ("磕到后脑勺，然后一直想吐", "head_injury"),
    ("bumped my head lightly, no vomiting, no confusion", None),
    ("摔到头了，没有呕吐，也没有昏迷", None),
    # more wording seen in real messages (slang, minimising, exact phrasebook forms)
    ("my heart feels like it's being squeezed and my jaw aches, prob just stress",
     "cardiac_chest_pain"),
    ("tbh my chest feels heavy af and im sweating buckets", "cardiac_chest_pain"),
    ("心口像被石头压着，左胳膊发麻", "cardiac_chest_pain"),
    ("heartburn after pizza again", None),
    ("my dad's speech went all weird suddenly and his arm is weak", "stroke_signs"),
    ("妈妈说话突然含糊不清，右边手没力气", "stroke_signs"),
    ("I'm going to kill myself", "suicidal_ideation_self_harm"),
    ("I feel like ending it all tbh", "suicidal_ideation_self_harm"),
    ("I just want to end it all", "suicidal_ideation_self_harm"),
    ("我想自杀", "suicidal_ideation_self_harm"),
    ("活着好累，想结束这一切", "suicidal_ideation_self_harm"),
    ("笑死我了，这个视频", None),
    ("I'm dying of boredom in this waiting room", None),
    ("嘴唇肿 喘不上气", "anaphylaxis"),
    ("喉咙肿了", "anaphylaxis"),
    ("my tongue is swelling up after the shrimp", "anaphylaxis"),
    ("bleeding like crazy and it won't stop", "severe_bleeding"),
    ("大便黑色，像柏油一样", "severe_bleeding"),
    ("高烧 神志不清", "sepsis"),
    ("temp 39.5 and she's not making any sense", "sepsis"),
    ("cant breathe rn", "respiratory_distress"),
    ("喘不上来气了", "respiratory_distress"),
    ("脖子僵硬 发烧", "meningitis"),
    ("neck is so stiff and I have a fever, light hurts", "meningitis"),
    ("She has a history of migraine with light sensitivity.", None),
    ("怀孕 出血", "obstetric_emergency"),
    ("38 weeks pregnant and haven't felt the baby move today", "obstetric_emergency"),
    ("my 3 week old is hot, 38.5", "paediatric_emergency"),
    ("孩子发烧抽筋了", "paediatric_emergency"),
    ("The baby is 10 months old and teething.", None),
    ("my kid swallowed a button battery", "overdose_poisoning"),
    ("孩子误食了药", "overdose_poisoning"),
    ("fell off my bike and hit my head, been throwing up", "head_injury"),
    ("孩子从床上摔下来磕到头，吐了两次", "head_injury"),
    ("no pain in my chest", None),
    ("Patient denies chest pain, shortness of breath, and palpitations.", None),
    ("否认胸痛", None),
    ("I don't want to bother you but chest pain and sweating since lunch", "cardiac_chest_pain"),
    ("既往高血压病史，否认胸痛、胸闷。", None),
    ("否认胸痛、胸闷，但是今天胸口压着疼，出冷汗", "cardiac_chest_pain"),
    ("I have a sore throat and swollen glands.", None),
    ("my lips are swollen and itchy", "anaphylaxis"),
    ("bee sting on my arm, a bit swollen and red", None),
    ("my son bumped his head on the table, he's fine, playing normally", None),
    ("my baby has a temperature of 37.8, she is 8 months old", None),
    ("I don't want to die, I'm just scared of this cough", None),
    ("took 20 paracetamol on purpose last night", "suicidal_ideation_self_harm"),
    ("故意吃了二十片安眠药", "overdose_poisoning"),
    ("heart racing, chest tight. heart attack?? or just stress lol", "cardiac_chest_pain"),
    ("I get breathless on the stairs these days", None),
    ("我老公打呼噜很响，还会憋气", None),
    ("the baby's nappy rash won't go away", None),
    ("feeling better, only the odd headache left", None),
    ("my chest feels tight when I'm anxious but the ECG was normal", None),
    ("my wife had the baby yesterday and is soaking a pad every half hour", "obstetric_emergency"),
    ("我家闺女两岁，喘气特别快，吸气的时候肋骨下面凹进去", "paediatric_emergency"),
    # an early denial does not swallow a later flag in the next clause
    ("I'm not suicidal or anything, I just don't see a reason to wake up",
     "suicidal_ideation_self_harm"),
    ("I'm not suicidal, I just don't want to wake up anymore", "suicidal_ideation_self_harm"),
    ("我没想自杀啊，就是觉得活着没什么意思", "suicidal_ideation_self_harm"),
    ("no fever, she says her chest is crushing and she's sweating", "cardiac_chest_pain"),
    # clearly past history is not a flag; the same symptom now is
    ("had chest pain last year, fine now", None),
    ("I had a seizure as a child, no problems since", None),
    ("去年胸痛过，现在好了", None),
    ("两年前胸口疼过一次，后来就好了", None),
    ("I had chest pain last year and now it's back, crushing, sweating", "cardiac_chest_pain"),
    ("had a heart attack 2 years ago, now crushing chest pain and sweating", "cardiac_chest_pain"),
    ("去年心梗过，今天又胸口压着疼，出冷汗", "cardiac_chest_pain"),
    ("I tried to kill myself two years ago", "suicidal_ideation_self_harm"),
    ("my son had a fever last year, today he is floppy and not feeding", "paediatric_emergency"),
    # clean clinical text and everyday talk must stay silent
    ("Patient reports mild sore throat for two days. No fever.", None),
    ("I've had a runny nose and a bit of a cough for a week", None),
    ("my knee hurts when I climb stairs", None),
    ("最近有点失眠，白天很累", None),
    ("头有点疼，可能是没睡好", None),
]  # fmt: skip


def _ids(text: str) -> list[str]:
    return [flag.id for flag in find_red_flags(Document.of(text))]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_red_flag_cases(text: str, expected: str | None) -> None:
    ids = _ids(text)
    if expected is None:
        assert ids == [], f"{text!r} fired {ids}"
    else:
        assert expected in ids, f"{text!r} missed {expected}, got {ids}"


def test_precision_and_recall_on_cases() -> None:
    tp = fp = fn = 0
    for text, expected in CASES:
        ids = set(_ids(text))
        want = {expected} if expected else set()
        tp += len(ids & want)
        fp += len(ids - want)
        fn += len(want - ids)
    assert tp / (tp + fn) >= 0.95
    assert tp / (tp + fp) >= 0.80


def test_evidence_offsets_point_into_original_text() -> None:
    text = "It's PROBABLY nothing but my Chest is really tight and my left arm is numb"
    (flag,) = find_red_flags(Document.of(text))
    assert text[flag.evidence.start : flag.evidence.end] == flag.evidence.text
    assert flag.evidence.text.startswith("Chest")
    assert flag.urgency == "emergency"


def test_urgency_weaker_evidence_is_urgent_and_emergencies_sort_first() -> None:
    (chest,) = find_red_flags(Document.of("my chest hurts a bit"))
    assert chest.urgency == "urgent"
    flags = find_red_flags(Document.of("chest hurts. also I want to die"))
    assert [f.id for f in flags] == ["suicidal_ideation_self_harm", "cardiac_chest_pain"]
    assert [f.urgency for f in flags] == ["emergency", "urgent"]


def test_one_flag_per_id() -> None:
    flags = find_red_flags(Document.of("I want to die. I want to kill myself. kms"))
    assert [f.id for f in flags] == ["suicidal_ideation_self_harm"]


def test_combination_needs_both_parts_present_and_not_denied() -> None:
    assert _ids("stiff neck after sleeping badly") == []
    assert _ids("fever but no stiff neck") == []
    assert "meningitis" in _ids("fever and stiff neck")


def test_prefilters_never_skip_a_pattern_that_matches() -> None:
    """The literal prefilters read off each regex must be sound: whenever a regex matches a
    message, its branch is among the candidates that get run, and trying it only where its
    keys occur finds every match a full scan finds."""
    sets = [*redflags.tables().en.values(), *redflags.tables().zh.values()]
    for _kind, _strong, cue_sets in emotion.tables().cues:
        sets.extend(cue_sets)
    checked = 0
    extra = [
        "I'M SO SCARED, can't breathe!!",
        "Hi, it's probably nothing. 宝宝3周大 发烧38.5度",
        "my 6 week old has a temp of 38.5, she is 12-week-old? no, 2 month old",
        "孕32周了，宝宝12天大，两个月大的孩子，1个月，十二周大",
    ]
    for text in [t for t, _ in CASES] + extra:
        index = Document.of(text).cue_index
        for branch_set in sets:
            found: dict[Branch, set[tuple[int, int]]] = {}
            for branch, match in branch_set.matches(index):
                found.setdefault(branch, set()).add(match.span())
            for branch in branch_set.branches:
                target = index.lower if branch.english else index.text
                expected = {m.span() for m in branch.regex.finditer(target)}
                if expected:
                    checked += 1
                    assert expected <= found.get(branch, set()), (text, branch.regex.pattern)
    assert checked > 200


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("my son is 34 and has a fever and stiff neck", "meningitis"),
        ("my 34 year old son has a fever and a stiff neck", "meningitis"),
        ("my daughter, 41, has a high fever and a stiff neck", "meningitis"),
        ("my 45 year old husband has a fever and a stiff neck", "meningitis"),
        ("我儿子34岁了，发烧，脖子僵硬", "meningitis"),
        ("34岁的女儿发高烧，脖子很硬", "meningitis"),
    ],
)
def test_a_son_or_daughter_of_adult_age_is_no_child(text: str, flag: str) -> None:
    ids = _ids(text)
    assert flag in ids
    assert "paediatric_emergency" not in ids


@pytest.mark.parametrize(
    "text",
    ["my son is 3 and has a fever and stiff neck", "my 3 year old son has a fever and a stiff neck",
     "儿子3岁，发烧，脖子僵硬"],
)  # fmt: skip
def test_a_young_son_or_daughter_is_a_child(text: str) -> None:
    assert "paediatric_emergency" in _ids(text)


def test_wish_scopes_do_not_hide_a_red_flag() -> None:
    """A negated wish ("I do not want to bother you") denies nothing after it."""
    for opener in ("I do not want to bother you", "I never want to make a fuss", "I don't like"):
        assert "cardiac_chest_pain" in _ids(f"{opener}, crushing chest pain, sweating")


def test_a_denied_chinese_list_cut_by_the_scope_limit_stays_denied() -> None:
    assert _ids("否认胸闷胸痛心悸气短头晕头痛、大汗淋漓伴胸口剧痛") == []
