"""How a worker reports the progress of its run of a job's stage to the queue.

One reporter for every worker (the Generator, the Exporter, TextToImage): called from the
work's thread, it sends each report without waiting and numbers it, so the queue (an async
actor, which may run calls out of the order they were sent) drops a report that overtook a
later one. The queue's answers are read as they arrive; a refusal (the job was cancelled, or
the run's claim is no longer current: the job went to another worker) stops the work at its
next step.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable

import ray
from ray.actor import ActorHandle

from sweedle_core.errors import JobCancelled
from sweedle_core.jobs.tickets import ExportTicket, PrepareTicket

# Sends one report (fraction, message, its number) and returns the queue's answer to come.
Send = Callable[[float, str, int], ray.ObjectRef]


class ProgressReporter:
    def __init__(self, send: Send) -> None:
        self._send = send
        self.stop = threading.Event()  # set: the work stops at its next report
        self._pending: list[ray.ObjectRef] = []
        self._numbers = itertools.count(1)

    def __call__(self, fraction: float, message: str) -> None:
        self._read_answers()
        if self.stop.is_set():
            raise JobCancelled("cancelled")
        self._pending.append(self._send(fraction, message, next(self._numbers)))

    def _read_answers(self) -> None:
        if not self._pending:
            return
        done, self._pending = ray.wait(self._pending, num_returns=len(self._pending), timeout=0)
        try:
            if not all(ray.get(done)):
                self.stop.set()
        except ray.exceptions.RayError:
            pass  # the queue is restarting; it takes the run up again at the next report


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
