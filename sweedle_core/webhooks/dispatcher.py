"""Sending webhook deliveries: one task per delivery, POSTing and retrying until it settles.

Delivery is at least once. A delivery whose POST was sent but whose answer was never recorded
(the process stopped in between) is sent again after a restart; receivers drop duplicates by
the ``X-Sweedle-Delivery`` header. Owned by one event loop; not thread-safe.

Each attempt checks its destination first (`destinations`: public addresses only) and connects
to the address that passed. What an attempt records, which the submitter can read, is coarse:
the receiver's HTTP status, ``unreachable``, or the destination rule it broke; the network
error itself goes only to the server's log (it would tell a submitter which ports are open).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from sweedle_core.db.webhook_deliveries import PENDING, seconds_until_due
from sweedle_core.webhooks.destinations import (
    Destination,
    DestinationRefused,
    Network,
    Resolver,
    checked_destination,
    system_resolver,
)
from sweedle_core.webhooks.signing import SIGNATURE_HEADER, sign

if TYPE_CHECKING:
    from sweedle_core.db.models import WebhookDelivery
    from sweedle_core.db.store import Store

log = logging.getLogger(__name__)

USER_AGENT = "Sweedle-Webhooks/1"
EVENT_HEADER = "X-Sweedle-Event"
DELIVERY_HEADER = "X-Sweedle-Delivery"
UNREACHABLE = "unreachable"  # no HTTP answer: refused, reset, timed out, TLS failed...


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): doubling from
    ``base_s``, capped at ``max_s``."""
    # The exponent is bounded so a large attempt number caps instead of overflowing a float.
    return min(max_s, base_s * 2.0 ** min(max(attempt - 1, 0), 64))


def encode_body(payload: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): compact, key-sorted JSON, the same for every attempt."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _origin(url: str) -> str:
    """The scheme and host of a URL, for logs: its path or query may carry the receiver's token."""
    try:
        parsed = httpx.URL(url)
    except Exception:
        return "<invalid url>"
    if not parsed.host:
        return "<invalid url>"
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")


