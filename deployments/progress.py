"""How a worker reports the progress of its run of a job's stage to the queue.

One reporter for every worker (the Generator, the Exporter, TextToImage). The work calls it from
its thread and never waits: the report is left for the replica's event loop, which keeps one
report in flight to the queue and sends the next when the queue has answered. So the queue gets
a run's reports in the order they were made (an async actor runs calls in any order, and drops a
report that overtook a later one: sent all at once, the first message of a stage could be lost),
a busy queue gets no more than it can take, and the work is never held up by it. Reports wait in
a bounded line: a queue far behind gets the newest report, not every one.

Each answer is read as it arrives; a refusal (the job was cancelled, or the run's claim is no
longer current: the job went to another worker) stops the work at its next report. A run ends
with `settle`: its last report reaches the queue before its hand-off.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

import ray
from ray.actor import ActorHandle

from sweedle_core.errors import JobCancelled
from sweedle_core.jobs.tickets import ExportTicket, PrepareTicket

log = logging.getLogger("ray.serve")

# Sends one report (fraction, message, its number); awaiting it gives the queue's answer.
Send = Callable[[float, str, int], Awaitable[bool]]
# How long the end of a run waits for its last report (the queue may be restarting).
SETTLE_S = 2.0
# Reports waiting while one is in flight; past this, each new one replaces the newest waiting.
WAITING_MAX = 32


class ProgressReporter:
    """Made on the replica's event loop; called from the work's thread."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._loop = asyncio.get_running_loop()
        self.stop = threading.Event()  # set: the work stops at its next report
        self._numbers = itertools.count(1)  # the queue still drops a report older than one shown
        self._lock = threading.Lock()
        self._busy = False  # a report is in flight, or on its way to the loop to be sent
        self._waiting: deque[tuple[float, str]] = deque()  # made since, sent one by one
        self._sending: asyncio.Future[None] | None = None

    def __call__(self, fraction: float, message: str) -> None:
        if self.stop.is_set():
            raise JobCancelled("cancelled")
        with self._lock:
            if self._busy:
                if len(self._waiting) == WAITING_MAX:
                    self._waiting.pop()  # a queue this far behind gets the newest report
                self._waiting.append((fraction, message))
                return
            self._busy = True
        try:
            self._loop.call_soon_threadsafe(self._start, fraction, message)
        except RuntimeError:  # the replica's loop is closed (it is going away): no report
            with self._lock:
                self._busy = False

    def _start(self, fraction: float, message: str) -> None:
        self._sending = asyncio.ensure_future(self._deliver(fraction, message))
        self._sending.add_done_callback(self._answered)

    def _answered(self, _: asyncio.Future[None]) -> None:
        with self._lock:
            if self.stop.is_set():  # the run is over: a report now could land after its end
                self._waiting.clear()
            report = self._waiting.popleft() if self._waiting else None
            self._busy = report is not None
        if report is not None:
            self._start(*report)

    async def _deliver(self, fraction: float, message: str) -> None:
        try:
            if not await self._send(fraction, message, next(self._numbers)):
                self.stop.set()
        except ray.exceptions.RayError:
            pass  # the queue is restarting; it takes the run up again at the next report
        except Exception:  # a report that cannot be sent costs the feed one step, not the run
            log.exception("a progress report could not be sent")

    async def settle(self, timeout: float = SETTLE_S) -> bool:
        """Wait (at most ``timeout`` seconds) until every report made has been answered; False:
        the time ran out first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            with self._lock:
                if not self._busy:
                    return True
            sending = self._sending
            if sending is None or sending.done():
                await asyncio.sleep(0)  # the report, or its answer, is being handed to the loop
            else:
                await asyncio.wait({sending}, timeout=left)
        return False


def job_progress(queue: ActorHandle, ticket: PrepareTicket | ExportTicket) -> ProgressReporter:
    """Reports of a job's CPU stage (painting its image, its export) run under the ticket's
    claim, to ``queue``."""
    return ProgressReporter(
        lambda fraction, message, number: queue.stage_progress.remote(
            ticket.job_id, ticket.claim, fraction, message, number
        )
    )


def api_export_progress(
    queue: ActorHandle, asset_id: str, operation: str, owner: str | None
) -> ProgressReporter:
    """Reports of an export the API asked for, to ``queue``; ``owner`` lets only its key see
    them. The export is one run of numbered reports."""
    run = uuid.uuid4().hex
    return ProgressReporter(
        lambda fraction, message, number: queue.export_progress.remote(
            asset_id, operation, fraction, message, owner, run, number
        )
    )
