"""Run a model's matrix products in bfloat16 on a CPU that multiplies bfloat16 natively.

Embedding a 100-word query with all-MiniLM-L6-v2 is ~3 GFLOP, almost all of it in linear
layers, and in float32 two cores already run those near their peak (~30 ms). CPUs with
AVX512-BF16 or AMX do twice the multiply-adds per cycle in bfloat16, which brings a query to
~20 ms. The linear layers' weights are stored in bfloat16; layer norms, the attention
softmax, residual sums, pooling and normalisation stay float32. Vectors then stay within
cosine 0.9999 of float32 ones (so an index built either way serves both), where casting the
whole model loses ~0.004 in pooling and normalisation. On a CPU without native bfloat16 the
emulation is slower than float32, hence the check.

Each weight is reordered once, at load, into the blocked layout oneDNN's AMX/AVX512 kernels
read (`torch.ops.mkldnn._reorder_linear_weight`, then `_linear_pointwise`: the pair
torch.compile's CPU backend emits for frozen linears, here without a compiler). `F.linear`
on a plain bfloat16 weight repacks it on every call: prepacked, a 100-word query's forward
pass on one thread takes ~16 instead of ~18 ms, with bit-identical outputs. oneDNN prepacks
bfloat16 only on CPUs with AVX512BW/VL/DQ or AVX-NE-CONVERT; elsewhere (bfloat16 forced by
the `bf16` setting on an older CPU) the layer keeps a plain bfloat16 weight and `F.linear`.

In BERT-family encoders (the packaged MiniLM, BGE) under PyTorch's fused attention, some
linears' outputs are read only by another bfloat16 product: the query, key and value
projections by attention, whose output goes straight into the next linear, and the
feed-forward's first layer by its activation and then the second layer. Those answer in
bfloat16: casting them to float32 only for the next step to cast back cost ~1 ms a query,
and attention itself runs ~1.5x faster in bfloat16. Everything that feeds a residual sum or
a layer norm still answers in float32. Vectors stay within cosine 0.9999 of float32 ones
(min 0.99997 on PubMedQA questions), as before. Eager attention adds a float32 mask to the
scores and then multiplies them with the values, which fails on mixed types, hence the
restriction to fused attention.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch

NATIVE_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 flags in /proc/cpuinfo


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU multiplies bfloat16 in hardware (False where this cannot be told)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return not NATIVE_FLAGS.isdisjoint(line.partition(":")[2].split())
    return False


# linears whose outputs only feed another bfloat16 product, in BERT-family encoders
BF16_BETWEEN_PRODUCTS = (".query", ".key", ".value", ".intermediate.dense")
FUSED_ATTENTION_ENCODERS = frozenset({"bert", "roberta", "xlm-roberta"})


@functools.cache
def prepacking_supported() -> bool:
    """Whether oneDNN can prepack a bfloat16 weight on this CPU (it raises where not)."""
    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.zeros(8, 8, dtype=torch.bfloat16))
    except (RuntimeError, AttributeError):
        return False
    return True


class BF16Linear(torch.nn.Module):
    """A frozen `nn.Linear` computed in bfloat16 from a prepacked weight, answering in the
    original layer's dtype, or in bfloat16 when `answers` says so (inference only: the
    packed weight has no gradient)."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def __init__(self, linear: torch.nn.Linear, answers: torch.dtype | None = None) -> None:
        super().__init__()
        self.answers = answers or linear.weight.dtype
        self.prepacked = prepacking_supported()
        weight = linear.weight.detach().to(torch.bfloat16)
        if self.prepacked:
            weight = torch.ops.mkldnn._reorder_linear_weight(weight)
        self.register_buffer("weight", weight)
        bias = None if linear.bias is None else linear.bias.detach().to(torch.bfloat16)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.bfloat16)
        if self.prepacked:
            out = torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")
        else:
            out = torch.nn.functional.linear(x, self.weight, self.bias)
        return out.to(self.answers)


def bf16_between_products(config: Any) -> tuple[str, ...]:
    """The name endings of the linears that may answer in bfloat16 in a model with this
    Hugging Face config (see the module docstring); none for other architectures."""
    fused = getattr(config, "_attn_implementation", None) == "sdpa"
    if fused and getattr(config, "model_type", None) in FUSED_ATTENTION_ENCODERS:
        return BF16_BETWEEN_PRODUCTS
    return ()


def linears_to_bf16(model: torch.nn.Module, answer_in_bf16: tuple[str, ...] = ()) -> int:
    """Replace every `nn.Linear` inside `model` with a `BF16Linear`, in place; those whose
    qualified names end with one of `answer_in_bf16` answer in bfloat16. How many."""
    replaced = 0
    for prefix, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                keep = f"{prefix}.{name}".endswith(answer_in_bf16)
                setattr(parent, name, BF16Linear(child, torch.bfloat16 if keep else None))
                replaced += 1
    return replaced
