"""A worker's progress reporter keeps one report in flight to the queue: the reports made while
the queue has not answered wait in a bounded line. So a run's reports reach the queue in the
order they were made, the work never waits, a queue far behind gets the newest report, a
refusal stops the work, and `settle` lets the last report arrive before the run's hand-off."""

from __future__ import annotations

import asyncio
import logging

import pytest
import ray

from deployments.progress import WAITING_MAX, ProgressReporter
from sweedle_core.errors import JobCancelled


class Queue:
    """Stands for the queue actor: each report waits for the test to answer it."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, int]] = []
        self.answers: list[asyncio.Future[bool]] = []
        self.arrived = asyncio.Event()

    def send(self, fraction: float, message: str, number: int) -> asyncio.Future[bool]:
        self.sent.append((fraction, message, number))
        self.answers.append(asyncio.get_running_loop().create_future())
        self.arrived.set()
        return self.answers[-1]

    async def next_report(self) -> tuple[float, str, int]:
        await self.arrived.wait()
        self.arrived.clear()
        return self.sent[-1]


async def test_reports_reach_the_queue_one_at_a_time_in_the_order_they_were_made():
    queue = Queue()
    report = ProgressReporter(queue.send)

    def work() -> None:  # the work's thread reports without waiting
        for step in range(5):
            report(step / 4, f"step {step}")

    await asyncio.to_thread(work)
    for step in range(5):
        assert await queue.next_report() == (step / 4, f"step {step}", step + 1)
        assert len(queue.sent) == step + 1  # the next waits for this one's answer
        queue.answers[step].set_result(True)
    assert await report.settle()
    assert len(queue.sent) == 5


async def test_a_queue_far_behind_gets_the_newest_report():
    queue = Queue()
    report = ProgressReporter(queue.send)
    made = WAITING_MAX + 10
    await asyncio.to_thread(lambda: [report(step / made, f"step {step}") for step in range(made)])
    for _ in range(WAITING_MAX + 1):
        await queue.next_report()
        queue.answers[-1].set_result(True)
    assert await report.settle()
    steps = [int(message.split()[-1]) for _, message, _ in queue.sent]
    # The one in flight, then the line: the first that waited, the newest in its last place.
    assert steps == [*range(WAITING_MAX), made - 1]


async def test_settle_sends_the_last_report_before_the_run_hands_off():
    queue = Queue()
    report = ProgressReporter(queue.send)
    await asyncio.to_thread(lambda: (report(0.5, "half"), report(1.0, "done")))
    settled = asyncio.ensure_future(report.settle())
    assert await queue.next_report() == (0.5, "half", 1)
    queue.answers[0].set_result(True)
    assert await queue.next_report() == (1.0, "done", 2)
    assert not settled.done()
    queue.answers[1].set_result(True)
    assert await settled


async def test_settle_gives_up_on_a_queue_that_does_not_answer():
    queue = Queue()
    report = ProgressReporter(queue.send)
    await asyncio.to_thread(report, 1.0, "done")
    assert not await report.settle(timeout=0.05)
    assert queue.sent == [(1.0, "done", 1)] and not queue.answers[0].done()


async def test_a_refusal_stops_the_work_and_drops_the_reports_still_waiting():
    queue = Queue()
    report = ProgressReporter(queue.send)
    await asyncio.to_thread(lambda: [report(step / 10, f"step {step}") for step in range(3)])
    await queue.next_report()
    queue.answers[0].set_result(False)  # cancelled, or the job went to another worker
    assert await report.settle()
    assert report.stop.is_set()
    # The run is over: nothing more reaches the queue (a report landing after a replica gave
    # its job back would take the job back).
    assert [message for _, message, _ in queue.sent] == ["step 0"]
    with pytest.raises(JobCancelled):
        await asyncio.to_thread(report, 0.5, "more work")


async def test_a_queue_restarting_does_not_stop_the_work():
    queue = Queue()
    report = ProgressReporter(queue.send)
    await asyncio.to_thread(report, 0.1, "working")
    await queue.next_report()
    queue.answers[0].set_exception(ray.exceptions.RayActorError())
    assert await report.settle()
    assert not report.stop.is_set()
    await asyncio.to_thread(report, 0.2, "more work")
    assert await queue.next_report() == (0.2, "more work", 2)


async def test_a_report_that_cannot_be_sent_costs_the_feed_one_step_not_the_run(caplog):
    sent: list[str] = []

    async def send(fraction: float, message: str, number: int) -> bool:
        sent.append(message)
        if number == 1:
            raise TypeError("cannot pickle")
        return True

    report = ProgressReporter(send)
    serve_log = logging.getLogger("ray.serve")  # Ray may keep it from reaching the root logger
    serve_log.addHandler(caplog.handler)
    try:
        await asyncio.to_thread(lambda: (report(0.1, "first"), report(0.2, "second")))
        assert await report.settle()
    finally:
        serve_log.removeHandler(caplog.handler)
    assert sent == ["first", "second"] and not report.stop.is_set()
    assert "a progress report could not be sent" in caplog.text
