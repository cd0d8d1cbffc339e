"""A textured asset through the whole export chain, checked as a user would check it: the GLB
passes the Khronos validator with its texture and UVs (no vertex colours), the texture is not
flat, every LOD is textured, the Draco GLB decodes with its UVs, glTF, OBJ and USDZ carry the
texture files, the thumbnail shows the photo's colours on the right sides, and a mesh that
could not be unwrapped says why."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from scipy.spatial import cKDTree

from sweedle_core.export.convert import load_mesh
from sweedle_core.export.engine_exporter import export_to_unity
from sweedle_core.export.formats import to_gltf, to_obj, to_ply, to_usdz
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import raw_mesh_bytes, read_raw_mesh, write_raw_mesh
from sweedle_core.export.pipeline import DRACO_NAME, ExportOptions, ExportResult, export_asset
from sweedle_core.export.texture_maps import (
    BASE_COLOR,
    METALLIC_ROUGHNESS,
    NORMAL,
    texture_maps_of,
)
from sweedle_core.export.thumbnail import render_rgba
from sweedle_core.export.thumbnail_generator import make_thumbnail
from sweedle_core.generation import photo_texture
from sweedle_core.generation.protocol import TEXTURE_FALLBACK_KEY, TEXTURE_FROM_IMAGE
from sweedle_core.generation.silhouette import SilhouetteGenerator
from sweedle_core.params import GenerationParams
from tests.generation import make_mesh
from tests.glb_files import decode_draco_glb, read_glb, view_bytes
from tests.gltf_check import validate_gltf
from tests.textures import (
    glb_maps,
    is_flat,
    pbr_box,
    reads_red_then_blue,
    same_pixels,
    split_photo,
)

TEXTURE_SIZE = 256
FORMATS = ("gltf", "obj", "usdz", "ply")
Exported = tuple[ExportResult, Path]


def textured_asset() -> trimesh.Trimesh:
    """The silhouette backend's mesh of the red-and-blue photo, the photo baked in."""
    params = GenerationParams(octree_resolution=64)
    return make_mesh(
        SilhouetteGenerator(), split_photo(), params, lambda f, m: None, texture_size=TEXTURE_SIZE
    )


@pytest.fixture(scope="module")
def asset() -> trimesh.Trimesh:
    return textured_asset()


@pytest.fixture(scope="module")
def exported(
    asset: trimesh.Trimesh, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ExportResult, Path]:
    folder = tmp_path_factory.mktemp("textured")
    write_raw_mesh(asset, folder / "raw.npz")
    options = ExportOptions(extra_formats=FORMATS, draco=True, thumbnail_size=128)
    result = export_asset(folder / "raw.npz", folder / "out", options)
    return result, folder / "out"


def valid(path: Path) -> bool:
    report = validate_gltf(path)
    return report["issues"]["numErrors"] == 0


def primitive_of(data: bytes) -> dict:
    document, _ = read_glb(data)
    return document["meshes"][0]["primitives"][0]


# --- the generated mesh and its hand-off ---------------------------------------------------


def test_the_photo_is_baked_into_a_texture_not_vertex_colours(asset: trimesh.Trimesh) -> None:
    textures = texture_maps_of(asset)

    assert textures is not None, asset.metadata.get(TEXTURE_FALLBACK_KEY)
    assert asset.metadata["texture"] == TEXTURE_FROM_IMAGE
    assert TEXTURE_FALLBACK_KEY not in asset.metadata
    assert textures.base_color.size == (TEXTURE_SIZE, TEXTURE_SIZE)
    assert not is_flat(textures.base_color)


def test_the_raw_mesh_keeps_uvs_and_texture_exactly(asset: trimesh.Trimesh) -> None:
    back = read_raw_mesh(raw_mesh_bytes(asset))

    before, after = texture_maps_of(asset), texture_maps_of(back)
    assert before is not None and after is not None
    assert np.allclose(after.uv, before.uv, atol=1e-6)
    assert same_pixels(after.base_color, before.base_color)
    assert np.array_equal(back.faces, asset.faces)
    assert back.metadata == {k: asset.metadata[k] for k in ("generator", "texture")}


def test_pbr_maps_survive_the_raw_mesh() -> None:
    box = pbr_box()

    back = read_raw_mesh(raw_mesh_bytes(box))

    maps = texture_maps_of(back)
    assert maps is not None and maps.pbr
    assert isinstance(back.visual.material, trimesh.visual.material.PBRMaterial)
    for name, image in texture_maps_of(box).maps.items():  # type: ignore[union-attr]
        assert same_pixels(maps.maps[name], image), name


def test_a_raw_mesh_with_a_broken_texture_is_refused(asset: trimesh.Trimesh) -> None:
    with np.load(io.BytesIO(raw_mesh_bytes(asset))) as data:
        arrays = dict(data)
    for broken in (
        {k: v for k, v in arrays.items() if not k.startswith("png:")},  # UVs, no image
        {**arrays, "uv": arrays["uv"][:-1]},
        {**arrays, "png:baseColorTexture": np.frombuffer(b"not a png", np.uint8)},
    ):
        buffer = io.BytesIO()
        np.savez(buffer, **broken)
        with pytest.raises(ValueError, match="raw mesh"):
            read_raw_mesh(buffer.getvalue())


