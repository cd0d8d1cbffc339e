"""The queue's view of the generator replicas: what each last said of itself, and when.

Generators pull their jobs, so the queue never learns of one directly; it only hears their
calls (claim, heartbeat, state changes). This registry keeps what they said, forgets a replica
that went silent, and tells when every live replica there is says it cannot run, so that jobs
waiting for one fail instead of waiting forever. (The models themselves are in
`sweedle_core.generation`.)
"""

from __future__ import annotations

import time
from typing import Any

from sweedle_core.jobs.book import JobBook
from sweedle_core.jobs.states import JobStage

# A generator that has not called in for this long is gone (it calls at least every ~10 s).
GENERATOR_SILENCE_S = 60.0
# What a loaded replica says it runs: the generator, why when it is a fallback, and the
# painter (the texture model) when one can run there, else None.
_RUNNING = ("generator", "fallback", "painter")


class GeneratorRegistry:
    """Generator replicas by name: state, detail, the job it runs and when it last called."""

    def __init__(self) -> None:
        self._generators: dict[str, dict[str, Any]] = {}

    def seen(
        self,
        worker: str,
        state: str,
        detail: str | None = None,
        job_id: str | None = None,
        running: dict[str, str | None] | None = None,
    ) -> None:
        """``worker`` called in; a ``detail`` or ``running`` of None keeps what it said before
        (``running``: the generator it runs and, when a fallback, why)."""
        known = self._generators.get(worker, {})
        if running is None:
            running = {key: known[key] for key in _RUNNING if key in known}
        self._generators[worker] = {
            "state": state,
            "detail": known.get("detail", "") if detail is None else detail,
            "job_id": job_id,
            "seen": time.time(),
            **{key: value for key, value in running.items() if key in _RUNNING},
        }

    def seen_done(self, worker: str, job_id: str, book: JobBook) -> None:
        """A worker finished ``job_id``: idle, unless it already runs the next one it claimed."""
        running = [
            e.id
            for e in book.entries()
            if e.worker == worker and e.stage is JobStage.GENERATING and e.id != job_id
        ]
        self.seen(
            worker, state="generating" if running else "idle", job_id=next(iter(running), None)
        )

    def forget(self, worker: str) -> None:
        self._generators.pop(worker, None)

    def live(self) -> dict[str, dict[str, Any]]:
        now = time.time()
        return {w: i for w, i in self._generators.items() if now - i["seen"] < GENERATOR_SILENCE_S}

    def can_paint(self) -> bool | None:
        """Whether a live replica has a painter; None while none has said (a queue that just
        restarted, before its generators call in)."""
        said = [info for info in self.live().values() if "painter" in info]
        if not said:
            return None
        return any(info["painter"] for info in said)

    def unavailable_reasons(self) -> str | None:
        """Why generation cannot run, when every live replica says it cannot (weights or
        libraries missing); None while one can or may yet.

        With no replica at all (still pending, e.g. waiting for a GPU node) the answer is None:
        jobs keep waiting.
        """
        live = self.live().values()
        if not live or any(info["state"] != "unavailable" for info in live):
            return None
        return "; ".join(sorted({info["detail"] for info in live if info["detail"]}))
