"""Two Sweedle apps on one PostgreSQL database, as in a blue/green deploy: two queues, each with
its own generator and pools, beside the session's app. The second starts while the first has a
backlog. The claims in the database must see that every job is generated once and completes
once, whichever queue runs it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve
from ray.serve.context import _get_global_client

from deployments.app import AppArgs, build_app
from tests.conftest import boxed_image
from tests.serve.client import Sweedle
from tests.stand_ins.postgres import fresh_database

FINAL = ("asset_ready", "job_failed", "job_cancelled")


class BlueGreen:
    """Starts apps of one release on one database and one file store."""

    def __init__(self, deployment: Any, database: str, data: Path) -> None:
        self.port = deployment.port
        self.settings = {
            "database_url": database,
            "storage_dir": str(data / "storage"),
            "generator_backend": "tests.serve.gate:GatedGenerator",
            "default_octree_resolution": 32,
            "preprocess_size": 96,
            "thumbnail_size": 32,
            "export_lod_levels": [1.0],
            "reconcile_interval_s": 1,
            "generator_lease_s": 10,
        }
        self.started: list[str] = []

    def start(self, name: str) -> Sweedle:
        settings = {**self.settings, "queue_actor_name": f"sweedle_queue_{name}"}
        serve.run(build_app(AppArgs(settings=settings)), name=name, route_prefix=f"/{name}")
        self.started.append(name)
        return Sweedle(f"http://127.0.0.1:{self.port}/{name}")

    def stop(self) -> None:
        # Both apps at once (each takes seconds to stop its replicas), then their queues, which
        # the stopping generators still tell that they leave.
        _get_global_client().delete_apps(self.started)
        for name in self.started:
            # Detached: it would keep its database connections open.
            ray.kill(ray.get_actor(f"sweedle_queue_{name}", namespace="sweedle"), no_restart=True)


@pytest.fixture
def apps(deployment: Any, tmp_path: Path) -> Iterator[BlueGreen]:
    with fresh_database("sweedle_bluegreen") as database:
        apps = BlueGreen(deployment, database, tmp_path)
        try:
            yield apps
        finally:
            apps.stop()


def test_two_apps_on_one_database_share_a_backlog_and_run_each_job_once(apps, gate):
    before = Counter(ray.get(gate.generations.remote()))
    arrived = ray.get(gate.arrived.remote())
    blue = apps.start("blue")
    with blue.feed() as blue_feed:
        blue_jobs = [blue.submit_ok(boxed_image(n))["job_id"] for n in range(8)]
        ray.get(gate.wait_for_arrivals.remote(arrived + 1), timeout=60)
        # Green starts while blue's generator holds a job and seven wait behind it.
        green = apps.start("green")
        with green.feed() as green_feed:
            green_jobs = [green.submit_ok(boxed_image(n))["job_id"] for n in range(8, 12)]
            ray.get(gate.open.remote())
            blue_feed.wait_finished(set(blue_jobs))
            green_feed.wait_finished(set(green_jobs))

    everything = [*blue_jobs, *green_jobs]
    ends = Counter(
        e["job_id"]
        for feed in (blue_feed, green_feed)
        for e in feed.seen
        if e["type"] in FINAL and e.get("job_id") in everything
    )
    assert ends == dict.fromkeys(everything, 1), "a job ended twice, or on the other app"
    records = [blue.job(job_id) for job_id in everything]
    assert {r["status"] for r in records} == {"completed"}
    assert {r["attempts"] for r in records} == {1}
    generations = Counter(ray.get(gate.generations.remote())) - before
    assert len(generations) == len(everything), "a job was not generated"
    assert set(generations.values()) == {1}, "generated twice"