# --- the export chain ------------------------------------------------------------------------


def test_the_glb_is_valid_and_textured_without_vertex_colours(exported: Exported) -> None:
    result, out = exported
    glb = out / "model.glb"

    assert valid(glb)
    document, _ = read_glb(glb.read_bytes())
    primitive = document["meshes"][0]["primitives"][0]
    assert "TEXCOORD_0" in primitive["attributes"]
    assert "COLOR_0" not in primitive["attributes"]
    material = document["materials"][primitive["material"]]
    assert "baseColorTexture" in material["pbrMetallicRoughness"]
    texture = glb_maps(glb.read_bytes())[BASE_COLOR]
    assert texture.size == (TEXTURE_SIZE, TEXTURE_SIZE) and not is_flat(texture)
    assert result.validation["attributes"]["texture"]
    assert result.validation["attributes"]["texture_maps"] == [BASE_COLOR]
    assert result.validation["attributes"]["texture_size"] == [TEXTURE_SIZE, TEXTURE_SIZE]
    assert result.validation["watertight"], "UV seams are not holes"


def test_both_sides_of_a_uv_seam_get_the_same_normal(exported: Exported) -> None:
    _, out = exported
    document, binary = read_glb((out / "model.glb").read_bytes())
    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    positions, normals = (
        np.frombuffer(
            view_bytes(document, binary, document["accessors"][attributes[name]]["bufferView"]),
            dtype=np.float32,
        ).reshape(-1, 3)
        for name in ("POSITION", "NORMAL")
    )

    _, ids, counts = np.unique(positions, axis=0, return_inverse=True, return_counts=True)
    ids = ids.ravel()
    assert (counts > 1).sum() > 50, "the mesh should have UV seams"
    first = np.zeros(len(counts), dtype=np.int64)
    first[ids[::-1]] = np.arange(len(ids))[::-1]
    assert np.abs(normals - normals[first][ids]).max() < 1e-6


def test_every_lod_is_textured(exported: Exported) -> None:
    result, out = exported
    faces = [record["faces"] for record in result.lods]

    assert faces == sorted(faces, reverse=True) and faces[-1] < 0.2 * faces[0]
    for record in result.lods:
        data = (out / record["file"]).read_bytes()
        assert "TEXCOORD_0" in primitive_of(data)["attributes"], record
        assert not is_flat(glb_maps(data)[BASE_COLOR])
    assert valid(out / result.lods[-1]["file"])
    coarsest = load_mesh(out / result.lods[-1]["file"])
    assert texture_maps_of(coarsest) is not None


def test_the_draco_glb_decodes_with_its_uvs(exported: Exported) -> None:
    _, out = exported
    data = (out / DRACO_NAME).read_bytes()
    full = read_raw_mesh((out / "optimized.npz").read_bytes())

    assert valid(out / DRACO_NAME)
    decoded = decode_draco_glb(data)
    maps = texture_maps_of(decoded)
    assert maps is not None and len(maps.uv) == len(decoded.vertices)
    assert same_pixels(maps.base_color, texture_maps_of(full).base_color)  # type: ignore[union-attr]
    # Each decoded vertex is one of the original's, its UV within the 12-bit quantisation
    # (Draco reorders and welds, so they are matched by position and UV).
    original = np.hstack([full.vertices, texture_maps_of(full).uv])  # type: ignore[union-attr]
    found = np.hstack([decoded.vertices, maps.uv])
    distance, _ = cKDTree(original).query(found)
    assert distance.max() < 1e-3


def test_gltf_obj_and_usdz_carry_the_texture_file(exported: Exported) -> None:
    _, out = exported
    texture = glb_maps((out / "model.glb").read_bytes())[BASE_COLOR]

    gltf = zipfile.ZipFile(out / "model.gltf.zip")
    assert sorted(gltf.namelist()) == ["model.bin", "model.gltf", "model.png"]
    folder = out / "gltf"
    gltf.extractall(folder)
    assert json.loads((folder / "model.gltf").read_text())["images"] == [
        {"uri": "model.png", "mimeType": "image/png"}
    ]
    loaded = trimesh.load(folder / "model.gltf", force="mesh", process=False)
    assert same_pixels(texture_maps_of(loaded).base_color, texture)  # type: ignore[union-attr]

    obj = zipfile.ZipFile(out / "model.obj.zip")
    assert sorted(obj.namelist()) == ["model.mtl", "model.obj", "model.png"]
    assert b"map_Kd model.png" in obj.read("model.mtl")
    obj.extractall(out / "obj")
    loaded = trimesh.load(out / "obj" / "model.obj", force="mesh", process=False)
    assert same_pixels(texture_maps_of(loaded).base_color, texture)  # type: ignore[union-attr]

    usdz = zipfile.ZipFile(out / "model.usdz")
    pngs = [name for name in usdz.namelist() if name.endswith(".png")]
    assert len(pngs) == 1
    assert same_pixels(Image.open(io.BytesIO(usdz.read(pngs[0]))), texture)


