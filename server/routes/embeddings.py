"""`POST /v1/embeddings`: the gateway's guideline embedder in the OpenAI shape.

The model is the embedder the guideline index was built with (its name is the `model`), so
a client can embed its own documents in the same space. OpenAI's API has no query/passage
distinction; BGE-style models do, so `input_type: "query"` (an extension, as in several
OpenAI-compatible servers) applies the query instruction; the default is a passage.
Token-id inputs and `dimensions` are refused with a clear 400 rather than half-supported.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import field_validator

from server.errors import EmbedderUnavailable, InvalidRequest, ModelNotFound
from server.pipeline.facts import RequestFacts
from server.pipeline.quota import estimate_tokens
from server.pipeline.validation import validate
from server.protocol import OpenAIBaseModel
from server.routes.deps import GatewayDep
from server.routes.openai import read_json_body

router = APIRouter()
MAX_INPUTS = 256
MAX_INPUT_CHARS = 32_000


class EmbeddingRequest(OpenAIBaseModel):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    input_type: Literal["query", "passage"] = "passage"
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts:
            raise ValueError("input is empty")
        if len(texts) > MAX_INPUTS:
            raise ValueError(f"at most {MAX_INPUTS} inputs per request")
        for text in texts:
            if not text.strip():
                raise ValueError("input contains an empty string")
            if len(text) > MAX_INPUT_CHARS:
                raise ValueError(f"an input is longer than {MAX_INPUT_CHARS} characters")
        return value


@router.post("/v1/embeddings")
async def embeddings(request: Request, gateway: GatewayDep) -> dict[str, Any]:
    body = await read_json_body(request, gateway.settings.limits.max_body_bytes)
    if (
        isinstance(body, dict)
        and isinstance(body.get("input"), list)
        and any(not isinstance(item, str) for item in body["input"])
    ):
        raise InvalidRequest("input must be a string or a list of strings; token arrays "
                             "are not supported.", param="input")  # fmt: skip
    parsed = validate(EmbeddingRequest, body)
    library = gateway.guidelines
    if not library.settings.enabled:
        raise EmbedderUnavailable("Embeddings are unavailable: retrieval is switched off.")
    try:
        # First use checks the packaged weights' sha256: file reading, off the event loop.
        embedder = await asyncio.to_thread(lambda: library.embedder)
    except Exception as exc:
        raise EmbedderUnavailable(f"The embedder could not be loaded: {exc}") from exc
    if parsed.model != embedder.name:
        raise ModelNotFound(parsed.model)
    texts = [parsed.input] if isinstance(parsed.input, str) else parsed.input
    facts: RequestFacts = request.state.facts
    facts.model = embedder.name
    facts.set_prompt(parsed.input)
    embed = embedder.embed_queries if parsed.input_type == "query" else embedder.embed_passages
    caller = gateway.caller(request.state.principal)
    estimate = estimate_tokens(len(facts.prompt_text or ""), 0)
    async with gateway.quota.spend(caller, estimate, facts):
        vectors = await asyncio.to_thread(embed, texts)
        facts.prompt_tokens = await asyncio.to_thread(embedder.count_tokens, texts)
    if parsed.dimensions is not None and parsed.dimensions != vectors.shape[1]:
        raise InvalidRequest(
            f"{embedder.name} produces {vectors.shape[1]}-dimensional vectors only.",
            param="dimensions",
        )
    tokens = facts.prompt_tokens
    data = [
        {
            "object": "embedding",
            "index": number,
            "embedding": base64.b64encode(vector.tobytes()).decode()
            if parsed.encoding_format == "base64"
            else vector.tolist(),
        }
        for number, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": embedder.name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
