"""Open-loop load: requests sent on a fixed schedule, whatever happened to earlier ones.

Both paths under test (the mock directly, and the gateway in front of it) get identical,
pre-encoded requests. A paired plan interleaves them at evenly spaced instants, each pair in
a seeded random order, so machine noise lands on both paths alike and each gateway request
has a direct twin sent a few milliseconds away.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from benchmarks.mock_upstream import MODEL
from benchmarks.processes import CpuMeter
from benchmarks.rawhttp import RawClient, Result

DIRECT, GATEWAY = "direct", "gateway"
CHAT = "/v1/chat/completions"


def chat_body(*, stream: bool) -> bytes:
    """A realistic small clinical chat request (~450 bytes), identical on both paths."""
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            {
                "role": "system",
                "content": "You are a careful clinical triage assistant. "
                "Answer in plain language and say when to seek urgent care.",
            },
            {
                "role": "user",
                "content": "I have had a dull chest pain for two hours that gets "
                "worse when I climb stairs. I am 58 and take medicine for blood pressure.",
            },
        ],
        "max_tokens": 128,
        "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


@dataclass
class Target:
    """One path under test: a client and its pre-encoded requests."""

    name: str
    client: RawClient
    plain: bytes = b""
    stream: bytes = b""

    def __post_init__(self) -> None:
        self.plain = self.client.post(CHAT, chat_body(stream=False))
        self.stream = self.client.post(CHAT, chat_body(stream=True))


@dataclass(frozen=True)
class Shot:
    offset_s: float  # from the start of the schedule
    path: str
    pair: int


@dataclass
class Record:
    path: str
    pair: int
    scheduled: float  # perf_counter() the request was due
    result: Result

    @property
    def lag(self) -> float:
        """How late the load generator sent it (its own saturation shows up here)."""
        return self.result.sent - self.scheduled if self.result.sent else float("nan")


def paired_plan(rate: float, duration_s: float, rng: random.Random) -> list[Shot]:
    """`rate` pairs/s, evenly spaced shots; each pair's two paths in random order."""
    spacing = 1.0 / (2 * rate)
    plan: list[Shot] = []
    for pair in range(round(rate * duration_s)):
        order = (DIRECT, GATEWAY) if rng.random() < 0.5 else (GATEWAY, DIRECT)
        plan += [
            Shot(2 * pair * spacing, order[0], pair),
            Shot((2 * pair + 1) * spacing, order[1], pair),
        ]
    return plan


def single_plan(rate: float, duration_s: float, path: str) -> list[Shot]:
    return [Shot(i / rate, path, i) for i in range(round(rate * duration_s))]


@dataclass
class Run:
    """What one open-loop schedule produced."""

    records: list[Record]
    started: float
    ended: float  # schedule end or last completion, whichever is later
    cpu: dict[str, float] = field(default_factory=dict)


async def _fire(
    shot: Shot,
    scheduled: float,
    target: Target,
    stream: bool,
    timeout_s: float,
    records: list[Record],
) -> None:
    record = Record(shot.path, shot.pair, scheduled, Result(stream=stream, error="unfinished"))
    records.append(record)
    payload = target.stream if stream else target.plain
    record.result = await target.client.request(payload, stream=stream, timeout_s=timeout_s)


async def open_loop(
    plan: list[Shot],
    targets: dict[str, Target],
    *,
    stream: bool,
    timeout_s: float,
    meter: CpuMeter | None = None,
) -> Run:
    """Send each shot at its time whatever happened to earlier ones (no coordinated omission).

    Bounded: every request has `timeout_s`; anything still open a second after that is
    cancelled and counted as an error ("unfinished").
    """
    records: list[Record] = []
    tasks: list[asyncio.Task[None]] = []
    before = meter.snapshot() if meter else None
    start = time.perf_counter() + 0.02
    for shot in plan:
        due = start + shot.offset_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        fire = _fire(shot, due, targets[shot.path], stream, timeout_s, records)
        tasks.append(asyncio.create_task(fire))
    schedule_end = time.perf_counter()
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=timeout_s + 1.0)
        for pending_task in pending:
            pending_task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    cpu = CpuMeter.cores(before, meter.snapshot()) if meter and before else {}
    last_done = max((r.result.done for r in records), default=schedule_end)
    return Run(records, start, max(schedule_end, last_done), cpu)