def test_the_usdz_material_reads_the_texture_through_uvs(tmp_path: Path) -> None:
    from pxr import Usd, UsdGeom, UsdShade

    files = to_usdz(pbr_box())
    path = tmp_path / "model.usdz"
    path.write_bytes(files["model.usdz"])
    stage = Usd.Stage.Open(str(path))

    st = UsdGeom.PrimvarsAPI(stage.GetPrimAtPath("/model/mesh")).GetPrimvar("st")
    assert len(st.Get()) == len(pbr_box().vertices)
    assert {name for name in zipfile.ZipFile(path).namelist() if name.endswith(".png")} == {
        "0/model.png",
        "0/model_metallic_roughness.png",
        "0/model_normal.png",
    }
    surface = UsdShade.Shader(stage.GetPrimAtPath("/model/material/surface"))
    for name in ("diffuseColor", "roughness", "metallic", "normal"):
        assert surface.GetInput(name).HasConnectedSource(), name
    base = UsdShade.Shader(stage.GetPrimAtPath("/model/material/baseColorTexture"))
    assert base.GetInput("file").Get().resolvedPath.endswith("model.png]")


def test_ply_has_the_texture_sampled_at_its_vertices(asset: trimesh.Trimesh) -> None:
    ply = trimesh.load(io.BytesIO(to_ply(asset)["model.ply"]), file_type="ply", process=False)
    colors = np.asarray(ply.visual.vertex_colors)
    x = np.asarray(ply.vertices)[:, 0]

    left, right = colors[x < -0.2, :3].mean(axis=0), colors[x > 0.2, :3].mean(axis=0)
    assert left[0] > 2 * left[2] and right[2] > 2 * right[0]


def test_the_thumbnails_show_the_photos_colours_on_the_right_sides(
    exported: Exported, asset: trimesh.Trimesh
) -> None:
    _, out = exported
    chain = np.asarray(Image.open(out / "thumbnail.png").convert("RGBA"))
    gl = make_thumbnail(asset, 128)
    gl_pixels = np.asarray(Image.open(io.BytesIO(gl.png)).convert("RGBA"))

    assert reads_red_then_blue(chain)
    assert reads_red_then_blue(gl_pixels)
    assert reads_red_then_blue(render_rgba(asset, 128)), "the numpy fallback renders it too"


def test_engine_bundles_carry_the_texture(exported: Exported) -> None:
    result, out = exported
    lods = [load_mesh(out / record["file"]) for record in result.lods]

    bundle = export_to_unity("Split Disc", lods)

    glbs = [path for path in bundle.files if path.endswith(".glb")]
    assert len(glbs) == len(lods)
    for path in glbs:
        assert not is_flat(glb_maps(bundle.files[path])[BASE_COLOR]), path


# --- PBR maps and the fallback ---------------------------------------------------------------


def test_pbr_maps_reach_the_glb_gltf_obj_and_draco(tmp_path: Path) -> None:
    box = pbr_box()
    expected = texture_maps_of(box).maps  # type: ignore[union-attr]

    glb = tmp_path / "box.glb"
    glb.write_bytes(mesh_to_glb(box))
    assert valid(glb)
    document, _ = read_glb(glb.read_bytes())
    material = document["materials"][0]
    assert {"baseColorTexture", "metallicRoughnessTexture"} <= set(material["pbrMetallicRoughness"])
    assert "normalTexture" in material
    found = glb_maps(glb.read_bytes())
    assert set(found) == set(expected)
    assert all(same_pixels(found[name], expected[name]) for name in expected)

    gltf = to_gltf(box)
    assert {"model_metallic_roughness.png", "model_normal.png", "model.png"} <= set(gltf)
    mtl = to_obj(box)["model.mtl"].decode()
    assert (
        "norm model_normal.png" in mtl and "map_Pr -imfchan g model_metallic_roughness.png" in mtl
    )

    from sweedle_core.export.draco_compressor import compress_glb

    decoded = texture_maps_of(decode_draco_glb(compress_glb(box)))
    assert decoded is not None and set(decoded.maps) == {BASE_COLOR, METALLIC_ROUGHNESS, NORMAL}


def test_a_mesh_that_could_not_be_unwrapped_says_why_in_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photo_texture, "MAX_UNWRAP_FACES", 100)
    mesh = textured_asset()
    write_raw_mesh(mesh, tmp_path / "raw.npz")

    result = export_asset(tmp_path / "raw.npz", tmp_path / "out", ExportOptions())

    reason = result.validation["attributes"]["texture_fallback"]
    assert "faces; xatlas unwraps at most 100" in reason
    assert result.texture == TEXTURE_FROM_IMAGE
    assert not result.validation["attributes"]["texture"]
    primitive = primitive_of((tmp_path / "out" / "model.glb").read_bytes())
    assert "COLOR_0" in primitive["attributes"] and "TEXCOORD_0" not in primitive["attributes"]
    thumbnail = Image.open(tmp_path / "out" / "thumbnail.png").convert("RGBA")
    assert reads_red_then_blue(np.asarray(thumbnail))
