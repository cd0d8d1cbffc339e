"""Draco-compressed GLB: valid glTF (Khronos validator), the payload decodes back to the mesh
(the validator cannot look inside it), trimesh loads it, and it is much smaller."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import trimesh

from sweedle_core.export.draco_compressor import QuantizationSettings, compress_glb
from sweedle_core.export.glb import mesh_to_glb, pack_glb
from tests.glb_files import decode_draco_glb, read_glb
from tests.gltf_check import validate_gltf
from tests.meshes import GREEN, YELLOW, coloured_sphere, textured_box


def document_of(data: bytes) -> dict:
    (json_length,) = struct.unpack_from("<I", data, 12)
    return json.loads(data[20 : 20 + json_length])


def assert_valid(data: bytes, path: Path) -> dict:
    path.write_bytes(data)
    report = validate_gltf(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    return report


def test_draco_glb_validates_and_decodes_to_the_same_mesh(tmp_path: Path) -> None:
    mesh = coloured_sphere(3)
    data = compress_glb(mesh)
    report = assert_valid(data, tmp_path / "sphere.glb")
    back = decode_draco_glb(data)

    assert report["issues"]["numWarnings"] == 0
    assert len(back.faces) == len(mesh.faces)
    assert len(back.vertices) == len(mesh.vertices)
    assert {tuple(c) for c in back.visual.vertex_colors} == {GREEN, YELLOW}
    # 14 bits over a 2-unit extent: each coordinate moves by at most half a step
    nearest = mesh.vertices[mesh.kdtree.query(back.vertices)[1]]
    assert np.abs(back.vertices - nearest).max() <= 0.5 * 2.0 / (2**14 - 1) + 1e-6
    normals = back.vertex_normals
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-2)
    assert (np.einsum("ij,ij->i", normals, back.vertices) > 0.9).all()  # still outward


def test_trimesh_loads_the_draco_glb(tmp_path: Path) -> None:
    # trimesh 5 decodes KHR_draco_mesh_compression itself (through DracoPy).
    mesh = coloured_sphere(3)
    data = compress_glb(mesh)
    assert_valid(data, tmp_path / "sphere.glb")
    loaded = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")

    assert len(loaded.faces) == len(mesh.faces)
    assert loaded.volume > 0


def test_draco_glb_declares_the_extension_and_bare_accessors(tmp_path: Path) -> None:
    data = compress_glb(coloured_sphere(3))
    assert_valid(data, tmp_path / "sphere.glb")
    document = document_of(data)
    primitive = document["meshes"][0]["primitives"][0]
    back = decode_draco_glb(data)

    assert document["extensionsUsed"] == ["KHR_draco_mesh_compression"]
    assert document["extensionsRequired"] == ["KHR_draco_mesh_compression"]
    for accessor in document["accessors"]:
        assert "bufferView" not in accessor and "byteOffset" not in accessor
    attributes = primitive["attributes"]
    assert set(attributes) == {"POSITION", "NORMAL", "COLOR_0"}
    assert set(primitive["extensions"]["KHR_draco_mesh_compression"]["attributes"]) == set(
        attributes
    )
    color = document["accessors"][attributes["COLOR_0"]]
    assert color["normalized"] is True and color["componentType"] == 5121
    position = document["accessors"][attributes["POSITION"]]
    assert position["count"] == len(back.vertices)
    assert np.allclose(position["min"], back.vertices.min(axis=0))
    assert np.allclose(position["max"], back.vertices.max(axis=0))
    assert document["accessors"][primitive["indices"]]["count"] == back.faces.size


def test_draco_is_much_smaller_than_the_plain_glb(tmp_path: Path) -> None:
    mesh = coloured_sphere(subdivisions=6)  # 81,920 faces
    plain = mesh_to_glb(mesh)
    draco = compress_glb(mesh)
    assert_valid(plain, tmp_path / "plain.glb")
    assert_valid(draco, tmp_path / "draco.glb")

    ratio = len(plain) / len(draco)
    print(f"plain {len(plain)} B, draco {len(draco)} B, ratio {ratio:.1f}")
    assert ratio > 10  # measured 26.5 at the default quantisation
    assert len(decode_draco_glb(draco).faces) == len(mesh.faces)


def test_textured_mesh_keeps_its_uvs_and_texture(tmp_path: Path) -> None:
    box = textured_box()
    data = compress_glb(box)
    report = assert_valid(data, tmp_path / "box.glb")
    document = document_of(data)
    back = decode_draco_glb(data)

    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    assert set(attributes) == {"POSITION", "NORMAL", "TEXCOORD_0"}
    assert report["info"]["resources"][1]["mimeType"] == "image/png"
    assert back.visual.kind == "texture"
    assert np.array_equal(
        np.asarray(back.visual.material.image), np.asarray(box.visual.material.image)
    )
    # each decoded corner has the UV of the original vertex at that position (12 bits)
    original = {
        tuple(np.round(v, 3)): uv for v, uv in zip(box.vertices, box.visual.uv, strict=True)
    }
    for vertex, uv in zip(back.vertices, back.visual.uv, strict=True):
        assert np.allclose(original[tuple(np.round(vertex, 3))], uv, atol=1e-3)
    loaded = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
    assert len(loaded.faces) == 12 and loaded.visual.kind == "texture"


def test_fewer_colour_bits_round_the_colours(tmp_path: Path) -> None:
    data = compress_glb(coloured_sphere(3), QuantizationSettings(color=2))
    assert_valid(data, tmp_path / "sphere.glb")
    back = decode_draco_glb(data)
    levels = {0, 85, 170, 255}  # 2 bits spread over 0-255

    assert set(np.unique(back.visual.vertex_colors)) <= levels


@pytest.mark.parametrize(
    "settings",
    [
        {"position": 0},
        {"position": 31},
        {"normal": 0},
        {"texcoord": 40},
        {"color": 9},
        {"position": 14.0},
    ],
)
def test_quantization_settings_reject_values_out_of_range(settings: dict) -> None:
    with pytest.raises(ValueError, match="quantisation"):
        QuantizationSettings(**settings)


def test_compression_level_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="compression_level"):
        compress_glb(coloured_sphere(1), compression_level=11)


def test_decoding_catches_an_accessor_that_disagrees_with_the_payload() -> None:
    # The decoder is how these tests judge a Draco GLB (the validator does not open the
    # payload): it must see a count the payload does not have.
    document, binary = read_glb(compress_glb(coloured_sphere(1)))
    document["accessors"][0]["count"] += 1

    with pytest.raises(ValueError, match="accessor says"):
        decode_draco_glb(pack_glb(document, binary))
