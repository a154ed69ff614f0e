"""Convert a GGUF checkpoint once into a bf16 safetensors folder that vLLM's CPU backend loads.

vLLM cannot serve these GGUF files directly, and the CPU backend wants a plain transformers
folder anyway. transformers dequantizes GGUF on load (needs the `gguf` package) but 5.x refuses
`save_pretrained` on a GGUF-loaded model, so we rebuild the architecture from the same config on
the meta device and move the dequantized tensors in with `load_state_dict(assign=True)`: no second
random-initialised copy is ever allocated. bf16 halves the folder (fp32 would be 2.5 GB) and is
what the server runs with.

Tied embeddings: Qwen2.5-0.5B ties lm_head to the input embedding upstream, but this GGUF ships a
separate `output.weight` (Q8_0, while the embedding is Q5_0). transformers reads it as
`tie_word_embeddings=False` with two tensors, and we keep it that way: tying would throw away the
better-quantized head. If a GGUF has no output tensor the config says tied and we re-tie after
loading, so both layouts save correctly.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from weights.errors import ConversionFailed

REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json")


def convert_gguf(
    gguf_path: Path,
    out_dir: Path,
    *,
    progress: bool = True,
    generation_defaults: Mapping[str, Any] | None = None,
) -> None:
    """Write config, bf16 weights, tokenizer (with chat template) and generation config.

    `out_dir` should be a fresh temporary folder; the caller publishes it atomically.
    `generation_defaults` are the upstream sampling defaults (GGUF does not carry them).
    """
    import torch
    import transformers
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GgufConfig

    if not progress:
        transformers.utils.logging.disable_progress_bar()
        _silence_gguf_tqdm()
    src_dir, name = str(gguf_path.parent), gguf_path.name
    steps = tqdm(total=4, desc="convert", unit="step", disable=not progress)
    try:
        steps.set_postfix_str("tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
        if not tokenizer.chat_template:
            raise ConversionFailed(f"{gguf_path.name} carries no chat template; cannot serve chat")
        steps.update()

        steps.set_postfix_str("dequantize")
        # dequantize=True: transformers 5.x would otherwise keep the blocks packed in GgufLinear
        # modules whenever the `kernels` package is present, and packed blocks cannot be saved.
        loaded = AutoModelForCausalLM.from_pretrained(
            src_dir,
            gguf_file=name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),
        )
        config = copy.deepcopy(loaded.config)
        # The loaded config still says `quant_method: gguf`; saved as is, vLLM would try to run
        # the dense safetensors as GGUF.
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        state = {k: v.to(torch.bfloat16) for k, v in loaded.state_dict().items()}
        del loaded
        steps.update()

        steps.set_postfix_str("rebuild")
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        tied = bool(getattr(config, "tie_word_embeddings", False))
        allowed_missing = {"lm_head.weight"} if tied else set()
        if unexpected or set(missing) - allowed_missing:
            raise ConversionFailed(
                f"GGUF tensors do not match the architecture: missing {sorted(missing)}, "
                f"unexpected {sorted(unexpected)}"
            )
        if tied:
            model.tie_weights()
        del state
        steps.update()

        steps.set_postfix_str("save")
        model.save_pretrained(out_dir)
        # GGUF leaves the tokenizer's limit unset (1e30); use the model's context length.
        tokenizer.model_max_length = config.max_position_embeddings
        tokenizer.save_pretrained(out_dir)
        generation = GenerationConfig(
            bos_token_id=config.bos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=_stop_ids(tokenizer, config.eos_token_id),
            **dict(generation_defaults or {}),
        )
        generation.save_pretrained(out_dir)
        steps.update()
    finally:
        steps.close()
    check_output(out_dir)


def _silence_gguf_tqdm() -> None:
    """Quiet the dequantisation bar: it is a bare tqdm that transformers' switch does not reach."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        setattr(gguf_utils, "tqdm", functools.partial(bar, disable=True))  # noqa: B010


def check_output(out_dir: Path) -> None:
    """Fail loudly on a folder vLLM would choke on, before it is published as complete."""
    missing_files = [f for f in REQUIRED_FILES if not (out_dir / f).is_file()]
    if missing_files:
        raise ConversionFailed(f"conversion left no {', '.join(missing_files)} in {out_dir}")
    config = json.loads((out_dir / "config.json").read_text(encoding="utf-8"))
    if "quantization_config" in config:
        raise ConversionFailed("converted config.json still declares a quantization method")


def _stop_ids(tokenizer: Any, eos: int | list[int] | None) -> list[int]:
    """Stop on the chat end token and on <|endoftext|>, as the upstream Qwen configs do."""
    ids: list[int] = []
    for value in [eos, tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|endoftext|>")]:
        for token_id in value if isinstance(value, list) else [value]:
            if isinstance(token_id, int) and token_id >= 0 and token_id not in ids:
                ids.append(token_id)
    return ids
