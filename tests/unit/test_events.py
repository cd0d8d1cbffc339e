"""The event log: numbered events, read from a cursor, with a long-poll that wakes on news."""

from __future__ import annotations

import asyncio

from sweedle_core.jobs.events import EventLog


def publish_n(log: EventLog, count: int) -> None:
    for i in range(count):
        log.publish("progress", job_id=f"job-{i}")


def test_events_are_numbered_from_one_and_carry_their_payload():
    log = EventLog()
    assert log.last_seq == 0

    first = log.publish("job_created", job_id="a", progress=0.0)
    second = log.publish("progress", job_id="a", progress=0.5)

    assert (first["seq"], second["seq"]) == (1, 2)
    assert log.last_seq == 2
    assert first["type"] == "job_created"
    assert second["job_id"] == "a" and second["progress"] == 0.5
    assert second["time"] >= first["time"]


def test_since_returns_what_came_after_the_cursor():
    log = EventLog()
    publish_n(log, 3)

    assert [e["seq"] for e in log.since(0)] == [1, 2, 3]
    assert [e["seq"] for e in log.since(2)] == [3]
    assert log.since(3) == []
    assert log.since(99) == []


def test_the_log_keeps_only_the_newest_events():
    log = EventLog(capacity=3)
    publish_n(log, 5)

    assert log.last_seq == 5
    assert [e["seq"] for e in log.since(0)] == [3, 4, 5]  # 1 and 2 fell out
    assert [e["seq"] for e in log.since(1)] == [3, 4, 5]
    assert [e["seq"] for e in log.since(4)] == [5]


def test_each_log_has_its_own_epoch():
    assert EventLog().epoch != EventLog().epoch


async def test_wait_since_returns_at_once_when_events_are_there():
    log = EventLog()
    publish_n(log, 2)

    events = await asyncio.wait_for(log.wait_since(1, timeout=30), 1)

    assert [e["seq"] for e in events] == [2]


async def test_wait_since_wakes_when_an_event_is_published():
    log = EventLog()
    publish_n(log, 1)
    # Runs once wait_since below has started waiting.
    asyncio.get_running_loop().call_soon(lambda: log.publish("asset_ready", job_id="a"))

    events = await asyncio.wait_for(log.wait_since(1, timeout=30), 1)

    assert [(e["seq"], e["type"]) for e in events] == [(2, "asset_ready")]


async def test_every_waiter_wakes_on_one_event():
    log = EventLog()
    waiters = [asyncio.create_task(log.wait_since(0, timeout=30)) for _ in range(3)]
    # Scheduled after the waiters' first steps, so all three are waiting when it runs.
    asyncio.get_running_loop().call_soon(lambda: log.publish("progress", job_id="a"))

    results = await asyncio.wait_for(asyncio.gather(*waiters), 1)

    assert [[e["seq"] for e in events] for events in results] == [[1], [1], [1]]


async def test_wait_since_returns_nothing_on_timeout_and_still_wakes_later():
    log = EventLog()

    assert await log.wait_since(0, timeout=0.01) == []

    asyncio.get_running_loop().call_soon(lambda: log.publish("progress", job_id="a"))
    events = await asyncio.wait_for(log.wait_since(0, timeout=30), 1)
    assert [e["seq"] for e in events] == [1]
