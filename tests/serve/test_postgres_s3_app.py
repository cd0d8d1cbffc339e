"""The whole app as a cluster runs it: a second Sweedle app beside the session's one, on a
PostgreSQL database of its own on the server TEST_DATABASE_URL names (CI: 127.0.0.1:5432) and
with every file in S3 (the session's SeaweedFS server), through Ray end to end. Its storage
folder must stay empty: nothing may pass through a local folder."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray
from playwright.sync_api import expect
from ray import serve

from deployments.app import AppArgs, build_app
from tests.app_settings import KEYS, WEBHOOK_SECRET, write_keys_file
from tests.conftest import drawn_image
from tests.glb_files import decode_draco_glb
from tests.gltf_check import validate_gltf
from tests.serve.browser.conftest import guarded_page, open_chromium
from tests.serve.client import Sweedle
from tests.serve.test_webhooks import Receiver
from tests.stand_ins.postgres import fresh_database

NAME = "postgres"
IMAGE = drawn_image(96)


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def pg(deployment: Any, database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if deployment.s3 is None:
        pytest.skip("S3: the SeaweedFS test server cannot run here (see the storage tests)")
    data = tmp_path_factory.mktemp("postgres")
    queue_name = f"sweedle_queue_{NAME}"
    storage_url = deployment.s3.url(f"app-{uuid.uuid4().hex[:8]}")
    settings = {
        "database_url": database,
        "storage_url": storage_url,
        "storage_dir": str(data / "storage"),
        "export_formats": ["obj"],
        "queue_actor_name": queue_name,
        "generator_backend": "silhouette",
        "default_octree_resolution": 48,
        "preprocess_size": 128,
        "thumbnail_size": 64,
        "api_keys_file": str(write_keys_file(data / "keys.json", data / "projects")),
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_backoff_s": 0.2,
        "webhook_allowed_cidrs": ["127.0.0.0/8"],  # the test receivers listen there
    }
    serve.run(build_app(AppArgs(settings=settings)), name=NAME, route_prefix=f"/{NAME}")
    client = Sweedle(f"http://127.0.0.1:{deployment.port}/{NAME}", KEYS["alice"][0])
    yield client, data / "storage", deployment.s3.storage(storage_url)
    serve.delete(NAME)
    # The queue actor is detached: it would keep its connections to the database open.
    ray.kill(ray.get_actor(queue_name, namespace="sweedle"), no_restart=True)


def test_a_job_runs_through_ray_on_postgresql_and_s3_and_the_library_finds_it(pg, tmp_path):
    client, folder, objects = pg
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

    # Links come under the app's route prefix, and are followed as given (the webhook's too).
    assert first.json()["status_url"] == f"/{NAME}/api/generation/jobs/{job_id}"
    delivered = json.loads(receiver.calls[-1][1])
    assert client.follow(delivered["asset"]["thumbnail_url"]).content[:4] == b"\x89PNG"
    job = client.follow(first.json()["status_url"]).json()
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

    health = client.http.get("/health").json()
    assert health["status"] == "ok" and health["storage"]["backend"] == "s3", health["storage"]
    assert health["storage"]["state"] == "ok"

    # Every hand-off went through the bucket, none through a folder.
    stored = {key.split("/", 1)[1] for key in objects.list(asset_id)}
    assert {"input.png", "prepared.png", "raw_mesh.npz", "optimized.npz", "model.glb"} <= stored
    # A textured OBJ is three files (.obj, .mtl, .png), kept as one zip.
    assert {"model.obj.zip", "thumbnail.png", "validation.json", "lods/lod3.glb"} <= stored
    assert "shape.npz" not in stored, "the GPU stage's hand-off is removed once used"
    assert not [p for p in Path(folder).rglob("*") if p.is_file()]

    # Downloads stream from the bucket through the ingress.
    asset = client.http.get(f"/api/assets/{asset_id}").json()
    assert asset["download_url"].startswith(f"/{NAME}/api/")
    download = client.follow(asset["download_url"])
    assert download.status_code == 200 and download.content[:4] == b"glTF"
    assert download.headers["content-length"] == str(len(download.content))
    (tmp_path / "model.glb").write_bytes(download.content)
    assert validate_gltf(tmp_path / "model.glb")["issues"]["numErrors"] == 0
    thumbnail = client.follow(asset["thumbnail_url"])
    assert thumbnail.status_code == 200 and thumbnail.content[:4] == b"\x89PNG"
    lod2 = client.follow(asset["lods"][2]["download_url"])
    assert lod2.status_code == 200 and lod2.content[:4] == b"glTF"
    obj = client.http.get(f"/api/assets/{asset_id}/download", params={"format": "obj"})
    assert obj.status_code == 200
    with zipfile.ZipFile(io.BytesIO(obj.content)) as files:  # streamed back from the bucket
        assert b"\nf " in files.read("model.obj") and "model.mtl" in files.namelist()
    faces = client.http.get(f"/api/assets/{asset_id}").json()["face_count"]
    draco = client.http.get(f"/api/assets/{asset_id}/download", params={"draco": "true"})
    assert draco.status_code == 200 and len(decode_draco_glb(draco.content).faces) == faces
    bundle = client.http.post(f"/api/export/{asset_id}/engine", json={"engine": "godot"})
    assert bundle.status_code == 200, bundle.text
    archive = client.follow(bundle.json()["download_url"])
    assert archive.status_code == 200 and zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    stored = {key.split("/", 1)[1] for key in objects.list(asset_id)}
    assert {"exports/lod0/model.draco.glb", "exports/godot.zip"} <= stored

    assert client.http.delete(f"/api/assets/{asset_id}").status_code == 204
    assert objects.list(asset_id) == []
    assert client.http.get(f"/api/assets/{asset_id}").status_code == 404


def test_studio_works_under_the_apps_route_prefix(pg, tmp_path):
    """Studio served at /postgres/: its files, its API calls, the feed and the links it
    follows (the model, the thumbnails) all stay under the app's prefix, in a real browser."""
    client, _, _ = pg
    photo = tmp_path / "prefixed crate.png"
    photo.write_bytes(drawn_image(128, color=(150, 100, 60)))
    with open_chromium() as browser, guarded_page(browser, client.base_url) as (page, _):
        page.goto(f"{client.base_url}/")
        page.locator("#key-input").fill(KEYS["alice"][0])
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        page.locator("#photo").set_input_files(photo)
        page.get_by_role("button", name="Generate").click()

        job = page.locator("#jobs .job", has_text="prefixed crate")
        expect(job).to_have_attribute("data-status", "completed", timeout=180_000)
        made = client.http.get("/api/assets", params={"search": "prefixed crate"}).json()
        (asset,) = made["items"]
        expect(page.locator('[data-fact="triangles"]')).to_have_text(f"{asset['face_count']:,}")
        page.get_by_role("button", name="Library").click()
        card = page.locator(f'.card[data-asset-id="{asset["id"]}"]')
        expect(card.locator(".card-thumb")).to_have_attribute("src", re.compile("^blob:"))
