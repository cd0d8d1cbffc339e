"""The real hy3dgen pipeline on a tiny random Hunyuan3D-2-style model, outside Ray.

Loads through upstream's own ``from_pretrained`` and runs its denoising loop and surface
extraction on the CPU in fp32. Skipped where hy3dgen (the hunyuan extra) is not installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.errors import GenerationFailed, JobCancelled
from sweedle_core.export.texture_maps import texture_maps_of
from sweedle_core.params import GenerationParams

pytest.importorskip("hy3dgen.shapegen", reason="needs the hunyuan extra and hy3dgen")

from sweedle_core.generation.hunyuan import Hunyuan3DGenerator  # noqa: E402
from tests.generation import make_mesh
from tests.models.tiny_hunyuan import MV_SUBFOLDER, SUBFOLDER, build_tiny_hunyuan  # noqa: E402
from tests.textures import is_flat  # noqa: E402


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_hunyuan(tmp_path_factory.mktemp("tiny") / "Hunyuan3D-tiny")


@pytest.fixture(scope="module")
def generator(weights: Path) -> Hunyuan3DGenerator:
    return Hunyuan3DGenerator(str(weights), SUBFOLDER, device="cpu")


def disc() -> Image.Image:
    """Orange on the left, blue on the right."""
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((12, 8, 52, 56), fill=(200, 80, 40, 255))
    ImageDraw.Draw(image).pieslice((12, 8, 52, 56), -90, 90, fill=(30, 60, 200, 255))
    return image


def generate(generator: Hunyuan3DGenerator, seed: int, **values: object) -> trimesh.Trimesh:
    wanted = {"inference_steps": 2, "octree_resolution": 48, "max_faces": 3000, **values}
    params = GenerationParams(seed=seed, **wanted)
    return make_mesh(generator, disc(), params, lambda f, m: None, texture_size=256)


def first_surface(generator: Hunyuan3DGenerator, **values: object) -> tuple[int, trimesh.Trimesh]:
    """Random weights miss the surface for some seeds: those must fail saying so."""
    for seed in range(1, 9):
        try:
            return seed, generate(generator, seed, **values)
        except GenerationFailed as exc:
            assert "no surface" in exc.message
    pytest.fail("no seed in 1-8 gave a surface")


def test_the_tiny_model_folder_is_small(weights: Path) -> None:
    size = sum(f.stat().st_size for f in (weights / SUBFOLDER).iterdir())
    assert size < 1_000_000


def test_same_seed_same_mesh_and_another_seed_another_mesh(
    generator: Hunyuan3DGenerator,
) -> None:
    seed, first = first_surface(generator)
    again = generate(generator, seed)

    assert np.array_equal(first.vertices, again.vertices)
    assert np.array_equal(first.faces, again.faces)
    for other in range(seed + 1, seed + 9):
        try:
            different = generate(generator, other)
        except GenerationFailed:
            continue
        assert not np.array_equal(first.vertices, different.vertices)
        break


def test_the_mesh_is_clean_coloured_and_within_the_face_budget(
    generator: Hunyuan3DGenerator,
) -> None:
    _, mesh = first_surface(generator, max_faces=1500, texture=True)

    assert 0 < len(mesh.faces) <= 1500
    assert len(mesh.split(only_watertight=False)) >= 1
    assert mesh.metadata["texture"] == "image_projection"
    textures = texture_maps_of(mesh)
    assert textures is not None, mesh.metadata.get("texture_fallback")
    assert textures.base_color.size == (256, 256) and not is_flat(textures.base_color)


def test_cancelling_at_a_step_stops_the_real_denoising_loop(
    generator: Hunyuan3DGenerator,
) -> None:
    steps: list[str] = []

    def cancel_at_third(fraction: float, message: str) -> None:
        steps.append(message)
        if message == "denoising step 3/50":
            raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        generator.generate_shape(disc(), GenerationParams(inference_steps=50), cancel_at_third)
    assert steps[-1] == "denoising step 3/50"


def test_low_vram_mode_decodes_with_flashvdm_on_the_cpu(weights: Path) -> None:
    generator = Hunyuan3DGenerator(str(weights), SUBFOLDER, device="cpu", low_vram=True)

    assert generator.flashvdm
    _, mesh = first_surface(generator)
    assert len(mesh.faces) > 0


def side() -> Image.Image:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((24, 8, 40, 56), fill=(180, 90, 50, 255))
    return image


def test_the_multiview_model_is_conditioned_on_every_view(tmp_path: Path) -> None:
    """A tiny Hunyuan3D-2mv-style model (per-view embeddings, a dict of views) through
    hy3dgen's own multi-view path: different side photos give different shapes."""
    root = build_tiny_hunyuan(tmp_path / "Hunyuan3D-tiny-mv", multiview=True)
    generator = Hunyuan3DGenerator(str(root), MV_SUBFOLDER, device="cpu")
    assert generator.multiview
    params = GenerationParams(inference_steps=2, octree_resolution=32)
    messages: list[str] = []

    front_only = generator.generate_shape(disc(), params, lambda f, m: None)
    with_sides = generator.generate_shape(
        disc(),
        params,
        lambda f, m: messages.append(m),
        views={"front": disc(), "left": side(), "back": disc()},
    )

    assert messages[0] == "encoding 3 views: front, left, back"
    assert not np.array_equal(front_only.arrays["grid"], with_sides.arrays["grid"])


def test_a_one_view_model_given_several_views_uses_the_front_and_says_so(
    generator: Hunyuan3DGenerator,
) -> None:
    assert not generator.multiview
    params = GenerationParams(inference_steps=2, octree_resolution=32)
    messages: list[str] = []

    with_sides = generator.generate_shape(
        disc(), params, lambda f, m: messages.append(m), views={"front": disc(), "left": side()}
    )
    alone = generator.generate_shape(disc(), params, lambda f, m: None)

    assert "front photo only" in messages[0] and "Hunyuan3D-2mv" in messages[0]
    assert np.array_equal(with_sides.arrays["grid"], alone.arrays["grid"])
