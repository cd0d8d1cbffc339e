"""A test generator that can be held at a gate, so tests control when a generation runs.

A gate is a named Ray actor; while it is closed, a generation waits at its first step and
keeps reporting progress (so cancellation reaches it). With no gate actor, it never waits. One
gate holds the GPU stage, another the CPU stage in the export pool. The mesh itself comes from
the real silhouette generator.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from dataclasses import replace

import ray

from sweedle_core.config import Settings
from sweedle_core.generation.finish import finisher_for
from sweedle_core.generation.silhouette import SilhouetteGenerator
from tests.painting import FrontPainter

GATE_NAME = "sweedle_test_gate"
POOL_GATE_NAME = "sweedle_test_pool_gate"
# A job with this seed fails in generation, as a broken model would.
FAIL_SEED = 666
NAMESPACE = "sweedle"


@ray.remote(num_cpus=0)
class Gate:
    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._arrived = asyncio.Condition()
        self.arrivals = 0
        self.images: Counter[str] = Counter()  # generations that reached it, per image digest

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open = asyncio.Event()

    def arrived(self) -> int:
        return self.arrivals

    async def wait_for_arrivals(self, count: int) -> int:
        """Returns once ``count`` generations have reached the gate."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: self.arrivals >= count)
        return self.arrivals

    def generations(self) -> dict[str, int]:
        """How many generations reached the gate, per digest of their prepared image."""
        return dict(self.images)

    async def pass_(self, first_call: bool, timeout: float, image: str = "") -> bool:
        if first_call:
            async with self._arrived:
                self.arrivals += 1
                self.images[image] += 1
                self._arrived.notify_all()
        try:
            await asyncio.wait_for(self._open.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


def get_gate(name: str = GATE_NAME) -> ray.actor.ActorHandle:
    # Detached: a gate that died when a test dropped its last handle would leave a generation
    # held at it for ever (see _passed).
    return Gate.options(
        name=name, namespace=NAMESPACE, get_if_exists=True, lifetime="detached"
    ).remote()


def _find(name: str) -> ray.actor.ActorHandle | None:
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def _wait_at(name: str, on_progress, image: str = "") -> None:  # type: ignore[no-untyped-def]
    gate = _find(name)
    first = True
    while gate is not None and not _passed(gate, first, image):
        first = False
        on_progress(0.0, "held at the test gate")


def _passed(gate: ray.actor.ActorHandle, first: bool, image: str) -> bool:
    try:
        return ray.get(gate.pass_.remote(first, 0.05, image))
    except ray.exceptions.RayError:
        # The cluster is going down around us: stay in the middle of the job, as a model
        # busy on the GPU would, until the process is killed.
        threading.Event().wait()
        raise


class GatedGenerator:
    """The silhouette generator with a gate before its GPU stage (``GATE_NAME``) and one
    before its CPU stage, in the export pool (``POOL_GATE_NAME``); it paints textured jobs
    with a stand-in texture model (`tests.painting.FrontPainter`), so they take the paint path
    (their CPU stages are the silhouette's own, without the pool gate)."""

    name = "gated-silhouette"

    def __init__(self, settings: Settings) -> None:
        self.inner = SilhouetteGenerator()
        self.painter = FrontPainter()

    def generate_shape(self, image, params, on_progress, views=None):  # type: ignore[no-untyped-def]
        _wait_at(GATE_NAME, on_progress, hashlib.sha256(image.tobytes()).hexdigest())
        if params.seed == FAIL_SEED:
            raise RuntimeError("the test generator was told to fail")
        shape = self.inner.generate_shape(image, params, on_progress, views)
        # The pool gate holds the one-photo shapes (a visual hull goes to its own CPU stage).
        gated = shape.method == "silhouette" and not params.texture
        return replace(shape, method=self.name) if gated else shape

    @staticmethod
    def finish(shape, image, params, on_progress):  # type: ignore[no-untyped-def]
        _wait_at(POOL_GATE_NAME, on_progress)
        return finisher_for("silhouette")(shape, image, params, on_progress)
