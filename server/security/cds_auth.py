"""The CDS Hooks routes' caller: an API key with the `cds` scope, or an EMR's signed JWT.

Which one is decided by the credential's shape (a JWT has three dot-separated parts, an API
key none), so an EMR needs no extra header. A JWT is only ever tried here, on the routes
`scopes.accepts_client_jwt` names; every other route sends all bearer credentials to the
API-key check, where a JWT is simply an unknown key.

A verified token's issuer maps to the tenant the deployment configured for it; the tenant is
created on first use, like `keys create` does, and its id kept for the process's life
(tenant ids never change).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from server.db.keys import KeyStore
from server.security.auth import Authenticator, bearer_key
from server.security.cds_jwt import CdsTokenVerifier, looks_like_jwt
from server.security.principal import CdsClient, Principal


class CdsClientAuth:
    def __init__(self, verifier: CdsTokenVerifier, api_keys: Authenticator, store: KeyStore):
        self._verifier = verifier
        self._api_keys = api_keys
        self._store = store
        self._tenant_ids: dict[str, int] = {}

    async def authenticate(self, headers: Mapping[str, str], endpoint_path: str) -> Principal:
        """The caller of `endpoint_path`; `AuthenticationFailed` (401) if neither an API key
        nor a CDS client token checks out. With authentication off, anonymous."""
        credential = bearer_key(headers)
        if not self._api_keys.enabled or credential is None or not looks_like_jwt(credential):
            return await self._api_keys.authenticate(headers)
        token = await self._verifier.verify(credential, endpoint_path)
        client = CdsClient(
            issuer=token.issuer,
            client_id=token.client_id,
            tenant_id=await self._tenant_id(token.tenant),
            tenant=token.tenant,
            scopes=token.scopes,
        )
        return Principal(None, client=client)

    async def _tenant_id(self, name: str) -> int:
        tenant_id = self._tenant_ids.get(name)
        if tenant_id is None:
            tenant_id = await asyncio.to_thread(self._store.create_tenant_if_missing, name)
            self._tenant_ids[name] = tenant_id
        return tenant_id
