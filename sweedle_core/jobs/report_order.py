"""The order of progress reports that are sent without waiting.

A worker numbers the reports of one run from 1 and does not wait for each to arrive; the queue
(an async actor) may take them out of the order they were sent. A report that overtook a later
one of the same run is dropped, so a feed never shows progress going backwards.
"""

from __future__ import annotations

from collections import OrderedDict

RUNS_KEPT = 1024  # runs remembered at once; the oldest is forgotten first


class ReportOrder:
    def __init__(self, kept: int = RUNS_KEPT) -> None:
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._kept = kept

    def is_next(self, run: str, seq: int) -> bool:
        """Whether report ``seq`` of ``run`` is newer than every one shown so far."""
        if seq <= self._newest.get(run, 0):
            return False
        self._newest[run] = seq
        self._newest.move_to_end(run)
        while len(self._newest) > self._kept:
            self._newest.popitem(last=False)
        return True
