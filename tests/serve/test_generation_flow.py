"""Photo in, GLB out, through the real Serve app: REST, WebSocket, Ray and SQLite."""

from __future__ import annotations

import io

import pygltflib
import trimesh
from PIL import Image

from tests.conftest import drawn_image


def test_upload_streams_progress_and_yields_a_glb_with_thumbnail(client):
    with client.feed() as feed:
        submitted = client.submit_ok(drawn_image(), name="red disc", octree_resolution=96)
        job_id = submitted["job_id"]
        feed.wait_finished({job_id})

    events = [e for e in feed.events_of(job_id) if e["type"] != "queue_status"]
    types = [e["type"] for e in events]
    assert types[0] == "job_created"
    assert types[-1] == "asset_ready"
    assert set(types[1:-1]) == {"progress"}
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), [(e["stage"], e["progress"], e["message"]) for e in events]
    assert progress[-1] == 1.0
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    for stage in ("preprocessing", "waiting_for_gpu", "generating", "exporting"):
        assert stage in stages

    job = client.job(job_id)
    assert job["status"] == "completed"
    assert job["attempts"] == 1
    assert job["background_method"] == "flood_fill"
    assert {"preprocess_s", "generate_s", "export_s"} <= set(job["timings"])

    asset = client.http.get(f"/api/assets/{submitted['asset_id']}").json()
    assert asset["status"] == "completed"
    assert asset["name"] == "red disc"
    assert asset["background_method"] == "flood_fill"  # as the job that made it says
    assert asset["generator"] == "gated-silhouette"  # what ran, not the backend named
    assert asset["face_count"] > 1000

    model = client.follow(asset["download_url"])
    assert model.status_code == 200
    assert model.headers["content-type"] == "model/gltf-binary"
    mesh = trimesh.load(io.BytesIO(model.content), file_type="glb", force="mesh")
    assert len(mesh.faces) == asset["face_count"] > 1000
    gltf = pygltflib.GLTF2.load_from_bytes(model.content)
    attributes = gltf.meshes[0].primitives[0].attributes
    assert attributes.NORMAL is not None and attributes.TEXCOORD_0 is not None
    assert attributes.COLOR_0 is None, "the photo is baked into a UV texture, not vertex colours"
    assert gltf.materials[0].pbrMetallicRoughness.baseColorTexture is not None

    thumbnail = client.follow(asset["thumbnail_url"])
    assert thumbnail.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(thumbnail.content))
    assert image.size == (96, 96)

    listing = client.http.get("/api/assets", params={"page_size": 5}).json()
    assert submitted["asset_id"] in {a["id"] for a in listing["items"]}
    assert listing["total"] >= 1


def test_health_and_queue_status_report_a_ready_generator(client):
    health = client.http.get("/health").json()
    assert health["status"] == "ok"
    assert health["generation"]["state"] == "ready"
    status = client.http.get("/api/generation/queue/status").json()
    assert set(status["queue_depth"]) == {"high", "normal", "low"}
    assert any(g["state"] in ("idle", "generating") for g in status["generators"].values())
