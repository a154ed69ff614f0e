"""A small English + Chinese clinical-style corpus to train the tiny model's tokenizer on.

The tiny model's tokenizer must be real (trained BPE, byte-level so any text round-trips) but
self-contained: no download, no vendored vocab file. This text is generated from short word lists
so it is a few tens of KB, deterministic, and rich enough in distinct words for ~2000 merges.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import cycle

SYMPTOMS_EN = [
    "fever",
    "cough",
    "headache",
    "chest pain",
    "shortness of breath",
    "nausea",
    "vomiting",
    "diarrhea",
    "abdominal pain",
    "dizziness",
    "fatigue",
    "rash",
    "sore throat",
    "back pain",
    "joint pain",
    "palpitations",
    "swelling of the ankles",
    "blurred vision",
    "night sweats",
    "weight loss",
    "loss of appetite",
    "burning on urination",
    "wheezing",
    "chills",
    "insomnia",
    "numbness in the left arm",
    "confusion",
    "runny nose",
    "muscle aches",
    "itching",
]
DRUGS = [
    "paracetamol",
    "ibuprofen",
    "amoxicillin",
    "metformin",
    "lisinopril",
    "atorvastatin",
    "omeprazole",
    "salbutamol",
    "insulin glargine",
    "warfarin",
    "apixaban",
    "prednisolone",
    "azithromycin",
    "amlodipine",
    "levothyroxine",
    "sertraline",
    "furosemide",
    "aspirin",
    "clopidogrel",
    "doxycycline",
    "ceftriaxone",
    "losartan",
    "gabapentin",
    "tramadol",
]
CONDITIONS_EN = [
    "type 2 diabetes",
    "hypertension",
    "asthma",
    "COPD",
    "heart failure",
    "atrial fibrillation",
    "pneumonia",
    "urinary tract infection",
    "migraine",
    "gastroenteritis",
    "hypothyroidism",
    "chronic kidney disease",
    "depression",
    "anemia",
    "osteoarthritis",
    "influenza",
    "sepsis",
    "deep vein thrombosis",
    "pulmonary embolism",
    "stroke",
    "angina",
    "gout",
    "eczema",
]
DURATIONS_EN = [
    "since yesterday",
    "for three days",
    "for two weeks",
    "since this morning",
    "for a month",
    "on and off for a year",
    "after eating",
    "at night",
    "when climbing stairs",
    "after the flight",
]
PEOPLE_EN = [
    "A 54-year-old man",
    "A 23-year-old woman",
    "A 7-year-old child",
    "An 81-year-old woman",
    "A pregnant woman at 32 weeks",
    "A 45-year-old teacher",
    "A 67-year-old smoker",
    "A 30-year-old runner",
    "An elderly patient",
    "A 12-month-old infant",
]
ADVICE_EN = [
    "Seek emergency care immediately if the pain spreads to the jaw or arm.",
    "Check the blood pressure twice a day and keep a written record.",
    "Drink plenty of fluids and rest; return if the fever lasts more than three days.",
    "Do not take two products that both contain paracetamol.",
    "The dose should be reduced when the kidney function is impaired.",
    "Review the medication list for interactions before prescribing.",
    "Guidelines recommend a chest X-ray and a full blood count.",
    "Refer to a specialist if symptoms do not improve after two weeks of treatment.",
    "Measure HbA1c every three months until the target is reached.",
    "Call an ambulance: sudden weakness on one side of the face is a warning sign of stroke.",
]
SYMPTOMS_ZH = [
    "发热",
    "咳嗽",
    "头痛",
    "胸痛",
    "呼吸困难",
    "恶心",
    "呕吐",
    "腹泻",
    "腹痛",
    "头晕",
    "乏力",
    "皮疹",
    "咽喉痛",
    "腰痛",
    "关节痛",
    "心悸",
    "脚踝水肿",
    "视物模糊",
    "盗汗",
    "体重下降",
    "食欲不振",
    "尿痛",
    "喘息",
    "寒战",
    "失眠",
    "左臂麻木",
    "意识模糊",
    "流鼻涕",
    "肌肉酸痛",
]
CONDITIONS_ZH = [
    "2型糖尿病",
    "高血压",
    "哮喘",
    "慢性阻塞性肺疾病",
    "心力衰竭",
    "心房颤动",
    "肺炎",
    "尿路感染",
    "偏头痛",
    "胃肠炎",
    "甲状腺功能减退",
    "慢性肾病",
    "抑郁症",
    "贫血",
    "骨关节炎",
    "流感",
    "脓毒症",
    "深静脉血栓",
    "肺栓塞",
    "脑卒中",
    "心绞痛",
    "痛风",
    "湿疹",
]
DURATIONS_ZH = [
    "从昨天开始",
    "已经三天",
    "持续两周",
    "今天早上开始",
    "一个月了",
    "反复一年",
    "饭后加重",
    "夜间明显",
    "爬楼梯时出现",
    "坐飞机以后",
]
PEOPLE_ZH = [
    "一位54岁男性",
    "一位23岁女性",
    "一名7岁儿童",
    "一位81岁老年女性",
    "一位孕32周的孕妇",
    "一位45岁教师",
    "一位67岁吸烟者",
    "一位30岁跑步爱好者",
    "一位老年患者",
    "一名12个月婴儿",
]
ADVICE_ZH = [
    "如果疼痛放射到下颌或手臂，请立即就医。",
    "每天测量两次血压并做好记录。",
    "多喝水，注意休息；发热超过三天请复诊。",
    "不要同时服用两种含对乙酰氨基酚的药物。",
    "肾功能不全时应减少剂量。",
    "开药前请核对用药清单，注意药物相互作用。",
    "指南建议做胸部X线检查和血常规。",
    "治疗两周后症状没有改善，应转诊专科医生。",
    "每三个月检测一次糖化血红蛋白，直到达标。",
    "突然出现一侧面部无力是脑卒中的警告信号，请拨打急救电话。",
]


def _english() -> Iterator[str]:
    people, durations, drugs = cycle(PEOPLE_EN), cycle(DURATIONS_EN), cycle(DRUGS)
    advice, conditions = cycle(ADVICE_EN), cycle(CONDITIONS_EN)
    for symptom in SYMPTOMS_EN:
        for condition in CONDITIONS_EN[::3]:
            yield (
                f"{next(people)} with {condition} reports {symptom} {next(durations)}. "
                f"Current medication: {next(drugs)} {5 * (len(symptom) % 7 + 1)} mg twice daily. "
                f"Differential diagnosis includes {next(conditions)}. {next(advice)}"
            )
        yield f"Patient asks: is {symptom} a side effect of {next(drugs)}? I feel worried."


def _chinese() -> Iterator[str]:
    people, durations, drugs = cycle(PEOPLE_ZH), cycle(DURATIONS_ZH), cycle(DRUGS)
    advice, conditions = cycle(ADVICE_ZH), cycle(CONDITIONS_ZH)
    for symptom in SYMPTOMS_ZH:
        for condition in CONDITIONS_ZH[::3]:
            yield (
                f"{next(people)}，患有{condition}，{next(durations)}出现{symptom}。"
                f"目前用药：{next(drugs)}，每日两次。鉴别诊断包括{next(conditions)}。{next(advice)}"
            )
        yield f"患者问：{symptom}是{next(drugs)}的副作用吗？我很担心。"


def clinical_corpus() -> list[str]:
    """Sentences in a fixed order (the tokenizer trained on them must be reproducible)."""
    tools = [
        '<tool_call>\n{"name": "lookup_drug", "arguments": {"name": "metformin"}}\n</tool_call>',
        '<tool_response>\n{"interactions": [], "max_daily_dose_mg": 2000}\n</tool_response>',
        "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)",
    ]
    return [*_english(), *_chinese(), *tools]
