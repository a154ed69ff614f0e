"""training.sampling against an in-process fake OpenAI endpoint (httpx.MockTransport).

The fake answers each question from a script keyed by the question's text, and can refuse
`n` or `seed` with a 400, answer 503/429 a number of times, drop the connection, or demand a
key: enough to check which pairs are built, what is skipped and counted, and how the client
retries and falls back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from training.sampling import (
    SamplingError,
    SamplingReport,
    SamplingSettings,
    run_sampling,
    sample_pairs,
)

BASE_URL = "http://endpoint.test/v1"


@dataclass
class FakeOpenAI:
    """Answers keyed by a word of the question (`script`); misbehaves as told."""

    script: dict[str, list[str]] = field(default_factory=dict)
    accepts_n: bool = True
    accepts_seed: bool = True
    # per question, what to do before answering: a status, "drop", "empty" or "garbage"
    failures: dict[str, list[int | str]] = field(default_factory=dict)
    key: str | None = None
    seeded_answers: list[str] | None = None  # answer from Random(seed) instead of the script
    delay_s: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)
    draws: dict[str, int] = field(default_factory=dict)  # single answers given per question
    in_flight: int = 0
    most_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.url == f"{BASE_URL}/chat/completions"
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.key is not None and request.headers.get("authorization") != f"Bearer {self.key}":
            return _error(401, "invalid api key")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        topic = self._topic(body["messages"][-1]["content"])
        planned = self.failures.get(topic)
        if planned:
            failure = planned.pop(0)
            if failure == "drop":
                raise httpx.ConnectError("connection reset", request=request)
            if failure == "empty":
                return httpx.Response(200, json={"object": "chat.completion", "choices": []})
            if failure == "garbage":
                return httpx.Response(200, text="<html>proxy login</html>")
            assert isinstance(failure, int)
            return _error(failure, "busy", headers={"Retry-After": "0"})
        n = body.get("n", 1)
        if (n > 1 and not self.accepts_n) or ("seed" in body and not self.accepts_seed):
            return _error(400, "unsupported parameter")
        if self.seeded_answers is not None:
            rng = random.Random(body["seed"])
            texts = [rng.choice(self.seeded_answers) for _ in range(n)]
        elif n > 1:
            texts = self.script[topic][:n]
        else:
            draw = self.draws.get(topic, 0)
            self.draws[topic] = draw + 1
            texts = [self.script[topic][draw]]
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ]
        return httpx.Response(200, json={"object": "chat.completion", "choices": choices})

    def _topic(self, prompt: str) -> str:
        return next(word for word in prompt.split() if word.startswith("topic"))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message}}, headers=headers)


def mcq(topic: str, answer: str = "B", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"id-{topic}",
        "source": "test",
        "question": f"Which fits {topic} best?",
        "options": {"A": "first", "B": "second", "C": "third", "D": "fourth"},
        "answer": answer,
        **extra,
    }


def settings(**changes: Any) -> SamplingSettings:
    values: dict[str, Any] = {"base_url": BASE_URL, "model": "tiny", "n": 4, "backoff_s": 0.0}
    return SamplingSettings(**{**values, **changes})


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


MIXED = ["The answer is B, since it fits.", "A", "Answer: B", "答案：C"]


async def test_builds_pairs_and_skips_the_uniform(tmp_path: Path) -> None:
    fake = FakeOpenAI(
        script={
            "topic1": MIXED,
            "topic2": ["B", "B.", "Answer: B", "(B)"],  # all correct: nothing to prefer
            "topic3": ["A", "C", "I am not sure", "D"],  # none correct
            "topic4": ["A, C", "A", "Answer: C and A", "C"],  # two correct letters
        }
    )
    items = [mcq("topic1"), mcq("topic2"), mcq("topic3"), mcq("topic4", answer="C,A")]
    out = tmp_path / "pairs" / "sampled.jsonl"

    report = await sample_pairs(
        items, settings(api_key="k", seed=7), out, transport=fake.transport()
    )

    assert report == SamplingReport(questions=4, pairs=2, all_correct=1, none_correct=1, failed=0)
    first, fourth = read_lines(out)
    prompt = first["prompt"]
    assert [m["role"] for m in prompt] == ["user"]
    assert prompt[0]["content"] == (
        "Which fits topic1 best?\n\nA. first\nB. second\nC. third\nD. fourth\n\n"
        "Answer with the letter of the correct option."
    )
    assert first["chosen"] == [{"role": "assistant", "content": "Answer: B"}]  # the shortest
    assert first["rejected"][0]["content"] in {"A", "答案：C"}
    assert first["meta"] == {"id": "id-topic1", "source": "test", "n": 4, "correct": 2}
    assert "letters of all correct options" in fourth["prompt"][0]["content"]
    assert fourth["chosen"] == [{"role": "assistant", "content": "A, C"}]
    assert fourth["rejected"][0]["content"] in {"A", "C"}
    assert fourth["meta"]["correct"] == 2

    assert len(fake.bodies) == 4  # one request per question
    body = fake.bodies[0]
    assert {k: body[k] for k in ("model", "n", "temperature", "max_tokens")} == {
        "model": "tiny",
        "n": 4,
        "temperature": 1.0,
        "max_tokens": 512,
    }
    assert isinstance(body["seed"], int)


async def test_system_prompt_and_chinese_items(tmp_path: Path) -> None:
    fake = FakeOpenAI(script={"topic1": MIXED})
    item = mcq("topic1", language="zh")
    out = tmp_path / "pairs.jsonl"
    clinician = settings(system_prompt="You are a clinician.")
    await sample_pairs([item], clinician, out, transport=fake.transport())
    (line,) = read_lines(out)
    assert line["prompt"][0] == {"role": "system", "content": "You are a clinician."}
    assert line["prompt"][1]["content"].endswith("请直接回答正确选项的字母。")
    assert fake.bodies[0]["messages"] == line["prompt"]  # the pair's prompt is what was asked


async def test_falls_back_to_single_requests_when_n_is_refused(tmp_path: Path) -> None:
    fake = FakeOpenAI(script={"topic1": MIXED, "topic2": list(reversed(MIXED))}, accepts_n=False)
    out = tmp_path / "pairs.jsonl"
    report = await sample_pairs(
        [mcq("topic1"), mcq("topic2")], settings(concurrency=1), out, transport=fake.transport()
    )
    assert report.pairs == 2 and report.failed == 0
    # topic1: the refused n=4 request, then 4 single ones; topic2 goes straight to singles
    assert [body.get("n", 1) for body in fake.bodies] == [4] + [1] * 8
    seeds = [body["seed"] for body in fake.bodies[1:5]]
    assert len(set(seeds)) == 4  # each single draw has its own seed
    assert [line["meta"]["n"] for line in read_lines(out)] == [4, 4]


async def test_drops_the_seed_when_it_is_refused(tmp_path: Path) -> None:
    fake = FakeOpenAI(script={"topic1": MIXED}, accepts_n=False, accepts_seed=False)
    report = await sample_pairs(
        [mcq("topic1")], settings(), tmp_path / "pairs.jsonl", transport=fake.transport()
    )
    assert report.pairs == 1
    assert ["seed" in body for body in fake.bodies] == [True, True] + [False] * 4


async def test_retries_after_503_and_429(tmp_path: Path) -> None:
    fake = FakeOpenAI(script={"topic1": MIXED}, failures={"topic1": [503, 429, "drop"]})
    report = await sample_pairs(
        [mcq("topic1")], settings(retries=3), tmp_path / "pairs.jsonl", transport=fake.transport()
    )
    assert report == SamplingReport(questions=1, pairs=1, all_correct=0, none_correct=0, failed=0)
    assert len(fake.bodies) == 4


async def test_counts_a_failure_after_retries_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeOpenAI(
        script={"topic1": MIXED, "topic2": MIXED},
        failures={"topic1": [503] * 10, "topic3": ["drop"] * 10},
    )
    items = [mcq("topic1"), mcq("topic2"), mcq("topic3")]
    out = tmp_path / "pairs.jsonl"
    with caplog.at_level(logging.DEBUG):
        report = await sample_pairs(items, settings(retries=2), out, transport=fake.transport())
    assert report == SamplingReport(questions=3, pairs=1, all_correct=0, none_correct=0, failed=2)
    assert [line["meta"]["id"] for line in read_lines(out)] == ["id-topic2"]
    assert len(fake.bodies) == 3 + 1 + 3  # 1 + 2 retries for each failing item
    assert "id-topic1" in caplog.text and "id-topic3" in caplog.text
    assert "Which fits" not in caplog.text  # question text never reaches the log


async def test_answers_that_cannot_be_used_fail_the_item_at_once(tmp_path: Path) -> None:
    topics: dict[str, list[int | str]] = {
        "topic1": [422],
        "topic2": ["empty"],
        "topic3": ["garbage"],
        "topic4": [],
    }
    fake = FakeOpenAI(script=dict.fromkeys(topics, MIXED), failures=topics)
    items = [mcq(topic) for topic in topics]
    report = await sample_pairs(items, settings(), tmp_path / "p.jsonl", transport=fake.transport())
    assert report == SamplingReport(questions=4, pairs=1, all_correct=0, none_correct=0, failed=3)
    assert len(fake.bodies) == 4  # none of these is retried


async def test_concurrency_is_bounded(tmp_path: Path) -> None:
    fake = FakeOpenAI(script={f"topic{i}": MIXED for i in range(8)}, delay_s=0.02)
    items = [mcq(f"topic{i}") for i in range(8)]
    report = await sample_pairs(
        items, settings(concurrency=3), tmp_path / "pairs.jsonl", transport=fake.transport()
    )
    assert report.pairs == 8
    assert fake.most_in_flight == 3


async def test_several_pairs_per_question(tmp_path: Path) -> None:
    answers = ["Answer: B", "B", "The answer is B.", "A", "C", "D"]
    fake = FakeOpenAI(script={"topic1": answers})
    out = tmp_path / "pairs.jsonl"
    report = await sample_pairs(
        [mcq("topic1")], settings(n=6, pairs_per_question=5), out, transport=fake.transport()
    )
    lines = read_lines(out)
    assert report.pairs == len(lines) == 3  # as many as the larger side, each pair distinct
    chosen = [line["chosen"][0]["content"] for line in lines]
    rejected = [line["rejected"][0]["content"] for line in lines]
    assert chosen == ["B", "Answer: B", "The answer is B."]  # shortest first
    assert sorted(rejected) == ["A", "C", "D"]


async def test_the_rejected_answer_is_drawn_at_random(tmp_path: Path) -> None:
    script = {f"topic{i}": ["B", "A", "C", "D"] for i in range(12)}
    out = tmp_path / "pairs.jsonl"
    items = [mcq(topic) for topic in script]
    await sample_pairs(items, settings(), out, transport=FakeOpenAI(script=script).transport())
    rejected = [line["rejected"][0]["content"] for line in read_lines(out)]
    assert len(rejected) == 12 and set(rejected) == {"A", "C", "D"}


def test_same_seed_same_file(tmp_path: Path) -> None:
    pool = ["Answer: A", "B", "The answer is B.", "C", "答案：D", "Answer: B because..."]
    items = [mcq(f"topic{i}") for i in range(6)]

    def run(seed: int, name: str) -> tuple[str, list[int]]:
        fake = FakeOpenAI(seeded_answers=pool, delay_s=0.001)
        out = tmp_path / name
        run_sampling(
            items, settings(n=5, seed=seed, concurrency=3), out, transport=fake.transport()
        )
        return out.read_text(encoding="utf-8"), sorted(body["seed"] for body in fake.bodies)

    first, first_seeds = run(1, "a.jsonl")
    again, again_seeds = run(1, "b.jsonl")
    other, other_seeds = run(2, "c.jsonl")
    assert first and first == again and first_seeds == again_seeds
    assert other != first and set(other_seeds).isdisjoint(first_seeds)


async def test_a_refused_key_stops_the_run(tmp_path: Path) -> None:
    fake = FakeOpenAI(script={"topic1": MIXED}, key="right")
    out = tmp_path / "pairs.jsonl"
    out.write_text("previous run\n", encoding="utf-8")
    with pytest.raises(SamplingError, match=r"/chat/completions refused the API key \(401\)"):
        await sample_pairs(
            [mcq("topic1")], settings(api_key="wrong"), out, transport=fake.transport()
        )
    assert out.read_text(encoding="utf-8") == "previous run\n"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]  # no temporary file left

    report = await sample_pairs(
        [mcq("topic1")], settings(api_key="right"), out, transport=fake.transport()
    )
    assert report.pairs == 1 and len(read_lines(out)) == 1


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"id": "q9", "options": {"A": "x", "B": "y"}, "answer": "A"},
            r"item 0 \(id q9\): 'question'",
        ),
        ({"question": "q?", "options": [], "answer": "A"}, r"item 0 \(id 0\): 'options'"),
        ({"question": "q?", "options": {"a": "x"}, "answer": "A"}, "capital letters"),
        ({"question": "q?", "options": {"A": "x", "B": "y"}, "answer": "E"}, "'answer' must name"),
        ({"question": "q?", "options": {"A": "x", "B": "y"}}, "'answer'"),
    ],
)
async def test_bad_items_are_named_before_any_request(
    tmp_path: Path, item: dict[str, Any], message: str
) -> None:
    fake = FakeOpenAI()
    with pytest.raises(SamplingError, match=message):
        await sample_pairs([item], settings(), tmp_path / "p.jsonl", transport=fake.transport())
    assert fake.bodies == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n": 1}, "n must be at least 2"),
        ({"base_url": "endpoint.test/v1"}, "base_url"),
        ({"concurrency": 0}, "concurrency"),
        ({"pairs_per_question": 0}, "pairs_per_question"),
    ],
)
def test_bad_settings_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SamplingError, match=message):
        replace(settings(), **change)
