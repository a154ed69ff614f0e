"""The alias router on its own: which version a request gets, the canary split, and the
fallback while a newly promoted version is not loaded anywhere yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.adapters.registry import AdapterVersion
from server.adapters.routing import AdapterRouter, in_canary
from server.errors import NoHealthyWorker

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def version(
    number: int, state: str, percent: int | None = None, activated: int | None = None
) -> AdapterVersion:
    return AdapterVersion(
        name="med", version=number, state=state, canary_percent=percent, base_model="base",
        base_model_sha256=None, location=f"med/{number}", weights_sha256="0" * 64, rank=8,
        target_modules=("q_proj",), manifest={}, created_at=T0, state_changed_at=T0,
        activated_at=None if activated is None else T0 + timedelta(hours=activated),
    )  # fmt: skip


def router(loaded: set[str], *versions: AdapterVersion) -> AdapterRouter:
    table = AdapterRouter(lambda name: name in loaded)
    table.update(versions)
    return table


def test_the_alias_means_the_active_version_and_base_models_pass_through() -> None:
    table = router({"med@1", "med@2"}, version(1, "active", activated=1), version(2, "staged"))
    assert table.resolve("med", "anyone") == "med@1"
    assert table.resolve("med@2", "anyone") == "med@2"
    assert table.resolve("base", "anyone") is None
    assert table.resolve("other", "anyone") is None


def test_the_canary_split_is_stable_and_near_its_share() -> None:
    assert in_canary("med", "dr-a", 10) == in_canary("med", "dr-a", 10)
    share = sum(in_canary("med", f"user-{i}", 10) for i in range(10_000)) / 10_000
    assert 0.08 < share < 0.12
    users = [f"user-{i}" for i in range(1000)]
    small = {u for u in users if in_canary("med", u, 10)}
    large = {u for u in users if in_canary("med", u, 30)}
    assert small <= large, "raising the share only adds users: nobody flips back"


def test_a_promoted_version_not_loaded_yet_falls_back_to_the_previous_one() -> None:
    versions = (version(1, "retired", activated=1), version(2, "active", activated=2))
    assert router({"med@1"}, *versions).resolve("med", "x") == "med@1"
    assert router({"med@1", "med@2"}, *versions).resolve("med", "x") == "med@2"
    with pytest.raises(NoHealthyWorker, match="No worker has loaded adapter `med@2` yet"):
        router(set(), *versions).resolve("med", "x")


def test_a_canary_not_loaded_yet_falls_back_to_the_active_version() -> None:
    versions = (version(1, "active", activated=1), version(2, "canary", percent=99))
    assert router({"med@1"}, *versions).resolve("med", "x") == "med@1"


def test_no_active_version_and_retired_explicit_versions() -> None:
    with pytest.raises(NoHealthyWorker, match="no active version"):
        router({"med@1"}, version(1, "staged")).resolve("med", "x")
    table = router({"med@1"}, version(1, "retired", activated=1), version(2, "active", activated=2))
    assert table.resolve("med@1", "x") is None, "a retired version is not routable by name"


def test_requests_in_flight_are_counted_per_version() -> None:
    table = router(set())
    with table.hold("med@1"), table.hold("med@1"):
        assert table.in_flight("med@1") == 2
    assert table.in_flight("med@1") == 0
    with table.hold(None):
        pass
