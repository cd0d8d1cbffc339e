"""LODs: face shares reached, colours and UVs kept, error small (measured by
`tests.surface_distance`), GLBs valid."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image
from skimage import measure

from sweedle_core.export.convert import load_mesh
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.lod_generator import build_lods, simplify_mesh
from sweedle_core.export.mesh_io import vertex_colors_of, vertex_uv_of
from sweedle_core.export.mesh_optimizer import optimize_mesh
from sweedle_core.export.validator import validate_mesh
from tests.gltf_check import validate_gltf
from tests.surface_distance import lod_deviation, surface_deviation

RED = (255, 0, 0, 255)
BLUE = (0, 0, 255, 255)


@pytest.fixture(scope="module")
def blob() -> trimesh.Trimesh:
    """A ~20k-face marching-cubes blob, red where x < 0 and blue elsewhere."""
    axis = np.linspace(-1, 1, 64)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    field = np.sqrt(x**2 + y**2 + z**2) - 0.7 - 0.05 * np.sin(5 * x) * np.cos(4 * y)
    vertices, faces, _, _ = measure.marching_cubes(field, 0.0, spacing=(2 / 63,) * 3)
    vertices -= 1
    colors = np.where((vertices[:, 0] < 0)[:, None], RED, BLUE).astype(np.uint8)
    mesh = trimesh.Trimesh(vertices, faces, vertex_colors=colors, process=False)
    assert 15_000 < len(mesh.faces) < 30_000
    return mesh


@pytest.mark.parametrize("share", [0.5, 0.25, 0.1])
def test_face_share_within_5_percent(blob, share):
    lod = simplify_mesh(blob, share)
    assert abs(len(lod.faces) / len(blob.faces) - share) <= 0.05 * share
    info = lod.metadata["lod"]
    assert info["reached"] and info["face_share"] == share
    assert np.isclose(info["achieved_share"], len(lod.faces) / len(blob.faces))


def test_colours_are_kept(blob):
    lod = simplify_mesh(blob, 0.1)
    colors = vertex_colors_of(lod)
    assert colors is not None
    left = lod.vertices[:, 0] < 0
    assert (colors[left] == RED).all() and (colors[~left] == BLUE).all()
    # Faces stay within one colour except along the seam.
    mixed = (colors[lod.faces][:, :, 0] == 255).any(axis=1) & (
        colors[lod.faces][:, :, 2] == 255
    ).any(axis=1)
    seam = np.abs(lod.triangles_center[:, 0]) < 0.1
    assert not (mixed & ~seam).any()


def test_uvs_and_texture_are_kept():
    sphere = trimesh.creation.icosphere(subdivisions=4)
    image = Image.new("RGB", (8, 8), (200, 100, 0))
    uv = (sphere.vertices[:, :2] + 1) / 2
    textured = trimesh.Trimesh(
        sphere.vertices,
        sphere.faces,
        visual=trimesh.visual.TextureVisuals(uv=uv, image=image),
        process=False,
    )
    lod = simplify_mesh(textured, 0.25)
    out_uv = vertex_uv_of(lod)
    assert out_uv is not None
    assert np.allclose(out_uv, (lod.vertices[:, :2] + 1) / 2)
    assert lod.visual.material.image is image
    assert lod.metadata["lod"]["reached"]


def test_error_is_small_on_a_sphere():
    sphere = trimesh.creation.icosphere(subdivisions=5)
    lod = simplify_mesh(sphere, 0.1)
    info = lod.metadata["lod"]
    assert info["reached"]
    assert 0 < lod_deviation(sphere, lod) < 0.01
    assert 0 < info["meshopt_error"] < 0.01


def test_surface_deviation_is_exact():
    """Against a brute-force distance to every triangle."""
    rng = np.random.default_rng(1)
    surface = trimesh.creation.icosphere(subdivisions=2)
    points = rng.normal(size=(300, 3)) * 0.8
    brute = np.min(
        [
            np.linalg.norm(
                trimesh.triangles.closest_point(np.repeat(t[None], 300, 0), points) - points, axis=1
            )
            for t in surface.triangles
        ],
        axis=0,
    )
    found = surface_deviation(points, surface.vertices, surface.faces)
    assert np.isclose(found, brute.max(), rtol=1e-9)


def test_build_lods_keeps_the_full_mesh_first(blob):
    lods = build_lods(blob, (1.0, 0.5))
    assert len(lods[0].faces) == len(blob.faces)
    assert len(lods[1].faces) < len(lods[0].faces)
    assert lods[0].metadata["lod"]["meshopt_error"] == 0.0
    assert "vertex_normals" in lods[1]._cache


def test_every_level_stays_close_to_the_surface_and_makes_a_valid_glb(blob, tmp_path):
    lods = build_lods(blob, (1.0, 0.5, 0.25, 0.1))

    for index, lod in enumerate(lods):
        assert lod.metadata["lod"]["reached"]
        assert lod_deviation(blob, lod) < 0.01
        path = tmp_path / f"lod{index}.glb"
        path.write_bytes(mesh_to_glb(lod))
        report = validate_gltf(path)
        assert report["issues"]["numErrors"] == 0, report["issues"]
        loaded = load_mesh(path)
        assert len(loaded.faces) == len(lod.faces)
        assert vertex_colors_of(loaded) is not None  # COLOR_0 read back
    assert lod_deviation(blob, lods[0]) < 1e-9
    faces = [len(lod.faces) for lod in lods]
    assert faces == sorted(faces, reverse=True) and len(set(faces)) == len(faces)


def seamed_globe() -> trimesh.Trimesh:
    """An icosphere with longitude/latitude UVs: vertices on the date line are split (u = 0
    on one side, 1 on the other), as in any textured mesh."""
    sphere = trimesh.creation.icosphere(subdivisions=4)
    corners = sphere.vertices[sphere.faces]  # (m, 3, 3)
    u = np.mod(np.arctan2(corners[..., 1], corners[..., 0]) / (2 * np.pi), 1.0)
    wraps = (u.max(axis=1) - u.min(axis=1)) > 0.5
    u[wraps] = np.where(u[wraps] < 0.5, u[wraps] + 1.0, u[wraps])
    uv = np.stack([u, (corners[..., 2] + 1) / 2], axis=-1).reshape(-1, 2)
    image = Image.new("RGB", (8, 8), (0, 90, 200))
    soup = trimesh.Trimesh(
        corners.reshape(-1, 3),
        np.arange(3 * len(sphere.faces)).reshape(-1, 3),
        visual=trimesh.visual.TextureVisuals(uv=uv, image=image),
        process=False,
    )
    return optimize_mesh(soup)


def test_a_uv_seam_survives_simplification():
    globe = seamed_globe()
    assert len(globe.vertices) > 2562  # the icosphere's count: the seam is split
    report = validate_mesh(globe)
    assert report["ok"] and report["watertight"] and report["seam_vertices"] > 0

    lod = simplify_mesh(globe, 0.25)

    assert lod.metadata["lod"]["reached"]
    uv = vertex_uv_of(lod)
    assert uv is not None
    longitude = np.arctan2(lod.vertices[:, 1], lod.vertices[:, 0]) / (2 * np.pi)
    offset = np.mod(uv[:, 0] - longitude + 0.5, 1.0) - 0.5  # 0 up to a whole turn
    assert np.allclose(offset, 0.0, atol=1e-6)
    assert np.allclose(uv[:, 1], (lod.vertices[:, 2] + 1) / 2)
    # No face stretches across the texture: its UVs stay within half a turn (the poles,
    # where longitude is undefined, aside).
    polar = (np.abs(lod.vertices[lod.faces][:, :, 2]) > 0.999).any(axis=1)
    assert (np.ptp(uv[lod.faces][~polar, :, 0], axis=1) < 0.5).all()
    assert validate_mesh(lod)["watertight"]


def test_a_share_of_zero_is_refused():
    with pytest.raises(ValueError, match="above 0"):
        simplify_mesh(trimesh.creation.icosphere(), 0.0)


def test_a_mesh_that_cannot_be_simplified_says_so():
    """Every face its own colour: every edge is a seam, so nothing can collapse."""
    sphere = trimesh.creation.icosphere(subdivisions=3)
    rng = np.random.default_rng(0)
    colors = np.repeat(rng.integers(0, 256, (len(sphere.faces), 4)), 3, axis=0)
    soup = trimesh.Trimesh(
        sphere.vertices[sphere.faces.ravel()],
        np.arange(3 * len(sphere.faces)).reshape(-1, 3),
        vertex_colors=colors.astype(np.uint8),
        process=False,
    )
    lod = simplify_mesh(soup, 0.5)
    assert lod.metadata["lod"]["reached"] is False
    assert len(lod.faces) == len(sphere.faces)  # nothing thrown away to make the count
