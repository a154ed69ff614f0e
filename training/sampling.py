"""Rejection sampling: preference pairs from N sampled answers per MCQ, chosen by correctness.

Citrus's recipe for CPO-SimPO data: ask the model each question N times at a high
temperature, keep the questions it sometimes gets right and sometimes wrong (those are where
preference training can move it), and pair a correct answer with a wrong one. Correctness is
rule-based, with the same `extract_choice` the GRPO reward uses, so the two stages agree on
what "right" means.

Any OpenAI-compatible endpoint can sample (vLLM, the clinserve gateway itself, a hosted
provider). vLLM returns all N in one request (`"n": N`); a provider that refuses `n` or
`seed` with a 400 is asked again without them, and the run remembers what the endpoint
accepts. Transient failures (429, 5xx, lost connections) are retried with exponential
backoff; an item that still fails is counted and skipped. Question text never reaches the
log (it may be patient data): items are named by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from training.mcq import mcq_prompt
from training.rewards import extract_choice, normalize_answer

log = logging.getLogger(__name__)

_RETRY_AFTER_CAP_S = 60.0
# How the endpoint is asked, most efficient first: (one request for all n, send a seed).
_MODES = ((True, True), (False, True), (False, False))


class SamplingError(ValueError):
    """Sampling cannot start or go on: a bad item, setting, key or endpoint address."""


@dataclass(frozen=True)
class SamplingSettings:
    """Where to sample and how; `n` answers per question at `temperature`."""

    base_url: str  # up to and including /v1, e.g. http://127.0.0.1:8000/v1
    model: str
    api_key: str | None = field(default=None, repr=False)  # kept out of logs and tracebacks
    n: int = 8
    temperature: float = 1.0
    max_tokens: int = 512
    concurrency: int = 4  # questions in flight, each one request at a time
    timeout_s: float = 120
    retries: int = 2  # further attempts after a 429, a 5xx or a lost connection
    backoff_s: float = 1.0  # first retry's wait; doubles each attempt
    seed: int = 0
    system_prompt: str | None = None
    pairs_per_question: int = 1

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise SamplingError(f"base_url must start with http:// or https://: {self.base_url!r}")
        if self.n < 2:
            raise SamplingError(f"n must be at least 2 to compare answers, got {self.n}")
        if self.temperature < 0 or self.max_tokens < 1 or self.timeout_s <= 0:
            raise SamplingError("temperature must be >= 0, max_tokens >= 1, timeout_s > 0")
        if self.concurrency < 1 or self.retries < 0 or self.backoff_s < 0:
            raise SamplingError("concurrency must be >= 1, retries and backoff_s >= 0")
        if self.pairs_per_question < 1:
            raise SamplingError(f"pairs_per_question must be >= 1, got {self.pairs_per_question}")


@dataclass(frozen=True)
class SamplingReport:
    """What a run did: `pairs` lines written from `questions` items; the rest were skipped
    because every answer was right (`all_correct`), none was (`none_correct`), or the
    endpoint failed (`failed`)."""

    questions: int
    pairs: int
    all_correct: int
    none_correct: int
    failed: int


@dataclass(frozen=True)
class _Question:
    id: str
    source: str | None
    prompt: list[dict[str, str]]  # the messages sent, and the pair's prompt
    letters: str
    answer: str


class _ItemFailed(Exception):
    """This item's requests failed after retries; the run goes on without it."""


class _Refused(Exception):
    """A 400: the request's shape (n, seed) may be what the endpoint refuses."""


class _Endpoint:
    """The chat completions endpoint, and what it has shown it accepts (`_MODES` index)."""

    def __init__(self, client: httpx.AsyncClient, settings: SamplingSettings) -> None:
        self.client = client
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        self.mode = 0

    async def sample(self, question: _Question) -> list[str]:
        """`n` answers to the question, asking as plainly as the endpoint needs."""
        for mode in range(self.mode, len(_MODES)):
            batched, seeded = _MODES[mode]
            try:
                if batched:
                    answers = await self._complete(question, 0, self.settings.n, seeded)
                else:  # one at a time, so requests in flight stay within `concurrency`
                    answers = []
                    for draw in range(self.settings.n):
                        answers += await self._complete(question, draw, 1, seeded)
            except _Refused:
                continue
            self.mode = max(self.mode, mode)
            return answers
        raise _ItemFailed("the endpoint refused the request (400), even with n=1 and no seed")

    async def _complete(self, question: _Question, draw: int, n: int, seeded: bool) -> list[str]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "messages": question.prompt,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        if n > 1:
            body["n"] = n
        if seeded:
            body["seed"] = _request_seed(self.settings.seed, question.id, draw)
        response = await self._post(body)
        try:
            choices = response.json()["choices"]
            answers = [(choice["message"].get("content") or "") for choice in choices]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _ItemFailed("the endpoint's answer is not a chat completion") from None
        if not answers:
            raise _ItemFailed("the endpoint answered with no choices")
        return answers

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        """The endpoint's 2xx answer, retrying 429, 5xx and lost connections with backoff."""
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                response = await self.client.post(self.url, json=body)
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            else:
                status = response.status_code
                if status == 400:
                    raise _Refused
                if status in (401, 403, 404):
                    raise SamplingError(_fatal_status(status, self.url, self.settings.model))
                if status != 429 and status < 500:
                    if status >= 300:
                        raise _ItemFailed(f"HTTP {status}")
                    return response
                failure = f"HTTP {status}"
            if attempt == self.settings.retries:
                raise _ItemFailed(f"{failure} after {attempt} retries")
            await asyncio.sleep(self._backoff(attempt, response))
            attempt += 1

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """Exponential, or the server's Retry-After (seconds, capped) when it sends one."""
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                return min(max(float(retry_after), 0.0), _RETRY_AFTER_CAP_S)
        return float(self.settings.backoff_s * 2**attempt)


