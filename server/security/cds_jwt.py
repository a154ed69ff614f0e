"""Verify the JWT an EMR sends to the CDS Hooks routes (CDS Hooks 2.0, "Trusting CDS Clients").

The EMR signs a short-lived token with its private key; the service checks, in this order:
the algorithm is an asymmetric one (RS256/384/512, ES256/384/512: never `none`, never HS*,
whose "secret" an attacker could take from our own public key set), the issuer is on the
allow-list, the key comes from that issuer's configured key set (or a `jku` it allow-lists,
exact match) and fits the algorithm, the signature, then the claims: `aud` is this
service's URL for the endpoint called, `exp` and `iat` hold within the leeway and the token
is neither older nor longer-lived than `max_token_age_s`, `sub` and `jti` are present, and
the `jti` has not been used before within its lifetime.

A refusal is a 401 saying which check failed in general terms (expired, wrong audience,
untrusted issuer, bad signature...), enough for an EMR's integrator to fix their side and
no more: it never echoes claims or says which keys or issuers exist.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from server.errors import AuthenticationFailed
from server.security.jwks import Jwk, KeySets, is_url
from server.security.replay import ReplayCache
from server.settings import CdsClientsSettings, CdsIssuerSettings

log = logging.getLogger(__name__)

KEY_TYPES: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}
"""The accepted algorithms and the key type (and curve) each needs."""

REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "jti")
MAX_ID_CHARS = 255
"""Longest `sub` or `jti` accepted: they are kept in memory and the audit row (whose `client`
column, `<sub>@<iss>`, fits 255 + 1 + the 256 an issuer may have)."""


class TokenRefused(AuthenticationFailed):
    """A CDS client JWT that failed a check; `reason` is the general one, for logs too."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"CDS client token refused: {reason}.")
        self.reason = reason


@dataclass(frozen=True)
class VerifiedToken:
    """What a valid token proves: which configured issuer, which client, which token."""

    issuer: str
    client_id: str
    token_id: str
    expires_at: float
    tenant: str
    scopes: frozenset[str]


def looks_like_jwt(credential: str) -> bool:
    """A compact JWS has three dot-separated parts; API keys (`cs-...`) contain no dot."""
    return credential.count(".") == 2


class CdsTokenVerifier:
    def __init__(
        self,
        settings: CdsClientsSettings,
        key_sets: KeySets,
        replay: ReplayCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Reads every issuer's JWKS file now (see `KeySets.load_files`)."""
        self._settings = settings
        self._issuers = {entry.issuer: entry for entry in settings.issuers}
        self._key_sets = key_sets
        self._replay = replay if replay is not None else ReplayCache()
        self._clock = clock
        key_sets.load_files(entry.jwks for entry in settings.issuers if not is_url(entry.jwks))

    async def verify(self, token: str, endpoint_path: str) -> VerifiedToken:
        """The verified token for a call to `endpoint_path` (e.g. /cds-services/patient-view),
        or `TokenRefused` (401)."""
        try:
            return await self._verify(token, endpoint_path)
        except TokenRefused as exc:
            log.info("CDS client token refused: %s", exc.reason)
            raise

    async def _verify(self, token: str, endpoint_path: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise TokenRefused("not a well-formed JWT") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in KEY_TYPES:
            raise TokenRefused(f"algorithm not accepted (use one of {', '.join(KEY_TYPES)})")
        claimed = unverified.get("iss")
        issuer = self._issuers.get(claimed) if isinstance(claimed, str) else None
        if issuer is None:
            raise TokenRefused("untrusted issuer")
        jwk = await self._signing_key(header, issuer)
        claims = self._verified_claims(token, algorithm, jwk, issuer, endpoint_path)
        return self._accept(claims, issuer)

    async def _signing_key(self, header: dict[str, Any], issuer: CdsIssuerSettings) -> Jwk:
        kid, jku = header.get("kid"), header.get("jku")
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("no key id (kid) in the header")
        if jku is not None and jku not in issuer.jku:
            raise TokenRefused("key set URL (jku) not allowed for this issuer")
        jwk = await self._key_sets.key(jku or issuer.jwks, kid)
        if jwk is None:
            raise TokenRefused("unknown signing key (kid)")
        return jwk

    def _verified_claims(
        self,
        token: str,
        algorithm: str,
        jwk: Jwk,
        issuer: CdsIssuerSettings,
        endpoint_path: str,
    ) -> dict[str, Any]:
        key_type, curve = KEY_TYPES[algorithm]
        if (
            jwk.get("kty") != key_type
            or jwk.get("crv") != curve
            or jwk.get("alg", algorithm) != algorithm
        ):
            raise TokenRefused("signing key does not fit the algorithm")
        try:
            key = jwt.PyJWK(dict(jwk), algorithm=algorithm).key
        except jwt.PyJWTError:
            raise TokenRefused("unusable signing key") from None
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=[base + endpoint_path for base in self._settings.audience],
                issuer=issuer.issuer,
                leeway=self._settings.leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRefused("not yet valid (iat or nbf in the future)") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("wrong audience (aud must be the URL called)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRefused(f"the {exc.claim} claim is missing") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("bad signature") from None
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed claims") from None

    def _accept(self, claims: dict[str, Any], issuer: CdsIssuerSettings) -> VerifiedToken:
        now, limit = self._clock(), self._settings.max_token_age_s + self._settings.leeway_s
        issued_at, expires_at = int(claims["iat"]), int(claims["exp"])
        if now - issued_at > limit:
            raise TokenRefused("issued too long ago")
        if expires_at - now > limit:
            raise TokenRefused("expiry too far ahead")
        client_id, token_id = claims["sub"], claims["jti"]
        for name, value in (("sub", client_id), ("jti", token_id)):
            if not value or len(value) > MAX_ID_CHARS:
                raise TokenRefused(f"the {name} claim is empty or too long")
        if not self._replay.first_use(
            issuer.issuer, token_id, expires_at + self._settings.leeway_s, now
        ):
            raise TokenRefused("already used (jti replayed)")
        return VerifiedToken(
            issuer=issuer.issuer,
            client_id=client_id,
            token_id=token_id,
            expires_at=expires_at,
            tenant=issuer.tenant,
            scopes=frozenset(issuer.scopes),
        )
