"""The Ray side of the app, in this process: what the Ingress reaches through handles, without
a cluster.

The Preprocessor, Exporter and TextToImage are the deployments' own classes, called as their
handles call them. The job queue is the real `JobCoordinator` on the app's database, as the
JobQueue actor holds it; its CPU pools are busy with other work, so a job taken in waits in its
first stage (what happens to a job after that is the serve tier's to test).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from deployments.export import Exporter
from deployments.preprocess import Preprocessor
from deployments.text_to_image import TextToImage
from sweedle_core.config import Settings
from sweedle_core.db.store import Store
from sweedle_core.jobs.coordinator import JobCoordinator
from sweedle_core.jobs.tickets import ExportOutcome, ExportTicket, PrepareOutcome, PrepareTicket
from sweedle_core.storage import Storage

# The one generator replica the stand-in queue hears from, and how often it calls in (a real
# one calls at least every ~10 s; the queue forgets one silent for a minute).
GENERATOR = "stand-in-generator"
CALL_IN_S = 10.0


class InProcess:
    """A handle to ``target`` in this process: ``await handle.method.remote(*args)`` calls
    ``target.method(*args)``, as a Serve deployment or Ray actor handle would in its replica
    (an error comes as raised, not wrapped in Ray's RayTaskError)."""

    def __init__(self, target: object) -> None:
        self._target = target

    def __getattr__(self, name: str) -> _Method:
        return _Method(getattr(self._target, name))


class _Method:
    def __init__(self, method: Callable[..., Any]) -> None:
        self._method = method

    async def remote(self, *args: Any) -> Any:
        return await _settled(self._method(*args))


async def _settled(result: Any) -> Any:
    """What a call returned, awaited if it is awaitable (the target's async and sync methods
    alike)."""
    return await result if inspect.isawaitable(result) else result


def replica(cls: Any, *args: Any) -> InProcess:
    """A replica of a Serve deployment: its own class (``@serve.deployment`` keeps it), built
    with ``args`` as Serve would build it."""
    return InProcess(cls.func_or_class(*args))


class BusyPools:
    """The CPU pools, busy with other work: a job handed to them waits there until the queue
    stops."""

    async def preprocess(self, ticket: PrepareTicket) -> PrepareOutcome:
        return await asyncio.get_running_loop().create_future()

    async def export(self, ticket: ExportTicket) -> ExportOutcome:
        return await asyncio.get_running_loop().create_future()


class JobQueue:
    """The JobQueue actor's calls, on the real `JobCoordinator`; started on its first call, in
    the app's event loop (as the actor starts on its first). One idle generator replica calls
    in, again on a call at least CALL_IN_S after its last. No webhook is sent."""

    def __init__(self, settings: Settings, store: Store, storage: Storage) -> None:
        self.settings = settings
        self.coordinator = JobCoordinator(
            store,
            storage,
            BusyPools(),
            preprocess_concurrency=settings.preprocess_concurrency,
            export_concurrency=settings.export_concurrency,
            reconcile_s=settings.reconcile_interval_s,
            lease_s=settings.generator_lease_s,
        )
        self._started: asyncio.Task[None] | None = None
        self._called_in = -CALL_IN_S

    async def ready(self) -> JobCoordinator:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self.coordinator.start())
        await asyncio.shield(self._started)
        if time.monotonic() - self._called_in >= CALL_IN_S:
            self._called_in = time.monotonic()
            running = {"generator": self.settings.generator_backend, "fallback": None}
            await self.coordinator.generator_state(GENERATOR, "idle", "ready", running)
        return self.coordinator

    async def stop(self) -> None:
        if self._started is not None:
            await self._started
            await self.coordinator.stop()

    async def status(self) -> dict[str, Any]:
        status = (await self.ready()).status()
        return {**status, "cluster": {"nodes": 1, "problems": []}, "scaled_to_zero": False}

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """The coordinator's own answer to the actor's other calls (submit, cancel, jobs...)."""

        async def call(*args: Any) -> Any:
            return await _settled(getattr(await self.ready(), name)(*args))

        return call


def ray_side(settings: Settings, store: Store, storage: Storage) -> dict[str, Any]:
    """The handles `Services` takes, by name: the queue and the deployments, in process."""
    painter = replica(TextToImage, settings)
    return {
        "queue": InProcess(JobQueue(settings, store, storage)),
        "preprocessor": replica(Preprocessor, settings, painter),
        "exporter": replica(Exporter, settings),
        "painter": painter,
    }
