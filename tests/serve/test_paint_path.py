"""A textured job on a generator that paints, through the real app: the shape on a GPU, the
unwrapping in the CPU pool, the painting on a GPU again, the filling and export in the pool.
(The test app's generator paints with `tests.painting.FrontPainter`; Hunyuan3D's needs CUDA.)"""

from __future__ import annotations

import numpy as np

from sweedle_core.export.texture_maps import BASE_COLOR
from tests.conftest import drawn_image
from tests.glb_files import read_glb
from tests.gltf_check import validate_gltf
from tests.textures import glb_maps, is_flat


def test_a_textured_job_is_painted_on_a_second_gpu_visit_and_completes_once(client, tmp_path):
    with client.feed() as feed:
        submitted = client.submit_ok(drawn_image(), texture="true", octree_resolution=64)
        job_id = submitted["job_id"]
        final = feed.wait_finished({job_id})[job_id]
        events = feed.events_of(job_id)

    assert final["type"] == "asset_ready", final
    assert [e["type"] for e in events].count("asset_ready") == 1
    progress = [e for e in events if e["type"] == "progress"]
    stages = [e["stage"] for e in progress]
    visits = [s for before, s in zip(["", *stages], stages, strict=False) if s != before]
    assert visits[-5:] == ["generating", "exporting", "waiting_for_gpu", "generating", "exporting"]
    assert [e["progress"] for e in progress] == sorted(e["progress"] for e in progress)
    assert any("paint the texture" in e["message"] for e in progress)
    assert any(e["message"].startswith("painting the texture") for e in progress)

    asset = client.http.get(f"/api/assets/{submitted['asset_id']}").json()
    assert asset["texture_method"] == "hunyuan3d_paint"
    job = client.job(job_id)
    assert job["status"] == "completed" and "paint_s" in job["timings"], job
    model = client.follow(asset["download_url"]).content
    (tmp_path / "painted.glb").write_bytes(model)
    assert validate_gltf(tmp_path / "painted.glb")["issues"]["numErrors"] == 0
    document, _ = read_glb(model)
    base_color = glb_maps(model)[BASE_COLOR]
    assert "TEXCOORD_0" in document["meshes"][0]["primitives"][0]["attributes"]
    assert not is_flat(base_color)
    # The stand-in paints by position: red rises with x across the texture's painted texels.
    assert np.asarray(base_color.convert("RGB"))[..., 0].std() > 20
