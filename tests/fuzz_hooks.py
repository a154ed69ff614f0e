"""Schemathesis hooks for `tests/test_fuzz_openapi.py`: let fuzzed bodies reach the worker.

The schema cannot enumerate the served models (they come from the workers at run time), so a
generated `model` is a random string and every completion or embedding request would stop at
the gateway's 404 for an unknown model: the upstream relay, streaming and the embedder would
never see fuzzed input. For each generated body the fuzzer therefore also tries the same body
naming a model the gateway serves. The test passes those names in `CLINSERVE_FUZZ_MODELS`, a
JSON object from path to model name; schemathesis loads this file via `SCHEMATHESIS_HOOKS`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis.hooks import HookContext

SERVED: dict[str, str] = json.loads(os.environ.get("CLINSERVE_FUZZ_MODELS", "{}"))


@schemathesis.hook
def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
    """The generated body, or the same body with a served model (a non-string `model` is a
    deliberately invalid case and stays as generated)."""
    model = SERVED.get(context.operation.path) if context.operation is not None else None
    if model is None or not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return st.just(body)
    return st.sampled_from([body, {**body, "model": model}])
