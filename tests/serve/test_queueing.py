"""The queue through the real app: priority, cancellation, failures."""

from __future__ import annotations

import ray

from tests.conftest import drawn_image
from tests.serve.gate import FAIL_SEED

IMAGE = drawn_image(128)


def hold_generator(client, gate) -> str:
    """Submit a job and return its id once the generator is busy with it at the gate."""
    arrived = ray.get(gate.arrived.remote())
    job_id = client.submit_ok(IMAGE)["job_id"]
    ray.get(gate.wait_for_arrivals.remote(arrived + 1), timeout=60)
    return job_id


def test_a_high_priority_job_sent_last_runs_before_earlier_normal_ones(client, gate):
    with client.feed() as feed:
        busy = hold_generator(client, gate)
        normal = [client.submit_ok(IMAGE, priority="normal")["job_id"] for _ in range(2)]
        low = client.submit_ok(IMAGE, priority="low")["job_id"]
        high = client.submit_ok(IMAGE, priority="high")["job_id"]
        feed.wait_for_each({*normal, low, high}, "progress", stage="waiting_for_gpu")

        waiting = client.http.get("/api/generation/queue/jobs").json()
        assert [j["job_id"] for j in waiting if j["stage"] == "waiting_for_gpu"] == [
            high,
            *normal,
            low,
        ]
        depth = client.http.get("/api/generation/queue/status").json()["queue_depth"]
        assert depth == {"high": 1, "normal": 2, "low": 1}

        ray.get(gate.open.remote())
        finals = feed.wait_finished({busy, *normal, low, high})

    assert {e["type"] for e in finals.values()} == {"asset_ready"}
    jobs = {job_id: client.job(job_id) for job_id in finals}
    ran = sorted(jobs, key=lambda job_id: jobs[job_id]["started_at"])
    assert ran == [busy, high, *normal, low]


def test_cancelling_a_waiting_and_a_running_job(client, gate):
    with client.feed() as feed:
        running = hold_generator(client, gate)
        waiting = client.submit_ok(IMAGE)["job_id"]
        feed.wait_for_each({waiting}, "progress", stage="waiting_for_gpu")

        cancelled_now = client.http.delete(f"/api/generation/jobs/{waiting}")
        assert cancelled_now.status_code == 200
        assert cancelled_now.json()["status"] == "cancelled"

        cancelling = client.http.delete(f"/api/generation/jobs/{running}")
        assert cancelling.status_code == 200
        assert cancelling.json()["cancel_requested"] is True

        finals = feed.wait_finished({running, waiting})

    assert {e["type"] for e in finals.values()} == {"job_cancelled"}
    for job_id in (running, waiting):
        job = client.job(job_id)
        assert job["status"] == "cancelled"
        again = client.http.delete(f"/api/generation/jobs/{job_id}")
        assert again.status_code == 409
        assert "already cancelled" in again.json()["detail"]
    assert client.job(waiting)["attempts"] == 0, "a cancelled waiting job never ran"


def test_a_failing_stage_fails_its_job_and_the_worker_goes_on(client):
    blank = drawn_image(128, color=(255, 255, 255))  # all background: nothing to model
    with client.feed() as feed:
        broken_generation = client.submit_ok(IMAGE, seed=FAIL_SEED)["job_id"]
        nothing_to_model = client.submit_ok(blank)["job_id"]
        fine = client.submit_ok(IMAGE)["job_id"]
        finals = feed.wait_finished({broken_generation, nothing_to_model, fine})

    assert finals[broken_generation]["type"] == "job_failed"
    assert "told to fail" in client.job(broken_generation)["error"]
    assert client.job(broken_generation)["stage"] == "generating"
    assert finals[nothing_to_model]["type"] == "job_failed"
    failed = client.job(nothing_to_model)
    assert failed["stage"] == "preprocessing"
    assert "no object" in failed["error"]
    assert finals[fine]["type"] == "asset_ready"
    assert client.http.get(f"/api/assets/{client.job(fine)['asset_id']}").json()["status"] == (
        "completed"
    )


def test_a_high_priority_job_overtakes_normal_ones_waiting_for_the_cpu_pool(client, pool_gate):
    """Generated jobs wait for the export pool (EXPORT_CONCURRENCY slots, 2 here) in priority
    order: with the pool held, a HIGH job generated after NORMAL ones is made before them."""
    slots = 2
    arrived = ray.get(pool_gate.arrived.remote())
    with client.feed() as feed:
        held = [client.submit_ok(IMAGE, seed=100 + i)["job_id"] for i in range(slots)]
        ray.get(pool_gate.wait_for_arrivals.remote(arrived + slots), timeout=60)
        normal = [client.submit_ok(IMAGE, seed=200 + i)["job_id"] for i in range(3)]
        feed.wait_for_each(set(normal), "progress", stage="exporting")
        high = client.submit_ok(IMAGE, priority="high", seed=300)["job_id"]
        feed.wait_for_each({high}, "progress", stage="exporting")
        status = client.http.get("/api/generation/queue/status").json()
        assert status["waiting_for_export"] == 4

        ray.get(pool_gate.open.remote())
        finals = feed.wait_finished({*held, *normal, high})

        sent = [
            e["job_id"]
            for e in feed.seen
            if e["type"] == "progress" and e.get("message") == "making the mesh"
        ]
    assert {e["type"] for e in finals.values()} == {"asset_ready"}
    after_gate = [job_id for job_id in sent if job_id not in held]
    assert after_gate == [high, *normal]


def test_cancelling_a_job_in_the_cpu_stage_stops_it_and_drops_its_shape(
    client, pool_gate, deployment
):
    arrived = ray.get(pool_gate.arrived.remote())
    with client.feed() as feed:
        submitted = client.submit_ok(IMAGE)
        ray.get(pool_gate.wait_for_arrivals.remote(arrived + 1), timeout=60)
        assert client.http.delete(f"/api/generation/jobs/{submitted['job_id']}").status_code == 200
        final = feed.wait_finished({submitted["job_id"]})[submitted["job_id"]]

    # Stopped while the pool was still held: the CPU stage saw the cancel, it did not finish.
    assert final["type"] == "job_cancelled"
    assert not (deployment.storage_root / submitted["asset_id"] / "shape.npz").exists()
