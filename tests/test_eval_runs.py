"""`clinserve eval mcq|robustness` end to end against a fake endpoint with known answers,
over real HTTP: accuracy and intervals, shuffling against a biased key, extraction styles,
log-probability scoring, the cache that makes a stopped run resumable, and the refusals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from evaluation.items import McqItem
from evaluation.mcq import score_response
from tests.fakes import ExamBehaviour, ServerThread, fake_exam_app

CASES = [
    ("A 54-year-old man has crushing chest pain radiating to his left arm for 40 minutes "
     "and is sweating. Which of the following is the most appropriate first drug?",
     ["Aspirin", "Amoxicillin", "Insulin", "Omeprazole"]),
    ("A 23-year-old woman has burning on urination and frequency for two days, no fever. "
     "Which of the following is the most likely diagnosis?",
     ["Cystitis", "Pyelonephritis", "Appendicitis", "Ovarian torsion"]),
    ("A 7-year-old boy has wheeze and cough at night after playing outside in cold air. "
     "Which of the following is the most likely diagnosis?",
     ["Asthma", "Croup", "Pneumonia", "Cystic fibrosis"]),
    ("A 68-year-old woman has sudden weakness of the right arm and slurred speech that "
     "began one hour ago. Which of the following is the best next step?",
     ["Non-contrast head CT", "Lumbar puncture", "Oral aspirin at home", "Physiotherapy"]),
    ("A 30-year-old man has hives, lip swelling and wheeze minutes after a bee sting. "
     "Which of the following should be given first?",
     ["Intramuscular adrenaline", "Oral antihistamine", "Inhaled salbutamol", "Oral steroid"]),
    ("A 45-year-old man has had a blood pressure of 162/98 mmHg on three visits; he has "
     "type 2 diabetes. Which of the following is the preferred first drug?",
     ["An ACE inhibitor", "A beta blocker", "A loop diuretic", "An alpha blocker"]),
]  # fmt: skip
JMED = {
    "id": "jmed-1", "source": "jmed", "language": "zh",
    "question": "患者为30岁女性，发热三天，咳嗽，有黄痰，右下肺可闻及湿啰音。"
                "根据患者的症状和检查结果，最有可能的诊断是什么？",
    "options": {"A": "社区获得性肺炎", "B": "支气管哮喘", "C": "肺结核", "D": "肺癌", "E": "气胸"},
    "answer": "A",
    "dialogue": "患者：发烧三天了，咳嗽，痰是黄的。\n医生：胸口痛吗？\n患者：有点，右边。",
}  # fmt: skip


def write_dataset(path: Path, extra: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The CASES as a MedQA-shaped file, every answer key "A" (a biased set); returns the
    question -> correct option text table the fake endpoint answers from."""
    rows = [
        {"id": f"case-{n}", "source": "medqa", "language": "en", "question": question,
         "options": dict(zip("ABCD", options, strict=True)), "answer": "A"}
        for n, (question, options) in enumerate(CASES)
    ] + (extra or [])  # fmt: skip
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), "utf-8")
    return {row["question"]: row["options"][row["answer"]] for row in rows}


@pytest.fixture
def exam(tmp_path: Path) -> Iterator[Callable[..., tuple[str, ExamBehaviour, Path]]]:
    with ExitStack() as stack:

        def start(
            styles: dict[str, str], extra: list[dict[str, Any]] | None = None, **kw: Any
        ) -> tuple[str, ExamBehaviour, Path]:
            dataset = tmp_path / "set.jsonl"
            behaviour = ExamBehaviour(write_dataset(dataset, extra), styles, **kw)
            server = stack.enter_context(ServerThread(fake_exam_app(behaviour)))
            return f"{server.url}/v1", behaviour, dataset

        yield start


def run_eval(action: str, base_url: str, model: str, dataset: Path, out: Path, *extra: str) -> int:
    args = ["eval", action, "--base-url", base_url, "--api-key", "sk-test-secret",
            "--model", model, "--dataset", str(dataset), "--out", str(out), *extra]  # fmt: skip
    return main(args)


