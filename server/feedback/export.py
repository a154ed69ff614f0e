"""Feedback rows to the training package's input formats: pure functions, no database.

Three formats, one JSON object per line:

- `sft`: `{"messages": [...conversation, {"role": "assistant", "content": correction}], "meta"}`,
  TRL's conversational language-modeling shape, for feedback with a correction: the
  clinician's corrected answer is the target.
- `preference`: `{"prompt": [...], "chosen": [assistant message], "rejected": [assistant
  message], "meta"}`, TRL's conversational preference shape with an explicit prompt (what
  `DPOTrainer` and `CPOTrainer` read): the correction is preferred to what the model answered,
  so it needs both the correction and the original response.
- `rubric`: `{"prompt": [...], "response": str, "rating": int, "dimensions": {...}, "meta"}`
  for every feedback with texts: reward-model and evaluation data. Every dimension is present
  (null when unscored) so each line has the same schema, which `datasets` needs.

Every line's `meta` holds `feedback_id`, `completion_id`, `tenant` (name), `created_at` (ISO
8601, UTC), `text_source`, and the `model` and `adapter` that answered (null once the audit row
is purged): enough to trace a training example back, and to keep on-policy pairs apart.

Training needs the texts, and the feedback row holds them only when the client sent them in the
body; otherwise they come from the audit trail's retained content, if the tenant retains it
and it has not expired. `meta.text_source` says which (`"feedback_body"` or `"retained"`); the
two are never mixed within one row. Feedback whose texts are unavailable is skipped and counted
rather than exported half-empty.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from server.feedback.request import DIMENSIONS

FORMATS: tuple[str, ...] = ("sft", "preference", "rubric")
ExportFormat = Literal["sft", "preference", "rubric"]
TextSource = Literal["retained", "feedback_body"]
Message = dict[str, str]

_TEXT_ROLES = frozenset({"system", "developer", "user", "assistant"})


class Skip(enum.Enum):
    """Why a feedback row produced no line in an export."""

    NO_TEXT = "no_text"
    NO_CORRECTION = "no_correction"


@dataclass(frozen=True)
class Texts:
    """The conversation a completion answered, its answer when known, and where both came from."""

    prompt: list[Message]
    response: str | None
    source: TextSource


@dataclass(frozen=True)
class FeedbackItem:
    """One feedback row with what an export needs from its tenant and audit row."""

    feedback_id: int
    completion_id: str
    tenant: str
    created_at: datetime
    rating: int
    dimensions: dict[str, int]
    correction: str | None
    texts: Texts | None
    model: str | None = None
    adapter: str | None = None


@dataclass
class ExportCounts:
    """What one export wrote and skipped; the CLI prints it on stderr."""

    written: int = 0
    skipped_no_text: int = 0
    skipped_no_correction: int = 0
    from_retained: int = 0
    from_feedback_body: int = 0

    def count(self, outcome: dict[str, Any] | Skip) -> None:
        if outcome is Skip.NO_TEXT:
            self.skipped_no_text += 1
        elif outcome is Skip.NO_CORRECTION:
            self.skipped_no_correction += 1
        elif isinstance(outcome, dict):
            self.written += 1
            if outcome["meta"]["text_source"] == "retained":
                self.from_retained += 1
            else:
                self.from_feedback_body += 1


def parse_retained_prompt(prompt_text: str) -> list[Message] | None:
    """The audit trail's retained prompt as a text-only message list; None if not text-only.

    The audit trail stores the request's messages JSON-encoded; anything that is not such a list
    is taken as one user message. Text content parts are joined; a conversation with images,
    tool calls or tool results cannot become text training data and gives None.

    >>> parse_retained_prompt('[{"role": "user", "content": "Dose of apixaban in AF?"}]')
    [{'role': 'user', 'content': 'Dose of apixaban in AF?'}]
    >>> parse_retained_prompt('[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]')
    [{'role': 'user', 'content': 'Hi'}]
    >>> parse_retained_prompt("Dose of apixaban in AF?")
    [{'role': 'user', 'content': 'Dose of apixaban in AF?'}]
    >>> parse_retained_prompt('[{"role": "user", "content": [{"type": "image_url"}]}]') is None
    True
    """
    try:
        decoded = json.loads(prompt_text)
    except ValueError:
        return [{"role": "user", "content": prompt_text}]
    if not isinstance(decoded, list) or not all(isinstance(m, dict) for m in decoded):
        return [{"role": "user", "content": prompt_text}]
    messages = [_text_message(message) for message in decoded]
    if not messages or any(message is None for message in messages):
        return None
    return [message for message in messages if message is not None]


def _text_message(message: dict[str, Any]) -> Message | None:
    role, content = message.get("role"), message.get("content")
    if role not in _TEXT_ROLES or message.get("tool_calls"):
        return None
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            return None
        content = "\n".join(str(part.get("text", "")) for part in content)
    return {"role": role, "content": content} if isinstance(content, str) else None


def choose_texts(
    body_messages: list[Message] | None,
    body_response: str | None,
    retained_prompt: str | None,
    retained_response: str | None,
) -> Texts | None:
    """The texts to train on: the feedback body's when it has a conversation, else retained.

    The sources are not mixed: a response is only paired with the prompt from the same place.

    >>> choose_texts([{"role": "user", "content": "Q"}], "A", '"other"', "B").source
    'feedback_body'
    >>> choose_texts(None, None, "Q", "A")
    Texts(prompt=[{'role': 'user', 'content': 'Q'}], response='A', source='retained')
    >>> choose_texts(None, None, None, None) is None
    True
    """
    if body_messages:
        return Texts(list(body_messages), body_response, "feedback_body")
    if retained_prompt is None:
        return None
    prompt = parse_retained_prompt(retained_prompt)
    return Texts(prompt, retained_response, "retained") if prompt is not None else None


def sft_row(item: FeedbackItem) -> dict[str, Any] | Skip:
    """The conversation with the clinician's correction as the assistant's answer.

    >>> row = sft_row(_example())
    >>> for message in row["messages"]:
    ...     print(message)
    {'role': 'user', 'content': 'Apixaban dose in AF?'}
    {'role': 'assistant', 'content': '5 mg twice daily.'}
    >>> row["meta"]["text_source"]
    'retained'
    >>> sft_row(_example(correction=None))
    <Skip.NO_CORRECTION: 'no_correction'>
    """
    if item.correction is None:
        return Skip.NO_CORRECTION
    if item.texts is None:
        return Skip.NO_TEXT
    answer = {"role": "assistant", "content": item.correction}
    return {"messages": [*item.texts.prompt, answer], "meta": _meta(item, item.texts)}


def preference_row(item: FeedbackItem) -> dict[str, Any] | Skip:
    """The correction chosen over the model's original answer, for the same prompt.

    >>> row = preference_row(_example())
    >>> row["chosen"]
    [{'role': 'assistant', 'content': '5 mg twice daily.'}]
    >>> row["rejected"]
    [{'role': 'assistant', 'content': '10 mg daily.'}]
    >>> preference_row(_example(response=None))
    <Skip.NO_TEXT: 'no_text'>
    """
    if item.correction is None:
        return Skip.NO_CORRECTION
    if item.texts is None or item.texts.response is None:
        return Skip.NO_TEXT
    return {
        "prompt": item.texts.prompt,
        "chosen": [{"role": "assistant", "content": item.correction}],
        "rejected": [{"role": "assistant", "content": item.texts.response}],
        "meta": _meta(item, item.texts),
    }


def rubric_row(item: FeedbackItem) -> dict[str, Any] | Skip:
    """The original answer with the clinician's scores; no correction needed.

    >>> row = rubric_row(_example(correction=None))
    >>> row["response"], row["rating"], row["dimensions"]["safety"], row["dimensions"]["accuracy"]
    ('10 mg daily.', 2, 1, None)
    """
    if item.texts is None or item.texts.response is None:
        return Skip.NO_TEXT
    return {
        "prompt": item.texts.prompt,
        "response": item.texts.response,
        "rating": item.rating,
        "dimensions": {name: item.dimensions.get(name) for name in DIMENSIONS},
        "meta": _meta(item, item.texts),
    }


ROW_BUILDERS = {"sft": sft_row, "preference": preference_row, "rubric": rubric_row}


def to_row(format: ExportFormat, item: FeedbackItem) -> dict[str, Any] | Skip:
    """The line `item` becomes in `format`, or why it has none."""
    return ROW_BUILDERS[format](item)


def _meta(item: FeedbackItem, texts: Texts) -> dict[str, Any]:
    return {
        "feedback_id": item.feedback_id,
        "completion_id": item.completion_id,
        "tenant": item.tenant,
        "created_at": item.created_at.isoformat(),
        "text_source": texts.source,
        "model": item.model,
        "adapter": item.adapter,
    }


def _example(**changes: Any) -> FeedbackItem:
    """A feedback item for the doctests: a wrong dose, corrected, retained texts."""
    from dataclasses import replace
    from datetime import UTC

    response = changes.pop("response", "10 mg daily.")
    item = FeedbackItem(
        feedback_id=7,
        completion_id="chatcmpl-1",
        tenant="st-marys",
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
        rating=2,
        dimensions={"safety": 1},
        correction="5 mg twice daily.",
        texts=Texts([{"role": "user", "content": "Apixaban dose in AF?"}], response, "retained"),
    )
    return replace(item, **changes)
