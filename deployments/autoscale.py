"""The Generator deployment's autoscaling policy: its replicas follow the queue's backlog.

Generators pull their work, so Serve's request-based autoscaling sees no load on them. This is
a Serve custom autoscaling policy (class-based: Serve builds it once with ``policy_kwargs`` and
calls it on the controller at every autoscaling tick, ``(context) -> (replicas, state)``; the
API is experimental in the Ray we pin, and `tests/unit/test_autoscale.py` fails if it moves).
It wants one replica per ``jobs_per_replica`` jobs that need a generator (the JobQueue's
`gpu_demand`: in line, being prepared, waiting for a GPU, generating), and Serve keeps that
within the deployment's min and max replicas. With no job at all it keeps one replica for
``idle_s`` before it lets the count fall to the minimum (zero), so a burst does not pay a
cold start each time.

The queue is asked without blocking the controller: each tick reads the last answer that came
and sends the next question, at most every ``ASK_EVERY_S``.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future
from typing import Any

import ray

from sweedle_core.config import Settings

log = logging.getLogger("ray.serve")
ASK_EVERY_S = 0.5


class BacklogPolicy:
    def __init__(
        self,
        queue_actor_name: str,
        namespace: str,
        jobs_per_replica: int = 1,
        idle_s: float = 900.0,
    ) -> None:
        self.queue_actor_name = queue_actor_name
        self.namespace = namespace
        self.jobs_per_replica = max(1, jobs_per_replica)
        self.idle_s = idle_s
        self._asked: Future[Any] | None = None
        self._asked_at = 0.0
        self._demand: int | None = None
        self._wanted: int | None = None  # the last count asked for (logged when it changes)
        self._busy_at = self._now()

    def __call__(self, context: Any) -> tuple[int, dict[str, Any]]:
        demand = self._read()
        state = dict(context.policy_state or {})
        if demand is None:  # the queue has not answered yet: keep what there is
            return context.target_num_replicas, state
        now = self._now()
        if demand:
            self._busy_at = now
        wanted = math.ceil(demand / self.jobs_per_replica)
        if wanted == 0 and now - self._busy_at < self.idle_s:
            wanted = min(context.target_num_replicas, 1)  # idle, but not for long enough yet
        state["gpu_demand"] = demand
        if wanted != self._wanted:
            log.info("Generator replicas: %d jobs need a generator; %d wanted", demand, wanted)
            self._wanted = wanted
        return wanted, state

    def _read(self) -> int | None:
        """The last demand the queue told of; asks again when due."""
        if self._asked is not None and self._asked.done():
            try:
                self._demand = int(self._asked.result())
            except Exception as exc:  # the queue is restarting: the last answer stands
                log.warning("the job queue did not say its backlog: %r", exc)
            self._asked = None
        if self._asked is None and time.monotonic() - self._asked_at >= ASK_EVERY_S:
            self._asked_at = time.monotonic()
            self._asked = self._ask()
        return self._demand

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _ask(self) -> Future[Any] | None:
        try:
            queue = ray.get_actor(self.queue_actor_name, namespace=self.namespace)
        except ValueError:
            return None  # not created yet (the Ingress creates it as it starts)
        return queue.gpu_demand.remote().future()


def backlog_autoscaling(settings: Settings) -> dict[str, Any]:
    """The Generator's ``autoscaling_config`` for GENERATOR_MIN/MAX_REPLICAS."""
    return {
        "min_replicas": settings.generator_min_replicas,
        "initial_replicas": settings.generator_min_replicas,
        "max_replicas": settings.generator_max_replicas,
        # Serve applies its request-based delays (30 s up, 600 s down) to custom policies too;
        # the backlog is no noisy signal, and the policy keeps its own idle time.
        "upscale_delay_s": 0,
        "downscale_delay_s": 0,
        "downscale_to_zero_delay_s": 0,
        "policy": {
            "policy_function": "deployments.autoscale:BacklogPolicy",
            "policy_kwargs": {
                "queue_actor_name": settings.queue_actor_name,
                "namespace": settings.ray_namespace,
                "jobs_per_replica": settings.generator_jobs_per_replica,
                "idle_s": settings.generator_idle_s,
            },
        },
    }
