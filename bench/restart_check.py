"""Stop `serve run` three ways with jobs waiting and running, start it again, count the damage.

For each of Ctrl-C (SIGINT), SIGTERM and `ray stop`: start `serve run configs/cpu.yaml` on a
database that outlives it, submit a backlog, stop the app while jobs wait and one generates, start
it again, and check that every job completes exactly once (one `completed` row per job, one model
per asset, no job lost). Part of `make bench`; prints one line per way of stopping.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import App, photo, submit_many  # noqa: E402

JOBS = 40


def ray_stop() -> None:
    """`ray stop --force`: every Ray process on this machine (run nothing else meanwhile)."""
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, "stop", "--force"], cwd=ROOT, capture_output=True, check=True)


def stop(app: App, how: str) -> float | None:
    """Stop the app ``how``; the seconds `serve run` took to exit, None if it had to be killed
    (what the stop did to the jobs is measured all the same)."""
    start = time.monotonic()
    if how == "ray stop":
        ray_stop()
    else:
        os.killpg(app.process.pid, signal.SIGINT if how == "Ctrl-C" else signal.SIGTERM)
    try:
        app.process.wait(120)
        seconds: float | None = time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(app.process.pid, signal.SIGKILL)
        app.process.wait(30)
        seconds = None
    ray_stop()  # whatever the first stop left behind must not help the second run
    return seconds


def check(how: str, data: Path) -> dict:
    image = photo()
    app = App(data)
    app.wait_ready()
    with app.client.feed() as feed:
        # Octree 384: each job takes long enough that the stop finds work in flight.
        jobs = submit_many(app.client, image, JOBS, octree=384)
        # Stop as soon as the backlog is in: jobs queued, preprocessing, waiting, generating.
        feed.wait_for_each(set(jobs), "job_created", timeout=120)
    done_before = sum(app.client.job(j)["status"] == "completed" for j in jobs)
    stop_s = stop(app, how)
    if stop_s is None:  # keep the log of a stop that hung, to read after the benchmark
        shutil.copy(data / "serve.log", Path(tempfile.gettempdir()) / f"sweedle-stop-{how}.log")
    before = dict(
        sqlite3.connect(data / "sweedle.db").execute(
            "SELECT status, count(*) FROM generation_jobs GROUP BY status"
        )
    )
    app = App(data)
    try:
        app.wait_ready()
        with app.client.feed() as feed:
            waiting = {j for j in jobs if app.client.job(j)["status"] not in ("completed",)}
            if waiting:
                feed.wait_finished(waiting, timeout=600)
        records = [app.client.job(j) for j in jobs]
    finally:
        app.stop()
        ray_stop()
    rows = (
        sqlite3.connect(data / "sweedle.db")
        .execute(
            "SELECT count(*), count(DISTINCT asset_id) FROM generation_jobs WHERE status='completed'"
        )
        .fetchone()
    )
    return {
        "stopped_with": how,
        "stop_s": stop_s,
        "jobs": JOBS,
        "completed_when_stopped": done_before,
        "status_at_stop": before,
        "completed_after_restart": sum(r["status"] == "completed" for r in records),
        "lost": sum(r["status"] != "completed" for r in records),
        "completed_rows": rows[0],
        "distinct_assets": rows[1],
        "attempts": sorted(r["attempts"] for r in records),
    }


def main() -> list[dict]:
    results = []
    for how in ("Ctrl-C", "SIGTERM", "ray stop"):
        with tempfile.TemporaryDirectory() as data:
            result = check(how, Path(data))
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


if __name__ == "__main__":
    main()
