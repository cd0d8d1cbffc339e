"""The progress broadcaster's log: numbered events that subscribers read from a cursor."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from typing import Any

Event = dict[str, Any]


class EventLog:
    """A bounded, numbered log of events with an awaitable "something new" signal.

    Readers keep a cursor (the last ``seq`` they saw) and ask for what came after it, so one
    long-poll per ingress replica serves all of that replica's WebSocket clients.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self._events: deque[Event] = deque(maxlen=capacity)
        self._seq = 0
        self._changed: asyncio.Event | None = None
        # A reader whose epoch differs reads from the start: the log was rebuilt since.
        self.epoch = uuid.uuid4().hex

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, type_: str, **payload: Any) -> Event:
        self._seq += 1
        event = {"type": type_, "seq": self._seq, "time": time.time(), **payload}
        self._events.append(event)
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return event

    def since(self, cursor: int) -> list[Event]:
        if cursor >= self._seq:
            return []
        first = self._seq - len(self._events) + 1
        start = max(cursor + 1 - first, 0)
        return list(self._events)[start:]

    async def wait_since(self, cursor: int, timeout: float) -> list[Event]:
        """Events after ``cursor``; waits up to ``timeout`` seconds for one if none is there."""
        events = self.since(cursor)
        if events:
            return events
        if self._changed is None:
            self._changed = asyncio.Event()
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            return []
        return self.since(cursor)
