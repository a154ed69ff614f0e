"""Gateway settings: one validated object built at start-up from env, `.env` and CLI flags.

Environment variables use the `CLINSERVE_` prefix and `__` for nesting, e.g.
`CLINSERVE_LIMITS__MAX_IN_FLIGHT=64`. Bounds are validated here so a bad value fails at
start-up with the setting's name, not later under load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from weights.location import default_data_dir


class ModelSettings(BaseModel):
    """Which model the local worker serves. External workers announce their own models."""

    path: str | None = Field(
        default=None,
        description="A local model directory or a hub id; empty means the packaged default "
        "model (`clinserve model pull`).",
    )
    name: str = Field(
        default="qwen2.5-coder-0.5b-instruct", description="Name clients use as `model`."
    )


class LocalWorkerSettings(BaseModel):
    """The vLLM CPU worker `clinserve serve` starts when no external worker is configured."""

    dtype: str = "bfloat16"
    max_model_len: int = Field(default=4096, ge=128)
    kv_cache_gib: float = Field(default=2.0, gt=0)
    max_loras: int = Field(default=4, ge=1)
    max_lora_rank: int = Field(default=64, ge=1)
    enforce_eager: bool = False
    tool_call_parser: str | None = Field(
        default="hermes", description="vLLM tool-call parser (hermes suits the Qwen2.5 family)."
    )
    startup_timeout_s: float = Field(default=900.0, gt=0)
    restart_backoff_s: float = Field(default=2.0, ge=0)
    extra_args: list[str] = Field(default_factory=list)


class LimitSettings(BaseModel):
    """Admission and timeouts: bounded work in the gateway instead of an unbounded queue."""

    max_in_flight: int = Field(default=256, ge=1, description="Concurrent upstream requests.")
    max_queue: int = Field(default=256, ge=0, description="Requests allowed to wait for a slot.")
    queue_timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    request_timeout_s: float = Field(
        default=600.0, gt=0, description="Whole non-streaming request, and first byte of a stream."
    )
    stream_idle_timeout_s: float = Field(
        default=120.0, gt=0, description="Longest silence between two chunks of a stream."
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    retry_attempts: int = Field(default=2, ge=0, description="Other workers tried before 1st byte.")
    max_tokens: int = Field(
        default=8192, ge=1, description="Largest max_tokens a request may ask for (else 400)."
    )
    default_rpm: int | None = Field(
        default=None, ge=1, description="Requests per minute for keys that set none."
    )
    default_tpm: int | None = Field(
        default=None, ge=1, description="Tokens per minute for keys that set none."
    )
    default_max_concurrent: int | None = Field(
        default=None, ge=1, description="Concurrent requests for keys that set none."
    )


def comma_separated(value: object) -> object:
    """A list setting given in the environment as one comma-separated string."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def base_urls(urls: list[str], example: str) -> list[str]:
    """http(s) URLs with a host and no query, without their trailing slash (so a prefix
    check against them means "this server"); a bad one is refused, naming `example`."""
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query:
            raise ValueError(f"{url!r} is not a base URL such as {example}")
    return [url.rstrip("/") for url in urls]


IntakeMode = Literal["off", "annotate", "normalize"]
IntakeEngineName = Literal["rules", "model", "hybrid"]


class IntakeSettings(BaseModel):
    """Patient-language analysis on the way in (per deployment; a request may override)."""

    mode: IntakeMode = Field(
        default="annotate",
        description="off | annotate (intake note in the system prompt, the patient's words "
        "untouched) | normalize (the last user message replaced by the corrected text).",
    )
    max_chars: int = Field(
        default=20_000, ge=100, description="Longer messages are passed on unanalysed."
    )
    engine: IntakeEngineName = Field(
        default="rules",
        description="rules (deterministic, milliseconds) | model (the served model fills in "
        "the analysis under a JSON schema; for GPU workers) | hybrid (both, merged).",
    )
    model: str | None = Field(
        default=None,
        description="Model the model/hybrid engines ask; empty: a base model the workers serve.",
    )
    model_timeout_s: float = Field(
        default=30.0, gt=0, description="After this the model engine gives up; rules are used."
    )
    model_max_tokens: int = Field(default=1024, ge=64)


