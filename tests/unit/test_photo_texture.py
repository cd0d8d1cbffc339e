"""Baking the photo into a UV texture: the GLB is valid and textured, the photo lands on the
matching side front and back, the surface is unchanged, and without xatlas vertex colours."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.export.glb import mesh_to_glb, texture_of
from sweedle_core.export.mesh_io import vertex_colors_of, vertex_uv_of
from sweedle_core.generation import photo_texture
from sweedle_core.generation.image_colors import project_image_colors, sample_bilinear
from sweedle_core.generation.photo_texture import (
    TEXTURE_FALLBACK_KEY,
    bake_photo_texture,
    photo_projection,
    rasterize,
    texture_from_photo,
)
from sweedle_core.generation.protocol import (
    GENERATOR_KEY,
    TEXTURE_FROM_IMAGE,
    TEXTURE_KEY,
)
from tests.glb_files import read_glb
from tests.gltf_check import validate_gltf

SIZE = 512
RED, BLUE = (255, 0, 0), (0, 0, 255)


def split_photo() -> Image.Image:
    """A disc on a transparent background, red on its left half, blue on its right; it fills
    only the middle of the frame."""
    image = Image.new("RGBA", (100, 100), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 20, 79, 79), fill=(*RED, 255))
    draw.pieslice((20, 20, 79, 79), -90, 90, fill=(*BLUE, 255))
    return image


def gradient_photo() -> Image.Image:
    """Red rising to the right, green rising downward, blue 128: every pixel differs."""
    ramp = np.linspace(0, 255, 128)
    rgb = np.zeros((128, 128, 3), dtype=np.uint8)
    rgb[..., 0] = ramp[None, :]
    rgb[..., 1] = ramp[:, None]
    rgb[..., 2] = 128
    return Image.fromarray(rgb).convert("RGBA")


def sphere() -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=4)  # 5,120 faces
    mesh.metadata[GENERATOR_KEY] = "test"
    return mesh


@pytest.fixture(scope="module")
def baked() -> trimesh.Trimesh:
    return bake_photo_texture(sphere(), split_photo(), SIZE)


@pytest.fixture(scope="module")
def from_glb(baked: trimesh.Trimesh) -> trimesh.Trimesh:
    """The baked sphere as a viewer gets it: written to GLB and read back."""
    loaded = trimesh.load(io.BytesIO(mesh_to_glb(baked)), file_type="glb", force="mesh")
    assert isinstance(loaded, trimesh.Trimesh)
    return loaded


def texture(mesh: trimesh.Trimesh) -> tuple[np.ndarray, Image.Image]:
    """The mesh's ``uv (n, 2)`` and RGB image, as the GLB writer reads them."""
    found = texture_of(mesh)
    assert found is not None, "the mesh is not textured"
    uv, image = found
    return uv, image.convert("RGB")


def sample(image: Image.Image, uv: np.ndarray) -> np.ndarray:
    """Bilinear colours ``(n, 3)`` of ``image`` at ``uv (n, 2)`` (trimesh's convention, origin
    bottom-left), texel centres at half-integers, as a GPU samples."""
    rgb = np.asarray(image, dtype=np.float64)
    h, w = rgb.shape[:2]
    rows_cols = np.column_stack([(1.0 - uv[:, 1]) * h - 0.5, uv[:, 0] * w - 0.5])
    return sample_bilinear(rgb, rows_cols)[:, :3].astype(np.int64)


