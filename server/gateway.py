"""The gateway's long-lived parts, wired together once per app."""

from __future__ import annotations

from dataclasses import dataclass

from perturbation.engine import RulesEngine
from server.admission import Admission
from server.guidelines import GuidelineLibrary
from server.metrics import Metrics
from server.pipeline.chat import CompletionPipeline
from server.pipeline.intake import IntakeStage
from server.pipeline.intake_model import pool_completer
from server.pipeline.retrieval import RetrievalStage
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
    pipeline = CompletionPipeline(intake, retrieval, upstream, admission, metrics)
    return Gateway(settings, pool, admission, metrics, pipeline, library)
