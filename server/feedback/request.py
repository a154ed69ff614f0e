"""The body of `POST /v1/clinical/feedback`, validated strictly before anything is stored.

Unlike the OpenAI wire models (`server.protocol`, which allow extras because real clients send
them), this body is ours and becomes training data: an unknown field is far more likely a typo
(`"saftey": 2`) than an extension, and silently dropping it would lose a clinician's judgement.
So every level forbids unknown fields, and scores are strict integers (`"4"`, `4.0` and `true`
are refused rather than coerced). Free texts refuse control characters: PostgreSQL cannot store
NUL, and the rest are never part of a clinical answer.

`messages` and `response` let a client supply the conversation and the original answer itself,
for tenants whose audit trail does not retain content: without them, such feedback cannot be
exported as training data.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

DIMENSIONS: tuple[str, ...] = (
    "accuracy",
    "safety",
    "completeness",
    "guideline_adherence",
    "communication",
)
"""The rubric a clinician may score besides the overall rating (each 1-5, all optional)."""

MAX_CORRECTION_CHARS = 20_000
MAX_COMMENT_CHARS = 4_000
MAX_MESSAGES = 200
MAX_MESSAGE_CHARS = 100_000
MAX_RESPONSE_CHARS = 100_000
_COMPLETION_ID = re.compile(r"[\x21-\x7e]{1,128}")
"""Printable ASCII without spaces: the shape of every OpenAI-style completion id."""


def _invalid(message: str) -> PydanticCustomError:
    """An error whose message is exactly `message` (a ValueError gets "Value error, ")."""
    return PydanticCustomError("invalid_feedback", message)


def _completion_id(value: str) -> str:
    if not _COMPLETION_ID.fullmatch(value):
        raise _invalid("must be the completion's `id`: 1-128 printable ASCII characters, no spaces")
    return value


def _clean_text(text: str) -> str:
    if any(ord(c) < 32 and c not in "\n\r\t" for c in text) or "\x7f" in text:
        raise _invalid("contains control characters")
    if "\ufffd" in text:
        raise _invalid("contains undecodable bytes (U+FFFD)")
    return text


def _not_blank(text: str) -> str:
    if not text.strip():
        raise _invalid("is blank: leave the field out instead")
    return text


Score = Annotated[int, Field(strict=True, ge=1, le=5)]
Clean = AfterValidator(_clean_text)
"""For free texts; after `Field(max_length=...)`, so a too-long text is reported as such."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dimensions(_Strict):
    """Per-dimension scores, 1 (poor) to 5 (excellent); an unscored dimension is left out."""

    accuracy: Score | None = None
    safety: Score | None = None
    completeness: Score | None = None
    guideline_adherence: Score | None = None
    communication: Score | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_names(cls, data: Any) -> Any:
        """Name the valid dimensions in the error: a misspelt one is the likely mistake."""
        if isinstance(data, dict):
            unknown = sorted(str(name) for name in data if name not in DIMENSIONS)
            if unknown:
                raise _invalid(
                    f"unknown dimension {', '.join(map(repr, unknown))}; "
                    f"choose from {', '.join(DIMENSIONS)}"
                )
        return data

    def scored(self) -> dict[str, int]:
        """Only the dimensions the clinician scored, in rubric order."""
        values = {name: getattr(self, name) for name in DIMENSIONS}
        return {name: value for name, value in values.items() if value is not None}


class FeedbackMessage(_Strict):
    """One message of the rated conversation, text only (it becomes training text)."""

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_MESSAGE_CHARS), Clean]


class FeedbackRequest(_Strict):
    """A clinician's judgement of one chat completion, named by the completion's `id`."""

    completion_id: Annotated[str, AfterValidator(_completion_id)]
    rating: Score
    dimensions: Dimensions | None = None
    correction: (
        Annotated[str, Field(max_length=MAX_CORRECTION_CHARS), Clean, AfterValidator(_not_blank)]
        | None
    ) = None
    comment: Annotated[str, Field(max_length=MAX_COMMENT_CHARS), Clean] | None = None
    messages: list[FeedbackMessage] | None = Field(
        default=None, min_length=1, max_length=MAX_MESSAGES
    )
    response: Annotated[str, Field(max_length=MAX_RESPONSE_CHARS), Clean] | None = None

    @model_validator(mode="after")
    def _response_needs_its_prompt(self) -> FeedbackRequest:
        """An answer without the conversation it answered is useless for training."""
        if self.response is not None and self.messages is None:
            raise _invalid("'response' needs the 'messages' it answered")
        return self

    def scores(self) -> dict[str, int]:
        """The dimensions the clinician scored (empty when `dimensions` was left out)."""
        return self.dimensions.scored() if self.dimensions is not None else {}

    def message_dicts(self) -> list[dict[str, str]] | None:
        """`messages` as plain dicts (how they are stored and exported), or None."""
        if self.messages is None:
            return None
        return [{"role": m.role, "content": m.content} for m in self.messages]
