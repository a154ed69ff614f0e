"""How a multiple-choice item is put to a model, in one place: rejection sampling asks the
endpoint with it and GRPO trains on it, so the answers sampled and the answers rewarded
come from the same prompt."""

from __future__ import annotations

from typing import Any

INSTRUCTION = {
    "en": "Answer with the letter of the correct option.",
    "zh": "请直接回答正确选项的字母。",
}
INSTRUCTION_SEVERAL = {
    "en": "Answer with the letters of all correct options, separated by commas.",
    "zh": "请回答所有正确选项的字母，用逗号分隔。",
}


def mcq_prompt(
    item: dict[str, Any], answer: str, system_prompt: str | None = None
) -> list[dict[str, str]]:
    """The chat that asks `item` (a validated MCQ record); `answer` in normal form ("A" or
    "A,C") says whether to ask for one letter or several."""
    options: dict[str, str] = item["options"]
    language = "zh" if item.get("language") == "zh" else "en"
    instruction = (INSTRUCTION_SEVERAL if "," in answer else INSTRUCTION)[language]
    listing = "\n".join(f"{letter}. {options[letter]}" for letter in sorted(options))
    content = f"{str(item['question']).strip()}\n\n{listing}\n\n{instruction}"
    prompt = [{"role": "user", "content": content}]
    if system_prompt:
        prompt.insert(0, {"role": "system", "content": system_prompt})
    return prompt
