"""Words for BM25, in English and Chinese.

BM25 is there for exact terms the embedder blurs (drug names, "CHA2DS2-VASc", "NG136",
numbers) and for Chinese, which the default English embedder cannot read. Chinese has no
spaces, so it is segmented with jieba's dictionary in search mode (rjieba, the Rust port:
no start-up cost, microseconds per query; long words also yield their parts:
"高血压病" -> 高血压, 血压, 高血压病), which lets a patient's shorter word meet a guideline's
longer one. Latin text is lower-cased and lightly stemmed (plural and possessive endings),
enough for "fevers"/"fever" without the surprises of a full stemmer; stop words are dropped
in both languages.
"""

from __future__ import annotations

import re

import rjieba

_LATIN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_EN_STOP = frozenset(
    "a an and are as at be but by for from has have he her his i if in into is it its me my "
    "no nor not of on or our she so than that the their them then there these they this to "
    "was we were what when which who will with you your".split()
)
_ZH_STOP = frozenset(
    "的 了 是 在 和 与 或 及 也 就 都 而 被 把 对 等 之".split()
    + "其 这 那 有 我 你 他 她 吗 呢 吧 啊 呀 么".split()
)


def _stem(word: str) -> str:
    if word.endswith("'s"):
        word = word[:-2]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _latin(text: str) -> list[str]:
    return [_stem(w) for w in _LATIN.findall(text.lower()) if w not in _EN_STOP]


def tokens(text: str) -> list[str]:
    """BM25 terms of a text in either language (or both mixed)."""
    if not _CJK.search(text):
        return _latin(text)
    out: list[str] = []
    for piece in rjieba.cut_for_search(text):
        if _CJK.search(piece):
            if piece not in _ZH_STOP and piece.strip():
                out.append(piece)
        else:
            out.extend(_latin(piece))
    return out