class WebhookDispatcher:
    """Delivers webhook rows of the store: what ``start`` finds pending and what ``schedule``
    is given, each in a task of its own that ends when the delivery is delivered, failed or gone.
    """

    def __init__(
        self,
        store: Store,
        secret: str,
        *,
        max_attempts: int = 6,
        backoff_s: float = 2.0,
        backoff_max_s: float = 600.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        allowed_networks: list[Network] | None = None,
        resolver: Resolver = system_resolver,
        clock: Callable[[], float] = time.time,
        on_attempt: Callable[[WebhookDelivery], Awaitable[None]] | None = None,
    ) -> None:
        """``clock`` gives Unix seconds: the signatures' timestamps and the retry schedule.
        ``on_attempt`` hears of every recorded attempt (the queue announces it on the feed).
        ``allowed_networks`` are inside networks webhooks may reach (WEBHOOK_ALLOWED_CIDRS)."""
        self.on_attempt = on_attempt
        self.store = store
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        self.allowed_networks = list(allowed_networks or [])
        self._resolver = resolver
        self.backoff = partial(backoff_delay, base_s=backoff_s, max_s=backoff_max_s)
        self._secret = secret
        self._clock = clock
        # A 3xx is the receiver's answer, not a place to send the signed body on to. No proxy
        # from the environment: it would connect wherever it is told, past the destination
        # check, and its tunnel would verify TLS against the pinned address, not the name. No
        # kept-alive connections: they are pooled by address, and one verified for one name
        # must not carry another name's delivery.
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopped = False

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), timezone.utc)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every pending delivery in the database; each waits until it is due."""
        for delivery in await self.store.webhook_deliveries.pending():
            self.schedule(delivery.id)

    async def resume_every(self, interval_s: float) -> None:
        """Resume pending deliveries every ``interval_s`` seconds, until stopped: one whose task
        ended on a database error goes out again without waiting for a restart."""
        while not self._stopped:
            await asyncio.sleep(interval_s)
            try:
                await self.start()
            except Exception:  # the database is away: the next pass tries again
                log.exception("resuming pending webhook deliveries failed")

    def schedule(self, delivery_id: str) -> None:
        """Start delivering one delivery; a no-op while it already has a task (or after stop)."""
        if self._stopped:
            log.warning("webhook dispatcher stopped; delivery %s left pending", delivery_id)
            return
        running = self._tasks.get(delivery_id)
        if running is not None and not running.done():
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(delivery_id), name=f"webhook-{delivery_id}"
        )
        self._tasks[delivery_id] = task
        task.add_done_callback(partial(self._forget, delivery_id))

    def _forget(self, delivery_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(delivery_id) is task:
            del self._tasks[delivery_id]

    async def wait_idle(self) -> None:
        """Wait until no delivery task runs (deliveries settled, or stopped)."""
        while self._tasks:
            # asyncio.wait, not gather: a caller giving up must not cancel the deliveries.
            await asyncio.wait(list(self._tasks.values()))

    async def stop(self) -> None:
        """Cancel every delivery task and close the HTTP client. Pending rows stay pending."""
        self._stopped = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._client.aclose()

    # --- one delivery -------------------------------------------------------------------

    async def _deliver(self, delivery_id: str) -> None:
        try:
            await self._deliver_until_settled(delivery_id)
        except Exception:  # cancellation (a BaseException) still ends the task as cancelled
            # The row stays pending, so the next start() takes it up again.
            log.exception("webhook delivery %s stopped on an unexpected error", delivery_id)

    async def _deliver_until_settled(self, delivery_id: str) -> None:
        delivery = await self.store.webhook_deliveries.get(delivery_id)
        if delivery is None or delivery.status != PENDING:
            return
        body = encode_body(delivery.payload)
        url, event, where = delivery.url, delivery.event, _origin(delivery.url)
        while True:
            wait_s = seconds_until_due(delivery, self._now())
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            started = time.perf_counter()
            status_code, error = await self._attempt(url, event, delivery_id, body)
            duration_ms = (time.perf_counter() - started) * 1000
            updated = await self.store.webhook_deliveries.record_attempt(
                delivery_id,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
                max_attempts=self.max_attempts,
                backoff=self.backoff,
                now=self._now(),
            )
            if updated is None:
                log.info("webhook delivery %s is gone (its asset was deleted)", delivery_id)
                return
            if self.on_attempt is not None:
                await self.on_attempt(updated)
            if updated.status != PENDING:
                self._log_outcome(updated.id, updated.status, updated.attempts, error, where)
                return
            log.info(
                "webhook delivery %s attempt %d to %s: %s; retrying in %.1f s",
                delivery_id,
                updated.attempts,
                where,
                error,
                seconds_until_due(updated, self._now()),
            )
            delivery = updated

    def _log_outcome(
        self, delivery_id: str, status: str, attempts: int, error: str | None, where: str
    ) -> None:
        if status == "failed":
            log.warning(
                "webhook delivery %s to %s failed after %d attempts: %s",
                delivery_id,
                where,
                attempts,
                error,
            )
        else:
            log.info("webhook delivery %s %s after %d attempts", delivery_id, status, attempts)

    async def _attempt(
        self, url: str, event: str, delivery_id: str, body: bytes
    ) -> tuple[int | None, str | None]:
        """POST once: the answer's status code (None if there was none) and the error, if any.

        Never raises (but for cancellation): every failure is an attempt used.
        """
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: event,
            DELIVERY_HEADER: delivery_id,
            SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
        }
        try:
            destination = await checked_destination(url, self.allowed_networks, self._resolver)
            # httpx's timeout is per phase; this bounds the whole attempt (a trickling server).
            status_code = await asyncio.wait_for(
                self._post(destination, headers, body), timeout=self.timeout_s
            )
        except DestinationRefused as exc:
            return None, f"refused: {exc.message}"
        except Exception as exc:  # connection refused, TLS, a timeout...: all count as attempts
            log.info("webhook delivery %s to %s: %r", delivery_id, _origin(url), exc)
            return None, UNREACHABLE
        if 200 <= status_code < 300:
            return status_code, None
        if 300 <= status_code < 400:
            return status_code, f"HTTP {status_code} (redirects are not followed)"
        return status_code, f"HTTP {status_code}"

    async def _post(self, destination: Destination, headers: dict[str, str], body: bytes) -> int:
        """POST to the address that passed the check, under the URL's own host name (its Host
        header, and for TLS its server name and certificate)."""
        url = httpx.URL(destination.url)
        pinned = url.copy_with(host=destination.address)
        headers = {**headers, "Host": url.netloc.decode("ascii")}
        extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
        # Streamed and never read: only the status matters, and a large answer costs nothing.
        async with self._client.stream(
            "POST", pinned, content=body, headers=headers, extensions=extensions
        ) as response:
            return response.status_code
