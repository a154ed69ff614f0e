"""Run a model's linear layers in bfloat16 on a CPU that multiplies bfloat16 natively.

Embedding a 100-word query with all-MiniLM-L6-v2 is ~3 GFLOP, almost all of it in linear
layers, and in float32 two cores already run those near their peak (~30 ms). CPUs with
AVX512-BF16 or AMX do twice the multiply-adds per cycle in bfloat16, which brings a query to
~20 ms. Only the linear layers change: their weights are stored in bfloat16 and their
outputs come back as float32, so layer norms, attention softmax, residual sums, pooling and
normalisation stay float32. Vectors then stay within cosine 0.9999 of float32 ones (so an
index built either way serves both), where casting the whole model loses ~0.004 in pooling
and normalisation. On a CPU without native bfloat16 the emulation is slower than float32,
hence the check.
"""

from __future__ import annotations

from pathlib import Path

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


class BF16Linear(torch.nn.Module):
    """A frozen `nn.Linear` computed in bfloat16 and answering in its input's dtype."""

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(
            linear.weight.detach().to(torch.bfloat16), requires_grad=False
        )
        self.bias = (
            None
            if linear.bias is None
            else torch.nn.Parameter(linear.bias.detach().to(torch.bfloat16), requires_grad=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.nn.functional.linear(x.to(torch.bfloat16), self.weight, self.bias)
        return out.to(x.dtype)


def linears_to_bf16(model: torch.nn.Module) -> int:
    """Replace every `nn.Linear` inside `model` with a `BF16Linear`, in place; how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, BF16Linear(child))
                replaced += 1
    return replaced
