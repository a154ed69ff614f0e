"""Query spelling against the index's own vocabulary: slips in corpus terms are fixed,
everything else (known words, numbers, short words, Chinese, unclear cases) is left alone."""

from __future__ import annotations

import random
from pathlib import Path

from perturbation.edit_distance import distance
from retrieval.bm25 import BM25
from retrieval.documents import SourceDocument
from retrieval.embedder import Embedder
from retrieval.index import build_index, load_index
from retrieval.near_words import NearWords
from retrieval.query_spelling import QuerySpeller
from retrieval.search import Retriever, SearchOptions

TEXTS = [
    "Syncope during bathing in infants: a pediatric form of water-induced urticaria.",
    "Transanal pull-through for Hirschsprung disease; anticoagulation after surgery.",
    "Chest pain with a CHA2DS2-VASc score of 2 and a dose of 12346 units.",
    "Feel for a pulse; feeding problems in infants with fever; dengue warning signs.",
    "高血压患者首选的降压药物。",
]


def speller(texts: list[str] = TEXTS) -> QuerySpeller:
    return QuerySpeller(BM25.build(texts).document_frequencies())


def test_slips_in_corpus_terms_become_the_corpus_term() -> None:
    fix = speller().correct
    assert fix("a peditaric form of urticaaria?") == "a pediatric form of urticaria?"
    assert fix("trsnsanal pull-throuhg") == "transanal pull-through"  # compounds as BM25 sees
    assert fix("antcoagulaton") == "anticoagulation"  # two slips in a long word
    assert fix("Urticaaria and DENGEU") == "Urticaria and DENGUE"  # capitals kept


def test_known_words_numbers_short_words_and_chinese_are_untouched() -> None:
    fix = speller().correct
    for query in (
        "urticaria in infants",  # in the vocabulary
        "feeling unwell",  # an inflection of "feel", not a slip of "feeding"
        "12345 units, CHA2DS2-VASx 38.5",  # numbers and words with digits
        "fevr puls sgns",  # shorter than five letters
        "高血压 咳簌 吃什么药",  # Chinese
        "Spain",  # one edit from "pain" only by changing the first letter
        "zebra crossing",  # nothing near in the vocabulary
    ):
        assert fix(query) == query


def test_the_nearest_then_most_frequent_term_wins_and_ties_keep_the_word() -> None:
    frequent = speller(["dengue fever", "dengue shock", "dengue rash", "dense breasts"])
    assert frequent.correct("denge") == "dengue"  # df 3 against "dense" at df 1
    tied = speller(["dengue fever", "dense breasts"])
    assert tied.correct("denge") == "denge"  # df 1 against df 1: too close to call
    nearer = speller(["fibrillation", "fibrillatory", "fibrillatory", "fibrillatory"])
    assert nearer.suggestion("fibrillaton") == "fibrillation"  # one edit beats two


def test_the_choice_does_not_depend_on_vocabulary_order() -> None:
    texts = ["dengue fever", "dense breasts", "hypertension treatment", "hypertension target"]
    query = "denge hypertensoin"
    for seed in range(5):
        shuffled = random.Random(seed).sample(texts, len(texts))
        assert speller(shuffled).correct(query) == "denge hypertension"


def test_near_words_finds_every_term_within_the_limit() -> None:
    terms = ["fever", "fibrillation", "fibrillatory", "feed"]
    near = NearWords(terms, lambda term: 2 if len(term) >= 8 else 1)
    assert sorted(near.within("fibrillatoin", 2)) == [(1, "fibrillation"), (2, "fibrillatory")]
    assert near.within("feverr", 1) == [(1, "fever")]
    assert near.within("zzzzz", 1) == []
    assert (distance("stomahc", "stomach"), distance("athsma", "asthma")) == (1, 2)
    assert distance("antcoagulaton", "anticoagulation") == 2


def _document(number: int, text: str) -> SourceDocument:
    return SourceDocument(id=f"doc-{number}", title=f"Doc {number}", text=text, language="en")


def test_the_corrector_is_rebuilt_with_the_index(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "index"
    first = build_index([_document(0, "Urticaria after bathing in cold water.")], embedder, folder)
    assert Retriever(first, embedder).speller.correct("urticaaria") == "urticaria"
    lenient = SearchOptions(min_bm25=0.0)  # one chunk: every idf is small
    hits = Retriever(first, embedder, lenient).search("urticaaria", 1, "bm25")
    assert [hit.chunk.doc_id for hit in hits] == ["doc-0"]

    build_index([_document(1, "Dengue warning signs need admission.")], embedder, folder)
    swapped = Retriever(load_index(folder, embedder), embedder)
    assert swapped.speller.correct("urticaaria dengeu") == "urticaaria dengue"
