"""Ray's errors for work whose process, node or result is gone, as the core's `WorkerLost`: the
machine's fault, not the job's (the coordinator runs the stage again; the API answers 503)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ray

from sweedle_core.errors import WorkerLost

WORKER_LOST = (
    ray.exceptions.RayActorError,  # ActorDiedError, ActorUnavailableError
    ray.exceptions.NodeDiedError,
    ray.exceptions.WorkerCrashedError,
    ray.exceptions.ObjectLostError,  # OwnerDiedError, ObjectReconstructionFailedError...
)


@contextmanager
def worker_lost_is_said() -> Iterator[None]:
    """Turn Ray's lost-worker errors into `WorkerLost`."""
    try:
        yield
    except WORKER_LOST as exc:
        said = (str(exc).strip().splitlines() or ["no message"])[0][:300]
        raise WorkerLost(f"{type(exc).__name__}: {said}") from exc
