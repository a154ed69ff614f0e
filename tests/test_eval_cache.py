"""evaluation.cache: keys, round trips through the file, and recovery from a killed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evaluation.cache import ResponseCache

BASE_URL = "http://endpoint.test/v1"
BODY: dict[str, Any] = {
    "model": "m",
    "messages": [{"role": "user", "content": "胸口疼，左臂发麻"}],
    "temperature": 0.0,
    "max_tokens": 16,
}


def response(text: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def test_key_is_stable_across_dict_order_and_changes_with_the_request() -> None:
    key = ResponseCache.key(BASE_URL, "m", BODY)
    reordered = dict(reversed(list(BODY.items())))
    assert list(reordered) != list(BODY)
    assert ResponseCache.key(BASE_URL, "m", reordered) == key
    assert ResponseCache.key(BASE_URL + "/", "m", BODY) == key
    assert len(key) == 64 and int(key, 16) >= 0  # sha256 hex
    different = [
        ResponseCache.key(BASE_URL, "m", {**BODY, "temperature": 0.7}),
        ResponseCache.key(BASE_URL, "m", {**BODY, "messages": [{"role": "user", "content": "x"}]}),
        ResponseCache.key(BASE_URL, "other", BODY),
        ResponseCache.key("http://elsewhere.test/v1", "m", BODY),
    ]
    assert len({key, *different}) == 5


def test_round_trip_in_memory_and_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "cache.jsonl"  # the folder is made when missing
    first, second = ResponseCache.key(BASE_URL, "m", BODY), ResponseCache.key(BASE_URL, "n", BODY)
    with ResponseCache(path) as cache:
        assert cache.get(first) is None
        cache.put(first, response("Answer: B"))
        cache.put(second, response("答案：C"))
        assert cache.get(first) == response("Answer: B")
        assert len(cache) == 2
    with ResponseCache(path) as reopened:
        assert len(reopened) == 2
        assert reopened.get(first) == response("Answer: B")
        assert reopened.get(second) == response("答案：C")
        reopened.put(first, response("Answer: D"))  # a later line wins
    assert ResponseCache(path).get(first) == response("Answer: D")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in lines] == [first, second, first]


def test_a_torn_last_line_is_dropped_and_cut_so_later_appends_parse(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    kept, lost, later = (ResponseCache.key(BASE_URL, "m", {"n": n}) for n in range(3))
    with ResponseCache(path) as cache:
        cache.put(kept, response("A"))
        cache.put(lost, response("B"))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 9])  # killed in the middle of writing `lost`

    with ResponseCache(path) as resumed:
        assert len(resumed) == 1
        assert resumed.get(kept) == response("A")
        assert resumed.get(lost) is None  # asked again on resume
        resumed.put(later, response("C"))
    with ResponseCache(path) as again:
        assert again.get(kept) == response("A")
        assert again.get(later) == response("C")
        assert len(again) == 2
    assert all(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines())


def test_a_damaged_complete_line_is_refused_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    good = json.dumps({"key": "k", "response": response("A")})
    path.write_text(f"{good}\nnot json\n{good}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"cache\.jsonl:2: not a cache line"):
        ResponseCache(path)
    path.write_text(f'{good}\n{{"key": "k", "response": "A"}}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"cache\.jsonl:2: not a cache line"):
        ResponseCache(path)


def test_no_path_caches_nothing_and_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    key = ResponseCache.key(BASE_URL, "m", BODY)
    with ResponseCache(None) as cache:
        cache.put(key, response("A"))
        assert cache.get(key) is None
        assert len(cache) == 0
    assert list(tmp_path.iterdir()) == []


def test_writing_after_close_is_refused(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.jsonl")
    cache.close()
    cache.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        cache.put("k", response("A"))