def face_centres(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Each face's centroid ``(m, 3)`` and the UV there ``(m, 2)``."""
    uv, _ = texture(mesh)
    return np.asarray(mesh.triangles_center), uv[mesh.faces].mean(axis=1)


def test_the_glb_is_valid_and_carries_the_texture_not_vertex_colours(
    baked: trimesh.Trimesh, tmp_path: Path
) -> None:
    path = tmp_path / "baked.glb"
    path.write_bytes(mesh_to_glb(baked))

    report = validate_gltf(path)
    document, _ = read_glb(path.read_bytes())
    primitive = document["meshes"][0]["primitives"][0]
    material = document["materials"][primitive["material"]]

    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    assert "baseColorTexture" in material["pbrMetallicRoughness"]
    assert "TEXCOORD_0" in primitive["attributes"]
    assert "COLOR_0" not in primitive["attributes"]
    assert document["images"][0]["mimeType"] == "image/png"


def test_the_photo_shows_on_the_matching_side_front_and_back(from_glb: trimesh.Trimesh) -> None:
    uv, image = texture(from_glb)
    x, z = from_glb.vertices[:, 0], from_glb.vertices[:, 2]
    at_vertices = sample(image, uv)
    centres, centre_uv = face_centres(from_glb)
    at_centres = sample(image, centre_uv)

    for colours, xs, zs in ((at_vertices, x, z), (at_centres, centres[:, 0], centres[:, 2])):
        for side in (zs > 0.1, zs < -0.1):  # front (the photo's side) and back (mirrored)
            assert (np.abs(colours[side & (xs < -0.2)] - RED) <= 8).all()
            assert (np.abs(colours[side & (xs > 0.2)] - BLUE) <= 8).all()


def test_the_texture_is_detailed_not_flat(baked: trimesh.Trimesh) -> None:
    _, image = texture(baked)
    texels = np.asarray(image, dtype=np.float64)
    _, centre_uv = face_centres(baked)
    inside = sample(image, centre_uv)

    assert texels.shape == (SIZE, SIZE, 3)
    assert inside.std(axis=0).max() > 100  # red and blue, not one blend
    # Red and blue texels both hold the pure colour, not a mix.
    flat = texels.reshape(-1, 3)
    assert (np.abs(flat - RED).max(axis=1) <= 2).mean() > 0.15
    assert (np.abs(flat - BLUE).max(axis=1) <= 2).mean() > 0.15


def test_a_half_resolution_mip_still_shows_the_right_colour_at_chart_edges(
    from_glb: trimesh.Trimesh,
) -> None:
    # Vertices sit on chart borders, where a coarser mip level mixes in the texels around the
    # chart: the gutter must hold the chart's colours, not the background.
    uv, image = texture(from_glb)
    x = from_glb.vertices[:, 0]
    colours = sample(image.reduce(2), uv)

    # Where two charts sit closer than a mip texel some mixing is unavoidable; it stays rare.
    for side, colour in ((x < -0.2, RED), (x > 0.2, BLUE)):
        off = np.abs(colours[side] - colour).max(axis=1)
        assert (off <= 40).mean() >= 0.99 and off.max() <= 96


def test_the_texture_agrees_with_the_vertex_projection() -> None:
    mesh, photo = sphere(), gradient_photo()
    # The shared fit is the vertex colouring's, exactly.
    assert np.array_equal(
        sample_bilinear(*photo_projection(mesh.vertices, photo)),
        project_image_colors(mesh, photo),
    )
    # A coarse texture, where a texel spans several levels of the gradient: vertices sit on
    # chart edges, whose bilinear lookups read texels half outside the chart.
    baked = bake_photo_texture(mesh, photo, 128)
    expected = project_image_colors(baked, photo)[:, :3].astype(np.int64)

    uv, image = texture(baked)
    off = np.abs(sample(image, uv) - expected)

    # Edge texels hold the colour of the nearest point of their triangle; the colour of the
    # nearest covered texel instead would double both figures.
    assert off.max() <= 6
    assert off.mean() <= 0.6


def test_uvs_cover_every_face_and_the_surface_is_unchanged(baked: trimesh.Trimesh) -> None:
    mesh = sphere()
    uv, _ = texture(baked)

    assert uv.shape == (len(baked.vertices), 2)
    assert (uv >= 0).all() and (uv <= 1).all()
    assert len(baked.faces) == len(mesh.faces)
    # Every face keeps its corners and its order; vertices are only split along seams.
    assert np.array_equal(baked.vertices[baked.faces], mesh.vertices[mesh.faces])
    assert len(baked.vertices) > len(mesh.vertices)
    assert np.allclose(baked.bounds, mesh.bounds) and np.isclose(baked.area, mesh.area)
    # Every face has room in the texture, none is collapsed to a point.
    uv_area = np.abs(trimesh.triangles.area(np.pad(uv[baked.faces], ((0, 0), (0, 0), (0, 1)))))
    assert (uv_area > 0).all()
    # Seam copies keep the welded normal, so the split does not show in the shading.
    radial = baked.vertices / np.linalg.norm(baked.vertices, axis=1, keepdims=True)
    assert np.abs(baked.vertex_normals - radial).max() < 0.01


def test_metadata_is_kept_and_says_the_photo_coloured_it(baked: trimesh.Trimesh) -> None:
    textured = texture_from_photo(sphere(), split_photo(), 256)

    for mesh in (baked, textured):
        assert mesh.metadata[TEXTURE_KEY] == TEXTURE_FROM_IMAGE
        assert mesh.metadata[GENERATOR_KEY] == "test"
        assert TEXTURE_FALLBACK_KEY not in mesh.metadata
        assert vertex_uv_of(mesh) is not None


def test_rasterize_covers_a_square_completely_and_blends_linearly() -> None:
    # Two triangles over the whole unit square, a value equal to u: every texel is covered
    # and holds the u of its centre.
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])

    covered, values = rasterize(uv, faces, uv[:, :1], 64)

    assert covered.all()
    assert np.allclose(values[..., 0], (np.arange(64) + 0.5)[None, :] / 64, atol=1e-5)


