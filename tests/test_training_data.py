"""training.data and training.augment: every format read and refused with file:line messages,
the gateway's real feedback export lines, the team's sample data, and seeded augmentation."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from perturbation.taxonomy import BY_ID
from server.feedback.export import FeedbackItem, Texts, to_row
from training.augment import AugmentSettings, augment_records
from training.data import FEEDBACK_CRITERIA, DataError, Format, file_sha256, load_records

SAMPLES = Path(__file__).parent.parent / "training" / "recipes" / "data"
BENCHMARKS = Path(__file__).parent.parent.parent / "shared" / "data" / "benchmarks"
CHAT = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}
PREFERENCE = {"prompt": "Q?", "chosen": "Good.", "rejected": "Bad."}
RUBRIC = {"prompt": "Q?", "response": "A.", "scores": {"safety": 1.0}, "criteria": "Be safe."}
MCQ = {
    "id": "q1",
    "question": "Which organ makes insulin?",
    "options": {"A": "Liver", "B": "Pancreas"},
    "answer": "B",
    "language": "en",
    "source": "ours",
}


def write_lines(path: Path, *lines: Any) -> Path:
    """Each line a JSON object, or a raw string written as it is."""
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def error(path: Path, format: Format, **kwargs: Any) -> str:
    with pytest.raises(DataError) as raised:
        load_records(path, format, **kwargs)
    return str(raised.value)


# The team's sample data for the smoke recipes.


@pytest.mark.parametrize(
    ("name", "format", "count"),
    [
        ("chat.jsonl", "chat", 24),
        ("text.txt", "text", 1),
        ("preference.jsonl", "preference", 16),
        ("rubric.jsonl", "rubric", 24),
        ("mcq.jsonl", "mcq", 16),
    ],
)
def test_sample_data_loads(name: str, format: Format, count: int) -> None:
    records = load_records(SAMPLES / name, format)
    assert len(records) == count


def test_sample_data_mixes_languages_and_spreads_answers() -> None:
    chats = load_records(SAMPLES / "chat.jsonl", "chat")
    questions = [record["messages"][-2]["content"] for record in chats]
    assert sum(any("\u4e00" <= c <= "\u9fff" for c in q) for q in questions) >= 6
    answers = [record["answer"] for record in load_records(SAMPLES / "mcq.jsonl", "mcq")]
    assert {letter for answer in answers for letter in answer.split(",")} == set("ABCD")
    assert max(answers.count(letter) for letter in "ABCD") <= 5


def test_sample_rubric_has_clearly_unsafe_answers() -> None:
    safety = [
        record["scores"]["safety"] for record in load_records(SAMPLES / "rubric.jsonl", "rubric")
    ]
    assert sum(score == 0.0 for score in safety) >= 8
    assert sum(score == 1.0 for score in safety) >= 8


@pytest.mark.skipif(not BENCHMARKS.is_dir(), reason="the shared benchmark sets are not here")
@pytest.mark.parametrize("name", ["medqa.jsonl", "jmed.jsonl", "pubmedqa.jsonl"])
def test_shared_benchmarks_load_as_mcq(name: str) -> None:
    records = load_records(BENCHMARKS / name, "mcq", limit=20)
    assert len(records) == 20
    assert all(record["answer"] in record["options"] for record in records)
    assert set(records[0]) == {"id", "question", "options", "answer", "language", "source"}


# chat


def test_chat_normalised(tmp_path: Path) -> None:
    line = {
        "id": 7,
        "messages": [
            {"role": "developer", "content": "Be brief.", "name": "ops"},
            {"role": "user", "content": "Dose?"},
            {"role": "assistant", "content": "5 mg."},
        ],
    }
    path = write_lines(tmp_path / "c.jsonl", "", line, "   ", CHAT)
    assert load_records(path, "chat") == [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Dose?"},
                {"role": "assistant", "content": "5 mg."},
            ]
        },
        CHAT,
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"text": "x"}, "missing field (messages)"),
        ({"messages": "hi"}, "must be a non-empty list of messages (messages)"),
        ({"messages": []}, "must be a non-empty list of messages (messages)"),
        ({"messages": ["hi"]}, 'must be an object {"role", "content"} (messages[0])'),
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "role must be system, user or assistant, not 'tool' (messages[0].role)",
        ),
        (
            {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": 3}]},
            "must be a string, not int (messages[1].content)",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "  "},
                    {"role": "assistant", "content": "A"},
                ]
            },
            "must not be empty (messages[0].content)",
        ),
        (
            {
                "messages": [
                    {"role": "system", "content": "S"},
                    {"role": "assistant", "content": "A"},
                ]
            },
            "needs at least one user message (messages)",
        ),
        (
            {"messages": [{"role": "assistant", "content": "A"}, {"role": "user", "content": "Q"}]},
            "the last message must be the assistant's (the target) (messages)",
        ),
    ],
)
def test_chat_errors_name_file_line_and_field(tmp_path: Path, line: Any, problem: str) -> None:
    path = write_lines(tmp_path / "c.jsonl", CHAT, line)
    assert error(path, "chat") == f"{path}:2: {problem}"


def test_file_level_errors(tmp_path: Path) -> None:
    missing = tmp_path / "absent.jsonl"
    assert error(missing, "chat") == f"{missing}: cannot read the file: No such file or directory"
    path = write_lines(tmp_path / "bad.jsonl", CHAT, "", '{"messages": [', CHAT)
    assert error(path, "chat") == f"{path}:3: invalid JSON: Expecting value at column 15"
    path = write_lines(tmp_path / "list.jsonl", [1, 2])
    assert error(path, "chat") == f"{path}:1: each line must be a JSON object"
    path = write_lines(tmp_path / "nan.jsonl", '{"text": NaN}')
    assert error(path, "text") == f"{path}:1: invalid JSON: NaN is not a number"
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(CHAT).encode() + b"\n" + '{"text": "café"}'.encode("latin-1"))
    assert error(path, "chat") == f"{path}:2: not UTF-8 text"
    path = write_lines(tmp_path / "blank.jsonl", "", "  ")
    assert error(path, "chat") == f"{path}: no chat records in the file"
    assert error(path, "csv") == f"{path}: unknown data format 'csv'; one of: " + (  # type: ignore[arg-type]
        "chat, text, preference, rubric, mcq, feedback"
    )


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(CHAT).encode() + b"\r\n")
    assert load_records(path, "chat") == [CHAT]


# limit


def test_limit_keeps_the_first_valid_records_and_stops_reading(tmp_path: Path) -> None:
    lines = [{"text": f"doc {n}"} for n in range(3)]
    path = write_lines(tmp_path / "t.jsonl", *lines, "not json")
    assert load_records(path, "text", limit=2) == lines[:2]
    assert error(path, "text") == f"{path}:4: invalid JSON: Expecting value at column 1"
    assert (
        error(path, "text", limit=0) == f"{path}: limit must be a positive number of records, not 0"
    )


# text


def test_text_from_jsonl_file_and_folder(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", {"text": "Aspirin reduces platelet aggregation."})
    assert load_records(path, "text") == [{"text": "Aspirin reduces platelet aggregation."}]
    assert error(write_lines(tmp_path / "e.jsonl", {"text": ""}), "text").endswith(
        ":1: must not be empty (text)"
    )
    folder = tmp_path / "corpus"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "second.md").write_text("# Fever\nMeasure it.", encoding="utf-8")
    (folder / "a.txt").write_text("Chest pain: ECG in ten minutes.\n", encoding="utf-8")
    (folder / "notes.json").write_text("{}", encoding="utf-8")
    assert load_records(folder, "text") == [
        {"text": "Chest pain: ECG in ten minutes.\n"},
        {"text": "# Fever\nMeasure it."},
    ]
    assert load_records(folder, "text", limit=1) == [{"text": "Chest pain: ECG in ten minutes.\n"}]
    assert load_records(folder / "a.txt", "text") == [{"text": "Chest pain: ECG in ten minutes.\n"}]
    (folder / "empty.txt").write_text(" \n", encoding="utf-8")
    assert error(folder, "text") == f"{folder / 'empty.txt'}: empty document"
    empty_folder = tmp_path / "nothing"
    empty_folder.mkdir()
    assert error(empty_folder, "text") == f"{empty_folder}: no .txt or .md files in this folder"


# preference


def test_preference_string_and_message_forms(tmp_path: Path) -> None:
    full = {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q?"}],
        "chosen": [{"role": "assistant", "content": "Good."}],
        "rejected": [{"role": "assistant", "content": "Bad."}],
    }
    path = write_lines(tmp_path / "p.jsonl", PREFERENCE, full)
    assert load_records(path, "preference") == [
        {
            "prompt": [{"role": "user", "content": "Q?"}],
            "chosen": [{"role": "assistant", "content": "Good."}],
            "rejected": [{"role": "assistant", "content": "Bad."}],
        },
        full,
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({**PREFERENCE, "rejected": "Good."}, "is the same answer as chosen (rejected)"),
        ({"prompt": "Q?", "chosen": "Good."}, "missing field (rejected)"),
        (
            {**PREFERENCE, "prompt": [{"role": "assistant", "content": "Hi"}]},
            "must end with a user message (prompt)",
        ),
        (
            {**PREFERENCE, "chosen": [{"role": "user", "content": "Good."}]},
            "must hold assistant messages only (chosen)",
        ),
        ({**PREFERENCE, "prompt": 5}, "must be a non-empty list of messages (prompt)"),
    ],
)
def test_preference_errors(tmp_path: Path, line: Any, problem: str) -> None:
    path = write_lines(tmp_path / "p.jsonl", line)
    assert error(path, "preference") == f"{path}:1: {problem}"


# rubric


def test_rubric_scores_one_to_five_and_fractions(tmp_path: Path) -> None:
    one_to_five = {**RUBRIC, "scores": {"accuracy": 4, "safety": 1, "communication": 5}}
    fractions = {**RUBRIC, "scores": {"accuracy": 0.25, "safety": 1, "communication": 0}}
    records = load_records(write_lines(tmp_path / "r.jsonl", one_to_five, fractions), "rubric")
    assert records[0] == {
        "prompt": [{"role": "user", "content": "Q?"}],
        "response": "A.",
        "scores": {"accuracy": 0.75, "safety": 0.0, "communication": 1.0},
        "criteria": "Be safe.",
    }
    assert records[1]["scores"] == {"accuracy": 0.25, "safety": 1.0, "communication": 0.0}


OUT_OF_RANGE = "must be in [0, 1], or every score an integer from 1 to 5"


@pytest.mark.parametrize(
    ("scores", "problem"),
    [
        ({"accuracy": 0.5}, "missing field (scores.safety)"),
        ({"safety": 1.5}, f"{OUT_OF_RANGE}, not 1.5 (scores.safety)"),
        ({"safety": 6, "accuracy": 3}, "must be an integer from 1 to 5, not 6 (scores.safety)"),
        ({"safety": 0, "accuracy": 3}, "must be an integer from 1 to 5, not 0 (scores.safety)"),
        ({"safety": 3.0, "accuracy": 4}, f"{OUT_OF_RANGE}, not 3.0 (scores.safety)"),
        ({"safety": True}, "must be a number, not True (scores.safety)"),
        ({"safety": "5"}, "must be a number, not '5' (scores.safety)"),
        ({}, "must be an object of dimension: score (scores)"),
        (
            {"safety": 1, "accuracy": 1},
            "ambiguous: integer 1s are the worst 1-5 score or the best in [0, 1]; "
            "write 1.0 for [0, 1] (scores)",
        ),
    ],
)
def test_rubric_score_errors(tmp_path: Path, scores: Any, problem: str) -> None:
    path = write_lines(tmp_path / "r.jsonl", RUBRIC, {**RUBRIC, "scores": scores})
    assert error(path, "rubric") == f"{path}:2: {problem}"


def test_rubric_needs_criteria(tmp_path: Path) -> None:
    line = {key: value for key, value in RUBRIC.items() if key != "criteria"}
    path = write_lines(tmp_path / "r.jsonl", line)
    assert error(path, "rubric") == f"{path}:1: missing field (criteria)"


# mcq


def test_mcq_normalised(tmp_path: Path) -> None:
    multi = {**MCQ, "options": {"A": "x", "B": "y", "C": "z"}, "answer": "C, A", "extra": 1}
    records = load_records(write_lines(tmp_path / "m.jsonl", MCQ, multi), "mcq")
    assert records[0] == MCQ
    assert records[1]["answer"] == "A,C"
    assert "extra" not in records[1]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"answer": "C"}, "'C' is not one of the options A, B (answer)"),
        ({"answer": "A,"}, "'' is not one of the options A, B (answer)"),
        (
            {"options": {"A": "x", "b": "y"}},
            "option keys are single capital letters, not 'b' (options)",
        ),
        ({"options": {"A": "x"}}, "must be an object of at least two lettered options (options)"),
        ({"options": {"A": "x", "B": ""}}, "must not be empty (options.B)"),
        ({"language": "fr"}, "must be 'en' or 'zh', not 'fr' (language)"),
        ({"id": None}, "must be a string, not NoneType (id)"),
    ],
)
def test_mcq_errors(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    path = write_lines(tmp_path / "m.jsonl", {**MCQ, **change})
    assert error(path, "mcq") == f"{path}:1: {problem}"


# feedback: lines written by the gateway's own exporter


def feedback_item(**changes: Any) -> FeedbackItem:
    values: dict[str, Any] = {
        "feedback_id": 3,
        "completion_id": "chatcmpl-a",
        "tenant": "st-marys",
        "created_at": datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        "rating": 2,
        "dimensions": {"accuracy": 1, "safety": 2, "communication": 4},
        "correction": "Apixaban 5 mg twice daily.",
        "texts": Texts(
            [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "AF dose?"},
            ],
            "Apixaban 10 mg daily.",
            "feedback_body",
        ),
        "model": "clin-7b",
        "adapter": "cardio-v3",
    }
    return FeedbackItem(**{**values, **changes})


def test_feedback_export_lines_of_all_three_kinds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unscored = feedback_item(feedback_id=4, dimensions={"accuracy": 5})
    lines = [
        to_row("sft", feedback_item()),
        to_row("preference", feedback_item()),
        to_row("rubric", feedback_item()),
        to_row("rubric", unscored),
    ]
    path = write_lines(tmp_path / "feedback.jsonl", *lines)
    with caplog.at_level(logging.WARNING, logger="training.data"):
        chat, preference, rubric = load_records(path, "feedback")
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "AF dose?"}]
    meta = lines[0]["meta"]  # type: ignore[index]
    assert meta["feedback_id"] == 3 and meta["text_source"] == "feedback_body"
    assert chat == {
        "messages": [*prompt, {"role": "assistant", "content": "Apixaban 5 mg twice daily."}],
        "kind": "chat",
        "meta": meta,
    }
    assert preference == {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": "Apixaban 5 mg twice daily."}],
        "rejected": [{"role": "assistant", "content": "Apixaban 10 mg daily."}],
        "kind": "preference",
        "meta": meta,
    }
    assert rubric == {
        "prompt": prompt,
        "response": "Apixaban 10 mg daily.",
        "scores": {"accuracy": 0.0, "safety": 0.25, "communication": 0.75},
        "criteria": FEEDBACK_CRITERIA,
        "kind": "rubric",
        "meta": meta,
    }
    assert "skipped 1 feedback rubric lines without a safety score" in caplog.text


def test_feedback_errors(tmp_path: Path) -> None:
    unscored = to_row("rubric", feedback_item(dimensions={}))
    path = write_lines(tmp_path / "f.jsonl", unscored, unscored)
    assert error(path, "feedback") == (
        f"{path}: no feedback records in the file; 2 rubric lines skipped, safety unscored"
    )
    bad_rating = {**to_row("rubric", feedback_item()), "rating": 9}  # type: ignore[dict-item]
    path = write_lines(tmp_path / "r.jsonl", bad_rating)
    assert error(path, "feedback") == f"{path}:1: must be an integer from 1 to 5, not 9 (rating)"
    path = write_lines(tmp_path / "u.jsonl", {"text": "x"})
    assert error(path, "feedback") == (
        f"{path}:1: not a feedback export line: expected messages (sft), chosen and rejected "
        "(preference), or rating and dimensions (rubric)"
    )
    path = write_lines(tmp_path / "m.jsonl", {**CHAT, "meta": "x"})
    assert error(path, "feedback") == f"{path}:1: must be an object (meta)"


# hashing


def test_file_sha256(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", CHAT)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("one", encoding="utf-8")
    before = file_sha256(folder)
    assert before == file_sha256(folder) and len(before) == 64
    (folder / "a.txt").write_text("two", encoding="utf-8")
    assert file_sha256(folder) != before
    with pytest.raises(DataError, match="cannot read the file"):
        file_sha256(tmp_path / "absent")


# augmentation


def chat(question: str, answer: str = "See a doctor if it gets worse.") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


QUESTIONS = [
    f"I have had a headache for {days} days and I have no fever. Should I take paracetamol?"
    for days in range(2, 12)
]


def test_augment_ratio_zero_returns_the_records_unchanged() -> None:
    records = [chat(q) for q in QUESTIONS]
    assert augment_records(records, AugmentSettings()) == records


def test_augment_copies_a_seeded_share_with_targets_unchanged() -> None:
    records = [chat(q) for q in QUESTIONS] + [MCQ, {"text": "Guideline text."}]
    snapshot = json.loads(json.dumps(records))
    settings = AugmentSettings(ratio=0.5, severity="heavy", seed=3)
    out = augment_records(records, settings)
    assert records == snapshot  # the input is not modified
    assert out[: len(records)] == records
    copies = out[len(records) :]
    assert len(copies) == 5  # half of the ten chats; MCQ and text records are not eligible
    by_answer = {record["messages"][0]["content"]: record for record in records[:10]}
    for copy in copies:
        question = copy["messages"][0]["content"]
        assert question not in by_answer  # the patient's message is perturbed...
        assert "no fever" in question.lower()  # ...never its negations
        assert copy["messages"][1] == records[0]["messages"][1]  # the target is unchanged
        assert copy["augmented"]["severity"] == "heavy"
        assert copy["augmented"]["labels"] and set(copy["augmented"]["labels"]) <= set(BY_ID)
    assert out == augment_records(records, settings)  # same seed, same copies
    other = augment_records(records, AugmentSettings(ratio=0.5, severity="heavy", seed=4))
    assert [c["messages"][0] for c in other[len(records) :]] != [c["messages"][0] for c in copies]


def test_augment_preference_and_rubric_prompts() -> None:
    preference = load_records(SAMPLES / "preference.jsonl", "preference")[:4]
    rubric = load_records(SAMPLES / "rubric.jsonl", "rubric")[:4]
    out = augment_records(preference + rubric, AugmentSettings(ratio=1.0, severity="light"))
    assert len(out) == 16
    for original, copy in zip(preference + rubric, out[8:], strict=True):
        assert copy["prompt"][-1]["content"] != original["prompt"][-1]["content"]
        rest = {key: value for key, value in copy.items() if key not in ("prompt", "augmented")}
        assert rest == {key: value for key, value in original.items() if key != "prompt"}
        assert len(copy["augmented"]["labels"]) == 1  # light: one perturbation


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"ratio": 1.5}, "augment.ratio must be a number from 0 to 1, not 1.5"),
        ({"ratio": -0.1}, "augment.ratio must be a number from 0 to 1, not -0.1"),
        ({"ratio": "0.5"}, "augment.ratio must be a number from 0 to 1, not '0.5'"),
        ({"ratio": float("nan")}, "augment.ratio must be a number from 0 to 1, not nan"),
        (
            {"severity": "extreme"},
            "augment.severity must be light, moderate or heavy, not 'extreme'",
        ),
        ({"seed": 1.5}, "augment.seed must be a whole number, not 1.5"),
    ],
)
def test_augment_settings_are_validated(values: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        AugmentSettings(**values)
    assert str(raised.value) == problem
