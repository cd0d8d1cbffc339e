"""The export API on a generated asset: formats, LODs, Draco, engine bundles, validation,
thumbnails, with progress on the feed and unsafe project paths refused."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import trimesh
from PIL import Image

from tests.conftest import drawn_image
from tests.glb_files import decode_draco_glb
from tests.gltf_check import validate_gltf
from tests.serve.client import Sweedle


@pytest.fixture(scope="module")
def asset(deployment: Any) -> dict[str, Any]:
    """One completed asset the tests export again and again."""
    client: Sweedle = deployment.client
    with client.feed() as feed:
        job_id = client.submit_ok(drawn_image(), name="Red Disc", octree_resolution=64)["job_id"]
        final = feed.wait_finished({job_id})[job_id]
    assert final["type"] == "asset_ready", final
    return client.http.get(f"/api/assets/{client.job(job_id)['asset_id']}").json()


def download(client: Sweedle, asset_id: str, **query: Any) -> bytes:
    response = client.http.get(f"/api/assets/{asset_id}/download", params=query)
    assert response.status_code == 200, response.text
    return response.content


def assert_valid_glb(data: bytes, folder: Path, name: str) -> None:
    path = folder / name
    path.write_bytes(data)
    report = validate_gltf(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]


def test_the_default_chain_left_lods_a_report_and_a_valid_glb(client, asset, tmp_path) -> None:
    levels = [lod["level"] for lod in asset["lods"]]
    assert levels == [1.0, 0.5, 0.25, 0.1]
    full = asset["lods"][0]["faces"]
    for lod in asset["lods"][1:]:
        assert abs(lod["faces"] / full - lod["level"]) <= 0.05, asset["lods"]
    report = client.http.get(f"/api/export/{asset['id']}/validate").json()
    assert report["faces"] == asset["face_count"] and report["winding"] == "outward"
    assert_valid_glb(download(client, asset["id"]), tmp_path, "model.glb")
    lod2 = trimesh.load(io.BytesIO(download(client, asset["id"], lod=2)), file_type="glb")
    assert len(lod2.triangles) == asset["lods"][2]["faces"]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [("obj", ".obj.zip"), ("ply", ".ply"), ("stl", ".stl"), ("usdz", ".usdz"), ("gltf", ".zip")],
)
def test_every_format_downloads_and_reloads(client, asset, fmt, expected, tmp_path) -> None:
    response = client.http.get(f"/api/assets/{asset['id']}/download", params={"format": fmt})

    assert response.status_code == 200, response.text
    assert expected in response.headers["content-disposition"]
    if fmt in ("gltf", "obj"):  # textured: the model and its texture files, as one zip
        files = zipfile.ZipFile(io.BytesIO(response.content))
        names = set(files.namelist())
        main = {"gltf": {"model.gltf", "model.bin"}, "obj": {"model.obj", "model.mtl"}}[fmt]
        assert main <= names and any(name.endswith(".png") for name in names), names
        files.extractall(tmp_path)
        mesh = trimesh.load(tmp_path / f"model.{fmt}", force="mesh")
        assert len(mesh.faces) == asset["face_count"]
        assert isinstance(mesh.visual, trimesh.visual.TextureVisuals), "the texture came along"
    elif fmt != "usdz":
        mesh = trimesh.load(io.BytesIO(response.content), file_type=fmt, force="mesh")
        assert len(mesh.faces) == asset["face_count"]


def test_draco_decodes_to_the_same_faces_and_is_smaller(client, asset, tmp_path) -> None:
    plain = download(client, asset["id"])
    draco = download(client, asset["id"], draco="true")

    assert len(draco) < len(plain) / 3
    assert_valid_glb(draco, tmp_path, "draco.glb")
    assert len(decode_draco_glb(draco).faces) == asset["face_count"]


def test_rebuilding_lods_reports_progress_in_order(client, asset) -> None:
    with client.feed() as feed:
        response = client.http.post(f"/api/export/{asset['id']}/lods", json={"levels": [1, 0.3]})
        assert response.status_code == 200, response.text
        feed.wait_for(lambda e: e["type"] == "export_progress" and e["progress"] == 1.0)

    lods = response.json()
    assert [lod["level"] for lod in lods] == [1.0, 0.3]
    assert lods[1]["download_url"] == f"/api/assets/{asset['id']}/download?lod=1"
    progress = [e["progress"] for e in feed.seen if e["type"] == "export_progress"]
    assert progress == sorted(progress) and len(progress) >= 2


def test_engine_bundles_download_as_zips_with_their_manifest(client, asset) -> None:
    for engine, root in [
        ("unity", "Assets/Sweedle/Red_Disc"),
        ("unreal", "Content/Sweedle/Red_Disc"),
        ("godot", "Red_Disc"),
    ]:
        response = client.http.post(f"/api/export/{asset['id']}/engine", json={"engine": engine})
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["written"] == []
        archive = client.follow(result["download_url"])
        assert archive.status_code == 200
        names = set(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
        assert f"{root}/manifest.json" in names, names
        assert {f["path"] for f in result["manifest"]["files"]} <= names


def test_a_bundle_is_written_into_an_allowed_project_and_unsafe_paths_are_refused(
    client, asset, deployment, tmp_path
) -> None:
    project = deployment.projects / "game"
    project.mkdir(exist_ok=True)
    ok = client.http.post(
        f"/api/export/{asset['id']}/engine", json={"engine": "godot", "project_path": str(project)}
    )
    assert ok.status_code == 200, ok.text
    assert (project / "Red_Disc" / "Red_Disc.glb").is_file()
    # Paths relative to the allowed root: the answer names no folder of the server's.
    assert "game/Red_Disc/Red_Disc.glb" in ok.json()["written"]
    assert not any(p.startswith("/") for p in ok.json()["written"])

    outside = tmp_path / "outside"
    outside.mkdir()
    (deployment.projects / "planted").symlink_to(outside, target_is_directory=True)
    for path in [str(outside), str(deployment.projects / ".." / "x"), "planted"]:
        refused = client.http.post(
            f"/api/export/{asset['id']}/engine", json={"engine": "godot", "project_path": path}
        )
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"] == "unsafe_path"
    assert list(outside.iterdir()) == []


def test_a_thumbnail_at_another_size(client, asset) -> None:
    response = client.http.post(f"/api/export/{asset['id']}/thumbnail", json={"size": 128})

    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (128, 128)


def test_bad_export_requests_are_named_4xx(client, asset) -> None:
    base = f"/api/assets/{asset['id']}/download"
    cases = [
        (client.http.get(base, params={"format": "fbx"}), 422),
        (client.http.get(base, params={"format": "obj", "draco": "true"}), 422),
        (client.http.get(base, params={"lod": 7}), 422),
        (client.http.post(f"/api/export/{asset['id']}/lods", json={"levels": [0.5, 1]}), 422),
        (client.http.post(f"/api/export/{asset['id']}/engine", json={"engine": "cry"}), 422),
        (client.http.post(f"/api/export/{'0' * 32}/lods", json={}), 404),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["detail"]
