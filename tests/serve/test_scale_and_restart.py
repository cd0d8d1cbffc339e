"""Restart recovery, a generator that waits for a GPU, lost workers and the Ray metrics.

Scale-out over several generator replicas is in test_autoscaling.py."""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.request
from collections import Counter

import pytest
import ray
from ray import serve
from ray.serve.api import _run

from deployments.app import AppArgs, build_app
from tests.conftest import drawn_image
from tests.serve.gate import get_gate

IMAGE = drawn_image(128)


def final_events(feed, job_ids) -> Counter:
    return Counter(
        e["job_id"]
        for e in feed.seen
        if e["type"] in ("asset_ready", "job_failed", "job_cancelled")
        and e.get("job_id") in job_ids
    )


@pytest.mark.restarts_cluster
def test_jobs_survive_a_cluster_crash_and_complete_once(deployment, client, gate):
    arrived = ray.get(gate.arrived.remote())
    with client.feed() as feed:
        running = client.submit_ok(IMAGE)["job_id"]
        ray.get(gate.wait_for_arrivals.remote(arrived + 1), timeout=60)
        waiting = [client.submit_ok(IMAGE, priority=p)["job_id"] for p in ("low", "high", "normal")]
        feed.wait_for_each(set(waiting), "progress", stage="waiting_for_gpu")
    assets_before = client.http.get("/api/assets").json()["total"]

    deployment.crash()

    rows = dict(
        sqlite3.connect(deployment.db_path).execute("SELECT id, status FROM generation_jobs")
    )
    assert rows[running] == "processing"
    assert all(rows[job_id] in ("pending", "processing") for job_id in waiting)

    deployment.start_ray()
    gate = get_gate()  # a new cluster: hold the generator until the feed listens
    ray.get(gate.close.remote())
    deployment.deploy()
    jobs = {running, *waiting}
    with client.feed() as feed:
        ray.get(gate.open.remote())
        feed.wait_finished(jobs)

    assert set(final_events(feed, jobs).values()) == {1}
    records = {job_id: client.job(job_id) for job_id in jobs}
    assert {r["status"] for r in records.values()} == {"completed"}
    assert records[running]["attempts"] == 2, "the interrupted job ran again from its input"
    assert all(records[job_id]["attempts"] == 1 for job_id in waiting)
    assert client.http.get("/api/assets").json()["total"] == assets_before
    # The queue rebuilt from the database kept the priorities.
    order = sorted(waiting, key=lambda job_id: records[job_id]["started_at"])
    assert order == [waiting[1], waiting[2], waiting[0]]


def test_queue_and_generator_metrics_reach_the_prometheus_endpoint(client):
    client.submit_ok(IMAGE)
    port = ray.nodes()[0]["MetricsExportPort"]
    wanted = {
        "ray_sweedle_queue_depth",
        "ray_sweedle_jobs_active",
        "ray_sweedle_jobs_finished_total",
        "ray_sweedle_stage_seconds_bucket",
        "ray_sweedle_generator_busy_seconds_total",
    }
    found: set[str] = set()
    deadline = time.monotonic() + 90
    # Ray exports metrics on an interval: read the endpoint until they are all there.
    while not wanted <= found and time.monotonic() < deadline:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        found = set(re.findall(r"^(ray_sweedle_\w+)\{", text.decode(), re.MULTILINE))
        if not wanted <= found:
            time.sleep(1)
    assert wanted <= found


def test_a_generator_that_needs_a_gpu_on_a_cpu_cluster_is_explained(deployment, tmp_path):
    """serve_config.yaml on a machine without a GPU: the app serves and says why it waits."""
    settings = {
        **deployment.settings,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'gpu.db'}",
        "storage_dir": str(tmp_path / "storage"),
        "queue_actor_name": "gpu_wait_queue",
        # The Generator replica, pending for ever, is given this long to stop at the end.
        "generator_shutdown_s": 1,
    }
    app = build_app(AppArgs(settings=settings, generator_num_gpus=1))
    _run(app, name="gpu-wait", route_prefix="/gpu-wait", _blocking=False)
    try:
        deadline = time.monotonic() + 120
        while True:  # the ingress starts while the Generator waits for a GPU forever
            response = deployment.client.http.get("/gpu-wait/health")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        generation = response.json()["generation"]
        assert generation["state"] == "waiting_for_generator"
        assert "no GPU" in generation["detail"]
        assert "configs/cpu.yaml" in generation["detail"]
        job = deployment.client.http.post(
            "/gpu-wait/api/generation/image-to-3d", files={"file": ("d.png", IMAGE)}
        )
        assert job.status_code == 202, "the rest of the app serves"
    finally:
        # Not waited for: its replicas stop in the background while the next test runs.
        serve.delete("gpu-wait", _blocking=False)
        ray.kill(ray.get_actor("gpu_wait_queue", namespace="sweedle"))


def test_a_killed_exporter_replica_loses_no_job(deployment, client):
    """The replica exporting a job is killed (SIGKILL, as the OOM killer would): the export runs
    again on the replica Serve starts in its place and the job completes once."""
    with client.feed() as feed:
        # A large mesh, so its export is still running when the replica is killed.
        job_id = client.submit_ok(drawn_image(256), octree_resolution=384)["job_id"]
        feed.wait_for(
            lambda e: (
                e.get("job_id") == job_id
                and e["type"] == "progress"
                and e["stage"] == "exporting"
                and "optimising" in e["message"]
            ),
            timeout=120,
        )
        (replica,) = [
            actor
            for actor in ray.util.list_named_actors(all_namespaces=True)
            if actor["name"].startswith("SERVE_REPLICA::sweedle#Exporter#")
        ]
        ray.kill(ray.get_actor(replica["name"], namespace=replica["namespace"]), no_restart=True)
        final = feed.wait_finished({job_id}, timeout=180)[job_id]
        ends = [e for e in feed.events_of(job_id) if e["type"] == "asset_ready"]

    assert final["type"] == "asset_ready", final
    assert len(ends) == 1
    job = client.job(job_id)
    assert job["status"] == "completed" and job["retries"] == {"exporting": 1}, job
    assert client.http.get(f"/api/assets/{job['asset_id']}/download").content[:4] == b"glTF"
