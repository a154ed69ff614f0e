"""evaluation.items: strict loading with file:line errors, the real benchmark files, the seeded
subset and the seeded option shuffle (including JMED's answer-letter skew it exists to undo)."""

from __future__ import annotations

import doctest
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import evaluation.items
from evaluation.items import DatasetError, McqItem, choose, load_items, load_many, shuffle_options

BENCHMARKS = Path("/work/shared/data/benchmarks")


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "q1",
        "source": "demo",
        "language": "en",
        "question": "Which drug is a loop diuretic?",
        "options": {"A": "Aspirin", "B": "Metformin", "C": "Furosemide", "D": "Insulin"},
        "answer": "C",
    }
    base.update(overrides)
    return base


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def real_files() -> list[Path]:
    if not BENCHMARKS.is_dir():
        pytest.skip(f"{BENCHMARKS} is not on this machine")
    files = sorted(BENCHMARKS.glob("*.jsonl"))
    assert files, f"{BENCHMARKS} holds no .jsonl files"
    return files


def test_doctests_pass() -> None:
    result = doctest.testmod(evaluation.items)
    assert result.failed == 0
    assert result.attempted >= 4


def test_an_item_loads_with_options_in_letter_order(tmp_path: Path) -> None:
    shuffled_keys = {"C": "Furosemide", "A": "Aspirin", "D": "Insulin", "B": "Metformin"}
    path = write_jsonl(tmp_path / "demo.jsonl", [record(options=shuffled_keys, extra=[1, 2])])
    [item] = load_items(path)
    assert item == McqItem(
        id="q1",
        source="demo",
        language="en",
        question="Which drug is a loop diuretic?",
        options=(("A", "Aspirin"), ("B", "Metformin"), ("C", "Furosemide"), ("D", "Insulin")),
        answer="C",
    )
    assert item.letters() == "ABCD"
    assert item.option_map() == {
        "A": "Aspirin",
        "B": "Metformin",
        "C": "Furosemide",
        "D": "Insulin",
    }


def test_several_answers_are_put_in_normal_form_and_dialogue_is_kept(tmp_path: Path) -> None:
    rows = [
        record(id="multi", answer="C, A"),
        record(id="jmed-1", language="zh", dialogue="患者：手抖。医生：多久了？"),
    ]
    multi, jmed = load_items(write_jsonl(tmp_path / "demo.jsonl", rows))
    assert multi.answer == "A,C"
    assert multi.dialogue is None
    assert jmed.dialogue == "患者：手抖。医生：多久了？"
    assert jmed.language == "zh"


def test_ten_options_and_blank_lines(tmp_path: Path) -> None:
    options = {letter: f"option {letter}" for letter in "ABCDEFGHIJ"}
    path = write_jsonl(tmp_path / "pro.jsonl", ["", record(options=options, answer="J"), "  "])
    [item] = load_items(path)
    assert item.letters() == "ABCDEFGHIJ"
    assert item.answer == "J"


@pytest.mark.parametrize(
    ("row", "field", "detail"),
    [
        (record(answer="F"), "'answer'", "'F' is not one of the options A-D"),
        (record(answer="A,F"), "'answer'", "not one of the options A-D"),
        (record(answer="a"), "'answer'", "not one of the options"),
        (record(answer=""), "'answer'", "not one of the options"),
        (record(answer=2), "'answer'", "must be a string"),
        (record(options={"A": "x", "B": "y", "D": "z"}), "'options'", "A..C without gaps"),
        (record(options={"B": "x", "C": "y"}), "'options'", "A..B without gaps"),
        (record(options={"A": "x"}), "'options'", "at least two"),
        (record(options=["x", "y"]), "'options'", "must be an object"),
        (record(options={"A": "x", "B": " "}), "'options' B", "non-empty string"),
        (record(options={"A": "x", "B": 3}), "'options' B", "non-empty string"),
        (record(language="fr"), "'language'", "'fr' is not one of en, zh"),
        (record(question=""), "'question'", "non-empty string"),
        (record(id=7), "'id'", "non-empty string"),
        ({k: v for k, v in record().items() if k != "source"}, "'source'", "non-empty"),
        (record(dialogue=["turn"]), "'dialogue'", "must be a string"),
        ("[1, 2]", "expected a JSON object", "list"),
        ('{"id": "q1", ', "not valid JSON", ""),
    ],
)
def test_faults_name_file_line_and_field(
    tmp_path: Path, row: dict[str, Any] | str, field: str, detail: str
) -> None:
    path = write_jsonl(tmp_path / "medqa.jsonl", [record(id="fine"), row])
    with pytest.raises(DatasetError) as raised:
        load_items(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:2: ")
    assert field in message
    assert detail in message


def test_duplicate_ids_are_refused_within_and_across_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"one\.jsonl:2: 'id' 'x' repeats .*one\.jsonl:1"):
        load_items(write_jsonl(tmp_path / "one.jsonl", [record(id="x"), record(id="x")]))
    one = write_jsonl(tmp_path / "one.jsonl", [record(id="x"), record(id="y")])
    two = write_jsonl(tmp_path / "two.jsonl", [record(id="z"), record(id="y")])
    with pytest.raises(DatasetError, match=r"two\.jsonl:2: 'id' 'y' repeats .*one\.jsonl:2"):
        load_many([one, two])
    three = write_jsonl(tmp_path / "three.jsonl", [record(id="w")])
    assert [item.id for item in load_many([one, three])] == ["x", "y", "w"]


