"""The first admin key, so a fresh install is usable without reading the key docs first.

`clinserve serve` calls this after migrating: if the database has never held a key, it
creates one for tenant `default` with every scope and returns it for printing, once. From
then on keys are made with it (or `clinserve keys create`); a revoked bootstrap key is not
replaced, because "no key at all" is the only state that means "first start".
"""

from __future__ import annotations

from server.db.keys import SCOPES, KeyStore

BOOTSTRAP_TENANT = "default"


def bootstrap_admin_key(store: KeyStore) -> str | None:
    """A new all-scopes key for `default` when no key exists yet; None otherwise."""
    if store.has_keys():
        return None
    _, plaintext = store.create_key(
        BOOTSTRAP_TENANT,
        SCOPES,
        description="bootstrap admin key created by clinserve serve on first start",
    )
    return plaintext


def banner(plaintext: str) -> str:
    """What `clinserve serve` prints: the key and what to do with it, said once."""
    line = "=" * 72
    return (
        f"{line}\nFirst start: created an admin API key (tenant '{BOOTSTRAP_TENANT}', all "
        f"scopes).\nIt is shown only this once; store it now:\n\n    {plaintext}\n\n"
        "Use it as the OpenAI API key (Authorization: Bearer ...), and make narrower keys "
        "with\n`clinserve keys create --tenant NAME --scopes chat`.\n"
        f"{line}"
    )
