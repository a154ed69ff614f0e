"""The adapter registry's versions and states on SQLite and PostgreSQL, and publishing real
peft adapters into it: copies under the root, base-model and evaluation checks, and nothing
left behind by a refusal."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.adapters.inspect import AdapterRefused
from server.adapters.publish import EvalGate, ServedBase, publish
from server.adapters.registry import AdapterRegistry, RegistryError, UnknownAdapter
from server.db.adapter_models import AdapterVersionRow
from tests.adapter_fixtures import lora_dir, make_lora, tiny_base
from tests.db_fixtures import database_url, engine, migrated, sessions
from training.manifest import AdapterManifest
from weights.fingerprint import file_sha256, fingerprint

__all__ = ["database_url", "engine", "lora_dir", "migrated", "sessions", "tiny_base"]

BASE = ServedBase("tiny")


@pytest.fixture
def registry(sessions: sessionmaker[Session]) -> AdapterRegistry:
    return AdapterRegistry(sessions)


def put(registry: AdapterRegistry, source: Path, root: Path, **options: object) -> int:
    options.setdefault("base", BASE)
    version = publish(source, "med", registry=registry, root=root, max_rank=64, **options)  # type: ignore[arg-type]
    return version.version


def states(registry: AdapterRegistry) -> dict[int, str]:
    return {v.version: v.state for v in registry.list_versions("med")}


def test_publish_copies_under_the_root_and_registers_the_next_version(
    registry: AdapterRegistry, lora_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    first = publish(lora_dir, "med", registry=registry, root=root, base=BASE, max_rank=64)
    assert (first.name, first.version, first.state) == ("med", 1, "staged")
    assert first.served_name == "med@1" and first.location == "med/1"
    copied = root / "med" / "1"
    assert sorted(p.name for p in copied.iterdir()) == sorted(p.name for p in lora_dir.iterdir())
    assert file_sha256(copied / "adapter_model.safetensors") == first.weights_sha256
    assert first.manifest["base_model"] == "tiny" and first.manifest["rank"] == 8
    assert put(registry, lora_dir, root) == 2
    left = sorted(p.name for p in (root / "med").iterdir())
    assert left == ["1", "2"], "no staging folder left behind"


def test_promote_canary_rollback_and_retire(
    registry: AdapterRegistry, lora_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    put(registry, lora_dir, root)
    with pytest.raises(RegistryError, match="no active version, so a canary"):
        put(registry, lora_dir, root, canary_percent=10)
    assert registry.promote("med", 1).state == "active"
    with pytest.raises(RegistryError, match="no earlier active version"):
        registry.rollback("med")
    assert put(registry, lora_dir, root, canary_percent=10) == 2
    assert states(registry) == {1: "active", 2: "canary"}
    assert registry.get("med", 2).canary_percent == 10

    assert registry.promote("med", 2).state == "active"
    assert states(registry) == {1: "retired", 2: "active"}
    assert registry.rollback("med").version == 1
    assert states(registry) == {1: "active", 2: "retired"}
    assert registry.rollback("med").version == 2, "a second rollback undoes the first"

    with pytest.raises(RegistryError, match="is active: promote another version"):
        registry.retire("med", 2)
    assert registry.retire("med", 1).state == "retired"  # already retired: unchanged
    with pytest.raises(UnknownAdapter, match="no adapter med@9"):
        registry.promote("med", 9)
    with pytest.raises(RegistryError, match="already active"):
        registry.promote("med", 2)


def test_a_new_canary_replaces_the_old_one(
    registry: AdapterRegistry, lora_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    put(registry, lora_dir, root)
    registry.promote("med", 1)
    put(registry, lora_dir, root, canary_percent=5)
    put(registry, lora_dir, root, canary_percent=20)
    assert states(registry) == {1: "active", 2: "staged", 3: "canary"}
    assert registry.set_canary("med", 2, 50).canary_percent == 50
    assert states(registry) == {1: "active", 2: "canary", 3: "staged"}
    for percent in (0, 100):
        with pytest.raises(RegistryError, match="1-99 percent"):
            registry.set_canary("med", 3, percent)


def test_the_database_keeps_one_active_version_per_name(
    registry: AdapterRegistry, lora_dir: Path, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    root = tmp_path / "adapters"
    put(registry, lora_dir, root)
    put(registry, lora_dir, root)
    registry.promote("med", 1)
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.execute(
            update(AdapterVersionRow)
            .where(AdapterVersionRow.version == 2)
            .values(state="active", activated_at=AdapterVersionRow.created_at)
        )


def test_concurrent_publishes_get_distinct_versions(
    registry: AdapterRegistry, lora_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    versions: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            versions.append(put(registry, lora_dir, root))
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sorted(versions) == [1, 2, 3, 4]
    assert sorted(p.name for p in (root / "med").iterdir()) == ["1", "2", "3", "4"]


def test_base_model_and_evaluation_gates(
    registry: AdapterRegistry, tiny_base: Path, tmp_path: Path
) -> None:
    root = tmp_path / "adapters"
    adapter = make_lora(tiny_base, tmp_path / "trained")
    served = ServedBase("tiny", fingerprint(tiny_base))
    AdapterManifest(
        base_model="tiny",
        base_model_sha256=served.sha256,
        rank=8,
        target_modules=["q_proj", "v_proj"],
        evaluation={"medqa_accuracy": 0.61, "safety": 0.97},
        data_sha256={"sft.jsonl": "a" * 64},
    ).write(adapter)
    gates = [EvalGate.parse("medqa_accuracy>=0.6"), EvalGate.parse("safety > 0.95")]
    version = publish(
        adapter, "med", registry=registry, root=root, base=served, max_rank=64, gates=gates
    )
    assert version.manifest["evaluation"] == {"medqa_accuracy": 0.61, "safety": 0.97}
    assert version.base_model_sha256 == served.sha256

    refusals = [
        ({"gates": [EvalGate.parse("medqa_accuracy>=0.7")]}, "failed: medqa_accuracy is 0.61"),
        ({"gates": [EvalGate.parse("pubmedqa>=0.5")]}, "reports no 'pubmedqa'"),
        ({"base": ServedBase("other-model")}, "trained on base model 'tiny', but the workers"),
        ({"base": ServedBase("tiny", "b" * 64)}, "trained on other weights"),
    ]
    for options, message in refusals:
        with pytest.raises(AdapterRefused, match=message):
            publish(
                adapter,
                "med",
                registry=registry,
                root=root,
                max_rank=64,
                **{"base": served, **options},
            )  # type: ignore[arg-type]
    assert [v.version for v in registry.list_versions()] == [1], "no refusal registered anything"
    assert sorted(p.name for p in (root / "med").iterdir()) == ["1"], "nor left files"


@pytest.mark.parametrize("text", ["accuracy", ">=0.5", "acc=>0.5", "acc>=high"])
def test_gate_syntax_errors_say_how_to_write_one(text: str) -> None:
    with pytest.raises(AdapterRefused, match="write METRIC>=VALUE"):
        EvalGate.parse(text)


@pytest.mark.parametrize("name", ["Med", "med@2", "../med", "", "a/b", "x" * 65])
def test_adapter_names_are_checked(
    registry: AdapterRegistry, lora_dir: Path, tmp_path: Path, name: str
) -> None:
    with pytest.raises(RegistryError, match="invalid adapter name"):
        publish(lora_dir, name, registry=registry, root=tmp_path / "root", base=BASE, max_rank=64)
    assert not (tmp_path / "root").exists()
