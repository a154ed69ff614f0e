"""What machine a benchmark ran on, for its recorded results.

Absolute CPU timings differ several-fold between machines these benchmarks run on (an
AVX2-only core against one with AVX512-BF16), so results name the CPU model and the vector
extensions that matter to torch and FAISS, not just the architecture.
"""

from __future__ import annotations

import multiprocessing
import platform
from pathlib import Path

EXTENSIONS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx_ne_convert")


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """'<model name>, N logical CPUs, <extensions>' (from /proc/cpuinfo where it exists)."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        for line in cpuinfo.read_text("utf-8", "replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    present = [name for name in EXTENSIONS if name in flags] or ["none of " + "/".join(EXTENSIONS)]
    return f"{model}, {multiprocessing.cpu_count()} logical CPUs, {' '.join(present)}"
