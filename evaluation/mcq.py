"""Put multiple-choice items to an endpoint and score what comes back.

One request per item, built from the same prompt that rejection sampling and GRPO use
(`training.mcq.mcq_prompt`), so an adapter is evaluated on the question shape it was trained
on. Two ways to score: `generate` reads the letter (or option text) out of a greedy answer;
`logprobs` asks for one token with its top log-probabilities and takes the likeliest option
letter, which needs no answer extraction and costs one decoded token, where the endpoint
supports it (vLLM and our gateway do).

Responses are cached by request (see `evaluation.cache`), so a run that was stopped resumes
where it was and a re-run with a new report costs nothing. A request the endpoint refuses,
or that fails after retries, counts as wrong and is reported as an error, never cached.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from evaluation.answers import letter_from_logprobs, read_answer
from evaluation.cache import ResponseCache
from evaluation.endpoint import EndpointClient, EndpointError
from evaluation.items import McqItem
from evaluation.stats import Proportion
from training.mcq import mcq_prompt

Scoring = Literal["generate", "logprobs"]
COMPLETION_KEPT = 2000
"""Characters of each answer kept in items.jsonl: enough to audit an extraction."""


@dataclass(frozen=True)
class AskSettings:
    """How every item is asked: the same for each item of a run, part of each cache key."""

    scoring: Scoring = "generate"
    max_tokens: int = 512
    system_prompt: str | None = None
    clinical: Mapping[str, Any] | None = None  # the gateway's per-request options

    def body(self, item: McqItem, question: str | None = None) -> dict[str, Any]:
        """The chat request for `item`, asking `question` instead of its own when given."""
        record = {
            "question": item.question if question is None else question,
            "options": item.option_map(),
            "language": item.language,
        }
        body: dict[str, Any] = {
            "messages": mcq_prompt(record, item.answer, self.system_prompt),
            "temperature": 0.0,
            "seed": 0,
        }
        if self.scoring == "logprobs":
            body.update(max_tokens=1, logprobs=True, top_logprobs=20)
        else:
            body["max_tokens"] = self.max_tokens
        if self.clinical is not None:
            body["clinical"] = dict(self.clinical)
        return body


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome: `predicted` is None when the answer named no option (invalid)
    or the request failed (`error` says why)."""

    id: str
    source: str
    answer: str
    predicted: str | None
    completion: str | None
    error: str | None = None

    @property
    def correct(self) -> bool:
        return self.predicted == self.answer

    @property
    def invalid(self) -> bool:
        return self.predicted is None and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "answer": self.answer,
            "predicted": self.predicted,
            "correct": self.correct,
            "invalid": self.invalid,
            "error": self.error,
            "completion": self.completion,
        }


def score_response(item: McqItem, response: Mapping[str, Any], scoring: Scoring) -> ItemResult:
    """Read the chosen option out of a chat completion."""
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = message.get("content") or ""
    if scoring == "logprobs":
        content = (choice.get("logprobs") or {}).get("content") or []
        top = content[0].get("top_logprobs", []) if content else []
        predicted = letter_from_logprobs(top, item.letters())
    else:
        # A reply cut off at max_tokens is usually still weighing the options one by one:
        # only an explicit letter counts then, never an option's text it happened to quote.
        finished = choice.get("finish_reason") != "length"
        predicted = read_answer(text, item.letters(), item.option_map() if finished else {})
    return ItemResult(item.id, item.source, item.answer, predicted, text[:COMPLETION_KEPT])


class Asker:
    """Asks items through one endpoint with a cache in front; safe to share between the
    conditions of a robustness run (the client bounds concurrency for all of them)."""

    def __init__(
        self, client: EndpointClient, cache: ResponseCache, progress: bool = False
    ) -> None:
        self.client = client
        self.cache = cache
        self.progress = progress
        self.from_cache = 0  # answers the cache held (a resumed or re-rendered run)
        self._done = 0

    async def ask(
        self, item: McqItem, settings: AskSettings, question: str | None = None
    ) -> ItemResult:
        body = settings.body(item, question)
        endpoint = self.client.endpoint
        key = ResponseCache.key(endpoint.base_url, endpoint.model, body)
        response = self.cache.get(key)
        if response is not None:
            self.from_cache += 1
        else:
            try:
                response = await self.client.chat(body)
            except EndpointError as exc:
                self._tick()
                return ItemResult(item.id, item.source, item.answer, None, None, str(exc))
            self.cache.put(key, response)
        self._tick()
        return score_response(item, response, settings.scoring)

    async def ask_all(
        self,
        items: Sequence[McqItem],
        settings: AskSettings,
        question: Callable[[McqItem], str | None] = lambda _item: None,
    ) -> list[ItemResult]:
        """Every item, concurrently (the client's limit applies), results in item order."""
        return list(
            await asyncio.gather(*(self.ask(item, settings, question(item)) for item in items))
        )

    def _tick(self) -> None:
        self._done += 1
        if self.progress and self._done % 25 == 0:
            print(f"  {self._done} answers", file=sys.stderr, flush=True)


def summarise(results: Sequence[ItemResult]) -> dict[str, Any]:
    """Accuracy with its Wilson interval, invalid and error counts, overall and per source,
    and the distribution of chosen letters (a model that always says A shows here)."""
    by_source: dict[str, list[ItemResult]] = {}
    for result in results:
        by_source.setdefault(result.source, []).append(result)
    distribution = Counter(
        result.predicted if result.predicted is not None else "invalid"
        for result in results
        if result.error is None
    )
    return {
        **_counts(results),
        "by_source": {source: _counts(group) for source, group in sorted(by_source.items())},
        "answer_distribution": dict(sorted(distribution.items())),
    }


def _counts(results: Sequence[ItemResult]) -> dict[str, Any]:
    n = len(results)
    accuracy = Proportion(sum(result.correct for result in results), n)
    invalid = sum(result.invalid for result in results)
    return {
        "n": n,
        "correct": accuracy.k,
        "accuracy": accuracy.accuracy,
        "ci95": list(accuracy.ci95),
        "invalid": invalid,
        "invalid_rate": invalid / n if n else 0.0,
        "errors": sum(result.error is not None for result in results),
    }
