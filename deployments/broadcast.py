"""Fan-out of the queue's events to this ingress replica's WebSocket clients.

One long-poll per replica reads the queue actor's event log; each client gets a bounded queue
of its own, so a slow client never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ray

from sweedle_core.access.keys import may_see
from sweedle_core.jobs.views import status_view

log = logging.getLogger("ray.serve")

POLL_TIMEOUT_S = 15.0
CLIENT_BUFFER = 1000


class Subscription:
    """One client's feed; ``job_id`` narrows it to one job (queue_status always comes), and
    ``sees`` to one owner's jobs (None: every owner's)."""

    def __init__(self, job_id: str | None, sees: str | None = None) -> None:
        self.job_id = job_id
        self.sees = sees
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(CLIENT_BUFFER)

    def wants(self, event: dict[str, Any]) -> bool:
        if event["type"] == "queue_status":
            return True
        if not may_see(self.sees, event.get("owner")):
            return False
        return self.job_id is None or event.get("job_id") == self.job_id

    def shown(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as this client may see it (other keys' jobs as counts)."""
        return status_view(event, self.sees) if event["type"] == "queue_status" else event

    def close(self, reason: str) -> None:
        """End the feed: what is buffered is dropped and the client is told why."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait({"type": "feed_closed", "detail": reason})


class Broadcaster:
    def __init__(self, queue: ray.actor.ActorHandle) -> None:
        self.queue = queue
        self.subscriptions: set[Subscription] = set()
        self._poller: asyncio.Task[None] | None = None
        self._primed: asyncio.Event = asyncio.Event()

    async def subscribe(self, job_id: str | None, sees: str | None = None) -> Subscription:
        """A new feed; returns once every event from now on will reach it."""
        subscription = Subscription(job_id, sees)
        self.subscriptions.add(subscription)
        if self._poller is None or self._poller.done():
            self._primed = asyncio.Event()
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        await self._primed.wait()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self.subscriptions.discard(subscription)

    async def _poll(self) -> None:
        epoch, cursor = "", 0
        while self.subscriptions:
            try:
                batch = await self.queue.read_events.remote(epoch, cursor, POLL_TIMEOUT_S)
            except ray.exceptions.RayError as exc:
                log.warning("progress feed interrupted (%s); reconnecting", exc)
                await asyncio.sleep(1.0)
                continue
            if not epoch:  # a fresh feed starts now, not at the start of the log
                epoch, cursor = batch["epoch"], batch["last_seq"]
                self._primed.set()
                continue
            if batch["epoch"] != epoch:  # the queue restarted: its log is all new
                epoch, cursor = batch["epoch"], 0
            for event in batch["events"]:
                cursor = max(cursor, event["seq"])
                self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        for subscription in list(self.subscriptions):
            if not subscription.wants(event):
                continue
            try:
                subscription.queue.put_nowait(subscription.shown(event))
            except asyncio.QueueFull:
                self.unsubscribe(subscription)
                subscription.close(f"the client fell {CLIENT_BUFFER} events behind")
