"""weights.tiny: the tiny random Qwen2 loads in transformers, and its tokenizer is the real thing.

Built once per module (a few seconds); the same-seed check builds a second copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from weights.tiny import SPECIAL_TOKENS, TOOL_TOKENS, build_tiny_model

pytestmark = [
    # torch/transformers internals, not our code
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:torch.*"),
]

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_drug",
            "description": "Look up a drug monograph",
            "parameters": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
            },
        },
    }
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_files_and_config(model_dir: Path) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (model_dir / name).is_file(), name
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    assert config["hidden_size"] // config["num_attention_heads"] == 64  # vLLM CPU needs it
    assert config["head_dim"] == 64
    assert config["num_hidden_layers"] == 2
    assert config["max_position_embeddings"] == 2048
    assert config["dtype"] == "float32"
    generation = json.loads((model_dir / "generation_config.json").read_text())
    assert config["eos_token_id"] in generation["eos_token_id"]


def test_loads_in_transformers_and_generates(model_dir: Path, tokenizer: Any) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.dtype == torch.float32
    assert model.config.vocab_size == len(tokenizer)
    assert model.get_output_embeddings().weight.data_ptr() == (
        model.get_input_embeddings().weight.data_ptr()
    )
    inputs = tokenizer("发热 fever", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    prompt_length = inputs["input_ids"].shape[1]
    assert prompt_length < out.shape[1] <= prompt_length + 4


@pytest.mark.parametrize(
    "text",
    [
        "A 54-year-old man reports chest pain since yesterday.",
        "患者发热三天，体温38.5°C，伴有咳嗽。可以服用布洛芬吗？",
        "mixed 中文 and English, dose 500 mg q8h; résumé ✓",
    ],
)
def test_tokenizer_round_trip(tokenizer: Any, text: str) -> None:
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id is None or tokenizer.unk_token_id not in ids


def test_tokenizer_was_really_trained(tokenizer: Any) -> None:
    assert 1500 <= len(tokenizer) <= 2100
    # merges learned from the corpus: common clinical words are single tokens
    assert len(tokenizer.tokenize(" hypertension")) == 1
    assert len(tokenizer.tokenize("高血压")) < len("高血压".encode())


def test_saved_tokenizer_matches_what_transformers_loads(model_dir: Path, tokenizer: Any) -> None:
    """transformers (and vLLM) rebuild a qwen2 tokenizer with Qwen's pre-tokenizer on load."""
    from tokenizers import Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    from weights.tiny import QWEN2_SPLIT_PATTERN

    assert QWEN2_SPLIT_PATTERN == PRETOKENIZE_REGEX
    raw = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    text = "Patient: 发热 38.5°C <tool_call>{}</tool_call><|im_end|>"
    assert raw.encode(text).ids == tokenizer(text)["input_ids"]


def test_special_tokens(tokenizer: Any) -> None:
    vocab = tokenizer.get_vocab()
    for token in (*SPECIAL_TOKENS, *TOOL_TOKENS):
        assert token in vocab, token
        assert tokenizer.tokenize(f"a {token} b").count(token) == 1
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    ids = tokenizer("<tool_call>x</tool_call><|im_end|>")["input_ids"]
    # tool tags survive skip_special_tokens (vLLM's hermes parser reads them); ChatML tags do not
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<tool_call>x</tool_call>"


def test_chat_template_plain_chat(tokenizer: Any) -> None:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful clinical assistant.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chat_template_tools_and_tool_role(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "发热三天，"},
                {"type": "text", "text": "可以吃布洛芬吗？"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_drug", "arguments": '{"name": "ibuprofen"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "lookup_drug", "arguments": {"name": "paracetamol"}},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "max 1200 mg/day"},
        {"role": "tool", "tool_call_id": "call_2", "content": "max 4 g/day"},
    ]
    text = tokenizer.apply_chat_template(
        messages, tools=TOOLS, tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nBe brief.\n\n# Tools\n")
    assert "<tools>\n" + json.dumps(TOOLS[0]) + "\n</tools>" in text
    assert "<|im_start|>user\n发热三天，可以吃布洛芬吗？<|im_end|>" in text
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "lookup_drug", "arguments": '
        '{"name": "ibuprofen"}}\n</tool_call>\n<tool_call>\n{"name": "lookup_drug", '
        '"arguments": {"name": "paracetamol"}}\n</tool_call><|im_end|>\n'
    ) in text
    assert (
        "<|im_start|>user\n<tool_response>\nmax 1200 mg/day\n</tool_response>\n"
        "<tool_response>\nmax 4 g/day\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    ) in text
    assert text.count("<|im_start|>") == text.count("<|im_end|>") + 1


def test_same_seed_same_weights_other_seed_differs(model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert (again / name).read_bytes() == (model_dir / name).read_bytes(), name
    first, different = (
        load_file(model_dir / "model.safetensors"),
        load_file(other / "model.safetensors"),
    )
    assert first.keys() == different.keys()
    assert any(not first[k].equal(different[k]) for k in first)
