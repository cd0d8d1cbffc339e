"""The real model libraries in the real Serve app, on tiny models the tests build.

A second Sweedle app runs beside the session's one (its own route prefix, database and queue
actor) with the ``hunyuan3d`` generator on a tiny random Hunyuan3D-2-style model, rembg on a
tiny ONNX segmenter, and a tiny diffusers text-to-image pipeline. Random weights can miss the
surface for a seed: those jobs must fail saying so, and the tests then try the next seed.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygltflib
import pytest
import trimesh
from PIL import Image, ImageDraw
from ray import serve

from deployments.app import AppArgs, build_app
from tests.gltf_check import validate_gltf
from tests.scenes import draw_scene
from tests.serve.client import Feed, Sweedle

pytest.importorskip("hy3dgen.shapegen", reason="needs the hunyuan extra and hy3dgen")
pytest.importorskip("rembg", reason="needs the rembg extra")
pytest.importorskip("diffusers", reason="needs the hunyuan extra")

from tests.models.tiny_depth import build_tiny_depth  # noqa: E402
from tests.models.tiny_diffusers import build_tiny_text_to_image  # noqa: E402
from tests.models.tiny_hunyuan import SUBFOLDER, build_tiny_hunyuan  # noqa: E402
from tests.models.tiny_onnx import build_tiny_segmenter  # noqa: E402

NO_SURFACE = "no surface"
SEEDS = range(1, 9)


def start_app(deployment: Any, name: str, data: Path, **settings: Any) -> Sweedle:
    base = {
        "database_url": f"sqlite+aiosqlite:///{data / 'sweedle.db'}",
        "storage_dir": str(data / "storage"),
        "queue_actor_name": f"sweedle_queue_{name}",
        "preprocess_size": 128,
        "thumbnail_size": 64,
        "reconcile_interval_s": 5,
    }
    args = AppArgs(settings={**base, **settings})
    serve.run(build_app(args), name=name, route_prefix=f"/{name}")
    return Sweedle(f"http://127.0.0.1:{deployment.port}/{name}")


def wait_for_generator(client: Sweedle, states: set[str]) -> dict[str, Any]:
    def settled(status: dict[str, Any]) -> bool:
        return any(g["state"] in states for g in status["generators"].values())

    with client.feed() as feed:
        if settled(feed.snapshot):
            return feed.snapshot
        return feed.wait_for(lambda e: e["type"] == "queue_status" and settled(e), timeout=180)


@pytest.fixture(scope="module")
def models(deployment: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweedle]:
    data = tmp_path_factory.mktemp("models")
    u2net_home = data / "u2net"
    u2net_home.mkdir()
    client = start_app(
        deployment,
        "models",
        data,
        generator_backend="hunyuan3d",
        hunyuan_model_path=str(build_tiny_hunyuan(data / "hunyuan")),
        hunyuan_subfolder=SUBFOLDER,
        default_inference_steps=3,
        default_octree_resolution=48,
        default_max_faces=4000,
        rembg_model_file=str(build_tiny_segmenter(u2net_home / "tiny-segmenter.onnx")),
        u2net_home=str(u2net_home),
        text_to_image_model=str(build_tiny_text_to_image(data / "text-to-image")),
        text_to_image_size=64,
        text_to_image_steps=4,
    )
    wait_for_generator(client, {"idle"})
    yield client
    serve.delete("models")


def busy_photo(seed: int = 0) -> bytes:
    """A red disc on green-and-blue noise: no uniform border, so only a model can cut it out."""
    rng = random.Random(seed)
    image = Image.new("RGB", (160, 160))
    image.putdata(
        [
            (rng.randrange(0, 60), rng.randrange(80, 255), rng.randrange(80, 255))
            for _ in range(160 * 160)
        ]
    )
    ImageDraw.Draw(image).ellipse((40, 30, 120, 130), fill=(230, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def generate_until_surface(
    client: Sweedle, submit: Any, feed: Feed
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Submit with seed after seed until one finds a surface; every miss must say why."""
    for seed in SEEDS:
        job_id = submit(seed)["job_id"]
        final = feed.wait_finished({job_id}, timeout=180)[job_id]
        if final["type"] == "asset_ready":
            return client.job(job_id), feed.events_of(job_id)
        assert final["type"] == "job_failed", final
        assert NO_SURFACE in final["error"], final["error"]
    pytest.fail(f"no seed in {list(SEEDS)} gave a surface")


def assert_steps_in_order(events: list[dict[str, Any]], prefix: str, steps: int) -> None:
    """Every step's event came, once and in order (a worker keeps one report in flight)."""
    shown = [
        int(e["message"].split()[-1].split("/")[0])
        for e in events
        if e["message"].startswith(prefix)
    ]
    assert shown == list(range(1, steps + 1)), shown


def assert_valid_glb_with_faces(client: Sweedle, asset_id: str, folder: Path) -> None:
    response = client.http.get(f"/api/assets/{asset_id}/download")
    assert response.status_code == 200, response.text
    pygltflib.GLTF2.load_from_bytes(response.content)  # a well-formed glTF container
    mesh = trimesh.load(io.BytesIO(response.content), file_type="glb", force="mesh")
    assert len(mesh.faces) > 0
    path = folder / f"{asset_id}.glb"
    path.write_bytes(response.content)
    report = validate_gltf(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]


