"""The whole app on PostgreSQL: a second Sweedle app beside the session's one, on a database of
its own on the server TEST_DATABASE_URL names (CI: 127.0.0.1:5432), through Ray end to end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from ray import serve
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from deployments.app import AppArgs, build_app
from tests.conftest import drawn_image
from tests.serve.client import Sweedle
from tests.serve.conftest import KEYS, WEBHOOK_SECRET, write_keys_file
from tests.serve.test_idempotency_and_webhooks import Receiver

NAME = "postgres"
IMAGE = drawn_image(96)


def _server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        pytest.skip("PostgreSQL: TEST_DATABASE_URL is not set")
    return url


def _admin(url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database on the test server, dropped afterwards."""
    server = _server_url()
    name = f"sweedle_app_{uuid.uuid4().hex[:8]}"
    try:
        _admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # unreachable server: say so plainly
        pytest.skip(f"PostgreSQL at {make_url(server).render_as_string()} is unusable: {exc}")
    yield make_url(server).set(database=name).render_as_string(hide_password=False)
    _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def pg(deployment: Any, database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("postgres")
    queue_name = f"sweedle_queue_{NAME}"
    settings = {
        "database_url": database,
        "storage_dir": str(data / "storage"),
        "queue_actor_name": queue_name,
        "generator_backend": "silhouette",
        "default_octree_resolution": 48,
        "preprocess_size": 128,
        "thumbnail_size": 64,
        "api_keys_file": str(write_keys_file(data / "keys.json")),
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_backoff_s": 0.2,
    }
    serve.run(build_app(AppArgs(settings=settings)), name=NAME, route_prefix=f"/{NAME}")
    client = Sweedle(f"http://127.0.0.1:{deployment.port}/{NAME}", KEYS["alice"][0])
    yield client, data / "storage"
    serve.delete(NAME)
    # The queue actor is detached: it would keep its connections to the database open.
    ray.kill(ray.get_actor(queue_name, namespace="sweedle"), no_restart=True)


def test_a_job_runs_through_ray_on_postgresql_and_the_library_finds_it(pg):
    client, storage = pg
    receiver = Receiver(failures=1)
    key = {"Idempotency-Key": "pg-order-1"}
    try:
        with client.feed() as feed:
            files = {"file": ("crate.png", IMAGE)}
            data = {"name": "50% crate_A", "webhook_url": receiver.url}
            first = client.http.post(
                "/api/generation/image-to-3d", files=files, data=data, headers=key
            )
            assert first.status_code == 202, first.text
            again = client.http.post(
                "/api/generation/image-to-3d", files=files, data=data, headers=key
            )
            assert again.json()["job_id"] == first.json()["job_id"]
            job_id, asset_id = first.json()["job_id"], first.json()["asset_id"]
            final = feed.wait_finished({job_id})[job_id]
            assert final["type"] == "asset_ready", final
            feed.wait_for(lambda e: e["type"] == "webhook_attempt" and e["status"] == "delivered")
    finally:
        receiver.close()

    job = client.job(job_id)
    assert job["status"] == "completed" and job["owner"] == "alice"
    assert [a["status_code"] for a in job["webhooks"][0]["log"]] == [500, 200]

    edited = client.http.patch(f"/api/assets/{asset_id}", json={"tags": ["Wood"]})
    assert edited.status_code == 200, edited.text
    page = client.http.get("/api/assets", params={"search": "50% crate_", "tags": "wood"}).json()
    assert [a["id"] for a in page["items"]] == [asset_id] and page["total"] == 1
    assert client.http.get("/api/assets", params={"search": "50%_crate"}).json()["total"] == 0
    assert {t["name"]: t["count"] for t in client.http.get("/api/assets/tags").json()} == {
        "wood": 1
    }
    history = client.http.get("/api/generation/jobs", params={"status": "completed"}).json()
    assert [j["id"] for j in history["items"]] == [job_id]
    bob = client.as_key(KEYS["bob"][0])
    assert bob.http.get(f"/api/assets/{asset_id}").status_code == 404

    download = client.http.get(f"/api/assets/{asset_id}/download")
    assert download.status_code == 200 and download.content[:4] == b"glTF"
    assert client.http.delete(f"/api/assets/{asset_id}").status_code == 204
    assert not (Path(storage) / asset_id).exists()
    assert client.http.get(f"/api/assets/{asset_id}").status_code == 404
