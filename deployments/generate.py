"""The Generator deployment: one replica per GPU, each running the claim-generate loop.

A replica runs only the GPU stage of a generation (`GeneratorBackend.generate_shape`) and stores
its shape; the CPU stage runs in the export pool, so the replica claims its next job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import ray
from ray import serve

from deployments.job_queue import QueueLink
from deployments.metrics import GeneratorMetrics
from deployments.progress import ProgressReporter
from sweedle_core.config import Settings
from sweedle_core.errors import JobCancelled
from sweedle_core.generation.paint import painter_of
from sweedle_core.generation.protocol import GeneratorBackend
from sweedle_core.generation.registry import build_generator
from sweedle_core.generation.runner import run_generation
from sweedle_core.jobs.coordinator import describe_error
from sweedle_core.jobs.tickets import GenerateTicket
from sweedle_core.storage import build_storage

log = logging.getLogger("ray.serve")

# Short enough that a replica asked to stop is free of its wait soon; an idle call is cheap.
CLAIM_TIMEOUT_S = 5.0
HEARTBEAT_S = 10.0
# What a replica being stopped keeps of its shutdown time to give a job back it cannot finish.
GIVE_BACK_S = 5.0
# From this share of a generation on, the replica already asks for its next job, so the
# hand-off's round trip overlaps the end of the work (a job claimed this late keeps its place).
CLAIM_AHEAD_AT = 0.95


class ProgressRelay(ProgressReporter):
    """The progress of one generation, reported under its ticket's claim; near its end it
    also asks for the replica's next job."""

    def __init__(self, queue: ray.actor.ActorHandle, ticket: GenerateTicket, worker: str) -> None:
        self.queue = queue
        self.ticket = ticket
        self.worker = worker
        self.next_claim: ray.ObjectRef | None = None
        super().__init__(
            lambda fraction, message, number: queue.report_progress.remote(
                ticket.job_id, worker, ticket.claim, fraction, message, number
            )
        )

    def __call__(self, fraction: float, message: str) -> None:
        super().__call__(fraction, message)
        if fraction >= CLAIM_AHEAD_AT and self.next_claim is None:
            self.next_claim = self.queue.claim.remote(self.worker, 0.0)


@serve.deployment(ray_actor_options={"num_cpus": 0.5, "num_gpus": 0})
class Generator:
    def __init__(self, settings: Settings, queue: QueueLink) -> None:
        self.settings = settings
        self.storage = build_storage(settings)
        self.worker = serve.get_replica_context().replica_id.unique_id
        self.queue = queue.open()
        self.metrics = GeneratorMetrics(self.worker)
        self.backend: GeneratorBackend | None = None
        self.running: dict[str, str | None] = {}  # what runs, and why if not what was asked
        self.state = "loading"
        self.detail = f"loading the {settings.generator_backend} generator"
        self._stopping = asyncio.Event()  # set: claims no more, the replica is being stopped
        self._giving_back = False  # its shutdown time is running out: the job goes back
        self._relay: ProgressRelay | None = None
        self._loop_task = asyncio.get_event_loop().create_task(self._run())

    async def _run(self) -> None:
        await self._set_state("loading", self.detail)
        try:
            loaded = await asyncio.to_thread(build_generator, self.settings)
        except Exception as exc:  # the replica stays up and says why, not a crash loop
            log.error("generator %s cannot load: %s", self.worker, describe_error(exc))
            while not self._stopping.is_set():  # said again for a queue that restarted
                await self._set_state("unavailable", describe_error(exc))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), CLAIM_TIMEOUT_S)
            return
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
        while not self._stopping.is_set():
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
            if ticket is not None and self._stopping.is_set():
                await self.queue.release.remote(ticket.job_id, self.worker, ticket.claim)
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
            if self._giving_back:  # the replica is going away: the job waits for another one
                await relay.settle()  # a report landing after the release would take it back
                await self.queue.release.remote(ticket.job_id, self.worker, ticket.claim)
            else:
                await self.queue.generation_failed.remote(
                    ticket.job_id, self.worker, ticket.claim, "cancelled", True
                )
        except Exception as exc:  # the job fails with its message; the loop goes on
            log.exception("job %s failed in generation", ticket.job_id)
            error = f"generation failed: {describe_error(exc)}"
            await self.queue.generation_failed.remote(
                ticket.job_id, self.worker, ticket.claim, error, False
            )
        else:
            # The shape goes to the CPU pool through the queue; this replica takes its next job
            # at once (Ray retries the call if the queue restarts; no need to wait for it).
            # The run's last report goes first, so the feed shows it before the hand-off.
            await relay.settle()
            gpu_s = generated.gpu_s
            self.queue.generated.remote(
                ticket.job_id, self.worker, ticket.claim, generated.seconds, gpu_s
            )
        finally:
            heartbeat.cancel()
            self._relay = None
            self.metrics.record(time.perf_counter() - start, gpu_s)
        return relay.next_claim

    async def _heartbeat(self, relay: ProgressRelay) -> None:
        while True:
            # Several heartbeats per lease: one lost in a busy moment costs no job.
            await asyncio.sleep(min(HEARTBEAT_S, self.settings.generator_lease_s / 4))
            ticket = relay.ticket
            if not await self.queue.heartbeat.remote(ticket.job_id, self.worker, ticket.claim):
                relay.stop.set()

    async def _set_state(self, state: str, detail: str) -> None:
        self.state, self.detail = state, detail
        await self.queue.generator_state.remote(self.worker, state, detail, self.running)

    async def __del__(self) -> None:
        """Serve's graceful shutdown (a scale-down, a redeploy): stop claiming, finish the
        running job within GENERATOR_SHUTDOWN_S, and give it back to the queue if it cannot."""
        if not hasattr(self, "_loop_task"):
            return  # __init__ failed before the work loop started: nothing to stop
        self._stopping.set()
        with contextlib.suppress(ray.exceptions.RayError):
            await self.queue.leave.remote(self.worker)  # ends the claim it may be waiting on
        finish_within = self.settings.generator_shutdown_s - GIVE_BACK_S
        try:
            await asyncio.wait_for(asyncio.shield(self._loop_task), max(finish_within, 0.0))
        except Exception:  # out of time (or the loop's own error): give the job back
            self._giving_back = True
            if self._relay is not None:
                self._relay.stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._loop_task), CLAIM_TIMEOUT_S + 1)
            except Exception:
                pass
        await self.queue.generator_state.remote(self.worker, "stopped", "", self.running)

    def check_health(self) -> None:
        if self._loop_task.done() and self.state != "unavailable":
            raise RuntimeError(f"generator loop stopped: {self._loop_task!r}")
