"""Run the gateway under uvicorn with a graceful drain on SIGTERM/SIGINT.

First signal: `/ready` turns 503 and new completions are refused with 503 + Retry-After
(load balancers move on), in-flight requests and streams run to completion (bounded by
`drain_timeout_s`), then uvicorn shuts down, the lifespan stops the local worker, and the
process exits 0. A second signal forces the exit.
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn
from fastapi import FastAPI

from server.gateway import Gateway
from server.workers.local import LocalWorker

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway
        self._drain: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self._drain is not None or self.should_exit:
            log.warning("second stop signal: exiting without waiting for in-flight requests")
            self.should_exit = self.force_exit = True
            return
        log.info("stop signal: draining in-flight requests before exit")
        self._drain = asyncio.get_event_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        admission = self.gateway.admission
        drained = await admission.drain(self.gateway.settings.drain_timeout_s)
        if not drained:
            log.warning("drain timed out with %d request(s) still in flight", admission.in_flight)
        self.should_exit = True


def run(
    app: FastAPI, host: str, port: int, log_level: str, local_worker: LocalWorker | None = None
) -> None:
    """Serve until stopped; the local worker never outlives the gateway, even on a forced exit."""
    gateway: Gateway = app.state.gateway
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=int(gateway.settings.drain_timeout_s) or None,
        access_log=False,  # paths and statuses only go to metrics; bodies never to logs
        log_config=None,  # keep the JSON handlers `configure_logging` installed
        proxy_headers=False,
    )
    try:
        DrainingServer(config, gateway).run()
    finally:
        if local_worker is not None:
            local_worker.kill_now()