# The unwrapping child as it fails: the real worker without xatlas, or with an xatlas that
# raises; a child that crashes; one that never answers.
_WORKER = "from sweedle_core.generation.unwrap_worker import main; sys.exit(main())"
_FAILURES = {
    "missing": (f"import sys; sys.modules['xatlas'] = None; {_WORKER}", "not installed"),
    "raises": (
        "import sys, types; sys.modules['xatlas'] = types.SimpleNamespace(ChartOptions=dict); "
        + _WORKER,
        "xatlas failed",
    ),
    "crashes": ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "crashed (SIGSEGV)"),
    "hangs": ("import time; time.sleep(30)", "did not finish within 0.5 s"),
    "too large": ("raise SystemExit('never run')", "faces; xatlas unwraps at most 1,000"),
}


@pytest.mark.parametrize("failure", list(_FAILURES))
def test_without_a_working_xatlas_the_mesh_gets_vertex_colours_and_says_why(
    failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, why = _FAILURES[failure]
    monkeypatch.setattr(photo_texture, "UNWRAP_COMMAND", [sys.executable, "-c", code])
    monkeypatch.setattr(photo_texture, "UNWRAP_TIMEOUT_S", 0.5)
    if failure == "too large":
        monkeypatch.setattr(photo_texture, "MAX_UNWRAP_FACES", 1000)
    mesh = sphere()

    coloured = texture_from_photo(mesh, split_photo(), 256)

    colours = vertex_colors_of(coloured)
    assert vertex_uv_of(coloured) is None and colours is not None
    assert np.array_equal(colours, project_image_colors(mesh, split_photo()))
    assert coloured.metadata[TEXTURE_KEY] == TEXTURE_FROM_IMAGE
    assert coloured.metadata[GENERATOR_KEY] == "test"
    assert why in coloured.metadata[TEXTURE_FALLBACK_KEY]
    with pytest.raises(photo_texture.UnwrapFailed, match=why.split("(")[0]):
        bake_photo_texture(mesh, split_photo(), 256)


@pytest.mark.parametrize("size", [0, 63, 4097])
def test_texture_sizes_outside_64_to_4096_are_refused(size: int) -> None:
    for make in (bake_photo_texture, texture_from_photo):
        with pytest.raises(ValueError, match="between 64 and 4096"):
            make(sphere(), split_photo(), size)


def test_the_smallest_texture_size_bakes() -> None:
    box = trimesh.creation.box()

    baked = bake_photo_texture(box, split_photo(), 64)

    assert texture(baked)[1].size == (64, 64)
    assert np.array_equal(baked.vertices[baked.faces], box.vertices[box.faces])
