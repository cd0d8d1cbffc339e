"""What the routes work with: the database, the files, the keys, and the Ray handles."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sweedle_core.access.exposure import LOOPBACK, Exposure
from sweedle_core.access.keyring import KeyRing
from sweedle_core.access.limits import FeedSlots, RequestLimiter
from sweedle_core.config import Settings
from sweedle_core.db.store import Store
from sweedle_core.storage import Storage, build_storage, storage_status, store_state

STORAGE_STATE_TTL_S = 10.0  # /health and the start-up warning share one look at the store
STORAGE_CHECK_S = 5.0


@dataclass
class Services:
    """One per ingress replica. The Ray handles are None where the app runs without Ray (the
    plain-uvicorn benchmark serves only the library routes)."""

    settings: Settings
    store: Store
    storage: Storage
    keyring: KeyRing
    limiter: RequestLimiter = field(default_factory=RequestLimiter)
    feeds: FeedSlots = field(init=False)
    exports: ApiExports = field(init=False)
    queue: Any = None  # the JobQueue actor
    preprocessor: Any = None
    exporter: Any = None
    painter: Any = None
    submission: Any = None  # deployments.submission.Submission
    broadcaster: Any = None  # deployments.broadcast.Broadcaster
    bound: str = LOOPBACK  # the address the HTTP server listens on
    # Whom it answers (`Exposure.of`); raises `ExposureRefused` for an open network.
    exposure: Exposure = field(init=False)
    _storage_state: tuple[float, dict[str, Any]] | None = field(default=None, repr=False)
    _storage_check: asyncio.Task[dict[str, Any]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.feeds = FeedSlots(self.settings.max_feeds, self.settings.max_feeds_per_client)
        self.exports = ApiExports(self.exporter, self.queue, self.settings.api_export_concurrency)
        self.exposure = Exposure.of(self.settings, self.bound, keys_on=self.keyring.enabled)

    async def storage_state(self) -> dict[str, Any]:
        """What `storage_status` said of the store, at most STORAGE_STATE_TTL_S ago. One check
        runs at a time; one the store does not answer within STORAGE_CHECK_S is reported so
        and left to finish (its answer serves the next call)."""
        now = time.monotonic()
        if self._storage_state is not None and now - self._storage_state[0] <= STORAGE_STATE_TTL_S:
            return self._storage_state[1]
        if self._storage_check is None or self._storage_check.done():
            self._storage_check = asyncio.get_running_loop().create_task(
                asyncio.to_thread(storage_status, self.storage)
            )
        try:
            state = await asyncio.wait_for(asyncio.shield(self._storage_check), STORAGE_CHECK_S)
        except asyncio.TimeoutError:
            late = f"the store did not answer within {STORAGE_CHECK_S:.0f} s"
            return store_state(self.storage, late)
        self._storage_state = (time.monotonic(), state)
        return state

    @classmethod
    def without_ray(cls, settings: Settings) -> Services:
        return cls(
            settings=settings,
            store=Store.from_settings(settings),
            storage=build_storage(settings),
            keyring=KeyRing.from_settings(settings),
        )


class ApiExports:
    """The export pool as the API reaches it: at most ``concurrency`` calls at once from this
    replica, the rest waiting here, so API callers cannot take the pool's slots from the
    jobs' own exports (the queue dispatches those, `EXPORT_CONCURRENCY` at a time)."""

    def __init__(self, exporter: Any, queue: Any, concurrency: int) -> None:
        self.exporter = exporter
        self.queue = queue  # where a long export reports its progress
        self._gate = asyncio.Semaphore(concurrency)

    async def call(self, method: str, *args: Any) -> Any:
        """``Exporter.<method>(*args)``, once a turn is free."""
        async with self._gate:
            return await getattr(self.exporter, method).remote(*args)

    async def call_reported(self, method: str, *args: Any) -> Any:
        """As `call`, for an export that reports its progress to the queue's feed."""
        return await self.call(method, *args, self.queue)
