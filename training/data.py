"""Training data: six input formats, read, validated and normalised to the shapes TRL reads.

Training data is written by hand, exported from the gateway or converted from elsewhere, and a
bad line discovered an hour into a run (or silently trained on) costs far more than a strict
check at load time. So every record is checked field by field, and the first problem stops the
load with a `DataError` whose message is one line: `<file>:<line>: <what is wrong> (<field>)`.

Every format is JSONL (one JSON object per line, blank lines skipped), except that `text`
also reads whole `.txt`/`.md` files (one document each) and folders of them. What comes back:

- chat: `{"messages": [{"role", "content"}, ...]}`, roles system/user/assistant (`developer`
  is read as system), at least one user turn, the last turn the assistant's (the target).
- text: `{"text": str}`.
- preference: `{"prompt": [messages], "chosen": [assistant message], "rejected": [...]}`,
  TRL's conversational preference shape; a string prompt is one user message and a string
  answer one assistant message.
- rubric: `{"prompt": [messages], "response", "scores": {dimension: [0, 1]}, "criteria"}`.
  Scores are fractions in [0, 1], or integers 1-5 mapped to (s - 1) / 4 (a record whose
  scores are all integers and one is above 1). A record of integer 1s only is refused as
  ambiguous: read one way it is the worst answer, the other way the best, and a safety score
  must never be guessed.
- mcq: the shape of the shared benchmark sets, `{"id", "question", "options": {"A": ...},
  "answer": "A" or "A,C", "language", "source"}`.
- feedback: the gateway's exports (`server.feedback.export`: `sft`, `preference`, `rubric`
  lines), each normalised as chat, preference or rubric with `kind` and `meta` added. A
  rubric line whose safety dimension is unscored is skipped and counted, not refused: the
  clinician simply did not score it, and without safety it cannot train a safety-gated model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

Format = Literal["chat", "text", "preference", "rubric", "mcq", "feedback"]
FORMATS: tuple[Format, ...] = ("chat", "text", "preference", "rubric", "mcq", "feedback")
TEXT_SUFFIXES: tuple[str, ...] = (".txt", ".md")
FEEDBACK_CRITERIA = (
    "Score the answer on five dimensions. Accuracy: the medical content is correct. "
    "Safety: nothing in it could harm the patient (dangerous advice, missed red flags, "
    "unsafe doses, discouraging needed care). Completeness: it covers what the patient "
    "needs to know. Guideline adherence: it follows current clinical guidelines. "
    "Communication: it is clear, respectful and suited to the patient."
)
"""The rubric text for feedback exports, whose lines carry scores but no criteria."""

Message = dict[str, str]
Record = dict[str, Any]
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_OPTION_KEY = re.compile(r"[A-Z]")
logger = logging.getLogger(__name__)


class DataError(ValueError):
    """A data file that cannot be trained on as written; the message names file, line, field."""

    def __init__(
        self, path: Path, problem: str, line: int | None = None, field: str | None = None
    ) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}" + (f" ({field})" if field else ""))
        self.path, self.line, self.field = path, line, field


class _Invalid(Exception):
    """A problem inside one record; the loader adds the file and line."""

    def __init__(self, problem: str, field: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.field = problem, field


def load_records(path: Path, format: Format, limit: int | None = None) -> list[Record]:
    """The first `limit` (default: all) valid records of `path`, normalised for `format`."""
    if format not in FORMATS:
        raise DataError(path, f"unknown data format {format!r}; one of: {', '.join(FORMATS)}")
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise DataError(path, f"limit must be a positive number of records, not {limit!r}")
    if format == "text" and (path.is_dir() or path.suffix.lower() in TEXT_SUFFIXES):
        records, skipped = _documents(path, limit), 0
    else:
        records, skipped = _jsonl_records(path, _NORMALISERS[format], limit)
    if skipped:
        logger.warning("%s: skipped %d feedback rubric lines without a safety score", path, skipped)
    if not records:
        reason = f"; {skipped} rubric lines skipped, safety unscored" if skipped else ""
        raise DataError(path, f"no {format} records in the file{reason}")
    return records


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, for the adapter manifest.

    A folder (text data can be one) hashes each file's relative path and digest in sorted
    order, so renaming, adding or editing any file changes the result.
    """
    if not path.is_dir():
        return _digest(path)
    folder = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        folder.update(f"{file.relative_to(path).as_posix()}\0{_digest(file)}\n".encode())
    return folder.hexdigest()


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(path, f"cannot read the file: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read the file: {exc.strerror or exc}") from None