def test_tiny_hunyuan_model_generates_through_the_app_with_step_progress(
    models: Sweedle, tmp_path: Path
) -> None:
    health = models.http.get("/health").json()
    assert health["generation"]["state"] == "ready", health
    assert health["preprocessing"]["background_remover"] == "rembg:custom:tiny-segmenter.onnx"

    with models.feed() as feed:
        job, events = generate_until_surface(
            models,
            lambda seed: models.submit_ok(busy_photo(), seed=seed, max_faces=3000, texture=True),
            feed,
        )

    assert job["status"] == "completed"
    # rembg ran on the tiny segmenter in the preprocessing replica.
    assert job["background_method"] == "rembg:custom:tiny-segmenter.onnx"
    assert_steps_in_order(events, "denoising step", 3)
    asset = models.http.get(f"/api/assets/{job['asset_id']}").json()
    assert asset["generator"] == "hunyuan3d"
    # No CUDA here: texture=true falls back to the photo's colours, and the asset says so.
    assert asset["texture_method"] == "image_projection"
    assert 0 < asset["face_count"] <= 3000
    assert_valid_glb_with_faces(models, job["asset_id"], tmp_path)


def test_cancelling_mid_generation_stops_the_denoising_loop(models: Sweedle) -> None:
    steps = 200
    with models.feed() as feed:
        job_id = models.submit_ok(busy_photo(), inference_steps=steps, seed=1)["job_id"]
        feed.wait_for(
            lambda e: e.get("job_id") == job_id and e["message"].startswith("denoising step"),
            timeout=120,
        )
        assert models.http.delete(f"/api/generation/jobs/{job_id}").status_code == 200
        final = feed.wait_finished({job_id})[job_id]

    assert final["type"] == "job_cancelled"
    reported = [e["message"] for e in feed.events_of(job_id)]
    assert f"denoising step {steps}/{steps}" not in reported
    assert models.job(job_id)["status"] == "cancelled"


def test_text_to_3d_paints_the_prompt_then_generates(models: Sweedle, tmp_path: Path) -> None:
    def submit(seed: int) -> dict[str, Any]:
        response = models.http.post(
            "/api/generation/text-to-3d",
            json={"prompt": "a small red teapot", "seed": seed, "priority": "high"},
        )
        assert response.status_code == 202, response.text
        return response.json()

    with models.feed() as feed:
        job, events = generate_until_surface(models, submit, feed)

    assert_steps_in_order(events, "painting step", 4)
    stages = [e["stage"] for e in events if e["type"] == "progress"]
    assert stages.index("preprocessing") < stages.index("generating")
    asset = models.http.get(f"/api/assets/{job['asset_id']}").json()
    assert (asset["source_type"], asset["prompt"]) == ("text", "a small red teapot")
    assert_valid_glb_with_faces(models, job["asset_id"], tmp_path)


def test_absent_weights_say_where_they_were_looked_for_in_health_and_the_job(
    deployment: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp("noweights")
    weights = data / "weights"
    client = start_app(
        deployment,
        "noweights",
        data,
        generator_backend="hunyuan3d",
        hunyuan_model_path=str(weights),
        hunyuan_subfolder=SUBFOLDER,
        generator_fallback=False,
    )
    try:
        wait_for_generator(client, {"unavailable"})
        health = client.http.get("/health").json()["generation"]
        assert health["state"] == "unavailable"
        assert str(weights / SUBFOLDER) in health["detail"]

        with client.feed() as feed:
            job_id = client.submit_ok(busy_photo())["job_id"]
            final = feed.wait_finished({job_id}, timeout=120)[job_id]
        assert final["type"] == "job_failed"
        job = client.job(job_id)
        assert job["status"] == "failed"
        assert "generation unavailable" in job["error"]
        assert str(weights / SUBFOLDER) in job["error"]
    finally:
        serve.delete("noweights")


def test_without_its_weights_the_gpu_backend_runs_the_depth_fallback_and_says_so(
    deployment: Any, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    data = tmp_path_factory.mktemp("fallback")
    client = start_app(
        deployment,
        "fallback",
        data,
        generator_backend="hunyuan3d",
        hunyuan_model_path=str(data / "no-weights"),
        hunyuan_subfolder=SUBFOLDER,
        depth_model=str(build_tiny_depth(data / "depth")),
        rembg_model="none",
        default_octree_resolution=64,
    )
    try:
        wait_for_generator(client, {"idle"})
        health = client.http.get("/health").json()
        assert health["generation"]["configured"] == "hunyuan3d"
        assert health["generation"]["running"] == ["depth"]
        assert "hunyuan3d:" in health["generation"]["fallback"]
        assert str(data / "no-weights") in health["generation"]["fallback"]
        assert health["preprocessing"]["model"] is None
        assert health["preprocessing"]["fallback"] == "flood_fill or grabcut"
        assert "REMBG_MODEL=none" in health["preprocessing"]["note"]
        assert health["export"]["thumbnails"] in {"opengl", "numpy"}

        photo, _ = draw_scene(0)  # an object on a wood-grain background
        buffer = io.BytesIO()
        photo.save(buffer, "PNG")
        with client.feed() as feed:
            job_id = client.submit_ok(buffer.getvalue())["job_id"]
            final = feed.wait_finished({job_id}, timeout=180)[job_id]
        assert final["type"] == "asset_ready", final
        job = client.job(job_id)
        asset = client.http.get(f"/api/assets/{job['asset_id']}").json()
        assert job["background_method"] == asset["background_method"] == "grabcut"
        assert asset["generator"] == "depth"
        assert asset["texture_method"] == "image_projection"
        assert_valid_glb_with_faces(client, job["asset_id"], tmp_path)
    finally:
        serve.delete("fallback")
