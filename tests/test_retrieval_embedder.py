"""The embedder's bfloat16 linear layers: exactly a plain bfloat16 linear's outputs from a
prepacked weight, same vectors as float32 to cosine 0.9999, chosen from the CPU's flags, and
an index built one way searchable the other."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.bf16 import (
    BF16_BETWEEN_PRODUCTS,
    BF16Linear,
    bf16_between_products,
    cpu_has_native_bf16,
    linears_to_bf16,
)
from retrieval.embedder import Embedder, EmbedderSpec
from retrieval.index import Index, load_index, passage_text
from retrieval.search import Retriever

QUERIES = Path(__file__).parent / "data" / "guideline_queries.jsonl"


def test_linears_become_bf16_and_answer_in_float32() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.GELU(), torch.nn.Linear(32, 8))
    first = model[0]
    x = torch.randn(3, 5, 64)  # (batch, tokens, features), as a transformer's layers see it
    with torch.inference_mode():
        before = model(x)
        plain_bf16 = torch.nn.functional.linear(
            x.bfloat16(), first.weight.bfloat16(), first.bias.bfloat16()
        )
    assert linears_to_bf16(model) == 2
    assert all(isinstance(model[i], BF16Linear) for i in (0, 2))
    assert model[0].weight.dtype == torch.bfloat16
    with torch.inference_mode():
        after = model(x)
        packed = model[0](x)
    assert after.dtype == torch.float32 and after.shape == before.shape
    assert torch.nn.functional.cosine_similarity(before, after, dim=-1).min() > 0.999
    assert torch.equal(packed, plain_bf16.float())  # prepacking changes speed, not results


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_bert_products_stay_bf16_only_under_fused_attention(attention: str) -> None:
    """A small random BERT, padded batch: under SDPA the projections feeding attention and
    the feed-forward's first layer answer in bfloat16; under eager attention (which would
    fail on mixed types) every linear answers in float32. Both match float32."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        attn_implementation=attention,
    )
    model = BertModel(config).eval()
    ids = torch.randint(1, 100, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0  # the second text is shorter: padding and a real attention mask
    with torch.inference_mode():
        before = model(input_ids=ids, attention_mask=mask).last_hidden_state
    in_bf16 = bf16_between_products(model.config)
    assert in_bf16 == (BF16_BETWEEN_PRODUCTS if attention == "sdpa" else ())
    assert linears_to_bf16(model, in_bf16) == 2 * 6 + 1  # six per layer and the pooler
    layer = model.encoder.layer[0]
    wanted = torch.bfloat16 if attention == "sdpa" else torch.float32
    assert layer.attention.self.query.answers == wanted
    assert layer.intermediate.dense.answers == wanted
    assert layer.attention.output.dense.answers == torch.float32
    assert layer.output.dense.answers == torch.float32
    with torch.inference_mode():
        after = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert after.dtype == torch.float32
    real = mask.bool()
    assert torch.nn.functional.cosine_similarity(before[real], after[real], dim=-1).min() > 0.999


def test_other_architectures_keep_every_linear_answer_in_float32() -> None:
    class Config:
        model_type = "mpnet"
        _attn_implementation = "sdpa"

    assert bf16_between_products(Config()) == ()
    assert bf16_between_products(None) == ()


@pytest.mark.parametrize(
    ("flags", "native"),
    [
        ("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True),
        ("fpu sse avx2 amx_bf16 amx_tile", True),
        ("fpu sse avx2 avx512f avx512_vnni", False),
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path: Path, flags: str, native: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="utf-8")
    assert cpu_has_native_bf16(cpuinfo) is native
    assert cpu_has_native_bf16(tmp_path / "missing") is False


@pytest.fixture(scope="module")
def fp32_embedder() -> Embedder:
    return Embedder(EmbedderSpec(bf16=False))


def test_bf16_vectors_match_float32(fp32_embedder: Embedder, guideline_index: Index) -> None:
    """Measured min 0.99997 over 800 PubMedQA questions and abstracts; queries and passages
    of the sample corpus here."""
    bf16 = Embedder(EmbedderSpec(bf16=True))
    queries = [json.loads(line)["query"] for line in QUERIES.read_text("utf-8").splitlines()]
    english = [q for q in queries if q.isascii()]
    passages = [passage_text(c) for c in guideline_index.chunks if c.language == "en"][:64]
    for embed in ("embed_queries", "embed_passages"):
        texts = english if embed == "embed_queries" else passages
        a = getattr(bf16, embed)(texts)
        b = getattr(fp32_embedder, embed)(texts)
        assert a.dtype == np.float32 and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
        assert (a * b).sum(axis=1).min() >= 0.999
    assert bf16.identity["precision"] == "bf16-matmul"
    assert fp32_embedder.identity["precision"] == "fp32"


def test_precision_follows_the_cpu_by_default(embedder: Embedder) -> None:
    assert embedder.model is not None  # loaded
    assert embedder.precision == ("bf16-matmul" if cpu_has_native_bf16() else "fp32")


def test_an_index_serves_either_precision(
    embedder: Embedder, fp32_embedder: Embedder, guideline_index: Index
) -> None:
    query = "first-line treatment for hypertension in a 45 year old"
    built_with = Retriever(guideline_index, embedder).search(query, 3)
    loaded = load_index(guideline_index.folder, fp32_embedder)
    other = Retriever(loaded, fp32_embedder).search(query, 3)
    assert [h.chunk.doc_id for h in built_with][:1] == [h.chunk.doc_id for h in other][:1]
