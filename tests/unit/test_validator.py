"""The mesh validator: a clean sphere passes; each kind of damage is found and named."""

from __future__ import annotations

import json

import numpy as np
import trimesh

from sweedle_core.export.validator import duplicate_faces, edge_counts, validate_mesh


def sphere(subdivisions: int = 3) -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=subdivisions)


def test_a_clean_sphere_is_ok():
    mesh = sphere()
    report = validate_mesh(mesh)

    assert report["ok"] and report["problems"] == []
    assert report["watertight"] and report["winding"] == "outward"
    assert report["vertices"] == len(mesh.vertices) and report["faces"] == len(mesh.faces)
    assert report["edges"] == {
        "count": len(mesh.faces) * 3 // 2,
        "boundary": 0,
        "non_manifold": 0,
        "inconsistent_winding": 0,
    }
    assert report["components"] == {"count": 1, "largest_face_share": 1.0, "floaters": 0}
    assert np.allclose(report["bounds"]["min"], [-1, -1, -1])
    assert np.isclose(report["bounds"]["diagonal"], 2 * np.sqrt(3))
    assert report["signed_volume"] > 4.0  # a unit sphere: 4.19
    assert report["normals"]["present"] is False  # trimesh would compute them, none stored
    assert report["attributes"] == {
        "vertex_colors": False,
        "uv": False,
        "texture": False,
        "texture_maps": [],
        "texture_size": None,
    }
    json.dumps(report)  # JSON-ready as it is


def test_an_inverted_open_mesh_lists_its_problems():
    mesh = sphere()
    kept = np.ones(len(mesh.faces), dtype=bool)
    kept[:10] = False  # a hole
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[kept][:, ::-1], process=False)

    report = validate_mesh(mesh)

    assert not report["ok"]
    assert not report["watertight"] and report["winding"] == "open"
    assert report["edges"]["boundary"] > 0
    assert any("boundary edges" in p and "holes" in p for p in report["problems"])
    assert any("wound inward" in p for p in report["problems"])


def test_a_closed_inverted_mesh_is_inward():
    mesh = sphere()
    report = validate_mesh(trimesh.Trimesh(mesh.vertices, mesh.faces[:, ::-1], process=False))
    assert report["watertight"] and report["winding"] == "inward"
    assert report["problems"] == [
        "faces are wound inward (negative volume): engines cull them and the model renders "
        "inside out; run the optimiser to flip them"
    ]


def test_damage_is_counted():
    mesh = sphere(2)
    floater = trimesh.creation.icosphere(subdivisions=1, radius=0.02)
    floater.apply_translation([3, 0, 0])
    faces = np.vstack(
        [
            mesh.faces,
            mesh.faces[:3],  # duplicates
            mesh.faces[3:4, ::-1],  # a duplicate wound the other way
            [[0, 0, 1]],  # a repeated index
            floater.faces + len(mesh.vertices),
        ]
    )
    damaged = trimesh.Trimesh(np.vstack([mesh.vertices, floater.vertices]), faces, process=False)

    report = validate_mesh(damaged)

    assert report["duplicate_faces"] == 4
    assert report["degenerate_faces"] == {"repeated_index": 1, "zero_area": 0}
    assert report["components"]["count"] == 2 and report["components"]["floaters"] == 1
    assert report["edges"]["non_manifold"] > 0
    assert len(report["problems"]) >= 4 and not report["ok"]


def test_edge_counts_find_flipped_neighbours_and_fins():
    mesh = sphere(1)
    faces = mesh.faces.copy()
    faces[0] = faces[0, ::-1]  # one flipped face: its 3 edges run the same way as neighbours'
    assert edge_counts(faces, len(mesh.vertices)).inconsistent == 3

    a, b = mesh.faces[0, :2]
    fin = np.vstack([mesh.faces, [[a, b, len(mesh.vertices)]]])
    counts = edge_counts(fin, len(mesh.vertices) + 1)
    assert counts.non_manifold == 1 and counts.boundary == 2


def test_duplicate_faces_keeps_the_first_of_each():
    faces = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 0], [0, 1, 3]])
    assert duplicate_faces(faces, 4).tolist() == [False, True, True, False]


def test_stored_normals_are_checked():
    mesh = sphere()
    flipped = trimesh.Trimesh(
        mesh.vertices, mesh.faces, vertex_normals=-mesh.vertices, process=False
    )
    report = validate_mesh(flipped)
    assert report["normals"]["present"] and report["normals"]["unit_length"]
    assert report["normals"]["agree_with_winding"] is False
    assert any("normals point against" in p for p in report["problems"])

    long = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_normals=2 * mesh.vertices)
    assert validate_mesh(long)["normals"]["unit_length"] is False


def test_attributes_are_reported():
    mesh = sphere(1)
    colors = np.full((len(mesh.vertices), 4), 200, dtype=np.uint8)
    coloured = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=colors, process=False)
    assert validate_mesh(coloured)["attributes"]["vertex_colors"]


def test_no_faces_is_a_problem():
    report = validate_mesh(trimesh.Trimesh(vertices=np.zeros((3, 3)), faces=np.zeros((0, 3))))
    assert not report["ok"] and report["faces"] == 0
