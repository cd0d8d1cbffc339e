"""Export: the raw hand-off, GLB (checked by the Khronos validator), other formats, thumbnails,
and the export step that writes them all."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import trimesh
from PIL import Image

from sweedle_core.errors import InvalidInput
from sweedle_core.export.formats import EXPORTERS, MEDIA_TYPES
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import read_raw_mesh, write_raw_mesh
from sweedle_core.export.pipeline import DRACO_NAME, ExportOptions, export_asset
from sweedle_core.export.thumbnail import render_rgba
from tests.gltf_check import validate_gltf

GREEN = (20, 200, 40, 255)


def coloured_sphere(subdivisions: int = 3, inverted: bool = False) -> trimesh.Trimesh:
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    faces = sphere.faces[:, ::-1] if inverted else sphere.faces
    colors = np.tile(np.array(GREEN, dtype=np.uint8), (len(sphere.vertices), 1))
    colors[sphere.vertices[:, 1] > 0.5] = (250, 250, 10, 255)  # a yellow cap
    return trimesh.Trimesh(sphere.vertices, faces, vertex_colors=colors, process=False)


def glb_document(data: bytes) -> tuple[pygltflib.GLTF2, bytes]:
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    return gltf, gltf.binary_blob()


def read_accessor(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    accessor = gltf.accessors[index]
    view = gltf.bufferViews[accessor.bufferView]
    dtype = {5126: np.float32, 5121: np.uint8, 5123: np.uint16, 5125: np.uint32}
    width = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}[accessor.type]
    start = view.byteOffset + (accessor.byteOffset or 0)
    flat = np.frombuffer(
        blob, dtype=dtype[accessor.componentType], count=accessor.count * width, offset=start
    )
    return flat.reshape(accessor.count, width)


# --- raw hand-off -------------------------------------------------------------------------


def test_raw_mesh_round_trip_keeps_everything(tmp_path: Path) -> None:
    mesh = coloured_sphere()
    path = tmp_path / "raw.npz"
    write_raw_mesh(mesh, path)
    back = read_raw_mesh(path)

    assert np.array_equal(back.vertices, mesh.vertices.astype(np.float32))
    assert np.array_equal(back.faces, mesh.faces)
    assert np.array_equal(back.visual.vertex_colors, mesh.visual.vertex_colors)
    assert [p.name for p in tmp_path.iterdir()] == ["raw.npz"]  # no temp file left


def test_raw_mesh_keeps_how_the_mesh_was_coloured(tmp_path: Path) -> None:
    mesh = coloured_sphere()
    mesh.metadata["texture"] = "image_projection"
    write_raw_mesh(mesh, tmp_path / "raw.npz")

    result = export_asset(tmp_path / "raw.npz", tmp_path / "out")

    assert read_raw_mesh(tmp_path / "raw.npz").metadata["texture"] == "image_projection"
    assert result.texture == "image_projection"


def test_raw_mesh_without_colours(tmp_path: Path) -> None:
    mesh = trimesh.creation.box()
    path = tmp_path / "raw.npz"
    write_raw_mesh(mesh, path)

    with np.load(path) as data:
        assert sorted(data.files) == ["faces", "vertices"]
        assert data["vertices"].dtype == np.float32 and data["faces"].dtype == np.int32
    assert len(read_raw_mesh(path).faces) == 12


def test_raw_mesh_rejects_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, points=np.zeros((3, 3)))

    with pytest.raises(ValueError, match="not a raw mesh"):
        read_raw_mesh(path)


# --- GLB ----------------------------------------------------------------------------------


def test_glb_loads_with_faces(tmp_path: Path) -> None:
    mesh = coloured_sphere()
    loaded = trimesh.load(io.BytesIO(mesh_to_glb(mesh)), file_type="glb", force="mesh")

    assert len(loaded.faces) == len(mesh.faces)
    assert loaded.volume > 0


def test_glb_has_normals_colours_and_a_matte_white_material() -> None:
    mesh = coloured_sphere()
    gltf, blob = glb_document(mesh_to_glb(mesh))
    primitive = gltf.meshes[0].primitives[0]

    normals = read_accessor(gltf, blob, primitive.attributes.NORMAL)
    assert normals.shape == (len(mesh.vertices), 3)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    outward = np.einsum("ij,ij->i", normals, mesh.vertices)  # a sphere: normal ~ position
    assert (outward > 0.9).all()

    colors = read_accessor(gltf, blob, primitive.attributes.COLOR_0)
    assert gltf.accessors[primitive.attributes.COLOR_0].normalized
    assert np.array_equal(colors, mesh.visual.vertex_colors)

    pbr = gltf.materials[primitive.material].pbrMetallicRoughness
    assert pbr.baseColorFactor == [1.0, 1.0, 1.0, 1.0]
    assert pbr.metallicFactor == 0.0


def test_glb_passes_the_khronos_validator(tmp_path: Path) -> None:
    path = tmp_path / "sphere.glb"
    path.write_bytes(mesh_to_glb(coloured_sphere(inverted=True)))
    report = validate_gltf(path)

    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]


def ribbon(length: int) -> trimesh.Trimesh:
    """A flat strip of ``2 * length`` vertices, two triangles per square."""
    xs = np.tile(np.arange(length) / length, 2)
    ys = np.repeat([0.0, 0.01], length)
    vertices = np.column_stack([xs, ys, np.zeros(2 * length)])
    i = np.arange(length - 1)
    top = i + length
    faces = np.concatenate(
        [np.column_stack([i, i + 1, top + 1]), np.column_stack([i, top + 1, top])]
    )
    return trimesh.Trimesh(vertices, faces, process=False)


def test_glb_with_many_vertices_uses_32_bit_indices_and_validates(tmp_path: Path) -> None:
    mesh = ribbon(33_000)  # 66,000 vertices: past 16-bit indices
    data = mesh_to_glb(mesh)
    gltf, _ = glb_document(data)
    path = tmp_path / "big.glb"
    path.write_bytes(data)

    assert gltf.accessors[gltf.meshes[0].primitives[0].indices].componentType == 5125
    assert validate_gltf(path)["issues"]["numErrors"] == 0


def test_glb_without_colours_validates(tmp_path: Path) -> None:
    path = tmp_path / "box.glb"
    path.write_bytes(mesh_to_glb(trimesh.creation.box()))
    gltf, _ = glb_document(path.read_bytes())

    assert gltf.meshes[0].primitives[0].attributes.COLOR_0 is None
    assert validate_gltf(path)["issues"]["numErrors"] == 0


def test_glb_header_is_well_formed() -> None:
    data = mesh_to_glb(coloured_sphere(subdivisions=1))
    magic, version, length = struct.unpack_from("<III", data)
    json_length, json_type = struct.unpack_from("<II", data, 12)

    assert (magic, version, length) == (0x46546C67, 2, len(data))
    assert json_type == 0x4E4F534A
    assert json.loads(data[20 : 20 + json_length])["asset"]["version"] == "2.0"


# --- other formats ------------------------------------------------------------------------


def test_media_types_cover_every_format() -> None:
    assert set(MEDIA_TYPES) == set(EXPORTERS)
    assert MEDIA_TYPES["glb"] == "model/gltf-binary"


# --- thumbnail ----------------------------------------------------------------------------


def thumbnail_pixels(mesh: trimesh.Trimesh, size: int) -> np.ndarray:
    pixels = render_rgba(mesh, size)
    assert pixels.shape == (size, size, 4) and pixels.dtype == np.uint8
    return pixels


def test_thumbnail_shows_the_whole_object_framed() -> None:
    pixels = thumbnail_pixels(coloured_sphere(), 128)
    covered = pixels[..., 3] > 0
    rows = np.flatnonzero(covered.any(axis=1))
    cols = np.flatnonzero(covered.any(axis=0))

    assert 0 < rows[0] and rows[-1] < 127 and 0 < cols[0] and cols[-1] < 127  # a margin
    assert covered.mean() > 0.5  # but filled: a sphere's disc covers ~pi/4 of its box
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) > 0.8 * 128


def test_thumbnail_uses_vertex_colours_and_light() -> None:
    pixels = thumbnail_pixels(coloured_sphere(), 128)
    opaque = pixels[pixels[..., 3] == 255][:, :3].astype(int)
    greenish = (opaque[:, 1] > opaque[:, 0] + 40) & (opaque[:, 1] > opaque[:, 2] + 40)
    brightness = opaque.sum(axis=1)

    assert greenish.mean() > 0.5
    assert brightness.std() > 20  # shaded, not a flat silhouette


def test_thumbnail_of_an_uncoloured_mesh_is_grey() -> None:
    pixels = thumbnail_pixels(trimesh.creation.box(), 64)
    opaque = pixels[pixels[..., 3] == 255][:, :3].astype(int)

    assert len(opaque) > 0.3 * 64 * 64
    assert np.abs(opaque - opaque.mean(axis=1, keepdims=True)).max() <= 2


def test_thumbnail_of_an_open_mesh_is_drawn_from_both_sides() -> None:
    plane = trimesh.Trimesh(
        vertices=[[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],
        faces=[[0, 2, 1], [0, 3, 2]],  # facing away from the camera
        process=False,
    )
    pixels = thumbnail_pixels(plane, 64)

    assert (pixels[..., 3] > 0).mean() > 0.3


# --- export step --------------------------------------------------------------------------


def test_the_default_chain_writes_every_export_and_reports_progress(tmp_path: Path) -> None:
    mesh = coloured_sphere(subdivisions=5, inverted=True)
    raw = tmp_path / "raw.npz"
    write_raw_mesh(mesh, raw)
    out = tmp_path / "asset"
    options = ExportOptions(
        output_format="ply", lod_levels=(1.0, 0.5, 0.25), extra_formats=("usdz",), thumbnail_size=64
    )
    steps: list[tuple[float, str]] = []

    result = export_asset(raw, out, options, lambda f, m: steps.append((f, m)))

    assert result.model_path == out / "model.ply"
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == {
        "model.ply",
        "model.glb",
        "model.usdz",
        "model.draco.glb",
        "optimized.npz",
        "validation.json",
        "thumbnail.png",
        *(f"lods/lod{i}.{ext}" for i in range(3) for ext in ("glb", "npz")),
    }
    assert [lod["level"] for lod in result.lods] == [1.0, 0.5, 0.25]
    for lod in result.lods[1:]:
        assert abs(lod["faces"] / result.face_count - lod["level"]) <= 0.05
    assert result.validation["watertight"] and result.validation["winding"] == "outward"
    assert json.loads((out / "validation.json").read_text()) == result.validation
    assert Image.open(result.thumbnail_path).size == (64, 64)
    assert len(trimesh.load(result.model_path, force="mesh").faces) == result.face_count
    for glb in [out / "model.glb", *(out / "lods").glob("*.glb")]:
        assert validate_gltf(glb)["issues"]["numErrors"] == 0, glb
    # The raw mesh came in inside out: optimize_mesh is the one step that winds it outward.
    for model in [out / "model.glb", out / "model.ply", out / DRACO_NAME, *out.glob("lods/*.glb")]:
        assert trimesh.load(model, force="mesh").volume > 0, model
    fractions = [f for f, _ in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_export_asset_rejects_an_unknown_format_before_writing(tmp_path: Path) -> None:
    raw = tmp_path / "raw.npz"
    write_raw_mesh(coloured_sphere(), raw)

    with pytest.raises(InvalidInput, match="glb"):
        export_asset(raw, tmp_path / "asset", ExportOptions(output_format="fbx"))
    assert not (tmp_path / "asset").exists()
