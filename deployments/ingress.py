"""The Ingress deployment: Sweedle's REST API and its WebSocket progress feed.

The routes live in `deployments/http` as a FastAPI app built from `Services`; this shell builds
the services in the replica and hands Serve the app (`__serve_build_asgi_app__`).
"""

from __future__ import annotations

import asyncio
import logging

import ray
from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.broadcast import Broadcaster
from deployments.http.app import create_app
from deployments.http.feed import CAN_GENERATE, generation_readiness
from deployments.http.services import Services
from deployments.job_queue import QueueLink
from deployments.submission import Submission
from sweedle_core.access.keyring import KeyRing
from sweedle_core.config import Settings
from sweedle_core.db.store import Store
from sweedle_core.storage import build_storage

log = logging.getLogger("ray.serve")

NO_GENERATOR_WARNING_S = 30.0
# What a client told 503 (every slot busy and the waiting room full) waits before it retries.
OVERLOAD_RETRY_AFTER_S = 2


@serve.deployment(
    max_ongoing_requests=2000,
    # Past this many waiting for a slot: 503 with Retry-After, not a wait without end.
    max_queued_requests=200,
    backpressure_config={"retry_after_s": OVERLOAD_RETRY_AFTER_S},
    ray_actor_options={"num_cpus": 0.25},
)
@serve.ingress()
class Ingress:
    def __init__(
        self,
        settings: Settings,
        queue_link: QueueLink,
        preprocessor: DeploymentHandle,
        exporter: DeploymentHandle,
        generator: DeploymentHandle,
        painter: DeploymentHandle,
    ) -> None:
        # The generator is bound here so that it is deployed with the app; it is never called
        # through its handle: its replicas pull work from the queue.
        del generator
        store = Store.from_settings(settings)
        storage = build_storage(settings)
        queue = queue_link.open()
        ray.get(queue.ready.remote())  # the schema is migrated before the first request
        self.services = Services(
            bound=serve_http_host(),
            settings=settings,
            store=store,
            storage=storage,
            keyring=KeyRing.from_settings(settings),
            queue=queue,
            preprocessor=preprocessor,
            exporter=exporter,
            painter=painter,
            submission=Submission(settings, store, storage, preprocessor, queue),
            broadcaster=Broadcaster(queue),
        )
        if (warning := self.services.exposure.warning()) is not None:
            log.warning(warning)
        self._watchdog = asyncio.get_event_loop().create_task(self._warn_while_unusable())

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_app(self.services, behind_serve=True)

    async def _warn_while_unusable(self) -> None:
        """Say plainly in the log, again and again, when generation cannot happen (the store
        is checked at once: a wrong STORAGE_URL should be seen at start)."""
        while True:
            storage = await self.services.storage_state()
            if storage["problem"]:
                log.warning("the file store cannot be used: %s", storage["problem"])
            await asyncio.sleep(NO_GENERATOR_WARNING_S)
            try:
                status = await self.services.queue.status.remote()
            except ray.exceptions.RayError:
                continue
            readiness = generation_readiness(status["generators"], status["scaled_to_zero"])
            if readiness["state"] not in CAN_GENERATE:
                log.warning("generation is not possible yet: %s", readiness["detail"])


def serve_http_host() -> str:
    """The address Serve's HTTP proxies listen on, as the Serve controller has it (from the
    config's ``http_options.host``). Where it cannot be asked, the answer is not loopback:
    without keys, the app then refuses to start rather than guess it is private."""
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    try:
        controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
        return str(ray.get(controller.get_http_config.remote(), timeout=30).host)
    except (ValueError, ray.exceptions.RayError) as exc:
        log.warning("cannot ask Serve where it listens (%r)", exc)
        return "an address Serve could not tell"
