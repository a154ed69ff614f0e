"""The parts behind CDS Hooks authentication, each on its own: settings that refuse unsafe
states, key-set loading and caching, the replay cache, the audit chain's new column, and
the principal an EMR becomes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from pydantic import ValidationError

from server.audit.chain import AuditRecord, canonical
from server.db.models import utc_now
from server.gateway import Gateway
from server.middleware import route_name
from server.pipeline.quota import Caller
from server.ratelimit.limiter import KeyLimits
from server.security.auth import Authenticator
from server.security.cds_auth import CdsClientAuth
from server.security.cds_jwt import CdsTokenVerifier, looks_like_jwt
from server.security.jwks import MAX_JWKS_BYTES, KeySets, parse_jwks
from server.security.principal import CdsClient, Principal
from server.security.replay import ReplayCache
from server.settings import CdsClientsSettings
from tests.cds_fixtures import BASE, EMR, SigningKey, claims, jwks, sign, write_jwks

RSA = SigningKey.rsa("k1")
EC = SigningKey.ec("k2")
URL = "https://emr.example.org/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def issuer(jwks_source: str, **extra: Any) -> dict[str, Any]:
    return {"issuer": EMR, "jwks": jwks_source, "tenant": "st-marys", **extra}


# Settings


def test_settings_accept_a_file_and_an_https_issuer(tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "k.json", RSA)
    settings = CdsClientsSettings(
        issuers=[issuer(str(path)), {**issuer(URL), "issuer": "https://b.example.org"}],
        audience="https://cds.example.org/, http://localhost:8000",  # type: ignore[arg-type]
    )
    assert settings.audience == ["https://cds.example.org", "http://localhost:8000"]
    assert settings.issuers[0].scopes == ["cds"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"jwks": "http://emr.example.org/jwks.json"}, "not an https URL"),
        ({"jwks": "/nonexistent/jwks.json"}, "cannot read a JWKS"),
        ({"jku": ["http://evil.example.org/k.json"]}, "not an https URL"),
        ({"tenant": "bad name"}, "tenant"),
        ({"scopes": ["root"]}, "unknown scope"),
        ({"unknown": 1}, "Extra inputs"),
    ],
)
def test_settings_refuse_unsafe_issuers(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    entry = {**issuer(str(write_jwks(tmp_path / "k.json", RSA))), **change}
    with pytest.raises(ValidationError, match=message):
        CdsClientsSettings(issuers=[entry], audience=[BASE])


def test_settings_refuse_an_empty_or_broken_jwks_file(tmp_path: Path) -> None:
    for name, text in (("empty.json", '{"keys": []}'), ("broken.json", "{not json")):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValidationError, match="no keys|cannot read"):
            CdsClientsSettings(issuers=[issuer(str(tmp_path / name))], audience=[BASE])


def test_settings_refuse_issuers_without_audience_twice_listed_or_bad_base_urls() -> None:
    with pytest.raises(ValidationError, match="audience"):
        CdsClientsSettings(issuers=[issuer(URL)])
    with pytest.raises(ValidationError, match="listed twice"):
        CdsClientsSettings(issuers=[issuer(URL), issuer(URL)], audience=[BASE])
    with pytest.raises(ValidationError, match="not a base URL"):
        CdsClientsSettings(audience=["cds.example.org?x=1"])


def test_loopback_http_is_allowed_for_a_local_key_server() -> None:
    CdsClientsSettings(issuers=[issuer("http://127.0.0.1:9/jwks.json")], audience=[BASE])


# Key sets


def test_parse_keeps_public_members_of_rsa_and_ec_signing_keys_only() -> None:
    private = RSA.jwk(d="secret", p="secret")
    secret = {"kty": "oct", "kid": "h", "k": "c2VjcmV0"}
    encryption, no_kid = {**EC.jwk(), "kid": "enc", "use": "enc"}, {"kty": "RSA", "n": "x"}
    document = {"keys": [private, EC.jwk(), secret, encryption, no_kid]}
    parsed = parse_jwks(document)
    assert set(parsed) == {"k1", "k2"}
    assert "d" not in parsed["k1"] and "p" not in parsed["k1"]


class KeyServer:
    """A MockTransport answering with whatever `document` holds, counting the requests."""

    def __init__(self, document: Any, status: int = 200) -> None:
        self.document, self.status, self.requests = document, status, 0

    def __call__(self, _: httpx.Request) -> httpx.Response:
        self.requests += 1
        if isinstance(self.document, bytes):
            return httpx.Response(self.status, content=self.document)
        return httpx.Response(self.status, json=self.document)


def key_sets(server: KeyServer, clock: Clock, min_refetch_s: float = 30.0) -> KeySets:
    return KeySets(timeout_s=1, max_age_s=600, min_refetch_s=min_refetch_s,
                   transport=httpx.MockTransport(server), clock=clock)  # fmt: skip


async def test_a_url_key_set_is_fetched_once_and_kept() -> None:
    server, clock = KeyServer(jwks(RSA)), Clock()
    sets = key_sets(server, clock)
    assert await sets.key(URL, "k1") is not None
    assert await sets.key(URL, "k1") is not None
    assert server.requests == 1
    clock.now += 601  # past max_age_s: fetched again
    assert await sets.key(URL, "k1") is not None
    assert server.requests == 2


async def test_unknown_key_ids_refetch_at_most_once_per_interval() -> None:
    server, clock = KeyServer(jwks(RSA)), Clock()
    sets = key_sets(server, clock)
    await sets.key(URL, "k1")
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        assert await sets.key(URL, kid) is None
    assert server.requests == 1, "a flood of unknown kids must not become a fetch loop"
    server.document = jwks(RSA, EC)  # the EMR rotates a key in
    clock.now += 31
    assert await sets.key(URL, "k2") is not None
    assert server.requests == 2


@pytest.mark.parametrize(
    ("document", "status"),
    [({}, 500), (b"{nope", 200), ({"keys": "x"}, 200), (b" " * (MAX_JWKS_BYTES + 1), 200)],
    ids=["http-500", "not-json", "not-a-jwks", "too-large"],
)
async def test_a_failed_fetch_keeps_the_last_good_keys(document: Any, status: int) -> None:
    server, clock = KeyServer(jwks(RSA)), Clock()
    sets = key_sets(server, clock, min_refetch_s=0)
    assert await sets.key(URL, "k1") is not None
    server.document, server.status = document, status
    clock.now += 601
    assert await sets.key(URL, "k1") is not None
    assert server.requests == 2


async def test_a_redirect_is_not_followed() -> None:
    def redirect(_: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "https://evil.example.org/k.json"})

    sets = KeySets(timeout_s=1, max_age_s=600, min_refetch_s=0,
                   transport=httpx.MockTransport(redirect))  # fmt: skip
    assert await sets.key(URL, "k1") is None


async def test_a_file_is_read_at_start_and_again_when_it_changes(tmp_path: Path) -> None:
    path = write_jwks(tmp_path / "k.json", RSA)
    sets = KeySets(timeout_s=1, max_age_s=600, min_refetch_s=30)
    sets.load_files([str(path)])
    assert await sets.key(str(path), "k1") is not None
    write_jwks(path, EC)  # rotation: k1 withdrawn, k2 added
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert await sets.key(str(path), "k1") is None
    assert await sets.key(str(path), "k2") is not None
    path.write_text("{broken")  # a half-written file keeps the last good keys
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert await sets.key(str(path), "k2") is not None
    path.unlink()
    assert await sets.key(str(path), "k2") is not None


# Replay cache


def test_an_id_is_remembered_until_its_token_expires() -> None:
    cache = ReplayCache()
    assert cache.first_use(EMR, "j1", expires_at=100, now=0)
    assert not cache.first_use(EMR, "j1", expires_at=100, now=50)
    assert cache.first_use("https://other.example.org", "j1", expires_at=150, now=50)
    assert cache.first_use(EMR, "j1", expires_at=200, now=100), "expired: forgotten"
    assert len(cache) == 2


def test_a_full_cache_forgets_the_ids_nearest_expiry_first() -> None:
    cache = ReplayCache(max_entries=2)
    cache.first_use(EMR, "late", expires_at=300, now=0)
    cache.first_use(EMR, "soon", expires_at=100, now=0)
    cache.first_use(EMR, "new", expires_at=200, now=0)
    assert len(cache) == 2
    assert not cache.first_use(EMR, "late", expires_at=300, now=1)
    assert cache.first_use(EMR, "soon", expires_at=100, now=1)


# The verifier with a clock of its own


async def test_the_verifier_remembers_ids_for_the_tokens_lifetime(tmp_path: Path) -> None:
    settings = CdsClientsSettings(
        issuers=[issuer(str(write_jwks(tmp_path / "k.json", RSA)))], audience=[BASE]
    )
    sets = KeySets(timeout_s=1, max_age_s=600, min_refetch_s=30)
    replay = ReplayCache()
    verifier = CdsTokenVerifier(settings, sets, replay)
    token = sign(RSA, claims(aud=BASE + "/cds-services/x", sub="c-1"))
    verified = await verifier.verify(token, "/cds-services/x")
    assert (verified.issuer, verified.client_id, verified.tenant) == (EMR, "c-1", "st-marys")
    assert len(replay) == 1


def test_only_three_part_credentials_are_taken_for_jwts() -> None:
    assert looks_like_jwt(sign(RSA, claims()))
    assert not looks_like_jwt("cs-0123456789ab-" + "x" * 43)


async def test_with_authentication_off_a_jwt_caller_is_anonymous(tmp_path: Path) -> None:
    settings = CdsClientsSettings(
        issuers=[issuer(str(write_jwks(tmp_path / "k.json", RSA)))], audience=[BASE]
    )
    verifier = CdsTokenVerifier(settings, KeySets(timeout_s=1, max_age_s=1, min_refetch_s=1))
    auth = CdsClientAuth(verifier, Authenticator(None, 0), store=None)  # type: ignore[arg-type]
    headers = {"authorization": "Bearer " + sign(RSA, claims(iss="https://evil.example.org"))}
    principal = await auth.authenticate(headers, "/cds-services/x")
    assert principal.key is None and principal.client is None and "cds" in principal.scopes


# The principal, its rate limits and its audit row


CLIENT = CdsClient(EMR, "epic-prod", 7, "st-marys", frozenset({"cds"}))


def test_a_cds_client_principal_carries_tenant_scopes_and_a_label() -> None:
    principal = Principal(None, client=CLIENT)
    assert principal.tenant_id == 7 and principal.key_id is None
    assert principal.scopes == {"cds"} and principal.intake_mode is None
    assert CLIENT.label == f"epic-prod@{EMR}"


def test_a_cds_client_spends_the_default_limits_per_issuer() -> None:
    limits = KeyLimits(rpm=60, tpm=None, max_concurrent=4)
    gateway = cast(Gateway, SimpleNamespace(default_limits=limits))
    assert Gateway.caller(gateway, Principal(None, client=CLIENT)) == Caller(f"cds:{EMR}", limits)
    assert Gateway.caller(gateway, Principal(None)) is None


def test_rows_without_a_client_hash_exactly_as_before_the_column_existed() -> None:
    record = AuditRecord(utc_now(), "req-1", "/v1/chat/completions", 200, 1.5)
    fields = record.chained_fields()
    assert "client" in fields
    before = {name: value for name, value in fields.items() if name != "client"}
    assert canonical(fields) == canonical(before)
    with_client = AuditRecord(utc_now(), "req-2", "/cds-services/x", 200, 1.5, client="a@b")
    assert json.loads(canonical(with_client.chained_fields()))["client"] == "a@b"


def test_hook_paths_share_one_metrics_label() -> None:
    assert route_name("/cds-services/patient-view") == "cds_hook"
    assert route_name("/cds-services") == "cds_discovery"
    assert route_name("/v1/chat/completions") == "chat"
    assert route_name("/nope") == "other"
