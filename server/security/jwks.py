"""Trusted CDS clients' public keys (JSON Web Key Sets), from files or https URLs.

A file is read at start and read again whenever it changes (its modification time is checked
on each lookup, a stat call), so an operator rotates or withdraws a key by replacing the file.
A URL is fetched on first use and kept for `max_age_s`; a token naming a key id the cached set
lacks (the EMR rotated its key) fetches the set again, but at most once per `min_refetch_s` per
URL, so a stream of tokens with made-up key ids cannot turn the gateway into a fetch loop
against the EMR. Fetches have a timeout and a size cap and follow no redirects; a failed fetch
keeps the last good set. Only URLs from the settings are ever fetched (the verifier checks a
token's `jku` against the issuer's allow-list before asking for it).

Only RSA and EC keys with a key id are kept, and only their public members: a JWKS exported
with private parts by mistake must not turn into signing keys here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 256 * 1024
"""A key set is a few kilobytes; anything far larger is not one."""

PUBLIC_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "RSA": ("kty", "kid", "alg", "use", "n", "e"),
    "EC": ("kty", "kid", "alg", "use", "crv", "x", "y"),
}
"""Per key type, the JWK members a public verification key consists of."""

Jwk = Mapping[str, str]


class KeySetError(ValueError):
    """A key set that cannot be read or parsed (the message names the source, never a key)."""


def is_url(location: str) -> bool:
    return location.startswith(("https://", "http://"))


def parse_jwks(document: object) -> dict[str, Jwk]:
    """Key id -> public JWK for every usable signing key in a JWKS document.

    >>> parse_jwks({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
    ...                      {"kty": "EC", "kid": "e", "crv": "P-384", "x": "AA", "y": "AA",
    ...                       "d": "private"}]})
    {'e': {'kty': 'EC', 'kid': 'e', 'crv': 'P-384', 'x': 'AA', 'y': 'AA'}}
    """
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise KeySetError('not a JWKS: expected {"keys": [...]}')
    parsed: dict[str, Jwk] = {}
    for entry in keys:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        members = PUBLIC_MEMBERS.get(entry.get("kty", ""))
        kid = entry.get("kid")
        if members is None or not isinstance(kid, str) or not kid:
            continue
        public = {name: entry[name] for name in members if isinstance(entry.get(name), str)}
        parsed.setdefault(kid, public)  # a duplicated kid: the first entry wins
    return parsed


@dataclass
class _Cached:
    keys: dict[str, Jwk] = field(default_factory=dict)
    loaded_at: float | None = None  # monotonic time of the last good load
    attempted_at: float | None = None  # of the last attempt, good or not
    stamp: int | None = None  # a file's mtime_ns
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class KeySets:
    """Looks up a public key by (source, key id); one cache entry per source."""

    def __init__(
        self,
        *,
        timeout_s: float,
        max_age_s: float,
        min_refetch_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_age_s = max_age_s
        self._min_refetch_s = min_refetch_s
        self._transport = transport
        self._clock = clock
        self._cache: dict[str, _Cached] = {}

    def load_files(self, paths: Iterable[str]) -> None:
        """Read every file source now, so a broken file stops the start, not a request."""
        for path in paths:
            entry = self._cache.setdefault(path, _Cached())
            self._read_file(path, entry)
            if not entry.keys:
                log.warning("JWKS file %s holds no usable RSA or EC signing key with a kid", path)

    async def key(self, location: str, kid: str) -> Jwk | None:
        """The public JWK `kid` from `location` (a file path or URL), or None."""
        entry = self._cache.setdefault(location, _Cached())
        if not is_url(location):
            self._reload_if_changed(location, entry)
            return entry.keys.get(kid)
        if self._due(entry, kid):
            async with entry.lock:
                if self._due(entry, kid):  # nobody refreshed it while we waited
                    await self._fetch(location, entry)
        return entry.keys.get(kid)

    def _due(self, entry: _Cached, kid: str) -> bool:
        now = self._clock()
        if entry.attempted_at is not None and now - entry.attempted_at < self._min_refetch_s:
            return False
        if entry.loaded_at is None or now - entry.loaded_at >= self._max_age_s:
            return True
        return kid not in entry.keys

    def _reload_if_changed(self, path: str, entry: _Cached) -> None:
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError as exc:
            log.warning("JWKS file %s unreadable (%s): keeping its last keys", path, exc.strerror)
            return
        if stamp != entry.stamp:
            try:
                self._read_file(path, entry)
            except KeySetError as exc:
                log.warning("%s: keeping the last keys read", exc)

    def _read_file(self, path: str, entry: _Cached) -> None:
        try:
            stamp = os.stat(path).st_mtime_ns
            document = json.loads(Path(path).read_text(encoding="utf-8"))
            entry.keys = parse_jwks(document)
        except (OSError, ValueError) as exc:
            raise KeySetError(f"JWKS file {path}: {type(exc).__name__}") from exc
        entry.stamp, entry.loaded_at = stamp, self._clock()

    async def _fetch(self, url: str, entry: _Cached) -> None:
        entry.attempted_at = self._clock()
        try:
            document = await self._download(url)
            entry.keys = parse_jwks(document)
        except (httpx.HTTPError, KeySetError, ValueError) as exc:
            log.warning("JWKS fetch from %s failed (%s): keeping the last keys", url, exc)
            return
        entry.loaded_at = self._clock()

    async def _download(self, url: str) -> Any:
        async with (
            httpx.AsyncClient(
                timeout=self._timeout_s, transport=self._transport, follow_redirects=False
            ) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise KeySetError(f"HTTP {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise KeySetError(f"larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(bytes(body))