RetrievalMode = Literal["dense", "bm25", "hybrid"]


class RetrievalSettings(BaseModel):
    """Guideline passages injected as cited reference material (per deployment; a request
    may turn it off or ask for another k with `"clinical": {"retrieval": ...}`)."""

    enabled: bool = Field(default=True, description="Off: no index is loaded at all.")
    index_dir: Path | None = Field(
        default=None, description="The served index folder; empty: DATA_DIR/index/guidelines."
    )
    corpus: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Guideline files or folders (comma-separated) to build the index from at "
        "start-up when the index folder holds none. Empty: serve an existing index, if any.",
    )
    k: int = Field(default=4, ge=1, le=20, description="Passages per request.")
    mode: RetrievalMode = "hybrid"
    max_context_tokens: int = Field(
        default=1200, ge=50, description="Budget for the injected passages (approximate tokens)."
    )
    snippet_chars: int = Field(default=240, ge=20, description="Citation snippet length.")
    min_dense: float = Field(default=0.30, description="Cosine below this is no match.")
    min_bm25: float = Field(default=1.0, ge=0, description="BM25 below this is no match.")
    max_per_document: int = Field(default=2, ge=1, description="Passages from one document.")
    embedder_path: str | None = Field(
        default=None, description="sentence-transformers folder; empty: packaged MiniLM."
    )
    query_instruction: str | None = Field(
        default=None, description="BGE-style query instruction; empty: the model's own."
    )
    passage_instruction: str | None = None
    reload_interval_s: float = Field(
        default=5.0, gt=0, description="How often the index folder is checked for a rebuild."
    )

    _split_corpus = field_validator("corpus", mode="before")(comma_separated)


class FhirSettings(BaseModel):
    """FHIR R4 patient context on chat requests (`"clinical": {"fhir": ...}`): validated,
    reduced to the minimum necessary and put in the system prompt as a dated summary."""

    enabled: bool = Field(
        default=True, description="Off: a request carrying clinical.fhir is refused (400)."
    )
    budget_tokens: int = Field(
        default=600,
        ge=200,
        le=8000,
        description="Budget for the patient summary (approximate tokens; its fixed head takes "
        "about 80); past it the lowest-priority items are left out and counted.",
    )
    lab_lookback_days: int = Field(
        default=365, ge=1, le=36500, description="Labs older than this are left out."
    )
    max_resources: int = Field(
        default=500, ge=1, le=10_000, description="More resources in one request: 400."
    )


class AuthSettings(BaseModel):
    """API keys on every /v1 route (see `server.security`)."""

    enabled: bool = Field(
        default=True,
        description="Off: every request is anonymous with every scope. Only for a gateway that "
        "nothing but a trusted proxy can reach; the gateway logs a warning at start-up.",
    )
    cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        description="How long a checked key is trusted before the database is asked again: "
        "a revocation reaches every replica within this time.",
    )
    bootstrap_admin_key: bool = Field(
        default=True,
        description="On first start with no API key at all, create an admin key and print it.",
    )


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def key_set_url(value: str) -> str:
    """An https URL, or http to this machine only (a sidecar, a test server): a key set
    fetched over plain http could be swapped by anyone on the path, and with it every key."""
    parts = urlsplit(value)
    if parts.hostname and (
        parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS)
    ):
        return value
    raise ValueError(f"{value!r} is not an https URL (plain http only to localhost)")


