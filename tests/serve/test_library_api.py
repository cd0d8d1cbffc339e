"""The asset library through the running app: edit, tag, find, delete (files included)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import ray

from tests.conftest import drawn_image
from tests.serve.test_queueing import hold_generator

IMAGE = drawn_image(96)


def completed(client, **fields) -> dict:  # type: ignore[no-untyped-def]
    with client.feed() as feed:
        submitted = client.submit_ok(IMAGE, **fields)
        final = feed.wait_finished({submitted["job_id"]})[submitted["job_id"]]
    assert final["type"] == "asset_ready", final
    return client.http.get(f"/api/assets/{submitted['asset_id']}").json()


def test_patch_renames_retags_and_stores_metadata_then_the_library_finds_it(client):
    asset = completed(client, name="plain crate")
    marker = f"mk-{uuid.uuid4().hex[:8]}"
    response = client.http.patch(
        f"/api/assets/{asset['id']}",
        json={
            "name": f"Crate 50% {marker}",
            "tags": [" Wood ", "PROP", marker],
            "metadata": {"lod": "x"},
        },
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["name"] == f"Crate 50% {marker}"
    assert sorted(t["name"] for t in edited["tags"]) == sorted(["wood", "prop", marker])
    assert edited["metadata"] == {"lod": "x"}

    def found(**params) -> list[str]:  # type: ignore[no-untyped-def]
        page = client.http.get("/api/assets", params={"page_size": 100, **params})
        assert page.status_code == 200, page.text
        return [a["id"] for a in page.json()["items"]]

    assert found(search=f"50% {marker}") == [asset["id"]]
    assert found(search=marker, tags=["wood", "prop"]) == [asset["id"]]
    assert found(search=marker, tags=["wood", "metal"]) == []
    assert found(search=marker, status="failed") == []
    assert found(search=marker, source_type="image", sort_by="vertex_count") == [asset["id"]]

    tags = {t["name"]: t["count"] for t in client.http.get("/api/assets/tags").json()}
    assert tags[marker] == 1
    created = client.http.post("/api/assets/tags", json={"name": f"  New {marker} "})
    assert (created.status_code, created.json()) == (201, {"name": f"new-{marker}", "count": 0})
    assert client.http.post("/api/assets/tags", json={"name": f"new-{marker}"}).status_code == 200


def test_delete_removes_the_rows_and_every_file(client, deployment):
    asset = completed(client)
    client.http.post(f"/api/export/{asset['id']}/engine", json={"engine": "godot"})
    client.http.get(f"/api/assets/{asset['id']}/download", params={"format": "obj"})
    folder = deployment.storage_root / asset["id"]
    assert len(list(folder.rglob("*"))) > 5  # upload, meshes, LODs, thumbnail, bundle...

    deleted = client.http.delete(f"/api/assets/{asset['id']}")
    assert deleted.status_code == 204, deleted.text
    assert not folder.exists()
    assert not [p for p in deployment.storage_root.iterdir() if asset["id"] in p.name]
    assert client.http.get(f"/api/assets/{asset['id']}").status_code == 404
    history = client.http.get("/api/generation/jobs", params={"asset_id": asset["id"]}).json()
    assert history["total"] == 0
    assert client.http.delete(f"/api/assets/{asset['id']}").status_code == 404


def test_deleting_an_asset_whose_job_runs_cancels_the_job_first(client, gate, deployment):
    with client.feed() as feed:
        running = hold_generator(client, gate)
        waiting = client.submit_ok(IMAGE)
        feed.wait_for_each({waiting["job_id"]}, "progress", stage="waiting_for_gpu")
        asset_id = client.job(running)["asset_id"]

        assert client.http.delete(f"/api/assets/{waiting['asset_id']}").status_code == 204
        with ThreadPoolExecutor(1) as pool:
            deleting = pool.submit(client.http.delete, f"/api/assets/{asset_id}")
            # The DELETE has asked the job to stop; it stops at the generator's next step.
            feed.wait_for(lambda e: e.get("job_id") == running and e.get("cancel_requested"))
            assert not deleting.done()
            ray.get(gate.open.remote())
            assert deleting.result(timeout=60).status_code == 204
        finals = feed.wait_finished({running, waiting["job_id"]})

    assert {e["type"] for e in finals.values()} == {"job_cancelled"}
    for gone in (asset_id, waiting["asset_id"]):
        assert client.http.get(f"/api/assets/{gone}").status_code == 404
        assert not (deployment.storage_root / gone).exists()


def test_job_history_pages_and_filters(client):
    first = completed(client)
    page = client.http.get("/api/generation/jobs", params={"page_size": 1, "status": "completed"})
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] >= 1 and body["pages"] == body["total"] and len(body["items"]) == 1
    since = client.http.get(
        "/api/generation/jobs", params={"created_after": "2999-01-01T00:00:00Z"}
    ).json()
    assert since["total"] == 0
    by_asset = client.http.get("/api/generation/jobs", params={"asset_id": first["id"]}).json()
    assert [j["asset_id"] for j in by_asset["items"]] == [first["id"]]
    assert client.http.get("/api/generation/jobs", params={"status": "done"}).status_code == 422
