"""CDS Hooks authentication through the real app: an EMR's JWT or an API key with `cds`.

The hook route itself is a stand-in registered in the test app (in front of the real one, if
that exists), filling the request facts the way the hook service does, so these tests pin
authentication, the principal and the audit row, not card logic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.app import create_app
from server.audit.store import EventFilter
from server.db.database import make_engine, resolve_database_url, session_factory
from server.db.keys import KeyStore
from server.db.pepper import deployment_pepper
from server.gateway import Gateway
from server.security.scopes import required_scopes
from tests.cds_fixtures import (
    BASE,
    EMR,
    HOOK_PATH,
    SigningKey,
    claims,
    hs256_with_public_key,
    jwks,
    sign,
    unsigned,
    write_jwks,
)
from tests.conftest import isolated_settings
from tests.fakes import ServerThread

OTHER_EMR = "https://county-emr.example.org"
PATIENT_NAME = "Johanna Q. Testpatient"


@dataclass
class Keys:
    rsa: SigningKey
    ec: SigningKey
    rotated: SigningKey  # published at the allow-listed jku URL only
    county: SigningKey  # the URL issuer's key
    stranger: SigningKey  # published nowhere


@dataclass
class CdsGateway:
    server: ServerThread
    store: KeyStore
    keys: Keys
    served: dict[str, Any]  # what the JWKS server answers, by path

    @property
    def gateway(self) -> Gateway:
        gateway: Gateway = self.server.server.config.app.state.gateway
        return gateway

    def post(self, credential: str | None, path: str = HOOK_PATH) -> httpx.Response:
        headers = {} if credential is None else {"Authorization": f"Bearer {credential}"}
        patient = {"resourceType": "Patient", "name": [{"text": PATIENT_NAME}]}
        body = {"hook": "patient-view", "hookInstance": "d1577c69",
                "context": {"patientId": "p1"}, "prefetch": {"patient": patient}}  # fmt: skip
        return httpx.post(self.server.url + path, json=body, headers=headers, timeout=30)

    def rows(self, tenant_id: int | None, route: str) -> list[dict[str, Any]]:
        assert self.gateway.audit.flush(10)
        return self.gateway.audit.store.list_events(tenant_id, EventFilter(route=route))


def install_stand_in_hook(app: FastAPI) -> None:
    """A `/cds-services/{service_id}` route that does what the hook service does to the
    request facts (model, citations, red flags, a PHI-free description as the prompt)."""

    async def hook(service_id: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        facts = request.state.facts
        facts.model = "fake-model"
        facts.citations = ["sepsis-guideline#2"]
        facts.red_flags = ["sepsis"]
        facts.set_prompt({"hook": body["hook"], "hookInstance": body["hookInstance"],
                          "resources": {"Patient": 1}})  # fmt: skip
        principal = request.state.principal
        client = principal.client
        return {"cards": [], "service": service_id, "tenant_id": principal.tenant_id,
                "key_id": principal.key_id, "client": client.label if client else None}  # fmt: skip

    app.add_api_route("/cds-services/{service_id}", hook, methods=["POST"])
    app.router.routes.insert(0, app.router.routes.pop())  # ahead of a real hook route


def jwks_app(served: dict[str, Any]) -> Starlette:
    async def serve(request: Request) -> JSONResponse:
        document = served.get(request.url.path)
        return JSONResponse(document) if document is not None else JSONResponse({}, 404)

    return Starlette(routes=[Route("/{name}.json", serve)])


@pytest.fixture(scope="module")
def cds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CdsGateway]:
    keys = Keys(SigningKey.rsa("emr-rsa"), SigningKey.ec("emr-ec"), SigningKey.rsa("emr-next"),
                SigningKey.ec("county-1"), SigningKey.rsa("emr-rsa"))  # fmt: skip
    served: dict[str, Any] = {
        "/rotated.json": jwks(keys.rotated),
        "/county.json": jwks(keys.county),
    }
    tmp_path = tmp_path_factory.mktemp("cds")
    with ServerThread(jwks_app(served)) as key_server:
        issuers = [
            {"issuer": EMR, "jwks": str(write_jwks(tmp_path / "emr.json", keys.rsa, keys.ec)),
             "tenant": "st-marys", "jku": [key_server.url + "/rotated.json"]},
            {"issuer": OTHER_EMR, "jwks": key_server.url + "/county.json", "tenant": "county"},
        ]  # fmt: skip
        settings = isolated_settings(
            tmp_path,
            [],
            auth={"enabled": True, "cache_ttl_s": 0.0},
            cds_clients={"issuers": issuers, "audience": [BASE + "/"], "jwks_min_refetch_s": 0},
        )
        app = create_app(settings)
        install_stand_in_hook(app)
        engine = make_engine(resolve_database_url(settings.database_url, settings.data_dir))
        store = KeyStore(session_factory(engine), deployment_pepper(settings))
        with ServerThread(app) as server:
            yield CdsGateway(server, store, keys, served)
        engine.dispose()


def assert_refused(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status
    assert error["type"] == ("AuthenticationError" if status == 401 else "PermissionDeniedError")
    assert fragment in error["message"], error["message"]
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_valid_rs384_token_is_accepted_and_mapped_to_the_issuers_tenant(cds: CdsGateway) -> None:
    answer = cds.post(sign(cds.keys.rsa, claims(sub="epic-prod")))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["tenant_id"] == cds.store.create_tenant_if_missing("st-marys")
    assert body["client"] == f"epic-prod@{EMR}" and body["key_id"] is None


def test_a_valid_es384_token_is_accepted(cds: CdsGateway) -> None:
    assert cds.post(sign(cds.keys.ec, claims())).status_code == 200


def test_an_issuer_whose_keys_are_at_a_url_is_accepted_with_its_own_tenant(cds: CdsGateway) -> None:
    answer = cds.post(sign(cds.keys.county, claims(iss=OTHER_EMR)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["tenant_id"] == cds.store.create_tenant_if_missing("county")


def test_a_key_the_issuer_rotated_in_is_fetched_on_first_sight(cds: CdsGateway) -> None:
    newer = SigningKey.ec("county-2")
    cds.served["/county.json"] = jwks(cds.keys.county, newer)
    assert cds.post(sign(newer, claims(iss=OTHER_EMR))).status_code == 200


def test_a_jku_on_the_issuers_allow_list_is_honoured(cds: CdsGateway) -> None:
    [jku] = cds.gateway.settings.cds_clients.issuers[0].jku
    token = sign(cds.keys.rotated, claims(), jku=jku)
    assert cds.post(token).status_code == 200


REFUSALS: list[tuple[str, Callable[[Keys], str], str]] = [
    ("wrong issuer", lambda k: sign(k.rsa, claims(iss="https://evil.example.org")),
     "untrusted issuer"),
    ("issuer known only by its keys' owner", lambda k: sign(k.county, claims()),
     "unknown signing key"),
    ("wrong audience: another service", lambda k: sign(k.rsa, claims(aud="https://cds.evil.org"
     + HOOK_PATH)), "wrong audience"),
    ("wrong audience: another hook", lambda k: sign(k.rsa, claims(aud=BASE
     + "/cds-services/order-sign")), "wrong audience"),
    ("expired", lambda k: sign(k.rsa, claims(issued_s_ago=200, lifetime_s=100)), "expired"),
    ("issued in the future beyond the leeway", lambda k: sign(k.rsa, claims(issued_s_ago=-120)),
     "not yet valid"),
    ("issued too long ago", lambda k: sign(k.rsa, claims(issued_s_ago=400, lifetime_s=600)),
     "issued too long ago"),
    ("lives too long", lambda k: sign(k.rsa, claims(lifetime_s=3600)), "expiry too far ahead"),
    ("no exp", lambda k: sign(k.rsa, claims(drop=("exp",))), "exp claim is missing"),
    ("no jti", lambda k: sign(k.rsa, claims(drop=("jti",))), "jti claim is missing"),
    ("no sub", lambda k: sign(k.rsa, claims(drop=("sub",))), "sub claim is missing"),
    ("no iat", lambda k: sign(k.rsa, claims(drop=("iat",))), "iat claim is missing"),
    ("empty jti", lambda k: sign(k.rsa, claims(jti="")), "jti claim is empty"),
    ("overlong sub", lambda k: sign(k.rsa, claims(sub="x" * 256)), "sub claim is empty or too"),
    ("alg none", lambda k: unsigned(k.rsa.kid, claims()), "algorithm not accepted"),
    ("HS256 keyed with the public key", lambda k: hs256_with_public_key(k.rsa, claims()),
     "algorithm not accepted"),
    ("unknown kid", lambda k: sign(SigningKey("nobody", "RS384", k.rsa.private), claims()),
     "unknown signing key"),
    ("no kid", lambda k: sign(SigningKey("", "RS384", k.rsa.private), claims()),
     "no key id"),
    ("signed by someone else's key under a known kid", lambda k: sign(k.stranger, claims()),
     "bad signature"),
    ("an RSA key id with an EC algorithm", lambda k: sign(SigningKey("emr-rsa", "ES384",
     k.ec.private), claims()), "does not fit the algorithm"),
    ("jku not allow-listed", lambda k: sign(k.rsa, claims(), jku="https://evil.example.org/k.json"),
     "jku"),
    ("not a JWT", lambda _: "abc.def.ghi", "not a well-formed JWT"),
]  # fmt: skip


@pytest.mark.parametrize(("token", "fragment"), [(t, f) for _, t, f in REFUSALS],
                         ids=[name for name, _, _ in REFUSALS])  # fmt: skip
def test_a_bad_token_is_refused_with_401_saying_which_check(
    cds: CdsGateway, token: Callable[[Keys], str], fragment: str
) -> None:
    assert_refused(cds.post(token(cds.keys)), 401, fragment)


def test_a_token_is_accepted_once(cds: CdsGateway) -> None:
    token = sign(cds.keys.rsa, claims())
    assert cds.post(token).status_code == 200
    assert_refused(cds.post(token), 401, "already used")


def test_a_refused_token_does_not_use_up_its_jti(cds: CdsGateway) -> None:
    """A replayed jti is only remembered once the rest of the token checked out."""
    payload = claims(aud="https://cds.evil.org" + HOOK_PATH)
    assert cds.post(sign(cds.keys.rsa, payload)).status_code == 401
    assert cds.post(sign(cds.keys.rsa, {**payload, "aud": BASE + HOOK_PATH})).status_code == 200


def test_a_jwt_is_never_accepted_on_the_v1_routes(cds: CdsGateway) -> None:
    token = sign(cds.keys.rsa, claims(aud=BASE + "/v1/chat/completions"))
    response = httpx.post(cds.server.url + "/v1/chat/completions", headers={"Authorization":
                          f"Bearer {token}"}, json={"model": "m", "messages": []})  # fmt: skip
    assert_refused(response, 401, "Invalid API key")


def test_api_keys_need_the_cds_scope(cds: CdsGateway) -> None:
    _, chat_only = cds.store.create_key("st-marys", "chat,admin")
    assert_refused(cds.post(chat_only), 403, "cds")
    record, key = cds.store.create_key("st-marys", "cds")
    answer = cds.post(key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["key_id"] == record.key_id and answer.json()["client"] is None
    assert_refused(cds.post(None), 401, "No API key")
    assert_refused(cds.post("cs-000000000000-" + "x" * 43), 401, "Invalid API key")


def test_every_hook_call_leaves_an_audit_row_without_patient_data(cds: CdsGateway) -> None:
    path = "/cds-services/audited-hook"
    token = sign(cds.keys.rsa, claims(aud=BASE + path, sub="epic-prod"))
    assert cds.post(token, path).status_code == 200
    record, key = cds.store.create_key("st-marys", "cds")
    assert cds.post(key, path).status_code == 200
    assert (
        cds.post(sign(cds.keys.rsa, claims(iss="https://evil.example.org")), path).status_code
        == 401
    )

    tenant_id = cds.store.create_tenant_if_missing("st-marys")
    by_jwt, by_key = cds.rows(tenant_id, path)
    assert by_jwt["client"] == f"epic-prod@{EMR}" and by_jwt["key_id"] is None
    assert by_key["key_id"] == record.key_id and by_key["client"] is None
    for row in (by_jwt, by_key):
        assert row["status"] == 200 and row["latency_ms"] > 0 and row["tenant_id"] == tenant_id
        assert row["model"] == "fake-model" and row["citations"] == ["sepsis-guideline#2"]
        assert row["red_flags"] == ["sepsis"] and row["prompt_sha256"]
    [refused] = cds.rows(None, path)
    assert refused["status"] == 401 and refused["client"] is None
    text = json.dumps([by_jwt, by_key, refused])
    assert PATIENT_NAME not in text and 'Patient"' not in text
    assert cds.gateway.audit.store.verify().intact


def test_hook_calls_are_counted_under_one_metrics_label(cds: CdsGateway) -> None:
    cds.post(sign(cds.keys.rsa, claims()))
    metrics = httpx.get(cds.server.url + "/metrics").text
    assert 'route="cds_hook"' in metrics
    assert "patient-view" not in metrics


def test_discovery_needs_no_credentials_and_is_not_audited(cds: CdsGateway) -> None:
    assert required_scopes("/cds-services") is None
    assert required_scopes("/cds-services/{service_id}") == {"cds"}
    response = httpx.get(cds.server.url + "/cds-services")
    assert response.status_code == 200, response.text
    assert not cds.rows(None, "/cds-services")
