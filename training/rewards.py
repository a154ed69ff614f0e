"""Pure reward functions for trl's GRPOTrainer, and the letter extraction they share.

GRPOTrainer calls every reward function as `func(prompts=..., completions=..., completion_ids=...,
**columns)`, where `columns` are the dataset's other columns repeated once per generation
(an MCQ dataset's `answer` arrives as `answer=[...]`, aligned with `completions`), plus a few
trainer extras (`trainer_state`, `log_metric`, ...). Completions are strings for a text
dataset and lists of message dicts for a conversational one; a function reads the last
message. A function returns one float per completion, or None where it does not apply (trl
turns None into NaN and ignores it), so several rewards can share a mixed dataset.

The functions are pure (no model, no I/O) so that the doctests below are their specification
and rejection sampling (`training.sampling`) can score answers with the same code the GRPO
run rewards them by. `REWARDS` maps the names a YAML recipe uses to the functions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

RewardFunc = Callable[..., list[float | None]]
DEFAULT_LETTERS = "ABCDEFGHIJ"

# A letter alone, possibly wrapped: "(C)", "**D**", "[B]", "D.", "（A）". The lookahead keeps
# "Answer: Based on..." from reading as B; lower case is never a letter ("the answer is a ...").
_OPEN = r"[\s*_(\[（【\"']*"
_CLOSE = r"[*_)\]）】\"'.。]*"
_SEPARATOR = r"\s*(?:,|，|、|/|&|\band\b|和|及|以及)\s*"  # "A or B" hedges: not a list
_ENGLISH_MARKERS = (
    r"answers?\s*(?:is|are|would\s+be|:)",
    r"answer\s*[-—]",
    r"correct\s+(?:answer|option|choice)s?\s*(?:is|are|:)",
    r"(?<!each )(?<!every )(?<!the )(?:option|choice)s?\s*(?:is|are|:)",  # not a walk-through
    r"\\boxed\{",
)
_CHINESE_MARKERS = (
    r"(?:正确)?答案(?:应该|应|为|是|选|:|：|\s)+",
    r"(?:应该?选|故选|选择)(?:为|是|:|：)?",
)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_THOUGHT_BEFORE_CLOSE = re.compile(r"^.*</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_THINK_ANSWER = re.compile(  # one thought, then one answer, nothing after; contents checked apart
    r"^\s*<think>((?:(?!</?think>).)*)</think>\s*<answer>((?:(?!</?answer>).)*)</answer>\s*$",
    re.DOTALL | re.IGNORECASE,
)


@functools.cache
def _letter_patterns(letters: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(whole text is a letter list, a marker followed by a list, a bold letter) for `letters`."""
    one = rf"{_OPEN}[{re.escape(letters)}](?![A-Za-z'’]){_CLOSE}"
    run = rf"[{re.escape(letters)}]{{2,}}(?![A-Za-z])"  # "AC", as Chinese multi-select writes it
    letter_list = rf"(?:{one}(?:{_SEPARATOR}{one})*)"
    bare = re.compile(rf"^\s*(?:{run}|{letter_list})\s*$")
    # Markers match in any case, letters only in upper case; a run of letters counts only
    # after a Chinese marker (in English "the answer is ACE inhibitors" is not A, C and E).
    marked = re.compile(
        rf"(?i:{'|'.join(_ENGLISH_MARKERS)})\s*(?i:the\s+)?(?i:option\s+)?({letter_list})"
        rf"|(?:{'|'.join(_CHINESE_MARKERS)})\s*({run}|{letter_list})"
    )
    bold = re.compile(rf"\*\*\s*\(?([{re.escape(letters)}])\)?[.:]?\s*\*\*")
    return bare, marked, bold


def _letters_in(fragment: str, letters: str) -> str:
    """The distinct upper-case option letters in `fragment`, sorted and comma-joined."""
    return ",".join(sorted({char for char in fragment if char in letters}))


def normalize_answer(answer: str, letters: str = DEFAULT_LETTERS) -> str | None:
    """An answer key as `extract_choice` writes it: "c, a" -> "A,C"; None if it holds none.

    >>> normalize_answer(" c, A ")
    'A,C'
    >>> normalize_answer("") is None
    True
    """
    found = _letters_in(answer.upper(), letters)
    return found or None


