"""A key's default intake mode, through the openai SDK against a gateway with auth on: the
key's mode applies when a request names none, a request's own mode still wins, a key without
one follows the deployment, and an operator's change reaches the gateway."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import FakeWorker

__all__ = ["start_authed_gateway"]  # the fixture, re-exported for pytest

MESSAGE = "no feaver but bad cought since monday"


@pytest.fixture
def authed(start_authed_gateway: Callable[..., AuthedGateway]) -> AuthedGateway:
    return start_authed_gateway()


@pytest.fixture
def chat(authed: AuthedGateway, worker: FakeWorker) -> Callable[..., tuple[str, str]]:
    """`chat(key, **extra)`: the intake mode the response reports and the user text the
    worker received."""

    def send(key: str, **extra: Any) -> tuple[str, str]:
        client = openai.OpenAI(base_url=f"{authed.url}/v1", api_key=key, max_retries=0)
        completion = client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": MESSAGE}], **extra
        )
        intake = completion.model_extra["clinical"]["intake"]
        sent = worker.behaviour.requests[-1]["messages"][-1]["content"]
        return (intake["mode"] if intake else "off"), sent

    return send


Chat = Callable[..., tuple[str, str]]


def test_the_keys_mode_applies_when_the_request_names_none(
    authed: AuthedGateway, chat: Chat
) -> None:
    key = authed.key("chat", intake_mode="normalize")
    mode, sent = chat(key)
    assert mode == "normalize"
    assert "fever" in sent and "feaver" not in sent and sent.startswith("no ")


def test_the_requests_mode_wins_over_the_keys(authed: AuthedGateway, chat: Chat) -> None:
    key = authed.key("chat", intake_mode="normalize")
    mode, sent = chat(key, extra_body={"clinical": {"intake": "annotate"}})
    assert (mode, sent) == ("annotate", MESSAGE)
    mode, sent = chat(key, extra_body={"clinical": {"intake": {"engine": "rules"}}})
    assert mode == "normalize"  # an object naming only the engine keeps the key's mode


def test_a_key_without_a_mode_follows_the_deployment(authed: AuthedGateway, chat: Chat) -> None:
    assert chat(authed.key("chat")) == ("annotate", MESSAGE)
    assert chat(authed.key("chat", intake_mode="off")) == ("off", MESSAGE)


def test_an_operators_change_reaches_the_gateway(authed: AuthedGateway, chat: Chat) -> None:
    key = authed.key("chat")
    public_id = key.split("-")[1]
    authed.store.set_intake_mode(public_id, "normalize")
    assert chat(key)[0] == "normalize"  # the test gateway caches no verdicts
    authed.store.set_intake_mode(public_id, None)
    assert chat(key)[0] == "annotate"
