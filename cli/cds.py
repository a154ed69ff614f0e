"""`clinserve cds jwks|token`: what an EMR would publish and send, for testing a deployment.

`jwks` prints the public key set for a private key (the file an operator configures as the
issuer's `jwks`); `token` prints a signed CDS client JWT for one hook endpoint, e.g.

    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out emr.pem
    clinserve cds jwks --key emr.pem --kid emr-1 > emr-jwks.json
    TOKEN=$(clinserve cds token --key emr.pem --kid emr-1 --iss https://emr.example.org \\
            --aud http://127.0.0.1:8000/cds-services/patient-view)

Only stdlib at module level (`cli.main` imports this module to build the parser).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    keys = sub.add_parser("jwks", help="print the public JWKS of a private key (PEM)")
    token = sub.add_parser("token", help="print a signed CDS client JWT for one endpoint")
    for action in (keys, token):
        action.add_argument("--key", required=True, type=Path, help="private key, PEM (RSA or EC)")
        action.add_argument("--kid", required=True, help="key id, as published in the JWKS")
    token.add_argument("--iss", required=True, help="the EMR's issuer URL (a trusted issuer)")
    token.add_argument("--aud", required=True, help="the endpoint URL, .../cds-services/ID")
    token.add_argument("--sub", default="clinserve-test", help="client id (default: %(default)s)")
    token.add_argument("--ttl", type=int, default=300, help="seconds valid (default: 300)")
    token.add_argument(
        "--alg",
        choices=("RS256", "RS384", "RS512", "ES256", "ES384", "ES512"),
        help="default: RS384 for RSA keys, ES256/384/512 by the EC key's curve",
    )


def run(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(args.key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        print(f"clinserve cds: cannot load a private key from {args.key}: {exc}", file=sys.stderr)
        return 2
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_ALGORITHMS:
        algorithm = _CURVE_ALGORITHMS[key.curve.name]
    else:
        print("clinserve cds: the key must be RSA or EC (P-256/384/521)", file=sys.stderr)
        return 2
    if args.action == "jwks":
        print(json.dumps(_jwks(key, args.kid, algorithm), indent=2))
        return 0
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {"iss": args.iss, "sub": args.sub, "aud": args.aud, "iat": now,
                              "exp": now + args.ttl, "jti": uuid.uuid4().hex}  # fmt: skip
    print(jwt.encode(claims, key, algorithm=args.alg or algorithm, headers={"kid": args.kid}))
    return 0


def _jwks(key: Any, kid: str, algorithm: str) -> dict[str, Any]:
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm

    codec = RSAAlgorithm if algorithm.startswith("RS") else ECAlgorithm
    public: dict[str, Any] = codec.to_jwk(key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": kid, "use": "sig"}]}
