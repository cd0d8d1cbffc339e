"""Generators that follow the backlog: a Sweedle app beside the session's one whose Generator
deployment scales from zero replicas to two with a backlog held at the test gate, and back to
zero once it has drained and the idle time has passed. The replica counts are Serve's own
(`serve.status()`)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve

from deployments.app import AppArgs, build_app
from tests.conftest import boxed_image
from tests.serve.client import Sweedle

NAME = "elastic"
QUEUE = f"sweedle_queue_{NAME}"


def generator_replicas() -> int:
    """Generator replicas of the app, as Serve counts them (running, starting or stopping)."""
    states = serve.status().applications[NAME].deployments["Generator"].replica_states
    return sum(states.values())


def running_generators() -> int:
    states = serve.status().applications[NAME].deployments["Generator"].replica_states
    return sum(n for state, n in states.items() if str(state).endswith("RUNNING"))


def wait_until(done: Any, timeout: float, what: str) -> None:
    """Serve's status has no events to wait on: it is read until it says so."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}; {serve.status()}"
        time.sleep(0.25)


@pytest.fixture
def elastic(deployment: Any, tmp_path: Path) -> Iterator[Sweedle]:
    settings = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'elastic.db'}",
        "storage_dir": str(tmp_path / "storage"),
        "queue_actor_name": QUEUE,
        "generator_backend": "tests.serve.gate:GatedGenerator",
        "generator_max_replicas": 2,
        "generator_idle_s": 2,
        "generator_shutdown_s": 15,
        "default_octree_resolution": 32,
        "preprocess_size": 96,
        "thumbnail_size": 32,
        "export_lod_levels": [1.0],
        "reconcile_interval_s": 1,
    }
    serve.run(build_app(AppArgs(settings=settings)), name=NAME, route_prefix=f"/{NAME}")
    try:
        yield Sweedle(f"http://127.0.0.1:{deployment.port}/{NAME}")
    finally:
        # Not waited for: its replicas stop in the background (its generators are gone by
        # now, so none is left telling the queue it leaves).
        serve.delete(NAME, _blocking=False)
        ray.kill(ray.get_actor(QUEUE, namespace="sweedle"), no_restart=True)


def scaled_to_zero(client: Sweedle) -> None:
    generation = client.http.get("/health").json()["generation"]
    assert generation["state"] == "scaled_to_zero", generation
    assert (
        generation["detail"] == "no generator running: scaled to zero, one starts for the next job"
    )
    assert client.http.get("/api/generation/queue/status").json()["scaled_to_zero"] is True


def test_generators_scale_from_zero_to_two_with_a_backlog_and_back_to_zero(elastic, gate):
    assert generator_replicas() == 0, "no job: no generator"
    scaled_to_zero(elastic)
    before = Counter(ray.get(gate.generations.remote()))
    arrived = ray.get(gate.arrived.remote())

    with elastic.feed() as feed:
        jobs = [elastic.submit_ok(boxed_image(n))["job_id"] for n in range(4)]
        # Two replicas start for the backlog, and each holds a job at the gate.
        ray.get(gate.wait_for_arrivals.remote(arrived + 2), timeout=120)
        wait_until(lambda: running_generators() == 2, 10, "Serve's status shows both")
        ray.get(gate.open.remote())
        ends = feed.wait_finished(set(jobs))

    assert {e["type"] for e in ends.values()} == {"asset_ready"}
    finals = Counter(
        e["job_id"] for e in feed.seen if e["type"] == "asset_ready" and e["job_id"] in jobs
    )
    assert finals == dict.fromkeys(jobs, 1)
    records = [elastic.job(job_id) for job_id in jobs]
    assert {r["attempts"] for r in records} == {1}
    assert len({r["worker"] for r in records}) == 2, "the backlog was shared"
    generations = Counter(ray.get(gate.generations.remote())) - before
    assert len(generations) == 4 and set(generations.values()) == {1}, "a job generated twice"

    # Drained: after the idle time the replicas go, each stopping once idle.
    wait_until(lambda: generator_replicas() == 0, 90, "the generators scaled to zero")
    scaled_to_zero(elastic)
