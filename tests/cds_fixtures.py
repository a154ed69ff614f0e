"""An EMR's signing keys and tokens for the CDS Hooks authentication tests.

Real keys (cryptography), real JWKS documents and tokens signed with PyJWT, so the gateway's
verifier meets what an EMR would send; the forgeries (`alg: none`, HS256 keyed with the public
key) are assembled by hand because no honest library makes them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

EMR = "https://emr.example.org"
BASE = "https://cds.example.org"
HOOK_PATH = "/cds-services/patient-view"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def rsa(cls, kid: str, algorithm: str = "RS384") -> SigningKey:
        return cls(kid, algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str, algorithm: str = "ES384") -> SigningKey:
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        return cls(kid, algorithm, ec.generate_private_key(curve[algorithm]))

    def jwk(self, **extra: str) -> dict[str, Any]:
        """The public key as a JWK with its kid (what the EMR publishes)."""
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "use": "sig", **extra}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps(jwks(*keys)), encoding="utf-8")
    return path


def claims(
    *,
    iss: str = EMR,
    aud: str | list[str] = BASE + HOOK_PATH,
    sub: str = "emr-client",
    lifetime_s: int = 120,
    issued_s_ago: int = 0,
    drop: tuple[str, ...] = (),
    **extra: Any,
) -> dict[str, Any]:
    """Valid CDS client claims (a fresh jti each time), with `drop` left out."""
    now = int(time.time())
    values = {
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "iat": now - issued_s_ago,
        "exp": now - issued_s_ago + lifetime_s,
        "jti": uuid.uuid4().hex,
        **extra,
    }
    return {name: value for name, value in values.items() if name not in drop}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    return jwt.encode(
        payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid, **header}
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"


def unsigned(kid: str, payload: dict[str, Any]) -> str:
    """`alg: none`: a token anyone can write."""
    return _segments({"alg": "none", "typ": "JWT", "kid": kid}, payload) + "."


def hs256_with_public_key(key: SigningKey, payload: dict[str, Any]) -> str:
    """Key confusion: HMAC keyed with the issuer's public key, which anyone can download."""
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": key.kid}, payload)
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"
