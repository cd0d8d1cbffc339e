"""Idempotent submission and signed webhooks, through the running app."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import ray

from sweedle_core.webhooks.signing import verify
from tests.conftest import drawn_image
from tests.serve.conftest import KEYS, WEBHOOK_SECRET
from tests.serve.test_queueing import hold_generator

IMAGE = drawn_image(96)


def test_the_same_key_and_request_give_the_first_job_back(client):
    key = {"Idempotency-Key": "order-1234-" + IMAGE[-8:].hex()}
    files = {"file": ("disc.png", IMAGE)}
    first = client.http.post(
        "/api/generation/image-to-3d", files=files, data={"seed": "3"}, headers=key
    )
    again = client.http.post(
        "/api/generation/image-to-3d", files=files, data={"seed": "3"}, headers=key
    )
    assert (first.status_code, again.status_code) == (202, 202), again.text
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers

    other_body = client.http.post(
        "/api/generation/image-to-3d", files=files, data={"seed": "4"}, headers=key
    )
    assert other_body.status_code == 409
    assert other_body.json()["error"] == "idempotency_key_reused"
    other_file = client.http.post(
        "/api/generation/image-to-3d",
        files={"file": ("disc.png", drawn_image(97))},
        data={"seed": "3"},
        headers=key,
    )
    assert other_file.status_code == 409
    history = client.http.get(
        "/api/generation/jobs", params={"asset_id": first.json()["asset_id"]}
    ).json()
    assert history["total"] == 1


def test_a_key_raced_by_parallel_requests_makes_one_job(client):
    key = {"Idempotency-Key": f"race-{IMAGE[-6:].hex()}-{threading.get_ident()}"}

    def send(_: int):  # type: ignore[no-untyped-def]
        return client.http.post(
            "/api/generation/image-to-3d", files={"file": ("d.png", IMAGE)}, headers=key
        )

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    assert {a.status_code for a in answers} == {202}, [a.text for a in answers]
    assert len({a.json()["job_id"] for a in answers}) == 1


def test_keys_are_per_api_key(client):
    key = {"Idempotency-Key": "shared-key-name"}
    files = {"file": ("d.png", IMAGE)}
    alice = client.as_key(KEYS["alice"][0]).http.post(
        "/api/generation/image-to-3d", files=files, headers=key
    )
    bob = client.as_key(KEYS["bob"][0]).http.post(
        "/api/generation/image-to-3d", files=files, headers=key
    )
    assert alice.json()["job_id"] != bob.json()["job_id"]


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


def test_a_bad_webhook_url_is_a_422(client):
    for url in ["ftp://x/y", "not a url", "http://"]:
        response = client.submit(IMAGE, webhook_url=url)
        assert response.status_code == 422, response.text
        assert "webhook_url" in response.json()["detail"]


def test_a_webhook_to_an_inside_address_is_a_422_naming_the_rule(client):
    """The app allows 127.0.0.0/8 (its test receivers); every other inside address is refused
    before a job exists, so nothing is ever sent there."""
    before = client.http.get("/api/generation/jobs").json()["total"]
    for url, rule in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1:8080/hook", "private"),
        ("http://[::1]:8000/api/assets", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
    ]:
        response = client.submit(IMAGE, webhook_url=url)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "webhook_destination_refused" and rule in body["detail"], body
    assert client.http.get("/api/generation/jobs").json()["total"] == before


def test_a_rotated_webhook_secret_signs_the_next_delivery(deployment, client):
    """A new WEBHOOK_SECRET and a redeploy on the same cluster: the queue that signs is
    replaced (its settings changed, secrets included), so the next delivery carries the new
    signature. The app is deployed back with the old secret after."""
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
        deployment.deploy()

    [(headers, body)] = receiver.calls
    assert verify(rotated, body, headers["X-Sweedle-Signature"])
    assert not verify(WEBHOOK_SECRET, body, headers["X-Sweedle-Signature"])