async def sample_pairs(
    items: list[dict[str, Any]],
    settings: SamplingSettings,
    out: Path,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SamplingReport:
    """Sample every item, write the preference pairs to `out` (JSONL, atomically), report.

    `transport` replaces the network (tests pass an `httpx.MockTransport`). Raises
    `SamplingError` for a malformed item before any request, and for a 401/403/404 (a wrong
    key, address or model fails every item alike, so the run stops).
    """
    questions = [_question(item, number, settings) for number, item in enumerate(items)]
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    limit = asyncio.Semaphore(settings.concurrency)
    async with httpx.AsyncClient(
        transport=transport, headers=headers, timeout=settings.timeout_s
    ) as client:
        endpoint = _Endpoint(client, settings)

        async def answers_to(question: _Question) -> list[str] | None:
            async with limit:
                try:
                    return await endpoint.sample(question)
                except _ItemFailed as exc:
                    log.warning("sampling: item %s failed: %s", question.id, exc)
                    return None

        try:  # a TaskGroup, so that a SamplingError stops the questions still in flight
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(answers_to(question)) for question in questions]
        except BaseExceptionGroup as errors:
            raise errors.exceptions[0] from None

    lines: list[str] = []
    all_correct = none_correct = failed = 0
    for question, task in zip(questions, tasks, strict=True):
        answers = task.result()
        if answers is None:
            failed += 1
            continue
        verdicts = [extract_choice(text, question.letters) == question.answer for text in answers]
        right = [text for text, correct in zip(answers, verdicts, strict=True) if correct]
        wrong = [text for text, correct in zip(answers, verdicts, strict=True) if not correct]
        if not wrong:
            all_correct += 1
        elif not right:
            none_correct += 1
        else:
            lines.extend(_pair_lines(question, right, wrong, len(answers), settings))
    _write_atomically(out, lines)
    return SamplingReport(len(questions), len(lines), all_correct, none_correct, failed)


def run_sampling(
    items: list[dict[str, Any]],
    settings: SamplingSettings,
    out: Path,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SamplingReport:
    """`sample_pairs` for synchronous callers (the `clinserve train sample` command)."""
    return asyncio.run(sample_pairs(items, settings, out, transport=transport))


def _question(item: dict[str, Any], number: int, settings: SamplingSettings) -> _Question:
    """The item checked and its prompt built; `SamplingError` names the item and the field."""
    item_id = str(item.get("id", number))
    where = f"item {number} (id {item_id})"
    question, options = item.get("question"), item.get("options")
    if not isinstance(question, str) or not question.strip():
        raise SamplingError(f"{where}: 'question' must be non-empty text")
    if not isinstance(options, dict) or not options:
        raise SamplingError(f"{where}: 'options' must be a mapping of letters to text")
    letters = "".join(sorted(options))
    if not all(len(letter) == 1 and letter.isupper() for letter in letters):
        raise SamplingError(f"{where}: 'options' keys must be capital letters, got {letters!r}")
    raw_answer = item.get("answer")
    answer = normalize_answer(raw_answer, letters) if isinstance(raw_answer, str) else None
    if answer is None:
        raise SamplingError(f"{where}: 'answer' must name options among {letters}")
    prompt = mcq_prompt(item, answer, settings.system_prompt)  # the prompt GRPO trains on
    source = item.get("source")
    return _Question(item_id, None if source is None else str(source), prompt, letters, answer)


def _pair_lines(
    question: _Question,
    right: list[str],
    wrong: list[str],
    sampled: int,
    settings: SamplingSettings,
) -> list[str]:
    """Up to `pairs_per_question` distinct pairs: shortest correct answers first (Citrus keeps
    the concise one), each against a wrong answer drawn in a seeded per-question order."""
    rng = random.Random(f"{settings.seed}:{question.id}")
    chosen = sorted(right, key=len)
    rejected = rng.sample(wrong, len(wrong))
    count = min(settings.pairs_per_question, max(len(chosen), len(rejected)))
    meta = {"id": question.id, "source": question.source, "n": sampled, "correct": len(right)}
    return [
        json.dumps(
            {
                "prompt": question.prompt,
                "chosen": [{"role": "assistant", "content": chosen[i % len(chosen)]}],
                "rejected": [{"role": "assistant", "content": rejected[i % len(rejected)]}],
                "meta": meta,
            },
            ensure_ascii=False,
        )
        for i in range(count)
    ]


def _request_seed(seed: int, item_id: str, draw: int) -> int:
    """A seed per (run seed, item, draw): the same item samples alike in any order, and the
    single-request fallback's draws differ from each other."""
    return random.Random(f"{seed}:{item_id}:{draw}").getrandbits(31)


def _fatal_status(status: int, url: str, model: str) -> str:
    reason = {
        401: "refused the API key (401); set api_key",
        403: "refused the API key (403): it lacks access to this model",
        404: f"has no chat completions or no model {model!r} (404); check base_url and model",
    }[status]
    return f"sampling: {url} {reason}"


def _write_atomically(out: Path, lines: list[str]) -> None:
    """Write through a temporary file in the same folder and rename it over `out`, so a
    crashed run never leaves half a file that the next stage would read as complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.writelines(line + "\n" for line in lines)
        os.replace(handle.name, out)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
