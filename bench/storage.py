"""What object storage costs a job: the app on a SeaweedFS S3 server on loopback against the
same app on a local folder (`make bench` runs it; also `python bench/storage.py`).

For each store: `serve run configs/cpu.yaml` on a fresh cluster and database, the orchestration
overhead of single jobs one after another (as bench/run.py measures it: end to end minus the
stages' compute), and the download throughput of a 10 MB GLB through the ingress (the asset's
model replaced by a real 10 MB GLB in its store, then downloaded again and again).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trimesh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.restart_check import ray_stop  # noqa: E402
from bench.run import App, overhead, photo  # noqa: E402
from sweedle_core.export.glb import mesh_to_glb  # noqa: E402
from sweedle_core.storage import LocalStorage, Storage  # noqa: E402
from tests.stand_ins.s3_server import S3Server  # noqa: E402

JOBS = 15
OCTREE = 128
DOWNLOADS = 10


def big_glb(megabytes: float = 10.0) -> bytes:
    """A real GLB of at least ``megabytes``: finely subdivided spheres side by side."""
    sphere = trimesh.creation.icosphere(subdivisions=6)  # ~2 MB as a GLB
    spheres = [sphere]
    while len(data := mesh_to_glb(trimesh.util.concatenate(spheres))) < megabytes * 1e6:
        spheres.append(sphere.copy().apply_translation([3.0 * len(spheres), 0, 0]))
    return data


def measure(app: App, storage: Storage, glb: bytes) -> dict:
    app.wait_ready()
    figures = overhead(app.client, photo(), JOBS, OCTREE)
    asset = app.client.http.get("/api/assets", params={"page_size": 1}).json()["items"][0]
    # The file the download route sends for LOD 0 (made on the first download, then kept).
    storage.put(f"{asset['id']}/exports/lod0/model.glb", glb)
    times = []
    for _ in range(DOWNLOADS):
        start = time.perf_counter()
        response = app.client.http.get(f"/api/assets/{asset['id']}/download")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200 and len(response.content) == len(glb)
    figures["download_mb"] = len(glb) / 1e6
    figures["download_mb_per_s_median"] = len(glb) / 1e6 / statistics.median(times)
    return figures


def main() -> dict:
    glb = big_glb()
    results: dict = {"jobs": JOBS, "octree": OCTREE}
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        (data / "local").mkdir()
        app = App(data / "local")
        try:
            results["local"] = measure(app, LocalStorage(data / "local" / "storage"), glb)
        finally:
            app.stop()
        ray_stop()
        server = S3Server.start(data / "s3")
        try:
            url = server.url("bench")
            (data / "s3app").mkdir()
            app = App(data / "s3app", env={**server.env(), "STORAGE_URL": url})
            try:
                results["s3"] = measure(app, server.storage(url), glb)
            finally:
                app.stop()
        finally:
            server.stop()
        ray_stop()
    return results


def render(r: dict) -> str:
    local, s3 = r["local"], r["s3"]
    added = s3["overhead_ms_p50"] - local["overhead_ms_p50"]
    verdict = "met" if added < 50 else "NOT met"
    return f"""## Object storage (bench/storage.py)

The app (`configs/cpu.yaml`, fresh cluster and SQLite database each) with its files in a local
folder, then in S3 (SeaweedFS `weed mini` on loopback, through obstore): {r["jobs"]} single jobs
one after another at octree {r["octree"]}, then {DOWNLOADS} downloads of a
{local["download_mb"]:.1f} MB GLB through the ingress (streamed from S3 a MiB at a time; a local
file is sent as a file).

| figure | local folder | S3 | goal |
| --- | --- | --- | --- |
| orchestration overhead per job, p50 | {local["overhead_ms_p50"]:.0f} ms | {s3["overhead_ms_p50"]:.0f} ms | S3 adds < 50 ms: {verdict} ({added:+.0f} ms) |
| orchestration overhead per job, p95 | {local["overhead_ms_p95"]:.0f} ms | {s3["overhead_ms_p95"]:.0f} ms | |
| end to end per job, median | {local["end_to_end_s_median"]:.2f} s | {s3["end_to_end_s_median"]:.2f} s | ({1000 * (s3["end_to_end_s_median"] - local["end_to_end_s_median"]):+.0f} ms) |
| download of the GLB, median | {local["download_mb_per_s_median"]:.0f} MB/s | {s3["download_mb_per_s_median"]:.0f} MB/s | |

The overhead leaves out the stages' own time, and a stage's time includes its reads and writes
of the store: the end-to-end difference is what S3 costs a job in all. A real S3 across a
network adds its round trips (a job makes ~20 PUTs, the export's side by side, and a few GETs
and HEADs); the loopback server measures our code and obstore's, not a network. A GPU changes
none of these.
"""


if __name__ == "__main__":
    figures = main()
    print(json.dumps(figures, indent=2))
    print(render(figures))
