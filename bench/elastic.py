"""Elastic generators: a backlog on one Generator replica against two, and a job arriving at an
app whose generators have scaled to zero.

The app runs in a fresh local Ray cluster with the silhouette generator plus a fixed sleep per
generation standing in for GPU time (`SleepyGenerator`), so the ratio measures the
orchestration (claims, hand-offs, the export pool), not the 2 cores. ``python -m bench.elastic``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweedle_core.config import Settings  # noqa: E402
from sweedle_core.generation.silhouette import SilhouetteGenerator  # noqa: E402

GPU_S = 3.0  # the stand-in for one generation's GPU time
BACKLOG = 12
PORT = 18471


class SleepyGenerator:
    """The silhouette generator, after a fixed sleep reported in ten steps."""

    name = "sleepy-silhouette"

    def __init__(self, settings: Settings) -> None:
        self.inner = SilhouetteGenerator()

    def generate_shape(self, image, params, on_progress, views=None):  # type: ignore[no-untyped-def]
        for step in range(10):
            on_progress(step / 10, f"standing in for the GPU, step {step + 1}/10")
            time.sleep(GPU_S / 10)
        return self.inner.generate_shape(image, params, on_progress, views)


def settings(data: Path, name: str, **more: Any) -> dict[str, Any]:
    return {
        "database_url": f"sqlite+aiosqlite:///{data / name}.db",
        "storage_dir": str(data / name),
        "queue_actor_name": f"bench_queue_{name}",
        "generator_backend": "bench.elastic:SleepyGenerator",
        "default_octree_resolution": 64,
        "preprocess_size": 256,
        "thumbnail_size": 64,
        "export_lod_levels": [1.0],
        "export_concurrency": 4,
        **more,
    }


def backlog(client: Any, images: list[bytes]) -> float:
    """Jobs per minute on a backlog submitted at once, to the last one's end."""
    with client.feed() as feed:
        start = time.monotonic()
        jobs = {client.submit_ok(image)["job_id"] for image in images}
        ends = feed.wait_finished(jobs, timeout=600)
        seconds = time.monotonic() - start
    assert {e["type"] for e in ends.values()} == {"asset_ready"}, ends
    return len(jobs) / seconds * 60


def main() -> dict[str, Any]:
    import ray
    from ray import serve

    from deployments.app import AppArgs, build_app
    from tests.conftest import boxed_image
    from tests.serve.client import Sweedle

    images = [boxed_image(n) for n in range(BACKLOG)]
    figures: dict[str, Any] = {"gpu_s": GPU_S, "backlog": BACKLOG}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        ray.init(
            address="local",
            num_cpus=8,
            include_dashboard=False,
            namespace="sweedle",
            runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}},
        )
        serve.start(http_options={"host": "127.0.0.1", "port": PORT})
        try:
            for replicas in (1, 2):
                name = f"replicas{replicas}"
                args = AppArgs(settings=settings(data, name), generator_replicas=replicas)
                serve.run(build_app(args), name=name, route_prefix=f"/{name}")
                client = Sweedle(f"http://127.0.0.1:{PORT}/{name}")
                wait_for_generators(client, replicas)
                figures[f"jobs_per_min_{replicas}"] = backlog(client, images)
                serve.delete(name)
            figures["ratio"] = figures["jobs_per_min_2"] / figures["jobs_per_min_1"]
            figures["cold_start_s"] = cold_start(data, images[0])
        finally:
            serve.shutdown()
            ray.shutdown()
    return figures


def wait_for_generators(client: Any, count: int) -> None:
    def ready(status: dict[str, Any]) -> bool:
        states = [g["state"] for g in status["generators"].values()]
        return states.count("idle") + states.count("generating") >= count

    with client.feed() as feed:
        if not ready(feed.snapshot):
            feed.wait_for(lambda e: e["type"] == "queue_status" and ready(e), timeout=180)


def cold_start(data: Path, image: bytes) -> float:
    """Seconds from a job's POST, at an app scaled to zero, to its generation starting."""
    from ray import serve

    from deployments.app import AppArgs, build_app
    from tests.serve.client import Sweedle

    more = {"generator_max_replicas": 1, "generator_idle_s": 1, "generator_shutdown_s": 6}
    serve.run(
        build_app(AppArgs(settings=settings(data, "zero", **more))),
        name="zero",
        route_prefix="/zero",
    )
    client = Sweedle(f"http://127.0.0.1:{PORT}/zero")
    deadline = time.monotonic() + 120
    while client.http.get("/health").json()["generation"]["state"] != "scaled_to_zero":
        assert time.monotonic() < deadline, "the app did not start scaled to zero"
        time.sleep(0.2)
    with client.feed() as feed:
        start = time.monotonic()
        job_id = client.submit_ok(image)["job_id"]
        feed.wait_for(
            lambda e: e.get("job_id") == job_id and e.get("stage") == "generating", timeout=180
        )
        seconds = time.monotonic() - start
        feed.wait_finished({job_id}, timeout=180)
    serve.delete("zero")
    return seconds


def render(f: dict[str, Any]) -> str:
    return f"""## Elastic generators (bench/elastic.py)

A backlog of {f["backlog"]} jobs submitted at once, to the last one's end, with the silhouette
generator plus a fixed {f["gpu_s"]:.0f} s sleep per generation standing in for GPU time (the
ratio measures the orchestration, not the 2 cores), on a fresh local Ray cluster and SQLite.

| | value | goal |
| --- | --- | --- |
| jobs per minute, one Generator replica | {f["jobs_per_min_1"]:.1f} | |
| jobs per minute, two Generator replicas | {f["jobs_per_min_2"]:.1f} | |
| two against one | {f["ratio"]:.2f}x | >= 1.9x: {"met" if f["ratio"] >= 1.9 else "NOT met"} |
| a job at an app scaled to zero: POST to its generation starting | {f["cold_start_s"]:.1f} s | |

The cold start here is a CPU replica starting and loading the silhouette generator; on a GPU
box add the model's load (Hunyuan3D-2's weights, tens of seconds), which is what
`GENERATOR_IDLE_S` (15 min) saves a burst from paying each time.
"""


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))