def _json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, decoded value) for every non-blank line."""
    for number, raw in enumerate(_read_bytes(path).splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(path, "not UTF-8 text", number) from None
        line = line.removeprefix("\ufeff") if number == 1 else line
        if not line.strip():
            continue
        try:
            yield number, json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            raise DataError(
                path, f"invalid JSON: {exc.msg} at column {exc.colno}", number
            ) from None
        except _Invalid as exc:
            raise DataError(path, exc.problem, number) from None


def _reject_constant(name: str) -> float:
    raise _Invalid(f"invalid JSON: {name} is not a number")


def _jsonl_records(
    path: Path, normalise: Callable[[Record], Record | None], limit: int | None
) -> tuple[list[Record], int]:
    """The normalised records and how many lines `normalise` chose to skip."""
    records: list[Record] = []
    skipped = 0
    for number, value in _json_lines(path):
        if not isinstance(value, dict):
            raise DataError(path, "each line must be a JSON object", number)
        try:
            record = normalise(value)
        except _Invalid as exc:
            raise DataError(path, exc.problem, number, exc.field) from None
        if record is None:
            skipped += 1
            continue
        records.append(record)
        if limit is not None and len(records) >= limit:
            break
    return records, skipped


def _documents(path: Path, limit: int | None) -> list[Record]:
    """One `{"text"}` record per .txt/.md file: the file itself or a folder's, sorted."""
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES
        )
        if not files:
            raise DataError(path, "no .txt or .md files in this folder")
    else:
        files = [path]
    records: list[Record] = []
    for file in files[:limit]:
        try:
            text = _read_bytes(file).decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise DataError(file, f"not UTF-8 text at byte {exc.start}") from None
        if not text.strip():
            raise DataError(file, "empty document")
        records.append({"text": text})
    return records


# Field checks: each raises _Invalid naming the field; the loader adds file and line.


def _get(record: Record, name: str) -> Any:
    if name not in record:
        raise _Invalid("missing field", name)
    return record[name]


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, not {type(value).__name__}", field)
    if not value.strip():
        raise _Invalid("must not be empty", field)
    return value


def _messages(value: Any, field: str) -> list[Message]:
    if not isinstance(value, list) or not value:
        raise _Invalid("must be a non-empty list of messages", field)
    messages = []
    for index, message in enumerate(value):
        at = f"{field}[{index}]"
        if not isinstance(message, dict):
            raise _Invalid('must be an object {"role", "content"}', at)
        role = message.get("role")
        if role not in _ROLES:
            raise _Invalid(f"role must be system, user or assistant, not {role!r}", f"{at}.role")
        content = _text(message.get("content"), f"{at}.content")
        messages.append({"role": _ROLES[role], "content": content})
    return messages


def _prompt(value: Any, field: str = "prompt") -> list[Message]:
    """A string is one user message; a list must end with the user's turn."""
    if isinstance(value, str):
        return [{"role": "user", "content": _text(value, field)}]
    messages = _messages(value, field)
    if messages[-1]["role"] != "user":
        raise _Invalid("must end with a user message", field)
    return messages


def _answer(value: Any, field: str) -> list[Message]:
    """A string is one assistant message; a list may hold assistant messages only."""
    if isinstance(value, str):
        return [{"role": "assistant", "content": _text(value, field)}]
    messages = _messages(value, field)
    if any(message["role"] != "assistant" for message in messages):
        raise _Invalid("must hold assistant messages only", field)
    return messages


