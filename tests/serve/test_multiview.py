"""Several photos of one object, through the real app: POST /api/generation/multiview-to-3d."""

from __future__ import annotations

import io

import trimesh

from tests.conftest import box_photo, drawn_image
from tests.gltf_check import validate_gltf


def test_a_box_photographed_front_and_side_comes_back_box_shaped(client, tmp_path):
    """Front 0.5 wide, left side 0.25 deep, both 0.8 high: the silhouette backend carves the
    visual hull of the two outlines, so the mesh has the box's proportions in all three axes
    (one photo would give an inflated, rounded depth)."""
    with client.feed() as feed:
        views = {"front": box_photo(0.5), "left": box_photo(0.25)}
        response = client.submit_views(views, octree_resolution=96)
        assert response.status_code == 202, response.text
        submitted = response.json()
        feed.wait_finished({submitted["job_id"]})

    job = client.job(submitted["job_id"])
    assert job["status"] == "completed", job
    asset = client.http.get(f"/api/assets/{submitted['asset_id']}").json()
    assert asset["views"] == ["front", "left"]
    model = client.follow(asset["download_url"]).content
    (tmp_path / "box.glb").write_bytes(model)
    assert validate_gltf(tmp_path / "box.glb")["issues"]["numErrors"] == 0
    mesh = trimesh.load(io.BytesIO(model), file_type="glb", force="mesh")
    width, height, depth = mesh.extents
    assert abs(height - 1.0) < 0.05  # the larger of width and height is 1
    assert abs(width / height - 0.5 / 0.8) < 0.06
    assert abs(depth / height - 0.25 / 0.8) < 0.06, mesh.extents
    # Box-shaped: it fills its bounding box, as a box does (an inflated solid fills ~0.5).
    assert mesh.volume / (width * height * depth) > 0.9


def test_one_view_through_the_multiview_route_is_an_ordinary_job(client):
    with client.feed() as feed:
        response = client.submit_views({"front": drawn_image()}, octree_resolution=96)
        assert response.status_code == 202, response.text
        submitted = response.json()
        final = feed.wait_finished({submitted["job_id"]})[submitted["job_id"]]
    assert final["type"] == "asset_ready"
    asset = client.http.get(f"/api/assets/{submitted['asset_id']}").json()
    assert asset["views"] == ["front"]
