"""`/v1/admin/adapters` with real keys: list, publish from the incoming folder only, promote,
canary, retire, rollback, and each refusal in the error envelope with the right status."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.adapter_fixtures import lora_dir, tiny_base
from tests.auth_fixtures import AuthedGateway, start_authed_gateway

__all__ = ["lora_dir", "start_authed_gateway", "tiny_base"]


class Admin:
    def __init__(self, authed: AuthedGateway, lora: Path) -> None:
        self.authed = authed
        self.key = authed.key("adapters")
        settings = authed.gateway.settings
        self.incoming = settings.adapters.incoming_in(settings.data_dir)
        self.incoming.mkdir(parents=True, exist_ok=True)
        shutil.copytree(lora, self.incoming / "med-lora")

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return httpx.request(
            method, f"{self.authed.url}/v1/admin/adapters{path}", json=body,
            headers={"Authorization": f"Bearer {self.key}"}, timeout=60,
        )  # fmt: skip

    def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self.call(method, path, body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def refused(self, response: httpx.Response, status: int, words: str) -> None:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == status and words in error["message"], error


@pytest.fixture
def admin(start_authed_gateway: Callable[..., AuthedGateway], lora_dir: Path) -> Admin:
    return Admin(start_authed_gateway(model={"name": "fake-model"}), lora_dir)


def test_publish_promote_canary_rollback_retire(admin: Admin) -> None:
    assert admin.ok("GET", "") == {"object": "list", "data": []}
    first = admin.ok("POST", "", {"source": "med-lora", "name": "med"})
    assert (first["version"], first["state"], first["served_name"]) == (1, "staged", "med@1")
    assert admin.ok("POST", "/med/1/promote")["state"] == "active"
    admin.ok("POST", "", {"source": "med-lora", "name": "med", "canary_percent": 20})
    assert admin.ok("POST", "/med/2/canary", {"percent": 40})["canary_percent"] == 40
    assert admin.ok("POST", "/med/2/promote")["state"] == "active"
    assert admin.ok("POST", "/med/rollback")["version"] == 1
    assert admin.ok("POST", "/med/2/retire")["state"] == "retired"
    listed = admin.ok("GET", "?name=med")["data"]
    assert [(v["version"], v["state"]) for v in listed] == [(1, "active"), (2, "retired")]


def test_publishing_reads_only_inside_the_incoming_folder(admin: Admin) -> None:
    for source in ("../adapters", "/etc", "med-lora/../../x", "."):
        response = admin.call("POST", "", {"source": source, "name": "med"})
        admin.refused(response, 400, "")
        assert response.json()["error"]["param"] == "source"
    admin.refused(admin.call("POST", "", {"source": "missing", "name": "med"}), 400, "not a folder")
    assert admin.ok("GET", "")["data"] == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"source": "med-lora", "name": "Med"}, 400, "name"),
        ({"source": "med-lora", "name": "med", "canary_percent": 100}, 400, "canary_percent"),
        ({"source": "med-lora", "name": "med", "extra": 1}, 400, "extra"),
        ({"source": "med-lora", "name": "med", "eval_gates": ["acc>=0.9"]}, 400, "reports no"),
        ({"source": "med-lora", "name": "med", "canary_percent": 10}, 409, "no active version"),
        ("not an object", 400, ""),
    ],
)
def test_publish_refusals(admin: Admin, body: Any, status: int, words: str) -> None:
    admin.refused(admin.call("POST", "", body), status, words)
    assert admin.ok("GET", "")["data"] == []


def test_state_refusals(admin: Admin) -> None:
    admin.refused(admin.call("POST", "/med/1/promote"), 404, "no adapter med@1")
    admin.ok("POST", "", {"source": "med-lora", "name": "med"})
    admin.refused(admin.call("POST", "/med/rollback"), 409, "no active version")
    admin.ok("POST", "/med/1/promote")
    admin.refused(admin.call("POST", "/med/1/promote"), 409, "already active")
    admin.refused(admin.call("POST", "/med/1/retire"), 409, "is active")
    admin.refused(admin.call("POST", "/med/1/canary", {"percent": 0}), 400, "percent")
    admin.refused(admin.call("POST", "/med/0/promote"), 400, "")
    admin.refused(admin.call("POST", "/BAD/1/promote"), 400, "")