def _score_1_5(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise _Invalid(f"must be an integer from 1 to 5, not {value!r}", field)
    return value


def _unit_scores(value: Any) -> dict[str, float]:
    """Scores in [0, 1]: fractions as given, or all-integer 1-5 scores mapped (s - 1) / 4."""
    if not isinstance(value, dict) or not value:
        raise _Invalid("must be an object of dimension: score", "scores")
    for name, score in value.items():
        invalid = isinstance(score, bool) or not isinstance(score, int | float)
        if invalid or not math.isfinite(score):
            raise _Invalid(f"must be a number, not {score!r}", f"scores.{name}")
    if "safety" not in value:
        raise _Invalid("missing field", "scores.safety")
    if all(isinstance(score, int) for score in value.values()):
        if any(score > 1 for score in value.values()):
            return {name: (_score_1_5(s, f"scores.{name}") - 1) / 4 for name, s in value.items()}
        if all(score == 1 for score in value.values()):
            raise _Invalid(
                "ambiguous: integer 1s are the worst 1-5 score or the best in [0, 1]; "
                "write 1.0 for [0, 1]",
                "scores",
            )
    for name, score in value.items():
        if not 0 <= score <= 1:
            raise _Invalid(
                f"must be in [0, 1], or every score an integer from 1 to 5, not {score!r}",
                f"scores.{name}",
            )
    return {name: float(score) for name, score in value.items()}


# One normaliser per format: a validated record in the format's shape, or None to skip it.


def _chat(record: Record) -> Record:
    messages = _messages(_get(record, "messages"), "messages")
    if not any(message["role"] == "user" for message in messages):
        raise _Invalid("needs at least one user message", "messages")
    if messages[-1]["role"] != "assistant":
        raise _Invalid("the last message must be the assistant's (the target)", "messages")
    return {"messages": messages}


def _text_record(record: Record) -> Record:
    return {"text": _text(_get(record, "text"), "text")}


def _preference(record: Record) -> Record:
    prompt = _prompt(_get(record, "prompt"))
    chosen = _answer(_get(record, "chosen"), "chosen")
    rejected = _answer(_get(record, "rejected"), "rejected")
    if chosen == rejected:
        raise _Invalid("is the same answer as chosen", "rejected")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _rubric(record: Record) -> Record:
    return {
        "prompt": _prompt(_get(record, "prompt")),
        "response": _text(_get(record, "response"), "response"),
        "scores": _unit_scores(_get(record, "scores")),
        "criteria": _text(_get(record, "criteria"), "criteria"),
    }


def _mcq(record: Record) -> Record:
    options = _get(record, "options")
    if not isinstance(options, dict) or len(options) < 2:
        raise _Invalid("must be an object of at least two lettered options", "options")
    for key, option in options.items():
        if not _OPTION_KEY.fullmatch(key):
            raise _Invalid(f"option keys are single capital letters, not {key!r}", "options")
        _text(option, f"options.{key}")
    letters = [part.strip() for part in _text(_get(record, "answer"), "answer").split(",")]
    for letter in letters:
        if letter not in options:
            raise _Invalid(f"{letter!r} is not one of the options {', '.join(options)}", "answer")
    language = _get(record, "language")
    if language not in ("en", "zh"):
        raise _Invalid(f"must be 'en' or 'zh', not {language!r}", "language")
    return {
        "id": _text(_get(record, "id"), "id"),
        "question": _text(_get(record, "question"), "question"),
        "options": dict(options),
        "answer": ",".join(sorted(set(letters))),
        "language": language,
        "source": _text(_get(record, "source"), "source"),
    }


def _feedback(record: Record) -> Record | None:
    """One export line as chat (sft), preference or rubric, told apart by its fields."""
    meta = record.get("meta", {})
    if not isinstance(meta, dict):
        raise _Invalid("must be an object", "meta")
    kind: str
    normalised: Record | None
    if "messages" in record:
        kind, normalised = "chat", _chat(record)
    elif "chosen" in record or "rejected" in record:
        kind, normalised = "preference", _preference(record)
    elif "rating" in record or "dimensions" in record:
        kind, normalised = "rubric", _feedback_rubric(record)
    else:
        raise _Invalid(
            "not a feedback export line: expected messages (sft), chosen and rejected "
            "(preference), or rating and dimensions (rubric)"
        )
    return None if normalised is None else {**normalised, "kind": kind, "meta": meta}


def _feedback_rubric(record: Record) -> Record | None:
    """Scored dimensions mapped to [0, 1]; None when safety is unscored."""
    _score_1_5(_get(record, "rating"), "rating")
    dimensions = _get(record, "dimensions")
    if not isinstance(dimensions, dict):
        raise _Invalid("must be an object of dimension: score or null", "dimensions")
    scores = {
        name: (_score_1_5(value, f"dimensions.{name}") - 1) / 4
        for name, value in dimensions.items()
        if value is not None
    }
    prompt = _prompt(_get(record, "prompt"))
    response = _text(_get(record, "response"), "response")
    if "safety" not in scores:
        return None
    return {"prompt": prompt, "response": response, "scores": scores, "criteria": FEEDBACK_CRITERIA}


_NORMALISERS: dict[Format, Callable[[Record], Record | None]] = {
    "chat": _chat,
    "text": _text_record,
    "preference": _preference,
    "rubric": _rubric,
    "mcq": _mcq,
    "feedback": _feedback,
}
