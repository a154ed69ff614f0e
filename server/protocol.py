"""Wire models in the OpenAI shape, used to validate requests before they reach a worker.

Validation catches what a worker would reject anyway, but earlier, with the offending field
named in `param`, and without spending a worker slot. Models allow extra fields because real
clients send them (vLLM sampling extras, Open WebUI metadata) and the worker may understand
them; the gateway forwards the client's JSON, not a re-serialisation of these models, so
nothing a client sent is silently dropped except the documented quirks in `upstream_body`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NonNegativeInt = Annotated[int, Field(ge=0)]


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str


class OtherPart(OpenAIBaseModel):
    """Image, audio, file and refusal parts: shape-checked by the worker that supports them."""

    type: Literal["image_url", "input_audio", "file", "refusal", "video_url", "audio_url"]


ContentPart = Annotated[TextPart | OtherPart, Field(discriminator="type")]
Content = str | list[ContentPart]


class FunctionCall(OpenAIBaseModel):
    name: str
    arguments: str


class ToolCall(OpenAIBaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(OpenAIBaseModel):
    # `_role_rules` in JSON Schema, so the OpenAPI document (and a fuzzer) knows them too.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"role": {"const": "tool"}}},
                    "then": {
                        "required": ["tool_call_id"],
                        "properties": {"tool_call_id": {"type": "string", "minLength": 1}},
                    },
                },
                {
                    "if": {"properties": {"role": {"const": "assistant"}}},
                    "else": {
                        "required": ["content"],
                        "properties": {"content": {"not": {"type": "null"}}},
                    },
                },
            ]
        }
    )

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Content | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> ChatMessage:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs a 'tool_call_id'")
        if self.role != "assistant" and self.content is None:
            raise ValueError(f"a message with role '{self.role}' needs 'content'")
        return self


class StreamOptions(OpenAIBaseModel):
    include_usage: bool | None = None
    continuous_usage_stats: bool | None = None


class JsonSchemaFormat(OpenAIBaseModel):
    name: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(OpenAIBaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "json_schema"}}},
            "then": {
                "required": ["json_schema"],
                "properties": {"json_schema": {"type": "object"}},
            },
        }
    )

    type: Literal["text", "json_object", "json_schema", "structural_tag"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_present(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type 'json_schema' needs a 'json_schema' object")
        return self


class FunctionDefinition(OpenAIBaseModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(OpenAIBaseModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class SamplingParams(OpenAIBaseModel):
    """Fields shared by chat and text completions, with OpenAI's documented bounds."""

    model: str = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=128)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    user: str | None = None


class ChatCompletionRequest(SamplingParams):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "required": ["top_logprobs"],
                "properties": {"top_logprobs": {"type": "integer", "minimum": 1}},
            },
            "then": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}},
        }
    )

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _logprob_rules(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("'top_logprobs' needs 'logprobs' set to true")
        return self


class CompletionRequest(SamplingParams):
    prompt: str | list[str] | list[int] | list[list[int]]
    echo: bool | None = None
    logprobs: int | None = Field(default=None, ge=0, le=20)
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1)


def upstream_body(body: dict[str, Any]) -> dict[str, Any]:
    """The client's JSON with known client quirks removed, ready for a vLLM worker.

    - `tools: []` (sent by some clients with every request) is dropped, with a `tool_choice`
      that would then refer to nothing: vLLM answers 400 to an empty list.
    - `stream_options` without `stream: true` is ignored, as OpenAI does; vLLM answers 400.
    - `clinical` (the gateway's own per-request options) is the gateway's business only.
    """
    cleaned = dict(body)
    cleaned.pop("clinical", None)
    if cleaned.get("tools") == []:
        del cleaned["tools"]
        if cleaned.get("tool_choice") in ("auto", "none"):
            del cleaned["tool_choice"]
    if not cleaned.get("stream") and "stream_options" in cleaned:
        del cleaned["stream_options"]
    return cleaned
