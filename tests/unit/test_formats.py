"""Every output format reloads with the same faces (trimesh, or usd-core for USDZ); glTF output
passes the Khronos validator; textures survive GLB, glTF and OBJ; the convert-model command."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import trimesh

from sweedle_core.errors import InvalidInput
from sweedle_core.export.convert import main as convert_main
from sweedle_core.export.formats import (
    EXPORTERS,
    MEDIA_TYPES,
    MODEL_STEM,
    write_format,
    zip_files,
)
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import write_raw_mesh
from tests.gltf_check import validate_gltf
from tests.meshes import GREEN, PIXELS, YELLOW, coloured_sphere, textured_box

MESHES = {"coloured": coloured_sphere, "textured": textured_box}


def write_files(files: dict[str, bytes], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder / next(iter(files))


def usd_faces_and_up_axis(path: Path) -> tuple[int, str, float]:
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    meshes = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
    faces = sum(len(m.GetFaceVertexCountsAttr().Get()) for m in meshes)
    return faces, UsdGeom.GetStageUpAxis(stage), UsdGeom.GetStageMetersPerUnit(stage)


def validate_files(main_file: Path) -> dict:
    """Validate a glTF (with its side files inlined as data URIs: the validator script reads
    one file and cannot resolve relative URIs) or a GLB."""
    if main_file.suffix == ".gltf":
        document = json.loads(main_file.read_text())
        for item in document["buffers"] + document.get("images", []):
            data = (main_file.parent / item["uri"]).read_bytes()
            kind = item.get("mimeType", "application/octet-stream")
            item["uri"] = f"data:{kind};base64,{base64.b64encode(data).decode()}"
        main_file = main_file.with_name("inlined.gltf")
        main_file.write_text(json.dumps(document))
    report = validate_gltf(main_file)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    return report


# --- every format -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(MESHES))
@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_format_reloads_with_the_same_faces(fmt: str, kind: str, tmp_path: Path) -> None:
    mesh = MESHES[kind]()
    files = EXPORTERS[fmt](mesh)
    main_file = write_files(files, tmp_path)

    assert main_file.name == f"{MODEL_STEM}.{fmt}"
    if fmt == "usdz":
        faces, up_axis, meters = usd_faces_and_up_axis(main_file)
        assert (faces, up_axis, meters) == (len(mesh.faces), "Y", 1.0)
        return
    loaded = trimesh.load(main_file, force="mesh", process=False)
    assert len(loaded.faces) == len(mesh.faces)
    if fmt in ("glb", "gltf"):
        validate_files(main_file)


def test_media_types_cover_every_format() -> None:
    assert list(MEDIA_TYPES) == list(EXPORTERS)
    assert MEDIA_TYPES["gltf"] == "model/gltf+json"
    assert MEDIA_TYPES["usdz"] == "model/vnd.usdz+zip"


# --- textures -----------------------------------------------------------------------------


def test_textured_glb_round_trips_with_texcoord_and_texture(tmp_path: Path) -> None:
    box = textured_box()
    data = mesh_to_glb(box)
    (tmp_path / "box.glb").write_bytes(data)
    report = validate_files(tmp_path / "box.glb")
    gltf = pygltflib.GLTF2.load_from_bytes(data)
    primitive = gltf.meshes[0].primitives[0]

    assert primitive.attributes.TEXCOORD_0 is not None
    assert primitive.attributes.COLOR_0 is None  # it would tint the texture
    assert gltf.images[0].mimeType == "image/png" and gltf.images[0].bufferView is not None
    assert gltf.textures[0].sampler == 0
    pbr = gltf.materials[primitive.material].pbrMetallicRoughness
    assert pbr.baseColorTexture.index == 0
    assert report["info"]["resources"][1]["image"]["width"] == 4

    # glTF puts the UV origin top-left: V is flipped in the file
    accessor = gltf.accessors[primitive.attributes.TEXCOORD_0]
    view = gltf.bufferViews[accessor.bufferView]
    stored = np.frombuffer(
        gltf.binary_blob(), np.float32, accessor.count * 2, view.byteOffset
    ).reshape(-1, 2)
    assert np.allclose(stored[:, 0], box.visual.uv[:, 0])
    assert np.allclose(stored[:, 1], 1.0 - box.visual.uv[:, 1])

    loaded = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh", process=False)
    assert loaded.visual.kind == "texture"
    assert np.allclose(loaded.visual.uv, box.visual.uv)  # trimesh flips it back
    image = loaded.visual.material.baseColorTexture
    assert np.array_equal(np.asarray(image.convert("RGB")), PIXELS)


def test_textured_gltf_is_three_files_that_reference_each_other(tmp_path: Path) -> None:
    files = EXPORTERS["gltf"](textured_box(), "chair")
    main_file = write_files(files, tmp_path)
    document = json.loads(files["chair.gltf"])

    assert list(files) == ["chair.gltf", "chair.bin", "chair.png"]
    assert document["buffers"][0]["uri"] == "chair.bin"
    assert document["images"][0] == {"uri": "chair.png", "mimeType": "image/png"}
    validate_files(main_file)
    loaded = trimesh.load(main_file, force="mesh", process=False)
    assert loaded.visual.kind == "texture"
    assert np.allclose(loaded.visual.uv, textured_box().visual.uv)


def test_textured_obj_comes_with_its_material_and_image(tmp_path: Path) -> None:
    files = EXPORTERS["obj"](textured_box())
    main_file = write_files(files, tmp_path)

    assert sorted(files) == ["model.mtl", "model.obj", "model.png"]
    assert b"mtllib model.mtl" in files["model.obj"]
    assert b"map_Kd model.png" in files["model.mtl"]
    assert b"Kd 1.00000000 1.00000000 1.00000000" in files["model.mtl"]  # white: no tint
    loaded = trimesh.load(main_file, force="mesh", process=False)
    assert loaded.visual.kind == "texture"
    assert np.array_equal(np.asarray(loaded.visual.material.image.convert("RGB")), PIXELS)


def test_untextured_obj_and_ply_keep_vertex_colours(tmp_path: Path) -> None:
    for fmt in ("obj", "ply"):
        files = EXPORTERS[fmt](coloured_sphere())
        assert list(files) == [f"model.{fmt}"]
        loaded = trimesh.load(write_files(files, tmp_path / fmt), process=False)
        assert {tuple(c) for c in loaded.visual.vertex_colors} == {GREEN, YELLOW}


def test_usdz_has_vertex_colours_normals_and_a_preview_material(tmp_path: Path) -> None:
    from pxr import Usd, UsdGeom, UsdShade

    mesh = coloured_sphere()
    main_file = write_files(EXPORTERS["usdz"](mesh), tmp_path)
    stage = Usd.Stage.Open(str(main_file))
    geom = UsdGeom.Mesh(stage.GetPrimAtPath("/model/mesh"))
    color = UsdGeom.PrimvarsAPI(geom).GetPrimvar("displayColor")

    assert stage.GetDefaultPrim().GetPath() == "/model"
    assert color.GetInterpolation() == UsdGeom.Tokens.vertex
    colors = np.asarray(color.Get())
    assert np.allclose(colors * 255, mesh.visual.vertex_colors[:, :3], atol=0.01)
    assert len(geom.GetNormalsAttr().Get()) == len(mesh.vertices)
    assert set(geom.GetFaceVertexCountsAttr().Get()) == {3}
    material, _ = UsdShade.MaterialBindingAPI(geom.GetPrim()).ComputeBoundMaterial()
    assert material.GetPath() == "/model/material"


# --- how the service writes a format ------------------------------------------------------


def test_write_format_writes_one_file_plainly_and_several_as_a_zip(tmp_path: Path) -> None:
    glb = write_format(coloured_sphere(), "glb", tmp_path)
    gltf = write_format(coloured_sphere(), "gltf", tmp_path)
    obj = write_format(coloured_sphere(), "obj", tmp_path)

    assert glb == tmp_path / "model.glb"
    assert obj == tmp_path / "model.obj"  # vertex colours: one file
    assert gltf == tmp_path / "model.gltf.zip"
    with zipfile.ZipFile(gltf) as archive:
        assert archive.namelist() == ["model.gltf", "model.bin"]
        archive.extractall(tmp_path / "unzipped")
    assert len(trimesh.load(tmp_path / "unzipped" / "model.gltf", force="mesh").faces) == 320
    validate_files(tmp_path / "unzipped" / "model.gltf")
    validate_files(glb)
    assert write_format(textured_box(), "obj", tmp_path / "t").name == "model.obj.zip"


def test_write_format_rejects_an_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="glb, gltf, obj, ply, stl, usdz"):
        write_format(coloured_sphere(), "fbx", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_zip_files_is_deterministic() -> None:
    files = {"a.gltf": b"{}", "a.bin": b"\0" * 100}

    assert zip_files(files) == zip_files(dict(files))


# --- convert-model ------------------------------------------------------------------------


@pytest.fixture
def raw_sphere(tmp_path: Path) -> Path:
    path = tmp_path / "sphere.npz"
    write_raw_mesh(coloured_sphere(inverted=True), path)
    return path


def test_convert_model_writes_by_extension_and_reports(
    raw_sphere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "chair.glb"

    assert convert_main([str(raw_sphere), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{out}: 320 faces, 162 vertices, {out.stat().st_size} bytes" in printed
    validate_files(out)


def test_convert_model_writes_a_multi_file_format_into_a_folder(
    raw_sphere: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "gltf"

    assert convert_main([str(raw_sphere), str(folder), "--format", "gltf"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["sphere.bin", "sphere.gltf"]
    validate_files(folder / "sphere.gltf")


@pytest.mark.parametrize("fmt", ["glb", "gltf", "obj", "ply", "stl"])
def test_convert_model_winds_an_inverted_mesh_outward(
    fmt: str, raw_sphere: Path, tmp_path: Path
) -> None:
    main_file = tmp_path / f"sphere.{fmt}"  # raw_sphere is wound inward

    assert convert_main([str(raw_sphere), str(main_file)]) == 0
    assert trimesh.load(main_file, force="mesh").volume > 0
    if fmt in ("glb", "gltf"):
        validate_files(main_file)


@pytest.mark.parametrize("fmt", ["obj", "ply", "stl", "usdz"])
def test_convert_model_reads_what_it_wrote(fmt: str, raw_sphere: Path, tmp_path: Path) -> None:
    first = tmp_path / f"a.{fmt}"
    assert convert_main([str(raw_sphere), str(first)]) == 0
    if fmt != "usdz":  # trimesh cannot read USDZ
        assert convert_main([str(first), str(tmp_path / "b.glb")]) == 0
        assert len(trimesh.load(tmp_path / "b.glb", force="mesh").faces) == 320
        validate_files(tmp_path / "b.glb")


def test_convert_model_keeps_the_colours_and_texture_of_a_glb(tmp_path: Path) -> None:
    # trimesh hides a GLB's COLOR_0 once the primitive has a material; the command finds it.
    (tmp_path / "sphere.glb").write_bytes(mesh_to_glb(coloured_sphere()))
    (tmp_path / "box.glb").write_bytes(mesh_to_glb(textured_box()))

    assert convert_main([str(tmp_path / "sphere.glb"), str(tmp_path / "sphere.ply")]) == 0
    assert convert_main([str(tmp_path / "box.glb"), str(tmp_path / "out" / "box.glb")]) == 0
    sphere = trimesh.load(tmp_path / "sphere.ply", process=False)
    assert {tuple(c) for c in sphere.visual.vertex_colors} == {GREEN, YELLOW}
    validate_files(tmp_path / "out" / "box.glb")
    box = trimesh.load(tmp_path / "out" / "box.glb", force="mesh")
    assert box.visual.kind == "texture"
    assert np.array_equal(np.asarray(box.visual.material.baseColorTexture.convert("RGB")), PIXELS)


def test_convert_model_draco(
    raw_sphere: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sphere.glb"

    assert convert_main([str(raw_sphere), str(out), "--draco"]) == 0
    assert "320 faces" in capsys.readouterr().out
    assert b"KHR_draco_mesh_compression" in out.read_bytes()[:2000]
    validate_files(out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["out.fbx"], "unknown format 'fbx'"),
        (["out"], "has no extension"),
        (["out.ply", "--draco"], "--draco applies to the glb format only"),
        (["out.glb", "--format", "fbx"], "invalid choice"),
    ],
)
def test_convert_model_usage_errors_exit_2(
    args: list[str],
    message: str,
    raw_sphere: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        convert_main([str(raw_sphere), *(str(tmp_path / args[0]), *args[1:])])

    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_convert_model_unreadable_input_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, points=np.zeros((3, 3)))

    assert convert_main([str(bad), str(tmp_path / "out.glb")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert convert_main([str(tmp_path / "missing.glb"), str(tmp_path / "out.glb")]) == 1
