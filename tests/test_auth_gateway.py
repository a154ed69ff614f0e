"""Authentication and scopes on every route, against real keys in the gateway's database."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from fastapi.routing import APIRoute

from server.app import create_app
from server.db.keys import SCOPES
from server.security.scopes import PUBLIC, ROUTE_SCOPES, required_scopes
from tests.auth_fixtures import AuthedGateway, start_authed_gateway
from tests.conftest import isolated_settings

__all__ = ["start_authed_gateway"]  # the fixture, re-exported for pytest

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "hello"}]}
ROUTES: list[tuple[str, str, dict[str, object] | None, str]] = [
    # method, path, body, a scope that admits the caller
    ("GET", "/v1/models", None, "chat"),
    ("POST", "/v1/chat/completions", CHAT, "chat"),
    ("POST", "/v1/completions", {"model": "fake-model", "prompt": "hello"}, "chat"),
    ("POST", "/v1/embeddings", {"model": "x", "input": "hello"}, "embeddings"),
    ("POST", "/v1/clinical/intake", {"text": "chest pain since this morning"}, "intake"),
    ("POST", "/v1/clinical/feedback", {"completion_id": "chatcmpl-1", "rating": 3}, "feedback"),
    ("GET", "/v1/admin/audit", None, "admin"),
    ("GET", "/v1/admin/adapters", None, "adapters"),
    ("POST", "/v1/admin/adapters", {"source": "x", "name": "med"}, "adapters"),
    ("POST", "/v1/admin/adapters/med/1/promote", None, "adapters"),
    ("POST", "/v1/admin/adapters/med/1/canary", {"percent": 5}, "adapters"),
    ("POST", "/v1/admin/adapters/med/1/retire", None, "adapters"),
    ("POST", "/v1/admin/adapters/med/rollback", None, "adapters"),
]
IDS = [f"{method} {path}" for method, path, _, _ in ROUTES]


def route_of(path: str) -> str:
    """The declared route for a concrete path (`/v1/admin/adapters/med/1/promote` ->
    `/v1/admin/adapters/{name}/{version}/promote`)."""
    for declared in ROUTE_SCOPES:
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", declared)
        if re.fullmatch(pattern, path):
            return declared
    raise AssertionError(f"no declared route matches {path}")


@pytest.fixture
def authed(start_authed_gateway: Callable[..., AuthedGateway]) -> AuthedGateway:
    return start_authed_gateway()


def call(
    gateway: AuthedGateway,
    method: str,
    path: str,
    body: dict[str, object] | None,
    key: str | None,
    **headers: str,
) -> httpx.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.request(method, gateway.url + path, json=body, headers=headers, timeout=60)


def assert_error(response: httpx.Response, status: int, error_type: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["type"] == error_type
    assert error["code"] == status


@pytest.mark.parametrize(("method", "path", "body", "scope"), ROUTES, ids=IDS)
def test_every_route_refuses_missing_bad_revoked_expired_and_wrong_scope_keys(
    authed: AuthedGateway, method: str, path: str, body: dict[str, object] | None, scope: str
) -> None:
    no_key = call(authed, method, path, body, None)
    assert_error(no_key, 401, "AuthenticationError")
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in no_key.json()["error"]["message"]

    good = authed.key(scope)
    public_id = good.split("-")[1]
    for bad in ("sk-not-ours", f"cs-{public_id}-{'x' * 43}", authed.revoked_key(scope),
                authed.expired_key(scope)):  # fmt: skip
        assert_error(call(authed, method, path, body, bad), 401, "AuthenticationError")

    others = ",".join(s for s in SCOPES if s not in required_scopes(route_of(path)))
    wrong = call(authed, method, path, body, authed.key(others))
    assert_error(wrong, 403, "PermissionDeniedError")

    allowed = call(authed, method, path, body, good)
    assert allowed.status_code not in (401, 403), allowed.text


def test_a_key_with_the_right_scope_gets_real_answers(authed: AuthedGateway) -> None:
    client = openai.OpenAI(base_url=authed.url + "/v1", api_key=authed.key("chat"))
    answer = client.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content
    assert [m.id for m in client.models.list()] == ["fake-model"]
    intake = call(authed, "POST", "/v1/clinical/intake", {"text": "crushing chest pain"},
                  authed.key("intake"))  # fmt: skip
    assert intake.status_code == 200
    assert intake.json()["red_flags"]


def test_x_api_key_header_is_accepted_too(authed: AuthedGateway) -> None:
    response = httpx.get(authed.url + "/v1/models", headers={"x-api-key": authed.key("chat")})
    assert response.status_code == 200


def test_probes_and_metrics_need_no_key(authed: AuthedGateway) -> None:
    for path in PUBLIC:
        assert httpx.get(authed.url + path).status_code == 200


def test_auth_is_checked_before_the_body_is_read(authed: AuthedGateway) -> None:
    """An anonymous caller cannot make the gateway parse (or buffer) a body."""
    response = httpx.post(authed.url + "/v1/chat/completions", content=b"{not json")
    assert_error(response, 401, "AuthenticationError")


def test_a_revocation_takes_effect_once_the_cache_expires(
    start_authed_gateway: Callable[..., AuthedGateway],
) -> None:
    gateway = start_authed_gateway(auth={"cache_ttl_s": 0.5})
    record, key = gateway.store.create_key("st-marys", "chat")
    assert call(gateway, "GET", "/v1/models", None, key).status_code == 200
    gateway.store.revoke_key(record.public_id)
    # Within the cache TTL the verdict may still be the cached one; after it, never.
    time.sleep(0.6)
    assert_error(call(gateway, "GET", "/v1/models", None, key), 401, "AuthenticationError")


def test_open_webui_user_header_is_validated(authed: AuthedGateway) -> None:
    key = authed.key("chat")
    ok = call(authed, "GET", "/v1/models", None, key, **{"X-OpenWebUI-User-Id": "u-123"})
    assert ok.status_code == 200
    bad = call(authed, "GET", "/v1/models", None, key, **{"X-OpenWebUI-User-Id": "a b\tc"})
    assert_error(bad, 400, "BadRequestError")


def test_every_route_is_classified(tmp_path: Path) -> None:
    """A new route must be added to the scope table (or PUBLIC), or it refuses everyone."""
    app = create_app(isolated_settings(tmp_path, ["http://127.0.0.1:9"]))
    paths = {route.path for route in app.routes if isinstance(route, APIRoute)}
    assert paths <= set(ROUTE_SCOPES) | PUBLIC
    app.state.gateway.engine.dispose()


def test_an_unclassified_route_admits_nobody() -> None:
    assert required_scopes("/v1/something/new") == frozenset()
    assert required_scopes("/health") is None