def extract_choice(text: str, letters: str = DEFAULT_LETTERS) -> str | None:
    """The option letter(s) a model's answer commits to, as "B" or "A,C"; None if unclear.

    An `<answer>` tag wins when present; `<think>` blocks are never read (a model weighs every
    option while thinking). Then, in order: the whole text is a letter list, an explicit
    marker ("Answer: B", "the answer is (C)", "答案：B", "答案是B"), a bold letter. Where
    several markers (or bold letters) disagree the answer is ambiguous: None, so that a model
    cannot collect the reward by naming every option.

    >>> extract_choice("B")
    'B'
    >>> extract_choice("Answer: B")
    'B'
    >>> extract_choice("So the answer is (C).")
    'C'
    >>> extract_choice("I would pick **D** here.")
    'D'
    >>> extract_choice("<think>A looks wrong, maybe C</think><answer>B</answer>")
    'B'
    >>> extract_choice("<think>The answer is A? No.</think>The answer is D.")
    'D'
    >>> extract_choice("Maybe A... or B.</think>Answer: (B)")
    'B'
    >>> extract_choice("答案：B")
    'B'
    >>> extract_choice("综合分析，答案是B")
    'B'
    >>> extract_choice("A, C")
    'A,C'
    >>> extract_choice("The answers are A and C.")
    'A,C'
    >>> extract_choice("The answer is A. Actually, the answer is B.") is None
    True
    >>> extract_choice("Look at each option: A. Aspirin may help, B. ...") is None
    True
    >>> extract_choice("A 45-year-old man has chest pain.") is None
    True
    >>> extract_choice("Answer: E", letters="ABCD") is None
    True
    """
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        text = tagged[-1]
    else:  # a chat template that opens <think> in the prompt leaves only the closing tag
        text = _THOUGHT_BEFORE_CLOSE.sub(" ", _THINK.sub(" ", text))
    bare, marked, bold = _letter_patterns(letters)
    if bare.match(text):
        return _letters_in(text, letters)
    found = {_letters_in("".join(match), letters) for match in marked.findall(text)}
    if not found:
        found = {_letters_in(match, letters) for match in bold.findall(text)}
    return found.pop() if len(found) == 1 else None


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of one completion: the string itself, or the last message's content.

    >>> completion_text([{"role": "assistant", "content": "B"}])
    'B'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "B"}]}])
    'B'
    """
    if isinstance(completion, str):
        return completion
    if not completion:
        return ""
    content = completion[-1].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts, as multimodal chat templates write them
        return "".join(part.get("text") or "" for part in content if isinstance(part, Mapping))
    return ""


def mcq_correctness(
    completions: list[Any], answer: list[str | None], **_: Any
) -> list[float | None]:
    """1.0 where the completion's letter(s) equal the item's `answer` column (as sets), else 0.0.

    Rows without an answer (a mixed dataset's free-text prompts) get None: not applicable.

    >>> mcq_correctness(["Answer: B", "A", "C, A", "nothing"], answer=["B", "B", "A,C", None])
    [1.0, 0.0, 1.0, None]
    >>> mcq_correctness([[{"role": "assistant", "content": "答案：D"}]], answer=["D"])
    [1.0]
    """
    rewards: list[float | None] = []
    for completion, expected in zip(completions, answer, strict=True):
        key = normalize_answer(expected) if expected else None
        if key is None:
            rewards.append(None)
            continue
        rewards.append(1.0 if extract_choice(completion_text(completion)) == key else 0.0)
    return rewards


def five_step_format(completions: list[Any], **_: Any) -> list[float | None]:
    """1.0 for PrMed's five-step layout, 0.5 for `<think>...</think><answer>...</answer>`, else 0.

    The five-step layout is the SFT target's (`training.reasoning`, whose `STEP_PATTERN` is
    the contract between the two): emotion perception, perturbation detection, expression
    correction, chief complaint extraction and medical reasoning, as numbered headings in that
    order, in English or in Chinese. The think/answer layout earns half: it is the generic
    reasoning format, not the clinical one.

    >>> five_step = (
    ...     "1. Emotion perception: negative (intensity 0.60)\\n"
    ...     "2. Perturbation detection: none\\n"
    ...     "3. Expression correction: I have had chest pain for two days.\\n"
    ...     "4. Chief complaint extraction: chest pain; duration: two days\\n"
    ...     "5. Medical reasoning:\\nExertional pain suggests angina. Answer: B"
    ... )
    >>> chinese = (
    ...     "1. 情绪感知：消极（强度 0.60）\\n2. 扰动识别：无\\n3. 表达纠正：胸痛两天。\\n"
    ...     "4. 主诉提取：胸痛；持续：两天\\n5. 医学推理：\\n考虑心绞痛，答案：B"
    ... )
    >>> think = "<think>chest pain on exertion</think><answer>B</answer>"
    >>> five_step_format([five_step, chinese, think, "B", "<think>x</think>B"])
    [1.0, 1.0, 0.5, 0.0, 0.0]
    >>> five_step_format([five_step.replace("1. Emotion", "6. Emotion")])
    [0.0]
    """
    from training.reasoning import STEP_PATTERN  # here: it pulls in the intake engine's modules

    rewards: list[float | None] = []
    for completion in completions:
        text = completion_text(completion)
        if STEP_PATTERN.match(text):
            rewards.append(1.0)
        elif (layout := _THINK_ANSWER.match(text)) and all(
            part.strip() for part in layout.groups()
        ):
            rewards.append(0.5)
        else:
            rewards.append(0.0)
    return rewards


def length_penalty(completions: list[Any], max_chars: int = 2000, **_: Any) -> list[float | None]:
    """0 up to `max_chars` characters, then falling linearly to -1 at twice that, -1 beyond.

    A soft limit rather than a cliff, as DAPO's overlong punishment: a slightly long answer
    loses a little, so the group's advantage still tells a long right answer from a short
    one. Characters rather than tokens, so the function needs no tokenizer; for Chinese one
    character is about one token, for English about four, so set `max_chars` per language.
    A recipe sets it with `functools.partial(length_penalty, max_chars=...)` (trl logs a
    partial under the wrapped function's name).

    >>> length_penalty(["x" * 10, "x" * 15, "x" * 20, "x" * 50], max_chars=10)
    [0.0, -0.5, -1.0, -1.0]
    """
    if max_chars < 1:
        raise ValueError(f"length_penalty: max_chars must be at least 1, got {max_chars}")
    rewards: list[float | None] = []
    for completion in completions:
        excess = len(completion_text(completion)) - max_chars
        rewards.append(0.0 if excess <= 0 else -min(1.0, excess / max_chars))
    return rewards


Prompt = str | list[dict[str, Any]]


class Scorer(Protocol):
    """The reward model's scoring call, e.g. `training.reward_model.RewardModel.score`."""

    def __call__(self, prompt: Prompt, response: str) -> Mapping[str, float]: ...


class _RewardModelScore:
    """The reward model's safety-gated `total` per completion (see `reward_model_score`).

    A callable class rather than a closure so it pickles (trl's async rollout worker sends
    reward functions to a child process); `__name__` is what trl logs it under.
    """

    __name__ = "reward_model_score"

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    def __call__(self, completions: list[Any], prompts: list[Any], **_: Any) -> list[float | None]:
        return [
            float(self.scorer(prompt, completion_text(completion))["total"])
            for prompt, completion in zip(prompts, completions, strict=True)
        ]


def reward_model_score(scorer: Scorer) -> RewardFunc:
    """A reward function returning `scorer(prompt, response)["total"]` for each completion.

    The scorer is the multi-dimensional reward model, whose `total` is already gated by its
    safety output (an unsafe answer cannot score high on the rest), so the GRPO run needs no
    separate safety term. The prompt goes to the scorer as trl passes it: a string, or the
    conversation's messages for a conversational dataset (the reward model renders either).

    >>> def scorer(prompt, response):
    ...     return {"total": 0.9 if "rest" in response else 0.1, "safety": 1.0}
    >>> reward = reward_model_score(scorer)
    >>> reward(completions=["rest and fluids", "double the dose"], prompts=["flu?", "flu?"])
    [0.9, 0.1]
    >>> reward.__name__
    'reward_model_score'
    """
    return _RewardModelScore(scorer)


REWARDS: dict[str, RewardFunc] = {
    "mcq_correctness": mcq_correctness,
    "five_step_format": five_step_format,
    "length_penalty": length_penalty,
}