class CdsIssuerSettings(BaseModel):
    """One EMR (CDS client) whose signed JWTs the CDS Hooks routes accept."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1, max_length=256, description="The exact `iss` claim.")
    jwks: str = Field(
        description="The issuer's public keys: a JWKS file (read at start, re-read when it "
        "changes) or an https URL (fetched and cached)."
    )
    jku: list[str] = Field(
        default_factory=list,
        description="Key-set URLs a token's `jku` header may name (exact match); a token "
        "naming any other is refused.",
    )
    tenant: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="The tenant its calls belong to (created on first use).",
    )
    scopes: list[str] = Field(default_factory=lambda: ["cds"], min_length=1)

    @field_validator("jwks")
    @classmethod
    def _jwks_source(cls, value: str) -> str:
        if value.startswith(("http://", "https://")):
            return key_set_url(value)
        path = Path(value).expanduser().resolve()
        try:
            keys = json.loads(path.read_text(encoding="utf-8")).get("keys")
        except (OSError, ValueError, AttributeError) as exc:
            raise ValueError(f"cannot read a JWKS from {path}: {type(exc).__name__}") from exc
        if not isinstance(keys, list) or not keys:
            raise ValueError(f'{path} holds no keys (a JWKS is {{"keys": [...]}})')
        return str(path)

    @field_validator("jku")
    @classmethod
    def _jku_urls(cls, value: list[str]) -> list[str]:
        return [key_set_url(url) for url in value]

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, value: list[str]) -> list[str]:
        from server.db.keys import parse_scopes  # here: server.db.keys imports this module

        return sorted(parse_scopes(value))


class CdsClientsSettings(BaseModel):
    """Who may call the CDS Hooks routes with a JWT instead of an API key (CDS Hooks 2.0,
    "Trusting CDS Clients"). With no issuers, those routes take API keys only."""

    issuers: list[CdsIssuerSettings] = Field(
        default_factory=list,
        description='Trusted EMRs, as JSON: [{"issuer", "jwks", "tenant", ...}].',
    )
    audience: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="This service's public base URL(s), comma-separated; a token's `aud` must "
        "be one of them followed by the path called, e.g. .../cds-services/patient-view.",
    )
    leeway_s: float = Field(default=30.0, ge=0, le=300, description="Clock skew allowed.")
    max_token_age_s: float = Field(
        default=300.0,
        gt=0,
        le=3600,
        description="Refuse tokens issued longer ago, or expiring further ahead, than this "
        "(the spec's tokens live five minutes; this also bounds the replay cache).",
    )
    jwks_timeout_s: float = Field(default=5.0, gt=0, description="One key-set fetch.")
    jwks_max_age_s: float = Field(
        default=3600.0, gt=0, description="A fetched key set is fetched again after this."
    )
    jwks_min_refetch_s: float = Field(
        default=30.0,
        ge=0,
        description="A token naming an unknown key re-fetches its key set at most this often.",
    )

    _split_audience = field_validator("audience", mode="before")(comma_separated)

    @field_validator("audience")
    @classmethod
    def _base_urls(cls, value: list[str]) -> list[str]:
        return base_urls(value, "https://cds.example.org")

    @model_validator(mode="after")
    def _consistent(self) -> CdsClientsSettings:
        names = [entry.issuer for entry in self.issuers]
        if len(set(names)) != len(names):
            raise ValueError("an issuer is listed twice")
        if self.issuers and not self.audience:
            raise ValueError("audience (this service's base URL) is required with issuers")
        return self


class CdsSettings(BaseModel):
    """The CDS Hooks services themselves (`/cds-services`): what the hooks may fetch and
    return. Who may call them is `cds_clients` (the EMRs' JWT issuers) and the `cds` key scope;
    how the record is read (lab lookback, resource limit) is `fhir`, as for chat requests."""

    enabled: bool = Field(default=True, description="Off: no /cds-services routes at all.")
    fetch_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Total time for fetching missing prefetch data from the EMR's FHIR server; "
        "past it the hook answers 412 (the EMR is waiting with the clinician in front of it).",
    )
    max_pages: int = Field(
        default=5, ge=1, le=50, description="Bundle pages followed per search (then 412)."
    )
    max_cards: int = Field(default=10, ge=1, le=50, description="Cards in one response.")
    passages_per_card: int = Field(
        default=2, ge=1, le=5, description="Guideline passages cited on one card."
    )
    allowed_http_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Loopback hosts (comma-separated) whose FHIR server may be plain http, "
        "for tests and development; every other fhirServer must be https.",
    )
    fhir_servers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="FHIR base URLs (comma-separated) the hooks may fetch from, e.g. the "
        "EMRs' https://ehr.example.org/fhir; empty: whichever https server the EMR names. A "
        "list keeps a caller from pointing the service at internal hosts.",
    )

    _split_hosts = field_validator("allowed_http_hosts", "fhir_servers", mode="before")(
        comma_separated
    )

    @field_validator("fhir_servers")
    @classmethod
    def _base_urls(cls, urls: list[str]) -> list[str]:
        return base_urls(urls, "https://ehr.example.org/fhir")

    @field_validator("allowed_http_hosts")
    @classmethod
    def _loopback_only(cls, hosts: list[str]) -> list[str]:
        outside = [host for host in hosts if host not in LOOPBACK_HOSTS]
        if outside:
            raise ValueError(f"only loopback hosts may be plain http, not {', '.join(outside)}")
        return hosts


class AdapterSettings(BaseModel):
    """Where published LoRA adapters live. Workers load them by path, so the root must be a
    folder the workers see at the same path (a shared volume when they run elsewhere)."""

    root: Path | None = Field(
        default=None, description="Published adapters' folder; empty means `<data dir>/adapters`."
    )
    incoming: Path | None = Field(
        default=None,
        description="Where `POST /v1/admin/adapters` may publish from; empty means "
        "`<data dir>/adapters-incoming`.",
    )
    reconcile_interval_s: float = Field(
        default=2.0, gt=0, description="How often the registry is compared with the workers."
    )
    unload_grace_s: float = Field(
        default=30.0, ge=0, description="A retired version stays loaded this long after."
    )
    load_timeout_s: float = Field(default=120.0, gt=0, description="One adapter load on a worker.")

    def root_in(self, data_dir: Path) -> Path:
        return (self.root or data_dir / "adapters").expanduser().resolve()

    def incoming_in(self, data_dir: Path) -> Path:
        return (self.incoming or data_dir / "adapters-incoming").expanduser().resolve()


class HealthSettings(BaseModel):
    probe_interval_s: float = Field(default=5.0, gt=0)
    probe_timeout_s: float = Field(default=3.0, gt=0)
    failures_before_unhealthy: int = Field(default=2, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLINSERVE_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    data_dir: Path = Field(default_factory=default_data_dir)
    workers: Annotated[list[HttpUrl], NoDecode] = Field(
        default_factory=list,
        description="External vLLM servers (comma-separated). Empty: start a local CPU worker.",
    )
    worker_api_key: str | None = Field(
        default=None, description="Bearer key the external workers expect."
    )
    model: ModelSettings = Field(default_factory=ModelSettings)
    local_worker: LocalWorkerSettings = Field(default_factory=LocalWorkerSettings)
    adapters: AdapterSettings = Field(default_factory=AdapterSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    fhir: FhirSettings = Field(default_factory=FhirSettings)
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the tenants/keys database, e.g. "
        "postgresql+psycopg://user@host/db. Empty: SQLite at DATA_DIR/clinserve.db.",
    )
    key_pepper: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Secret that API-key hashes are keyed with. Empty: key_pepper_file.",
    )
    key_pepper_file: Path | None = Field(
        default=None,
        description="File holding the pepper (must exist). Empty: DATA_DIR/secrets/key_pepper, "
        "created on first use. Losing the pepper invalidates every API key.",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)
    cds_clients: CdsClientsSettings = Field(default_factory=CdsClientsSettings)
    cds: CdsSettings = Field(default_factory=CdsSettings)
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db shared by gateway replicas for rate limits. "
        "Empty: limits are counted in this process only.",
    )
    audit: bool = Field(
        default=True,
        description="One hash-chained audit row per /v1 request and CDS Hooks call (no text).",
    )
    drain_timeout_s: float = Field(default=60.0, ge=0, description="Grace for in-flight on stop.")
    log_level: str = "info"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one object per line with the request id."
    )

    _split_workers = field_validator("workers", mode="before")(comma_separated)

    @property
    def worker_urls(self) -> list[str]:
        return [str(url).rstrip("/") for url in self.workers]

    @property
    def index_dir(self) -> Path:
        return self.retrieval.index_dir or self.data_dir / "index" / "guidelines"