def test_unreadable_and_empty_files_are_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_items(tmp_path / "missing.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes(json.dumps(record()).encode()[:-2] + b'\xe9"}')
    with pytest.raises(DatasetError, match="cannot read"):
        load_items(tmp_path / "latin1.jsonl")
    with pytest.raises(DatasetError, match="no items"):
        load_items(write_jsonl(tmp_path / "empty.jsonl", [""]))


def test_a_line_separator_inside_a_string_does_not_split_the_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [record(question="Before\u2028after\x85end?")])
    [item] = load_items(path)
    assert item.question == "Before\u2028after\x85end?"


def test_every_real_benchmark_file_loads() -> None:
    files = real_files()
    total = 0
    for path in files:
        items = load_items(path)
        total += len(items)
        assert all(
            item.answer and set(item.answer.split(",")) <= set(item.letters()) for item in items
        )
    everything = load_many(files)
    assert len(everything) == total
    by_source = Counter(item.source for item in everything)
    if "jmed" in by_source:
        jmed = [item for item in everything if item.source == "jmed"]
        assert all(item.language == "zh" for item in jmed)
        with_dialogue = [item for item in jmed if item.dialogue]
        assert len(with_dialogue) >= 0.99 * len(jmed)  # two items have "dialogue": null
    if "mmlu_pro_health" in by_source:
        assert max(len(item.options) for item in everything) == 10


def items_numbered(count: int) -> list[McqItem]:
    return [McqItem(f"i{n}", "s", "en", "q", (("A", "x"), ("B", "y")), "A") for n in range(count)]


def test_choose_is_seeded_ordered_and_without_replacement() -> None:
    items = items_numbered(50)
    subset = choose(items, 10, seed=3)
    assert subset == choose(items, 10, seed=3)
    assert len({item.id for item in subset}) == 10
    positions = [items.index(item) for item in subset]
    assert positions == sorted(positions)
    assert subset != choose(items, 10, seed=4)


def test_choose_takes_everything_when_limit_is_none_or_large() -> None:
    items = items_numbered(5)
    assert choose(items, None, seed=0) == items
    assert choose(items, 5, seed=0) == items
    assert choose(items, 99, seed=0) == items
    assert choose(items, 0, seed=0) == []
    with pytest.raises(ValueError, match="at least 0"):
        choose(items, -1, seed=0)


def test_shuffle_keeps_the_answer_text_and_reletters_from_a() -> None:
    item = McqItem(
        "multi", "s", "en", "q", tuple((letter, f"text {letter}") for letter in "ABCDE"), "A,D"
    )
    answers = {"text A", "text D"}
    for seed in range(20):
        shuffled = shuffle_options(item, seed)
        assert shuffled.letters() == "ABCDE"
        assert sorted(shuffled.option_map().values()) == sorted(item.option_map().values())
        assert {shuffled.option_map()[letter] for letter in shuffled.answer.split(",")} == answers
        assert shuffled.answer == ",".join(sorted(shuffled.answer.split(",")))
        assert (shuffled.id, shuffled.question, shuffled.dialogue) == ("multi", "q", None)


def jmed_items() -> list[McqItem]:
    path = BENCHMARKS / "jmed.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} is not on this machine")
    return load_items(path)


def test_shuffling_jmed_spreads_its_answer_letters_evenly() -> None:
    items = jmed_items()
    assert Counter(item.answer for item in items)["A"] / len(items) > 0.8  # why we shuffle
    for seed in (0, 1, 2024):
        counts = Counter(shuffle_options(item, seed).answer for item in items)
        shares = {letter: counts[letter] / len(items) for letter in "ABCDE"}
        assert all(0.12 <= share <= 0.28 for share in shares.values()), (seed, shares)


def test_shuffling_is_fixed_by_seed_and_differs_between_seeds() -> None:
    items = jmed_items()

    def orders(seed: int) -> list[tuple[str, ...]]:
        return [tuple(text for _, text in shuffle_options(item, seed).options) for item in items]

    assert orders(7) == orders(7)
    same = sum(first == second for first, second in zip(orders(7), orders(8), strict=True))
    assert same < 0.05 * len(items)  # 1 in 120 expected for five options
    for item in items:
        shuffled = shuffle_options(item, 7)
        assert shuffled.option_map()[shuffled.answer] == item.option_map()[item.answer]
        assert shuffled.dialogue == item.dialogue
