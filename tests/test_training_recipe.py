"""Recipes: every packaged one parses; typos, wrong types and bad overrides are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import STAGES, GRPORecipe, SFTRecipe, parse_recipe
from training.recipe import RecipeError, apply_overrides, read_yaml

RECIPES = Path(__file__).resolve().parents[1] / "training" / "recipes"


def recipe_from(text: str, tmp_path: Path, stage: str = "sft", *overrides: str) -> object:
    path = tmp_path / "recipe.yaml"
    path.write_text(text, encoding="utf-8")
    return parse_recipe(apply_overrides(read_yaml(path), overrides), stage, path)  # type: ignore[arg-type]


SFT = """
stage: sft
model: {path: /models/base}
data: [{path: data/chat.jsonl, format: chat}]
train: {output_dir: runs/x, max_steps: 3}
"""


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_packaged_recipe_parses(
    path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLINSERVE_TINY_MODEL", str(tmp_path))
    stage = path.stem.removeprefix("smoke-")
    assert stage in STAGES
    recipe = parse_recipe(read_yaml(path), stage, path)  # type: ignore[arg-type]
    for source in recipe.data:
        assert source.path.is_file(), f"{path.name}: {source.path} is missing"


def test_every_stage_has_a_smoke_recipe() -> None:
    assert {p.stem.removeprefix("smoke-") for p in RECIPES.glob("smoke-*.yaml")} == set(STAGES)


def test_defaults_types_and_paths(tmp_path: Path) -> None:
    recipe = recipe_from(SFT, tmp_path)
    assert isinstance(recipe, SFTRecipe)
    assert recipe.train.max_steps == 3 and recipe.train.learning_rate == 2e-4
    assert recipe.lora.rank == 16 and "q_proj" in recipe.lora.target_modules
    assert recipe.data[0].path == tmp_path / "data" / "chat.jsonl"  # next to the recipe
    assert recipe.train.output_dir == Path("runs/x")  # where the run starts
    assert recipe.model.path == Path("/models/base")


def test_overrides_are_typed_yaml(tmp_path: Path) -> None:
    recipe = recipe_from(
        SFT,
        tmp_path,
        "sft",
        "train.max_steps=7",
        "lora.target_modules=[q_proj, v_proj]",
        "train.learning_rate=1e-3",
        "augment.ratio=0.5",
    )
    assert isinstance(recipe, SFTRecipe)
    assert recipe.train.max_steps == 7
    assert recipe.lora.target_modules == ["q_proj", "v_proj"]
    assert recipe.train.learning_rate == pytest.approx(1e-3)
    assert recipe.augment.ratio == 0.5


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("train.learning_rat=0.1",), "train.learning_rat: unknown setting; one of:"),
        (("train.max_steps=many",), "train.max_steps: expected a whole number, got 'many'"),
        (("train.max_steps=0",), "train.max_steps must be positive"),
        (("augment.severity=extreme",), "augment.severity: 'extreme' is not allowed"),
        (("lora.rank=0",), "lora.rank and lora.alpha must be at least 1"),
        (("five_step_reasoning=maybe",), "five_step_reasoning: expected true or false"),
        (("data=[{path: x.jsonl}]",), "data[0].format: required setting is missing"),
        (("oops",), "write it as key=value"),
        (("train.max_steps.deep=1",), "'max_steps' is not a group of settings"),
    ],
)
def test_bad_settings_say_which_and_why(
    tmp_path: Path, overrides: tuple[str, ...], message: str
) -> None:
    with pytest.raises(RecipeError, match=None) as caught:
        recipe_from(SFT, tmp_path, "sft", *overrides)
    assert message in str(caught.value)


def test_wrong_stage_names_the_right_command(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="run it with `clinserve train sft`"):
        recipe_from(SFT, tmp_path, "simpo")


def test_environment_variables_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = SFT.replace("/models/base", "'${BASE_DIR}'").replace("runs/x", "'${OUT:-runs/default}'")
    monkeypatch.setenv("BASE_DIR", "/opt/models/qwen")
    recipe = recipe_from(text, tmp_path)
    assert isinstance(recipe, SFTRecipe)
    assert recipe.model.path == Path("/opt/models/qwen")
    assert recipe.train.output_dir == Path("runs/default")
    monkeypatch.delenv("BASE_DIR")
    with pytest.raises(RecipeError, match="environment variable BASE_DIR is not set"):
        recipe_from(text, tmp_path)


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="cannot read the recipe"):
        read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stage: [sft\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="not valid YAML"):
        read_yaml(bad)
    bad.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="a recipe is a mapping"):
        read_yaml(bad)


def test_grpo_reward_terms(tmp_path: Path) -> None:
    text = SFT.replace("stage: sft", "stage: grpo") + "rewards: [{name: mcq_correctness}]\n"
    recipe = recipe_from(text, tmp_path, "grpo")
    assert isinstance(recipe, GRPORecipe)
    assert recipe.rewards[0].name == "mcq_correctness" and recipe.rewards[0].weight == 1.0
    assert recipe.beta == 0.0 and recipe.num_generations == 8
