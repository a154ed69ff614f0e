"""The gateway's long-lived parts, wired together once per app."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from perturbation.engine import RulesEngine
from server.adapters.reconciler import Reconciler
from server.adapters.registry import AdapterRegistry
from server.adapters.routing import AdapterRouter
from server.admission import Admission
from server.audit.chain import chain_key
from server.audit.store import AuditStore
from server.audit.writer import AuditWriter
from server.db.database import make_engine, resolve_database_url, session_factory
from server.db.keys import KeyStore
from server.db.pepper import deployment_pepper
from server.feedback.store import FeedbackStore
from server.guidelines import GuidelineLibrary
from server.metrics import Metrics
from server.pipeline.chat import CompletionPipeline
from server.pipeline.intake import IntakeStage
from server.pipeline.intake_model import pool_completer
from server.pipeline.patient_context import PatientContextStage
from server.pipeline.quota import Caller, Quota, caller_for
from server.pipeline.retrieval import RetrievalStage
from server.ratelimit.limiter import KeyLimits
from server.ratelimit.redis_limiter import limiter_from_url
from server.security.auth import Authenticator
from server.security.cds_auth import CdsClientAuth
from server.security.cds_jwt import CdsTokenVerifier
from server.security.jwks import KeySets
from server.security.principal import Principal
from server.settings import Settings
from server.workers.pool import Worker, WorkerPool
from server.workers.upstream import Upstream


@dataclass
class Gateway:
    """Everything a request needs, built once per app."""

    settings: Settings
    pool: WorkerPool
    admission: Admission
    metrics: Metrics
    pipeline: CompletionPipeline
    guidelines: GuidelineLibrary
    engine: Engine
    sessions: sessionmaker[Session]
    keys: KeyStore
    auth: Authenticator
    quota: Quota
    default_limits: KeyLimits
    audit: AuditWriter
    feedback: FeedbackStore
    adapters: AdapterRegistry
    reconciler: Reconciler
    cds_auth: CdsClientAuth

    def caller(self, principal: Principal) -> Caller | None:
        """Whose rate limits a request spends (None when authentication is off). An EMR
        calling with its JWT spends the deployment's default limits, counted per issuer."""
        if principal.client is not None:
            return Caller(f"cds:{principal.client.issuer}", self.default_limits)
        return caller_for(principal.key, self.default_limits)


def build_gateway(settings: Settings, workers: list[Worker]) -> Gateway:
    limits = settings.limits
    pool = WorkerPool(workers, settings.health, limits.connect_timeout_s)
    admission = Admission(limits.max_in_flight, limits.max_queue, limits.queue_timeout_s)
    metrics = Metrics()
    upstream = Upstream(pool, limits)
    ask_model = pool_completer(
        upstream,
        admission,
        settings.intake.model,
        settings.intake.model_max_tokens,
    )
    intake = IntakeStage(RulesEngine(), settings.intake, ask_model)
    library = GuidelineLibrary(settings.retrieval, settings.index_dir)
    retrieval = RetrievalStage(library, settings.retrieval)
    quota = Quota(limiter_from_url(settings.redis_url))
    router = AdapterRouter(pool.serves)
    pipeline = CompletionPipeline(
        intake,
        retrieval,
        upstream,
        admission,
        metrics,
        quota,
        router,
        PatientContextStage(settings.fhir),
        collect_text=settings.audit,
        max_tokens=limits.max_tokens,
    )
    engine = make_engine(resolve_database_url(settings.database_url, settings.data_dir))
    sessions = session_factory(engine)
    registry = AdapterRegistry(sessions)
    reconciler = Reconciler(
        registry,
        pool,
        router,
        settings.adapters.root_in(settings.data_dir),
        interval_s=settings.adapters.reconcile_interval_s,
        unload_grace_s=settings.adapters.unload_grace_s,
        load_timeout_s=settings.adapters.load_timeout_s,
    )
    secret = deployment_pepper(settings)
    keys = KeyStore(sessions, secret)
    audit = AuditWriter(AuditStore(sessions, chain_key(secret)))
    auth = Authenticator(keys if settings.auth.enabled else None, settings.auth.cache_ttl_s)
    cds = settings.cds_clients
    key_sets = KeySets(
        timeout_s=cds.jwks_timeout_s,
        max_age_s=cds.jwks_max_age_s,
        min_refetch_s=cds.jwks_min_refetch_s,
    )
    cds_auth = CdsClientAuth(CdsTokenVerifier(cds, key_sets), auth, keys)
    defaults = KeyLimits(limits.default_rpm, limits.default_tpm, limits.default_max_concurrent)
    return Gateway(
        settings,
        pool,
        admission,
        metrics,
        pipeline,
        library,
        engine,
        sessions,
        keys,
        auth,
        quota,
        defaults,
        audit,
        FeedbackStore(sessions),
        registry,
        reconciler,
        cds_auth,
    )
