"""The depth generator: its geometry on scenes whose depth is known (through stand-in depth
models that return a depth map the test draws), and the real transformers path on a tiny random
Depth Anything model the tests build."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.errors import ModelUnavailable
from sweedle_core.generation.depth import DepthGenerator
from sweedle_core.generation.protocol import TEXTURE_FROM_IMAGE, TEXTURE_KEY
from sweedle_core.params import GenerationParams
from tests.generation import make_mesh
from tests.textures import surface_colors, welded

SIDE = 512
RADIUS = 0.4 * SIDE  # of the disc and the sphere, in pixels


def disc(colour: tuple[int, int, int] = (200, 60, 40)) -> Image.Image:
    image = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    c = SIDE / 2
    ImageDraw.Draw(image).ellipse((c - RADIUS, c - RADIUS, c + RADIUS, c + RADIUS), (*colour, 255))
    return image


def pixel_grid(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0 : image.height, 0 : image.width].astype(np.float32)
    return xx + 0.5 - image.width / 2, yy + 0.5 - image.height / 2


class SphereDepth:
    """A sphere of the disc's radius, seen head on: its height above the outline's plane,
    as a depth model reports it (an arbitrary scale and offset: the depth is relative)."""

    def estimate(self, image: Image.Image) -> np.ndarray:
        x, y = pixel_grid(image)
        height = np.sqrt(np.clip(1.0 - (x**2 + y**2) / RADIUS**2, 0.0, None))
        return 3.0 * height + 7.0


class RampDepth:
    """Nearer to the right: a plane tilted about the vertical axis."""

    def estimate(self, image: Image.Image) -> np.ndarray:
        x, _ = pixel_grid(image)
        return x / image.width + 2.0


class FlatDepth:
    def estimate(self, image: Image.Image) -> np.ndarray:
        return np.full((image.height, image.width), 5.0, dtype=np.float32)


def generate(
    estimator: object,
    octree: int = 256,
    image: Image.Image | None = None,
    max_faces: int = GenerationParams().max_faces,
):
    params = GenerationParams(octree_resolution=octree, max_faces=max_faces)
    messages: list[str] = []
    mesh = make_mesh(
        DepthGenerator(estimator),  # type: ignore[arg-type]
        image or disc(),
        params,
        lambda fraction, message: messages.append(message),
    )
    return mesh, messages


def assert_closed_solid(mesh: trimesh.Trimesh) -> None:
    surface = welded(mesh)  # UV seams split vertices, not the surface
    assert surface.is_watertight and surface.is_winding_consistent
    assert surface.volume > 0  # wound outward


def test_the_front_follows_a_known_sphere() -> None:
    # The method's own surface, before the face budget reduces it (tests/unit/test_finish.py).
    mesh, _ = generate(SphereDepth(), max_faces=5_000_000)

    assert_closed_solid(mesh)
    v, normals = mesh.vertices, mesh.vertex_normals
    r = np.hypot(v[:, 0], v[:, 1])  # the disc spans [-0.5, 0.5]: radius 0.5 in the mesh's frame
    rim_plane = np.median(v[r > 0.49, 2])
    front = (normals[:, 2] > 0.2) & (r < 0.45)  # facing the viewer, off the rounded rim band
    expected = rim_plane + np.sqrt(0.25 - r[front] ** 2)  # relief 0.5: a hemisphere
    error = np.abs(v[front, 2] - expected)
    # Measured at octree 256: mean 0.0065, max 0.0155 of the object's width.
    assert error.mean() < 0.01 and error.max() < 0.025, (error.mean(), error.max())


def test_the_back_is_a_thinner_dome_not_a_mirror_of_the_front() -> None:
    mesh, _ = generate(SphereDepth(), octree=128)

    v = mesh.vertices
    r = np.hypot(v[:, 0], v[:, 1])
    rim_plane = np.median(v[r > 0.49, 2])
    in_front = v[:, 2].max() - rim_plane
    behind = rim_plane - v[:, 2].min()
    assert in_front == pytest.approx(0.5, abs=0.04)  # DEPTH_RELIEF 0.5 of the width
    assert behind == pytest.approx(0.35, abs=0.04)  # DEPTH_THICKNESS 0.35 of the width


def test_nearer_is_toward_the_viewer() -> None:
    mesh, _ = generate(RampDepth(), octree=128)

    assert_closed_solid(mesh)
    front = mesh.vertex_normals[:, 2] > 0.5
    x, z = mesh.vertices[front, 0], mesh.vertices[front, 2]
    assert np.corrcoef(x, z)[0, 1] > 0.95  # the right side (+X) comes nearer (+Z)


def test_a_photo_that_is_not_square_keeps_its_proportions() -> None:
    wide = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    ImageDraw.Draw(wide).rectangle((50, 75, 549, 224), (90, 120, 200, 255))  # 500 x 150

    mesh, _ = generate(RampDepth(), octree=128, image=wide)

    assert_closed_solid(mesh)
    width, height = np.ptp(mesh.vertices[:, 0]), np.ptp(mesh.vertices[:, 1])
    assert width == pytest.approx(1.0, abs=0.02)  # the larger planar extent is 1
    assert height == pytest.approx(150 / 500, abs=0.03)


def test_a_flat_depth_map_still_makes_a_solid() -> None:
    mesh, _ = generate(FlatDepth(), octree=96)

    assert_closed_solid(mesh)
    front = mesh.vertex_normals[:, 2] > 0.9
    assert np.ptp(mesh.vertices[front, 2]) < 0.05  # the front is flat


def test_colours_come_from_the_photo_and_progress_is_reported() -> None:
    mesh, messages = generate(SphereDepth(), octree=64, image=disc((30, 160, 90)))

    colours = surface_colors(mesh)
    assert np.abs(colours[:, :3].astype(int) - (30, 160, 90)).max() <= 2
    assert mesh.metadata[TEXTURE_KEY] == TEXTURE_FROM_IMAGE
    assert messages[0] == "estimating depth" and messages[-1] == "done"


def test_a_depth_map_of_the_wrong_shape_fails_the_job_clearly() -> None:
    class Wrong:
        def estimate(self, image: Image.Image) -> np.ndarray:
            return np.zeros((3, 3), dtype=np.float32)

    with pytest.raises(Exception, match="not a depth map"):
        generate(Wrong(), octree=32)


# --- the real transformers path, on a tiny random model ---------------------------------------


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.models.tiny_depth import build_tiny_depth

    return build_tiny_depth(tmp_path_factory.mktemp("tiny_depth") / "model")


def test_tiny_depth_model_runs_through_transformers(tiny_depth: Path) -> None:
    from sweedle_core.generation.depth import TransformersDepth

    estimator = TransformersDepth(tiny_depth, device="cpu")
    depth = estimator.estimate(Image.new("RGB", (200, 120), (90, 90, 90)))
    mesh, _ = generate(estimator, octree=64)

    assert depth.shape == (120, 200) and np.isfinite(depth).all()
    assert_closed_solid(mesh)
    assert len(mesh.faces) > 1000


def test_a_corrupt_model_folder_is_reported_not_crashed_on(
    tiny_depth: Path, tmp_path: Path
) -> None:
    from sweedle_core.generation.depth import TransformersDepth

    broken = tmp_path / "broken"
    broken.mkdir()
    for file in tiny_depth.iterdir():
        (broken / file.name).write_bytes(file.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # cut short

    with pytest.raises(ModelUnavailable, match="sweedle models pull depth"):
        TransformersDepth(broken, device="cpu")
