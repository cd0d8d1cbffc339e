"""Idempotent submission: the same Idempotency-Key with the same request gives the first job
back, never a second one; with another request it is a 409."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.app_settings import KEYS
from tests.conftest import drawn_image

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
