"""The audit trail and clinician feedback through a running gateway with real keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from cli.main import main
from server.pipeline.facts import canonical_json
from tests.auth_fixtures import AuthedGateway, start_authed_gateway

__all__ = ["start_authed_gateway"]

MESSAGES = [{"role": "user", "content": "crushing chest pain since this morning"}]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def chat(gateway: AuthedGateway, key: str, **extra: object) -> httpx.Response:
    body = {"model": "fake-model", "messages": MESSAGES, **extra}
    return httpx.post(
        f"{gateway.url}/v1/chat/completions", json=body, headers=bearer(key), timeout=30
    )


def audit(gateway: AuthedGateway, key: str, **params: object) -> dict[str, object]:
    assert gateway.gateway.audit.flush(10)
    response = httpx.get(f"{gateway.url}/v1/admin/audit", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    page: dict[str, object] = response.json()
    return page


@pytest.fixture
def authed(start_authed_gateway: Callable[..., AuthedGateway]) -> AuthedGateway:
    return start_authed_gateway()


def test_every_request_leaves_one_row_with_digests_and_no_text(authed: AuthedGateway) -> None:
    user, admin = authed.key("chat,intake"), authed.key("admin")
    answer = chat(authed, user, **{"clinical": {"intake": "annotate"}})
    assert answer.status_code == 200
    with httpx.stream(
        "POST",
        f"{authed.url}/v1/chat/completions",
        headers=bearer(user),
        json={"model": "fake-model", "messages": MESSAGES, "stream": True},
    ) as s:
        assert s.status_code == 200 and list(s.iter_lines())  # fmt: skip
    intake = httpx.post(f"{authed.url}/v1/clinical/intake", json={"text": "chest pain"},
                        headers={**bearer(user), "X-OpenWebUI-User-Id": "clinician-7"})  # fmt: skip
    assert intake.status_code == 200
    assert chat(authed, "cs-000000000000-" + "x" * 43).status_code == 401  # no tenant

    page = audit(authed, admin)
    rows = page["data"]
    assert isinstance(rows, list) and len(rows) == 3, "the 401 belongs to no tenant"
    plain, streamed, analysed = rows
    assert plain["route"] == "/v1/chat/completions" and plain["status"] == 200
    assert plain["completion_id"] == answer.json()["id"]
    assert plain["prompt_sha256"] == hashlib.sha256(canonical_json(MESSAGES).encode()).hexdigest()
    content = answer.json()["choices"][0]["message"]["content"]
    assert plain["response_sha256"] == hashlib.sha256(content.encode()).hexdigest()
    assert plain["red_flags"] == ["cardiac_chest_pain"] and plain["intake_mode"] == "annotate"
    assert plain["prompt_tokens"] and plain["completion_tokens"] and plain["latency_ms"] > 0
    assert streamed["response_sha256"] and streamed["completion_id"].startswith("chatcmpl")
    assert streamed["completion_tokens"]
    assert analysed["route"] == "/v1/clinical/intake" and analysed["end_user"] == "clinician-7"
    assert "chest pain" not in json.dumps(rows), "no patient text in the trail"
    assert page["has_more"] is False

    other_admin = authed.key("admin", tenant="other-hospital")
    assert audit(authed, other_admin)["data"] == [], "an admin sees only their own tenant"
    first = audit(authed, admin, limit=1)
    assert first["has_more"] is True
    second = audit(authed, admin, limit=1, after=first["last_seq"])
    assert second["data"][0]["seq"] > first["data"][0]["seq"]  # type: ignore[index]


def test_the_admin_route_validates_its_filters(authed: AuthedGateway) -> None:
    admin = authed.key("admin")
    for params in (
        {"limit": 0},
        {"status": 42},
        {"since": "yesterday"},
        {"since": "2026-11-22T00:00:00"},
    ):
        response = httpx.get(f"{authed.url}/v1/admin/audit", params=params, headers=bearer(admin))
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["type"] == "BadRequestError"


def test_feedback_links_to_the_tenants_own_completion_only(authed: AuthedGateway) -> None:
    user = authed.key("chat,feedback")
    completion_id = chat(authed, user).json()["id"]
    body = {
        "completion_id": completion_id,
        "rating": 2,
        "dimensions": {"safety": 1},
        "correction": "Call emergency services now.",
        "comment": "missed the red flag",
    }
    stored = httpx.post(f"{authed.url}/v1/clinical/feedback", json=body, headers=bearer(user))
    assert stored.status_code == 201, stored.text
    assert stored.json()["completion_id"] == completion_id

    stranger = authed.key("feedback", tenant="other-hospital")
    for key, cid in ((stranger, completion_id), (user, "chatcmpl-never-issued")):
        missing = httpx.post(f"{authed.url}/v1/clinical/feedback",
                             json={**body, "completion_id": cid}, headers=bearer(key))  # fmt: skip
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["param"] == "completion_id"
    invalid = httpx.post(f"{authed.url}/v1/clinical/feedback",
                         json={**body, "rating": 6}, headers=bearer(user))  # fmt: skip
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "rating"


def test_retained_content_is_exported_and_the_cli_verifies_the_chain(
    authed: AuthedGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    user = authed.key("chat,feedback")
    assert main(["audit", "retention", "--tenant", "st-marys", "--days", "7", *data]) == 0
    completion_id = chat(authed, user).json()["id"]
    feedback = {"completion_id": completion_id, "rating": 1, "correction": "Call 911 now."}
    posted = httpx.post(f"{authed.url}/v1/clinical/feedback", json=feedback, headers=bearer(user))
    assert posted.status_code == 201
    assert authed.gateway.audit.flush(10)
    capsys.readouterr()

    assert main(["audit", "verify", *data]) == 0
    assert json.loads(capsys.readouterr().out)["intact"] is True
    assert main(["audit", "export", "--tenant", "st-marys", "--with-content", *data]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    chats = [line for line in lines if line["route"] == "/v1/chat/completions"]
    assert json.loads(chats[-1]["content"]["prompt"]) == MESSAGES
    assert chats[-1]["content_retained"] is True
    assert main(["feedback", "export", "--format", "sft", *data]) == 0
    sft = json.loads(capsys.readouterr().out)
    assert sft["messages"][-1] == {"role": "assistant", "content": "Call 911 now."}
    assert sft["meta"]["text_source"] == "retained"
