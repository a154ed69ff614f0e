"""BM25 and its tokeniser: exact terms in English, segmented words in Chinese."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.bm25 import BM25
from retrieval.tokenize import tokens

TEXTS = [
    "Hypertension: offer an ACE inhibitor or ARB to adults under 55 with type 2 diabetes.",
    "Asthma: a low-dose inhaled corticosteroid is the first step for most adults.",
    "Atrial fibrillation: assess stroke risk with CHA2DS2-VASc before anticoagulation.",
    "高血压患者首选的降压药物包括钙通道阻滞剂和血管紧张素转换酶抑制剂。",
    "儿童发热伴抽搐应立即就医，并评估是否存在脑膜炎的体征。",
]


def test_english_tokens_are_lowercased_stemmed_and_stopword_free() -> None:
    assert tokens("The patient's Fevers and CHA2DS2-VASc of 3") == [
        "patient", "fever", "cha2ds2-vasc", "3"
    ]  # fmt: skip


def test_chinese_is_segmented_into_words_and_their_parts() -> None:
    words = tokens("高血压病患者的降压药物")
    assert {"高血压", "降压", "药物"} <= set(words)
    assert "的" not in words


def test_mixed_language_text_keeps_both() -> None:
    assert {"aspirin", "阿司匹林"} <= set(tokens("aspirin 阿司匹林 剂量"))


def test_exact_terms_rank_their_chunk_first() -> None:
    bm25 = BM25.build(TEXTS)
    assert bm25.top("CHA2DS2-VASc score", 3)[0][0] == 2
    assert bm25.top("inhaled corticosteroid", 3)[0][0] == 1


def test_chinese_query_finds_the_chinese_chunk() -> None:
    bm25 = BM25.build(TEXTS)
    assert bm25.top("孩子发烧抽搐怎么办", 3)[0][0] == 4
    assert bm25.top("高血压吃什么药", 3)[0][0] == 3


def test_no_shared_term_means_no_hit() -> None:
    bm25 = BM25.build(TEXTS)
    assert bm25.top("zebra", 5) == []
    assert bm25.top("", 5) == []
    assert not np.any(bm25.scores("the of and"))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    bm25 = BM25.build(TEXTS)
    bm25.save(tmp_path)
    loaded = BM25.load(tmp_path)
    for query in ("diabetes ACE inhibitor", "发热 抽搐", "stroke"):
        assert loaded.top(query, 5) == bm25.top(query, 5)


def test_document_frequencies_count_chunks_per_term() -> None:
    df = BM25.build(TEXTS).document_frequencies()
    assert df["adult"] == 2  # "adults" in two chunks, stemmed
    assert df["cha2ds2-vasc"] == 1
    assert "the" not in df
