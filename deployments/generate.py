"""The Generator deployment: one replica per GPU, each running the claim-generate loop.

A replica runs only the GPU stage of a generation (`Generator.generate_shape`) and stores its
shape; the CPU stage runs in the export pool, so the replica claims its next job at once.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time

import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.job_queue import get_job_queue
from deployments.metrics import GeneratorMetrics
from sweedle_core.config import Settings
from sweedle_core.errors import JobCancelled
from sweedle_core.generation.paint import painter_of
from sweedle_core.generation.protocol import Generator as GeneratorBackend
from sweedle_core.generation.registry import build_generator
from sweedle_core.generation.runner import run_generation
from sweedle_core.jobs.coordinator import describe_error
from sweedle_core.jobs.tickets import GenerateTicket
from sweedle_core.storage import build_storage

log = logging.getLogger("ray.serve")

# Short enough that a replica asked to stop is free of its wait soon; an idle call is cheap.
CLAIM_TIMEOUT_S = 5.0
HEARTBEAT_S = 10.0
# From this share of a generation on, the replica already asks for its next job, so the
# hand-off's round trip overlaps the end of the work (a job claimed this late keeps its place).
CLAIM_AHEAD_AT = 0.95


class ProgressRelay:
    """The progress callback a generator calls from its thread.

    Reports go to the queue without waiting; the queue's answers (False: stop) are read as
    they arrive, and a heartbeat's refusal also stops the job at its next step.
    """

    def __init__(self, queue: ray.actor.ActorHandle, ticket: GenerateTicket, worker: str) -> None:
        self.queue = queue
        self.ticket = ticket
        self.worker = worker
        self.stop = threading.Event()
        self.next_claim: ray.ObjectRef | None = None
        self._pending: list[ray.ObjectRef] = []
        self._reports = itertools.count(1)  # lets the queue drop a report that overtook another

    def __call__(self, fraction: float, message: str) -> None:
        if self._pending:
            done, self._pending = ray.wait(self._pending, num_returns=len(self._pending), timeout=0)
            try:
                if not all(ray.get(done)):
                    self.stop.set()
            except ray.exceptions.RayError:
                pass  # the queue is restarting; it re-adopts this job at the next report
        if self.stop.is_set():
            raise JobCancelled("cancelled")
        ref = self.queue.report_progress.remote(
            self.ticket.job_id, self.worker, fraction, message, next(self._reports)
        )
        self._pending.append(ref)
        if fraction >= CLAIM_AHEAD_AT and self.next_claim is None:
            self.next_claim = self.queue.claim.remote(self.worker, 0.0)


@serve.deployment(
    ray_actor_options={"num_cpus": 0.5, "num_gpus": 0}, graceful_shutdown_timeout_s=30
)
class Generator:
    def __init__(
        self, settings: Settings, preprocessor: DeploymentHandle, exporter: DeploymentHandle
    ) -> None:
        self.settings = settings
        self.storage = build_storage(settings)
        self.worker = serve.get_replica_context().replica_id.unique_id
        self.queue = get_job_queue(settings, preprocessor, exporter)
        self.metrics = GeneratorMetrics(self.worker)
        self.backend: GeneratorBackend | None = None
        self.running: dict[str, str | None] = {}  # what runs, and why if not what was asked
        self.state = "loading"
        self.detail = f"loading the {settings.generator_backend} generator"
        self._stopping = False
        self._relay: ProgressRelay | None = None
        self._loop_task = asyncio.get_event_loop().create_task(self._run())

    async def _run(self) -> None:
        await self._set_state("loading", self.detail)
        try:
            loaded = await asyncio.to_thread(build_generator, self.settings)
        except Exception as exc:  # the replica stays up and says why, not a crash loop
            log.error("generator %s cannot load: %s", self.worker, describe_error(exc))
            while True:
                await self._set_state("unavailable", describe_error(exc))
                await asyncio.sleep(CLAIM_TIMEOUT_S)
        self.backend = loaded.generator
        if loaded.note:
            log.warning("generator %s: %s", self.worker, loaded.note)
        painter = painter_of(loaded.generator)
        self.running = {
            "generator": loaded.generator.name,
            "fallback": loaded.note,
            "painter": None if painter is None else painter.name,
        }
        await self._set_state("idle", f"{self.backend.name} ready")
        ahead: ray.ObjectRef | None = None  # the next job, asked for before this one ended
        while not self._stopping:
            try:
                if ahead is None:
                    ahead = self.queue.claim.remote(self.worker, CLAIM_TIMEOUT_S)
                ticket = await ahead
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
                log.warning("job queue unreachable (%s); trying again", exc)
                await asyncio.sleep(1.0)
                continue
            finally:
                ahead = None
            if ticket is not None and self._stopping:
                await self.queue.release.remote(ticket.job_id, self.worker)
            elif ticket is not None:
                ahead = await self._generate(ticket)

    async def _generate(self, ticket: GenerateTicket) -> ray.ObjectRef | None:
        """Run one job; returns the claim of the next one if it was already asked for."""
        relay = self._relay = ProgressRelay(self.queue, ticket, self.worker)
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(relay))
        start = time.perf_counter()
        gpu_s = 0.0
        try:
            generated = await asyncio.to_thread(
                run_generation, self.backend, self.storage, ticket, relay
            )
        except JobCancelled:
            if self._stopping:  # the replica is going away: the job waits for another one
                await self.queue.release.remote(ticket.job_id, self.worker)
            else:
                await self.queue.generation_failed.remote(
                    ticket.job_id, self.worker, "cancelled", True
                )
        except Exception as exc:  # the job fails with its message; the loop goes on
            log.exception("job %s failed in generation", ticket.job_id)
            error = f"generation failed: {describe_error(exc)}"
            await self.queue.generation_failed.remote(ticket.job_id, self.worker, error, False)
        else:
            # The shape goes to the CPU pool through the queue; this replica takes its next job
            # at once (Ray retries the call if the queue restarts; no need to wait for it).
            gpu_s = generated.gpu_s
            self.queue.generated.remote(ticket.job_id, self.worker, generated.seconds, gpu_s)
        finally:
            heartbeat.cancel()
            self._relay = None
            self.metrics.record(time.perf_counter() - start, gpu_s)
        return relay.next_claim

    async def _heartbeat(self, relay: ProgressRelay) -> None:
        while True:
            # Several heartbeats per lease: one lost in a busy moment costs no job.
            await asyncio.sleep(min(HEARTBEAT_S, self.settings.generator_lease_s / 4))
            if not await self.queue.heartbeat.remote(relay.ticket.job_id, self.worker):
                relay.stop.set()

    async def _set_state(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail
        await self.queue.generator_state.remote(self.worker, state, detail, self.running)

    async def __del__(self) -> None:
        """Serve's graceful shutdown: stop claiming, give a running job back to the queue."""
        if not hasattr(self, "_loop_task"):
            return  # __init__ failed before the work loop started: nothing to stop
        self._stopping = True
        if self._relay is not None:
            self._relay.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._loop_task), CLAIM_TIMEOUT_S + 5)
        except Exception:  # a timeout or the loop's own error: shut down all the same
            pass
        await self.queue.generator_state.remote(self.worker, "stopped", "", self.running)

    def check_health(self) -> None:
        if self._loop_task.done() and self.state != "unavailable":
            raise RuntimeError(f"generator loop stopped: {self._loop_task!r}")
