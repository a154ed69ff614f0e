"""`clinserve cds jwks|token`: the key set and token it prints pass the gateway's verifier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from server.security.cds_jwt import CdsTokenVerifier
from server.security.jwks import KeySets
from server.settings import CdsClientsSettings
from tests.cds_fixtures import BASE, EMR, HOOK_PATH, SigningKey


@pytest.mark.parametrize("key", [SigningKey.rsa("k"), SigningKey.ec("k", "ES256")],
                         ids=["rsa", "ec-p256"])  # fmt: skip
async def test_the_printed_key_set_verifies_the_printed_token(
    key: SigningKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = tmp_path / "emr.pem"
    pem.write_bytes(key.private_pem())
    assert main(["cds", "jwks", "--key", str(pem), "--kid", "emr-1"]) == 0
    (tmp_path / "jwks.json").write_text(capsys.readouterr().out)
    assert json.loads((tmp_path / "jwks.json").read_text())["keys"][0]["kid"] == "emr-1"
    args = ["--iss", EMR, "--aud", BASE + HOOK_PATH, "--sub", "epic"]
    assert main(["cds", "token", "--key", str(pem), "--kid", "emr-1", *args]) == 0
    token = capsys.readouterr().out.strip()

    issuer = {"issuer": EMR, "jwks": str(tmp_path / "jwks.json"), "tenant": "t"}
    settings = CdsClientsSettings(issuers=[issuer], audience=[BASE])
    verifier = CdsTokenVerifier(settings, KeySets(timeout_s=1, max_age_s=1, min_refetch_s=1))
    verified = await verifier.verify(token, HOOK_PATH)
    assert (verified.issuer, verified.client_id) == (EMR, "epic")


def test_a_file_that_is_not_a_private_key_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "public.pem").write_bytes(SigningKey.rsa("k").public_pem())
    assert main(["cds", "jwks", "--key", str(tmp_path / "public.pem"), "--kid", "x"]) == 2
    assert "cannot load a private key" in capsys.readouterr().err
