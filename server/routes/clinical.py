"""Clinical routes beside the OpenAI ones: `POST /v1/clinical/intake`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field, field_validator

from server.errors import InvalidRequest
from server.pipeline.facts import RequestFacts
from server.pipeline.quota import estimate_tokens
from server.pipeline.validation import validate
from server.protocol import OpenAIBaseModel
from server.routes.deps import GatewayDep
from server.routes.openai import read_json_body

router = APIRouter()


class IntakeRequest(OpenAIBaseModel):
    text: str = Field(min_length=1)
    lang: Literal["auto", "en", "zh"] = "auto"
    engine: Literal["rules", "model", "hybrid"] | None = None

    @field_validator("text")
    @classmethod
    def _printable(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is empty")
        if any(ord(c) < 32 and c not in "\n\r\t" for c in text) or "\ufffd" in text:
            raise ValueError("text contains control characters or undecodable bytes")
        return text


@router.post("/v1/clinical/intake")
async def intake(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    """The intake analysis of one message, as the chat pipeline would compute it."""
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    parsed = validate(IntakeRequest, body)
    limit = gateway.settings.intake.max_chars
    if len(parsed.text) > limit:
        raise InvalidRequest(f"text: longer than {limit} characters", param="text")
    language = None if parsed.lang == "auto" else parsed.lang
    stage = gateway.pipeline.intake
    facts: RequestFacts = request.state.facts
    facts.set_prompt(parsed.text)
    caller = gateway.caller(request.state.principal)
    async with gateway.quota.spend(caller, estimate_tokens(len(parsed.text), 0), facts):
        engine = parsed.engine or stage.settings.engine
        analysis = await stage.analyze(parsed.text, language, engine)
    facts.intake_subcategories = sorted({f.subcategory for f in analysis.result.perturbations})
    facts.red_flags = [flag.id for flag in analysis.result.red_flags]
    answer = analysis.result.to_json()
    if analysis.fallback is not None:
        answer["fallback"] = analysis.fallback
    return answer