def results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text("utf-8"))
    return data


@pytest.mark.parametrize("style", ["oracle", "verbose", "text"])
def test_a_model_that_knows_every_answer_scores_100_whatever_its_answer_style(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path, style: str
) -> None:
    url, behaviour, dataset = exam({"m": style})
    assert run_eval("mcq", url, "m", dataset, tmp_path / "out") == 0
    summary = results(tmp_path / "out")
    assert (summary["n"], summary["correct"], summary["accuracy"]) == (6, 6, 1.0)
    assert summary["invalid_rate"] == 0.0 and summary["errors"] == 0
    low, high = summary["ci95"]
    assert 0.60 < low < 0.62 and high == pytest.approx(1.0)  # Wilson at 6/6
    assert summary["by_source"]["medqa"]["n"] == 6
    assert behaviour.authorization[0] == "Bearer sk-test-secret"
    assert "sk-test-secret" not in (tmp_path / "out" / "results.json").read_text()
    assert "--api-key ***" in summary["command"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "items.jsonl").open()]
    assert len(rows) == 6 and all(row["correct"] for row in rows)
    assert "100.0" in (tmp_path / "out" / "report.md").read_text()
    assert (tmp_path / "out" / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shuffling_stops_a_biased_key_rewarding_a_model_that_always_says_a(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path
) -> None:
    url, _, dataset = exam({"lazy": "first"})
    assert run_eval("mcq", url, "lazy", dataset, tmp_path / "plain", "--no-shuffle") == 0
    assert results(tmp_path / "plain")["accuracy"] == 1.0  # every key is A in the file
    assert run_eval("mcq", url, "lazy", dataset, tmp_path / "shuffled", "--seed", "3") == 0
    shuffled = results(tmp_path / "shuffled")
    assert shuffled["accuracy"] < 1.0
    assert shuffled["answer_distribution"] == {"A": 6}  # the bias shows in the report
    again = tmp_path / "again"
    assert run_eval("mcq", url, "lazy", dataset, again, "--seed", "3", "--no-cache") == 0
    assert results(again)["correct"] == shuffled["correct"]  # same seed, same order


def test_a_model_that_names_no_option_is_invalid_not_an_error(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path
) -> None:
    url, _, dataset = exam({"shy": "silent"})
    assert run_eval("mcq", url, "shy", dataset, tmp_path / "out") == 0
    summary = results(tmp_path / "out")
    assert (summary["accuracy"], summary["invalid_rate"], summary["errors"]) == (0.0, 1.0, 0)


def test_logprob_scoring_takes_the_likeliest_letter_from_one_token(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path
) -> None:
    url, behaviour, dataset = exam({"m": "oracle"})
    assert run_eval("mcq", url, "m", dataset, tmp_path / "out", "--scoring", "logprobs") == 0
    assert results(tmp_path / "out")["accuracy"] == 1.0
    request = behaviour.requests[0]
    assert (request["max_tokens"], request["logprobs"], request["top_logprobs"]) == (1, True, 20)


def test_failed_requests_count_as_wrong_and_a_rerun_asks_only_those(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path
) -> None:
    url, behaviour, dataset = exam({"m": "oracle"}, fail_first=2)
    out = tmp_path / "out"
    assert run_eval("mcq", url, "m", dataset, out, "--concurrency", "1") == 1
    first = results(out)
    assert (first["errors"], first["correct"]) == (2, 4)
    asked = len(behaviour.requests)
    assert run_eval("mcq", url, "m", dataset, out, "--concurrency", "1") == 0
    assert len(behaviour.requests) - asked == 2  # the four answers came from the cache
    assert results(out)["from_cache"] == 4
    assert (results(out)["errors"], results(out)["accuracy"]) == (0, 1.0)


def test_gateway_options_are_sent_only_when_asked_for(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path
) -> None:
    url, behaviour, dataset = exam({"m": "oracle"})
    assert run_eval("mcq", url, "m", dataset, tmp_path / "a", "--limit", "2") == 0
    assert all("clinical" not in request for request in behaviour.requests)
    behaviour.requests.clear()
    extra = ("--limit", "2", "--intake", "normalize", "--retrieval", "off")
    assert run_eval("mcq", url, "m", dataset, tmp_path / "b", *extra) == 0
    assert [r["clinical"] for r in behaviour.requests] == [
        {"retrieval": False, "intake": "normalize"}
    ] * 2
    assert results(tmp_path / "b")["n"] == 2


def test_refusals_are_one_line_with_exit_2(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, _, dataset = exam({"m": "oracle"})
    assert run_eval("mcq", url, "nope", dataset, tmp_path / "o1") == 2
    assert "model 'nope' is not served" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x", "source": "s", "language": "en", "question": "q?", '
                      '"options": {"A": "a", "B": "b"}, "answer": "F"}\n')  # fmt: skip
    assert run_eval("mcq", url, "m", broken, tmp_path / "o2") == 2
    assert "broken.jsonl:1" in capsys.readouterr().err
    assert run_eval("mcq", "http://127.0.0.1:9/v1", "m", dataset, tmp_path / "o3",
                    "--retries", "0") == 2  # fmt: skip
    error = capsys.readouterr().err
    assert "cannot list the models" in error and "Traceback" not in error
    assert run_eval("robustness", url, "m", dataset, tmp_path / "o4", "--modes", "loud") == 2
    assert "--modes: choose from off, annotate, normalize" in capsys.readouterr().err


def test_robustness_measures_the_drop_per_severity_and_mode_with_jmed_dialogue(
    exam: Callable[..., tuple[str, ExamBehaviour, Path]], tmp_path: Path
) -> None:
    url, behaviour, dataset = exam({"m": "oracle"}, extra=[JMED])
    out = tmp_path / "out"
    args = ("--modes", "off,normalize", "--severities", "moderate,heavy")
    assert run_eval("robustness", url, "m", dataset, out, *args) == 0
    summary = results(out)
    assert summary["n_items"] == 7
    assert summary["variants"] == ["clean", "moderate", "heavy", "dialogue"]
    conditions = {(c["mode"], c["variant"]): c for c in summary["conditions"]}
    assert len(conditions) == 8
    assert conditions[("off", "clean")]["accuracy"] == 1.0
    assert conditions[("off", "dialogue")]["n"] == 1  # only JMED has the patient's dialogue
    # The fake knows only the clean wording, so every perturbed question is a guess.
    assert conditions[("off", "heavy")]["accuracy"] < 1.0
    drops = {(d["mode"], d["variant"]): d for d in summary["drops"]}
    heavy = drops[("normalize", "heavy")]
    assert heavy["points"] > 0 and heavy["ci95"][0] <= heavy["points"] <= heavy["ci95"][1]
    assert {r["clinical"]["intake"] for r in behaviour.requests} == {"off", "normalize"}
    closing = "Which of the following is the most likely diagnosis?"
    perturbed = [r["messages"][-1]["content"] for r in behaviour.requests]
    assert sum(closing in text for text in perturbed) >= 8  # the question itself is kept
    assert (out / "robustness.png").is_file() and "heavy" in (out / "report.md").read_text()


def test_a_reply_cut_off_at_max_tokens_counts_only_an_explicit_letter() -> None:
    item = McqItem("q1", "medqa", "en", "Which drug?", (("A", "Aspirin"), ("B", "Insulin")), "A")
    weighing = "Let's analyse each option:\n\nA. Aspirin: this could help because"

    def reply(text: str, finish: str) -> dict[str, Any]:
        return {"choices": [{"message": {"content": text}, "finish_reason": finish}]}

    assert score_response(item, reply(weighing, "length"), "generate").predicted is None
    assert score_response(item, reply("Aspirin.", "stop"), "generate").predicted == "A"
    assert score_response(item, reply("The answer is B", "length"), "generate").predicted == "B"
