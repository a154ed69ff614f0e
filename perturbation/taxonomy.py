"""The PrMed perturbation taxonomy: 4 categories x 12 subcategories, with stable ids.

Ids (`category.subcategory`) are a contract with training data, evaluation reports and API
clients: never rename one, only add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Category = Literal["structural", "formal", "emotional", "contextual"]


@dataclass(frozen=True)
class Subcategory:
    id: str
    category: Category
    name: str
    description: str


TAXONOMY: tuple[Subcategory, ...] = (
    Subcategory("structural.perspective_misalignment", "structural", "perspective misalignment",
                "Narrated from another person's view or mixing persons (a parent for a child, "
                "'he' and 'I' for the same patient)."),
    Subcategory("structural.incomplete_grammar", "structural", "incomplete grammar",
                "Fragments, missing subjects or verbs, telegraphic lists of words."),
    Subcategory("structural.reversed_order", "structural", "reversed order",
                "Events told out of time order, conclusion or newest symptom first, "
                "with backward references ('before that', '之前')."),
    Subcategory("formal.internet_slang", "formal", "internet slang",
                "Chat abbreviations and slang ('tbh', 'my tummy is killing me', '肚子疼死了', "
                "'yyds')."),
    Subcategory("formal.dialect", "formal", "dialect",
                "Regional or colloquial words for body parts and symptoms ('poorly', "
                "'喉咙发炎' as '喉咙发火', '脑壳疼')."),
    Subcategory("formal.spelling_error", "formal", "spelling error",
                "Misspellings and typos, including drug names and Chinese homophone slips."),
    Subcategory("emotional.positive", "emotional", "positive emotion",
                "Optimism, gratitude or relief that may colour the report."),
    Subcategory("emotional.negative", "emotional", "negative emotion",
                "Fear, anxiety, anger, despair expressed alongside the symptoms."),
    Subcategory("emotional.repressed", "emotional", "repressed emotion",
                "Minimising or downplaying ('it's probably nothing', '没什么大事') that can "
                "hide severity."),
    Subcategory("contextual.subjective_misdiagnosis", "contextual", "subjective misdiagnosis",
                "Self-diagnosis stated as fact ('I have diabetes, I googled it')."),
    Subcategory("contextual.irrelevant_information", "contextual", "irrelevant information",
                "Details with no clinical bearing (travel plans, pets, work gossip)."),
    Subcategory("contextual.vague_expression", "contextual", "vague expression",
                "Vague amounts, times or places ('a bit', 'for a while', '有点', '好几天')."),
)  # fmt: skip

BY_ID: dict[str, Subcategory] = {sub.id: sub for sub in TAXONOMY}
