"""The JobQueue actor: one per cluster, the priority queue and the progress broadcaster.

A named, detached actor that Ray restarts forever; it rebuilds itself from the database on
every start, so it is a cache of the database, never the only copy of a job.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import ray
from pydantic import SecretStr
from ray.serve.handle import DeploymentHandle

from deployments.cluster_check import check_cluster
from deployments.lost_workers import worker_lost_is_said
from deployments.metrics import RayQueueMetrics
from sweedle_core.cluster import write_marker
from sweedle_core.config import Settings
from sweedle_core.db.engine import DatabaseOptions, migrate_async
from sweedle_core.db.models import WebhookDelivery
from sweedle_core.db.store import Store
from sweedle_core.jobs.coordinator import JobCoordinator
from sweedle_core.jobs.tickets import ExportOutcome, ExportTicket, PrepareOutcome, PrepareTicket
from sweedle_core.storage import build_storage
from sweedle_core.webhooks.dispatcher import WebhookDispatcher

log = logging.getLogger("ray.serve")


class HandleWorkers:
    """The coordinator's worker pools, reached through Serve deployment handles. Each call
    names the queue (this actor) that the worker reports its progress to."""

    def __init__(
        self,
        preprocessor: DeploymentHandle,
        exporter: DeploymentHandle,
        queue: ray.actor.ActorHandle,
    ) -> None:
        self.preprocessor = preprocessor
        self.exporter = exporter
        self.queue = queue

    async def preprocess(self, ticket: PrepareTicket) -> PrepareOutcome:
        with worker_lost_is_said():
            return await self.preprocessor.prepare.remote(ticket, self.queue)

    async def export(self, ticket: ExportTicket) -> ExportOutcome:
        with worker_lost_is_said():
            return await self.exporter.export.remote(ticket, self.queue)


FIRST_CLUSTER_CHECK_S = 15.0
# Ray gives the head node this resource; asking for a sliver of it pins an actor there.
HEAD_NODE_RESOURCE = "node:__internal_head__"


def settings_fingerprint(settings: Settings) -> str:
    """A digest of every setting, secrets by their values (a dump shows them masked, so a
    rotated WEBHOOK_SECRET would look unchanged and the old queue would be kept)."""
    values = settings.model_dump(mode="json")
    for name, value in settings:
        if isinstance(value, SecretStr):
            values[name] = value.get_secret_value()
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


class JobQueue:
    def __init__(
        self,
        settings: Settings,
        preprocessor: DeploymentHandle,
        exporter: DeploymentHandle,
        replaces: str | None = None,
    ) -> None:
        """``replaces``: the queue actor this one replaced (its jobs are taken over at once)."""
        self.settings = settings
        self.store = Store.from_settings(settings)
        secret = settings.webhook_secret.get_secret_value()
        # No secret, no webhooks: submissions with a webhook_url are refused then.
        self.webhooks = (
            WebhookDispatcher(
                self.store,
                secret,
                max_attempts=settings.webhook_max_attempts,
                backoff_s=settings.webhook_backoff_s,
                backoff_max_s=settings.webhook_backoff_max_s,
                timeout_s=settings.webhook_timeout_s,
                allowed_networks=list(settings.webhook_allowed_cidrs),
                on_attempt=self._webhook_attempted,
            )
            if secret
            else None
        )
        self.coordinator = JobCoordinator(
            self.store,
            build_storage(settings),
            HandleWorkers(preprocessor, exporter, ray.get_runtime_context().current_actor),
            preprocess_concurrency=settings.preprocess_concurrency,
            export_concurrency=settings.export_concurrency,
            reconcile_s=settings.reconcile_interval_s,
            stage_attempts=settings.stage_max_attempts,
            lease_s=settings.generator_lease_s,
            metrics=RayQueueMetrics(),
            webhooks=self.webhooks,
            # The actor's id names this queue in the database's claims: the same after Ray
            # restarts it, different for a queue of another app or cluster.
            holder=ray.get_runtime_context().get_actor_id(),
            inherited=[replaces] if replaces else [],
        )
        self._started: asyncio.Task[None] | None = None
        self._rescans: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        self.cluster: dict[str, Any] = {"nodes": 1, "problems": []}  # the last check's finding
        self._marker: str | None = None  # the token written into STORAGE_DIR at start

    async def ready(self) -> str:
        """Waits until the schema is migrated and the queue rebuilt; returns the fingerprint."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._start())
        await asyncio.shield(self._started)
        return settings_fingerprint(self.settings)

    def fingerprint(self) -> str:
        return settings_fingerprint(self.settings)

    async def _start(self) -> None:
        # Known from the first request on, unless a hung mount or a dead node holds it up: the
        # start goes on then, and the check reports when it ends.
        first = asyncio.get_running_loop().create_task(self._check_cluster())
        try:
            await asyncio.wait_for(asyncio.shield(first), FIRST_CLUSTER_CHECK_S)
        except asyncio.TimeoutError:
            log.warning("the cluster check is slow (a hung storage mount?); starting meanwhile")
        self._watching = asyncio.get_running_loop().create_task(self._watch_cluster(first))
        await migrate_async(self.settings.database_url, DatabaseOptions.of(self.settings))
        await self.coordinator.start()
        if self.webhooks is not None:
            await self.webhooks.start()  # deliveries a stopped queue left pending go out now
            self._rescans = asyncio.get_running_loop().create_task(
                self.webhooks.resume_every(self.settings.reconcile_interval_s)
            )
        log.info(
            "job queue ready: %d active jobs rebuilt from the database", len(self.coordinator.book)
        )

    async def _webhook_attempted(self, delivery: WebhookDelivery) -> None:
        """Announce a webhook attempt on the feed, to the job's owner (and admins)."""
        job = await self.store.get_job(delivery.job_id)
        self.coordinator.events.publish(
            "webhook_attempt",
            job_id=delivery.job_id,
            asset_id=job.asset_id,
            owner=job.owner,
            delivery_id=delivery.id,
            event=delivery.event,
            attempt=delivery.attempts,
            status_code=delivery.last_status_code,
            error=delivery.last_error,
            status=delivery.status,
        )

    async def submit(self, job_id: str) -> dict[str, Any]:
        await self.ready()
        return await self.coordinator.submit(job_id)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        await self.ready()
        return await self.coordinator.cancel(job_id)

    async def claim(self, worker: str, timeout: float):  # type: ignore[no-untyped-def]
        await self.ready()
        return await self.coordinator.claim(worker, timeout)

    async def report_progress(
        self, job_id: str, worker: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        await self.ready()
        return await self.coordinator.report_progress(job_id, worker, claim, fraction, message, seq)

    async def heartbeat(self, job_id: str, worker: str, claim: int) -> bool:
        await self.ready()
        return self.coordinator.heartbeat(job_id, worker, claim)

    async def generated(
        self, job_id: str, worker: str, claim: int, seconds: float, gpu_s: float | None = None
    ) -> None:
        await self.ready()
        await self.coordinator.generated(job_id, worker, claim, seconds, gpu_s)

    async def generation_failed(
        self, job_id: str, worker: str, claim: int, error: str, cancelled: bool
    ) -> None:
        await self.ready()
        await self.coordinator.generation_failed(job_id, worker, claim, error, cancelled)

    async def release(self, job_id: str, worker: str, claim: int) -> None:
        await self.ready()
        await self.coordinator.release(job_id, worker, claim)

    async def stage_progress(
        self, job_id: str, claim: int, fraction: float, message: str, seq: int = 0
    ) -> bool:
        await self.ready()
        return self.coordinator.stage_progress(job_id, claim, fraction, message, seq)

    async def export_progress(
        self,
        asset_id: str,
        operation: str,
        fraction: float,
        message: str,
        owner: str | None,
        run: str,
        seq: int,
    ) -> bool:
        await self.ready()
        return self.coordinator.export_progress(
            asset_id, operation, fraction, message, owner, run, seq
        )

    async def cancel_and_wait(self, job_id: str, timeout: float) -> bool:
        await self.ready()
        return await self.coordinator.cancel_and_wait(job_id, timeout)

    async def leave(self, worker: str) -> None:
        await self.ready()
        await self.coordinator.leave(worker)

    async def generator_state(
        self,
        worker: str,
        state: str,
        detail: str = "",
        running: dict[str, str | None] | None = None,
    ) -> None:
        await self.coordinator.generator_state(worker, state, detail, running)

    async def status(self) -> dict[str, Any]:
        await self.ready()
        status = self.coordinator.status()
        autoscaled_to_zero = (
            self.settings.generator_max_replicas > 0 and self.settings.generator_min_replicas == 0
        )
        scaled_to_zero = autoscaled_to_zero and not status["generators"]
        return {**status, "cluster": self.cluster, "scaled_to_zero": scaled_to_zero}

    async def _watch_cluster(self, first: asyncio.Task[None]) -> None:
        """Check on every reconcile that every node reaches one database and sees one file
        store (after the first check, started with the queue); log what changes."""
        await first
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            await self._check_cluster()

    async def _check_cluster(self) -> None:
        said = self.cluster["problems"]
        try:
            if self._marker is None and not self.settings.storage_url:
                self._marker = await asyncio.to_thread(write_marker, self.settings.storage_dir)
            nodes, problems = await check_cluster(self.settings, self._marker)
        except Exception as exc:  # the check must not end for good on a hiccup
            log.exception("cluster check failed; the next pass tries again")
            problems, nodes = [f"the cluster check failed: {exc}"], self.cluster["nodes"]
        self.cluster = {"nodes": nodes, "problems": problems}
        if problems != said:
            for problem in problems:
                log.error("cluster set-up: %s", problem)

    async def gpu_demand(self) -> int:
        await self.ready()
        return self.coordinator.gpu_demand()

    async def jobs(self) -> list[dict[str, Any]]:
        await self.ready()
        return self.coordinator.jobs()

    async def read_events(self, epoch: str, cursor: int, timeout: float) -> dict[str, Any]:
        await self.ready()
        return await self.coordinator.read_events(epoch, cursor, timeout)


@dataclass(frozen=True)
class QueueLink:
    """How the deployments reach the JobQueue actor, bound once in `app.py`: Serve turns the
    bound Preprocessor and Exporter in it into handles, which the queue is created with.

    The actor itself cannot be made when the app is built: it needs those handles, which exist
    only once Serve has built the app. The first deployment to `open` the link creates it."""

    settings: Settings
    preprocessor: DeploymentHandle
    exporter: DeploymentHandle

    def open(self) -> ray.actor.ActorHandle:
        """The cluster's JobQueue actor, created on first use; replaced if its settings
        differ (a queue left by an earlier run with another database, say)."""
        settings = self.settings
        options = dict(
            name=settings.queue_actor_name,
            namespace=settings.ray_namespace,
            get_if_exists=True,
            lifetime="detached",
            max_restarts=-1,
            max_task_retries=-1,
            max_concurrency=10_000,
            num_cpus=0,
            resources=settings.job_queue_resources or {HEAD_NODE_RESOURCE: 0.001},
        )
        actor_class = ray.remote(JobQueue)
        actor = actor_class.options(**options).remote(settings, self.preprocessor, self.exporter)
        if ray.get(actor.fingerprint.remote()) != settings_fingerprint(settings):
            log.warning("replacing the job queue actor left with other settings")
            replaced = actor._actor_id.hex()
            ray.kill(actor, no_restart=True)
            _wait_until_gone(settings)
            actor = actor_class.options(**options).remote(
                settings, self.preprocessor, self.exporter, replaced
            )
        return actor


def _wait_until_gone(settings: Settings, attempts: int = 100) -> None:
    """A killed named actor keeps its name for a moment; wait until the name is free."""
    for _ in range(attempts):
        try:
            ray.get_actor(settings.queue_actor_name, namespace=settings.ray_namespace)
        except ValueError:
            return
        time.sleep(0.1)
    raise RuntimeError("the old job queue actor did not go away")
