"""Signed webhooks, through the running app: sent by the job queue when a job ends, retried,
logged, and signed with the secret the queue was deployed with. (Which webhook URLs a
submission may name is tested without Ray, in tests/api/test_bad_input.py.)"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import ray

from sweedle_core.webhooks.signing import verify
from tests.app_settings import WEBHOOK_SECRET
from tests.conftest import drawn_image
from tests.serve.test_queueing import hold_generator

IMAGE = drawn_image(96)


class Receiver:
    """A webhook receiver on loopback: answers 500 to the first ``failures`` calls, then 200."""

    def __init__(self, failures: int) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.answered_ok = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((dict(self.headers), body))
                ok = len(receiver.calls) > failures
                self.send_response(200 if ok else 500)
                self.end_headers()
                if ok:
                    receiver.answered_ok.set()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sweedle"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    receiver = Receiver(failures=2)
    yield receiver
    receiver.close()


def test_a_signed_webhook_is_retried_until_delivered_and_logged(client, receiver):
    with client.feed() as feed:
        submitted = client.submit_ok(IMAGE, webhook_url=receiver.url)
        job_id = submitted["job_id"]
        feed.wait_finished({job_id})
        delivered = feed.wait_for(
            lambda e: (
                e["type"] == "webhook_attempt"
                and e["job_id"] == job_id
                and e["status"] != "pending"
            )
        )
    assert receiver.answered_ok.is_set()
    assert delivered["status"] == "delivered" and delivered["attempt"] == 3
    attempts = [e for e in feed.events_of(job_id) if e["type"] == "webhook_attempt"]
    assert [e["status_code"] for e in attempts] == [500, 500, 200]

    assert len(receiver.calls) == 3
    bodies = {body for _, body in receiver.calls}
    assert len(bodies) == 1  # every attempt sends the same bytes
    for headers, body in receiver.calls:
        assert verify(WEBHOOK_SECRET, body, headers["X-Sweedle-Signature"])
        assert not verify("another secret", body, headers["X-Sweedle-Signature"])
        assert headers["X-Sweedle-Event"] == "job.completed"
        assert headers["X-Sweedle-Delivery"] == delivered["delivery_id"]
    payload = json.loads(bodies.pop())
    assert payload["event"] == "job.completed"
    assert payload["job"]["id"] == job_id and payload["job"]["status"] == "completed"
    assert payload["asset"]["download_url"] == f"/api/assets/{submitted['asset_id']}/download"

    job = client.job(job_id)
    assert job["webhook_url"] == receiver.url
    [record] = job["webhooks"]
    assert (record["status"], record["attempts"], record["event"]) == (
        "delivered",
        3,
        "job.completed",
    )
    assert [a["status_code"] for a in record["log"]] == [500, 500, 200]


def test_a_cancelled_job_is_announced_too(client, gate, receiver):
    with client.feed() as feed:
        busy = hold_generator(client, gate)
        waiting = client.submit_ok(IMAGE, webhook_url=receiver.url)["job_id"]
        client.http.delete(f"/api/generation/jobs/{waiting}")
        final = feed.wait_for(
            lambda e: (
                e["type"] == "webhook_attempt"
                and e["job_id"] == waiting
                and e["status"] != "pending"
            )
        )
        client.http.delete(f"/api/generation/jobs/{busy}")
        ray.get(gate.open.remote())
        feed.wait_finished({busy})
    assert final["event"] == "job.cancelled" and final["status"] == "delivered"


@pytest.mark.redeploys_app
def test_a_rotated_webhook_secret_signs_the_next_delivery(deployment, client):
    """A new WEBHOOK_SECRET and a redeploy on the same cluster: the queue that signs is
    replaced (its settings changed, secrets included), so the next delivery carries the new
    signature. The app is left so: only the tests that restart the cluster run after this one
    (`redeploys_app`), and they deploy it afresh from the settings, the old secret back in."""
    rotated = "whsec_rotated_0123456789abcdef"
    receiver = Receiver(failures=0)
    deployment.settings["webhook_secret"] = rotated
    try:
        deployment.deploy()
        with client.feed() as feed:
            job_id = client.submit_ok(IMAGE, webhook_url=receiver.url)["job_id"]
            feed.wait_for(
                lambda e: (
                    e["type"] == "webhook_attempt"
                    and e["job_id"] == job_id
                    and e["status"] == "delivered"
                ),
                timeout=120,
            )
    finally:
        receiver.close()
        deployment.settings["webhook_secret"] = WEBHOOK_SECRET

    [(headers, body)] = receiver.calls
    assert verify(rotated, body, headers["X-Sweedle-Signature"])
    assert not verify(WEBHOOK_SECRET, body, headers["X-Sweedle-Signature"])
