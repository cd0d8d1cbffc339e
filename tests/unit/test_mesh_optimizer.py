"""The mesh optimiser: weld (keeping seams), drop junk and floaters, wind outward, normals."""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image
from skimage import measure

from sweedle_core.export.mesh_io import signed_volume, vertex_colors_of, vertex_uv_of
from sweedle_core.export.mesh_optimizer import optimize_mesh, weld_vertices
from sweedle_core.export.validator import validate_mesh

RED = (255, 0, 0, 255)
BLUE = (0, 0, 255, 255)


def unwelded_halves(subdivisions: int = 2) -> tuple[trimesh.Trimesh, trimesh.Trimesh]:
    """``(sphere, soup)``: an icosphere and the same faces, each with its own three vertices,
    faces left of x = 0 red and the others blue."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    red = sphere.triangles_center[:, 0] < 0
    colors = np.repeat(np.where(red[:, None], RED, BLUE), 3, axis=0).astype(np.uint8)
    soup = trimesh.Trimesh(
        vertices=sphere.vertices[sphere.faces.ravel()],
        faces=np.arange(3 * len(sphere.faces)).reshape(-1, 3),
        vertex_colors=colors,
        process=False,
    )
    return sphere, soup


def test_weld_merges_equal_vertices_and_keeps_colour_seams():
    sphere, soup = unwelded_halves()
    red = sphere.triangles_center[:, 0] < 0
    # A vertex on the seam is used by red and blue faces: it must stay two vertices.
    pairs = np.unique(np.column_stack([sphere.faces.ravel(), np.repeat(red, 3)]), axis=0)

    source, faces = weld_vertices(soup)

    assert len(source) == len(pairs) > len(sphere.vertices)
    assert faces.shape == sphere.faces.shape
    welded = trimesh.Trimesh(soup.vertices[source], faces, process=False)
    assert np.allclose(welded.triangles, sphere.triangles)


def test_optimize_welds_and_keeps_colours():
    sphere, soup = unwelded_halves()
    result = optimize_mesh(soup)

    colors = vertex_colors_of(result)
    assert colors is not None
    assert len(result.faces) == len(sphere.faces)
    # Every face keeps one colour: red on the left, blue on the right.
    face_colors = colors[result.faces]
    assert (face_colors == face_colors[:, :1]).all()
    left = result.triangles_center[:, 0] < 0
    assert (face_colors[left, 0] == RED).all() and (face_colors[~left, 0] == BLUE).all()
    assert validate_mesh(result)["edges"]["boundary"] == 0  # the seam is closed


def test_junk_and_floaters_are_dropped():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    floater = trimesh.creation.icosphere(subdivisions=1, radius=0.05)
    floater.apply_translation([3, 0, 0])
    n = len(sphere.vertices)
    faces = np.vstack(
        [
            sphere.faces,
            sphere.faces[:5],  # duplicates
            sphere.faces[5:7, [1, 0, 2]],  # duplicates wound the other way
            [[0, 0, 1], [2, 3, 3]],  # repeated indices
            floater.faces + n,
        ]
    )
    damaged = trimesh.Trimesh(np.vstack([sphere.vertices, floater.vertices]), faces, process=False)
    assert not validate_mesh(damaged)["ok"]

    result = optimize_mesh(damaged)

    assert len(result.faces) == len(sphere.faces)
    assert len(result.vertices) == len(sphere.vertices)
    report = validate_mesh(result)
    assert report["ok"], report["problems"]
    assert report["components"]["count"] == 1


def test_a_floater_above_the_share_is_kept():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    other = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    other.apply_translation([3, 0, 0])
    both = trimesh.util.concatenate([sphere, other])
    assert len(optimize_mesh(both).faces) == len(both.faces)  # 25 % of the area: not a floater
    assert len(optimize_mesh(both, floater_area_share=0.3).faces) == len(sphere.faces)


def test_tiny_faces_are_collapsed_without_opening_holes():
    """Marching cubes leaves faces a millionth of the model across where the surface grazes
    a grid corner; dropping them would open holes, collapsing their short edge does not."""
    axis = np.arange(32) - 15.5 + 0.13
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    distance = np.sqrt(x**2 + y**2 + z**2)
    radius = distance[20, 14, 9] + 1e-5  # the surface passes 1e-5 voxels from grid points
    vertices, faces, _, _ = measure.marching_cubes(distance - radius, 0.0)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert validate_mesh(mesh)["degenerate_faces"]["zero_area"] > 0

    result = optimize_mesh(mesh)

    report = validate_mesh(result)
    assert report["ok"] and report["watertight"], report["problems"]
    assert report["degenerate_faces"] == {"repeated_index": 0, "zero_area": 0}
    assert len(mesh.faces) - 50 < len(result.faces) < len(mesh.faces)


def test_inverted_pieces_are_wound_outward_and_cavities_inward():
    outer = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    cavity = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    cavity.faces = cavity.faces[:, ::-1]  # a hollow ball: the inner wall faces inward
    apart = trimesh.creation.icosphere(subdivisions=3, radius=0.8)
    apart.apply_translation([3, 0, 0])
    apart.faces = apart.faces[:, ::-1]  # an inverted piece of its own
    mesh = trimesh.util.concatenate([outer, cavity, apart])

    result = optimize_mesh(mesh)

    centres = result.triangles_center
    pieces = {
        "outer": np.linalg.norm(centres, axis=1) > 0.9,
        "cavity": np.linalg.norm(centres, axis=1) < 0.6,
        "apart": centres[:, 0] > 2,
    }
    volume = {k: signed_volume(result.vertices, result.faces[m]) for k, m in pieces.items()}
    assert volume["outer"] > 0 and volume["apart"] > 0 and volume["cavity"] < 0
    inverted = trimesh.Trimesh(outer.vertices, outer.faces[:, ::-1], process=False)
    assert validate_mesh(optimize_mesh(inverted))["winding"] == "outward"


def test_normals_are_stored_unit_and_outward():
    result = optimize_mesh(trimesh.creation.icosphere(subdivisions=3))
    assert "vertex_normals" in result._cache  # stored, not computed on access
    normals = result.vertex_normals
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    assert (np.einsum("ij,ij->i", normals, result.vertices) > 0.99).all()
    report = validate_mesh(result)["normals"]
    assert report["present"] and report["unit_length"] and report["agree_with_winding"]


def test_uvs_and_texture_survive():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    image = Image.new("RGB", (16, 16), (10, 200, 30))
    uv = (sphere.vertices[:, :2] + 1) / 2
    mesh = trimesh.Trimesh(
        sphere.vertices[sphere.faces.ravel()],
        np.arange(3 * len(sphere.faces)).reshape(-1, 3),
        visual=trimesh.visual.TextureVisuals(uv=uv[sphere.faces.ravel()], image=image),
        process=False,
    )
    mesh.metadata["texture"] = "hunyuan3d_paint"

    result = optimize_mesh(mesh)

    assert len(result.vertices) == len(sphere.vertices)
    out_uv = vertex_uv_of(result)
    assert out_uv is not None
    assert np.allclose(out_uv, (result.vertices[:, :2] + 1) / 2)
    assert result.visual.material.image is image
    assert result.metadata["texture"] == "hunyuan3d_paint"


def test_no_faces_gives_an_empty_mesh():
    empty = trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=np.zeros((0, 3), dtype=int))
    result = optimize_mesh(empty)
    assert len(result.faces) == 0 and len(result.vertices) == 0
