"""Sweedle on a real two-node Ray cluster whose nodes share nothing but PostgreSQL and S3.

Node A (the head) runs the ingress, the queue and the CPU pools; node B, in a mount namespace of
its own with empty private folders over the storage and data paths, runs the Generator on a
logical GPU. Photos go in and valid GLBs, thumbnails and LODs come out; then node B is killed
(SIGKILL of its raylet) while a job generates, a new node B joins, and the job completes once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.http_gate import GATE_URL_VARIABLE, GateServer
from tests.cluster.nodes import RayNode, namespaces_unavailable, start_head, start_worker
from tests.conftest import drawn_image
from tests.gltf_check import validate_gltf
from tests.serve.client import Sweedle
from tests.serve.conftest import free_port
from tests.stand_ins.postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]
SERVE = str(Path(sys.executable).with_name("serve"))
LEASE_S = 6.0  # how soon the queue gives up on a silent generator (the dead node's)
UP_TIMEOUT_S = 240.0


def serve_config(port: int, settings: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    on_a = {"num_cpus": 0.1, "resources": {"node_a": 1}}
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": "127.0.0.1", "port": port},
        "applications": [
            {
                "name": "sweedle",
                "route_prefix": "/",
                "import_path": "deployments.app:build_app",
                "runtime_env": {"env_vars": env},
                "args": {"settings": settings},
                "deployments": [
                    {"name": "Ingress", "ray_actor_options": on_a},
                    {"name": "Preprocessor", "num_replicas": 1, "ray_actor_options": on_a},
                    {"name": "Exporter", "num_replicas": 1, "ray_actor_options": on_a},
                    {"name": "TextToImage", "num_replicas": 1, "ray_actor_options": on_a},
                    {
                        "name": "Generator",
                        "num_replicas": 1,
                        "ray_actor_options": {
                            "num_cpus": 0.1,
                            "num_gpus": 1,
                            "resources": {"node_b": 1},
                        },
                    },
                ],
            }
        ],
    }


class Cluster:
    """Node A, node B (replaceable) and `serve run` against them."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.private = [folder / "data"]  # where a shared folder would be: empty on node B
        self.private[0].mkdir()
        self.head, self.address = start_head(
            folder / "ray", {"node_a": 100}, 2, env, folder / "node-a.log"
        )
        self.nodes: list[RayNode] = [self.head]
        self.node_b = self.add_node_b()
        self.serve: subprocess.Popen[str] | None = None
        self.port = free_port()  # Serve's proxy keeps the port it started on

    def add_node_b(self) -> RayNode:
        log = self.folder / f"node-b{len(self.nodes)}.log"
        node = start_worker(self.address, {"node_b": 100}, 1, 1, self.private, self.env, log)
        self.nodes.append(node)
        return node

    def run(self, config: dict[str, Any]) -> None:
        if self.serve is not None:  # the new config replaces the old app
            self.serve.kill()
            self.serve.wait(timeout=30)
        path = self.folder / "serve.yaml"
        path.write_text(yaml.safe_dump(config))
        log = (self.folder / "serve.log").open("w")
        self.serve = subprocess.Popen(
            [SERVE, "run", f"--address={self.address}", str(path)],
            env={**self.env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_AUTH_MODE": "disabled"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )

    def stop(self) -> None:
        if self.serve is not None:
            self.serve.kill()
            self.serve.wait(timeout=30)
        for node in reversed(self.nodes):
            node.stop()


def app_settings(made: Cluster, **settings: Any) -> dict[str, Any]:
    return {
        "storage_dir": str(made.private[0] / "storage"),
        "generator_backend": "tests.cluster.http_gate:HttpGatedGenerator",
        "queue_actor_name": f"sweedle_queue_cluster_{uuid.uuid4().hex[:6]}",
        "default_octree_resolution": 48,
        "preprocess_size": 128,
        "thumbnail_size": 64,
        "rembg_model": "none",
        "generator_lease_s": LEASE_S,
        "reconcile_interval_s": 2,
        **settings,
    }


@pytest.fixture(scope="module")
def cluster(s3_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if reason := namespaces_unavailable():
        pytest.skip(f"a node with private folders needs a mount namespace: {reason}")
    folder = tmp_path_factory.mktemp("cluster")
    gate = GateServer()
    env = {
        **os.environ,
        **s3_server.env(),  # every node gets the store's variables, as pods get a Secret
        "PYTHONPATH": str(ROOT),
        GATE_URL_VARIABLE: gate.url,
    }
    made = Cluster(folder, env)
    try:
        yield made, gate
    finally:
        gate.stop()
        made.stop()


def deploy(made: Cluster, settings: dict[str, Any]) -> Sweedle:
    """`serve run` of the app with ``settings`` (replacing the one before), once it answers."""
    name = f"Sweedle {uuid.uuid4().hex[:6]}"  # /health says it: the new app answers, not the old
    made.run(serve_config(made.port, {**settings, "app_name": name}, {"PYTHONPATH": str(ROOT)}))
    client = Sweedle(f"http://127.0.0.1:{made.port}")
    alive = lambda: made.serve.poll() is None  # type: ignore[union-attr]  # noqa: E731
    client.wait_until_up(UP_TIMEOUT_S, alive, lambda health: health["app"] == name)
    return client


def generators_ready(status: dict[str, Any]) -> bool:
    return any(g["state"] in ("idle", "generating") for g in status["generators"].values())


def test_photos_become_assets_across_nodes_and_a_dead_gpu_node_loses_no_job(
    cluster, s3_server, tmp_path
):
    made, gate = cluster
    with fresh_database("sweedle_cluster") as database:
        storage_url = s3_server.url(f"cluster-{uuid.uuid4().hex[:8]}")
        client = deploy(made, app_settings(made, database_url=database, storage_url=storage_url))
        photos_in_and_a_node_killed(made, client, gate, tmp_path)


def photos_in_and_a_node_killed(made: Cluster, client: Sweedle, gate: GateServer, tmp_path: Path):
    with client.feed() as feed:
        if not generators_ready(feed.snapshot):
            feed.wait_for(lambda e: e["type"] == "queue_status" and generators_ready(e), 180)
        gate.open()
        jobs = [
            client.submit_ok(drawn_image(96, color=c))["job_id"]
            for c in ((200, 40, 40), (40, 90, 200))
        ]
        finals = feed.wait_finished(set(jobs), timeout=120)
    assert all(f["type"] == "asset_ready" for f in finals.values()), finals

    health = client.http.get("/health").json()
    assert health["cluster"] == {"nodes": 2, "problems": []}, health["cluster"]
    assert health["storage"]["backend"] == "s3" and health["status"] == "ok", health
    for job_id in jobs:
        asset_id = client.job(job_id)["asset_id"]
        glb = client.http.get(f"/api/assets/{asset_id}/download")
        assert glb.status_code == 200, glb.text
        (tmp_path / f"{asset_id}.glb").write_bytes(glb.content)
        assert validate_gltf(tmp_path / f"{asset_id}.glb")["issues"]["numErrors"] == 0
        thumbnail = client.http.get(f"/api/assets/{asset_id}/thumbnail")
        assert thumbnail.status_code == 200 and thumbnail.content[:4] == b"\x89PNG"
        lod = client.http.get(f"/api/assets/{asset_id}/download", params={"lod": 2})
        assert lod.status_code == 200 and lod.content[:4] == b"glTF"

    # Node B dies while a job generates on it; a new node B joins and the job completes once.
    gate.close()
    with client.feed() as feed:
        job_id = client.submit_ok(drawn_image(96, color=(40, 160, 60)))["job_id"]
        gate.wait_for_arrivals(len(jobs) + 1, timeout=120)
        made.node_b.kill_raylet()
        made.node_b = made.add_node_b()
        gate.open()
        final = feed.wait_finished({job_id}, timeout=240)[job_id]
        ends = [e for e in feed.events_of(job_id) if e["type"] == "asset_ready"]
    assert final["type"] == "asset_ready", final
    assert len(ends) == 1
    job = client.job(job_id)
    assert job["status"] == "completed" and job["retries"] == {"generating": 1}, job
    assert job["attempts"] == 2
    assert len(gate.arrivals) == len(jobs) + 2  # the dead node's try and the new node's
    glb = client.http.get(f"/api/assets/{job['asset_id']}/download")
    assert glb.status_code == 200 and glb.content[:4] == b"glTF"
    assert not [p for p in made.private[0].rglob("*") if p.is_file()]  # nothing via a folder


def test_sqlite_and_a_folder_one_node_cannot_see_are_said_plainly(cluster):
    made, _ = cluster
    database = f"sqlite+aiosqlite:///{made.private[0] / 'sweedle.db'}"
    client = deploy(made, app_settings(made, database_url=database))

    health = client.http.get("/health").json()
    problems = " ".join(health["cluster"]["problems"])
    assert health["status"] == "degraded" and health["cluster"]["nodes"] == 2, health
    assert "DATABASE_URL" in problems and "PostgreSQL" in problems
    assert "STORAGE_URL" in problems and "do not see the marker" in problems
