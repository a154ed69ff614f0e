"""Prometheus metrics for the gateway, in a registry owned by one app instance.

A registry per app (not the global default) keeps tests and several apps in one process
independent. Gateway overhead is recorded directly (total time minus time spent waiting on
the worker) because it is the number that tells whether the gateway itself is the problem.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from server.workers.pool import WorkerPool

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "clinserve_requests", "Requests answered.", ["route", "status", "model"], registry=r
        )
        self.latency = Histogram(
            "clinserve_request_duration_seconds",
            "Time from request to last byte.",
            ["route", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "clinserve_time_to_first_token_seconds",
            "Time from request to the first streamed chunk.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "clinserve_gateway_overhead_seconds",
            "Request time not spent waiting on the worker.",
            ["route"],
            buckets=_OVERHEAD_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "clinserve_prompt_tokens", "Prompt tokens processed.", ["model"], registry=r
        )
        self.completion_tokens = Counter(
            "clinserve_completion_tokens", "Completion tokens generated.", ["model"], registry=r
        )
        self.in_flight = Gauge(
            "clinserve_requests_in_flight", "Requests holding a slot.", registry=r
        )
        self.queue_depth = Gauge(
            "clinserve_queue_depth", "Requests waiting for a slot.", registry=r
        )
        self.worker_healthy = Gauge(
            "clinserve_worker_healthy",
            "1 if the worker passes health probes.",
            ["worker"],
            registry=r,
        )
        self.worker_in_flight = Gauge(
            "clinserve_worker_in_flight",
            "Requests the gateway has open on the worker.",
            ["worker"],
            registry=r,
        )

    def record_usage(self, model: str, usage: object) -> None:
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if isinstance(prompt, int):
                self.prompt_tokens.labels(model).inc(prompt)
            if isinstance(completion, int):
                self.completion_tokens.labels(model).inc(completion)

    def exposition(self, pool: WorkerPool, in_flight: int, queued: int) -> bytes:
        """Refresh the point-in-time gauges, then render the text format."""
        self.in_flight.set(in_flight)
        self.queue_depth.set(queued)
        for worker in pool.workers:
            self.worker_healthy.labels(worker.name).set(1 if worker.healthy else 0)
            self.worker_in_flight.labels(worker.name).set(worker.in_flight)
        return generate_latest(self.registry)
