"""Upstream Hunyuan3D's mesh post-processing, run on pymeshlab meshes held in memory.

hy3dgen's ``FloaterRemover``, ``DegenerateFaceRemover`` and ``FaceReducer`` apply these same
MeshLab filters, but each round-trips the mesh through a temporary PLY file that it never
deletes: a long-running server would fill its temp folder. Building the ``pymeshlab.Mesh`` from
arrays avoids the files (and the time spent writing them). Needs pymeshlab (the hunyuan extra).
"""

from __future__ import annotations

import numpy as np
import trimesh

# Upstream's floater threshold: components with fewer than this share of the faces go.
FLOATER_FACE_SHARE = 0.005


def clean_mesh(
    mesh: trimesh.Trimesh, max_faces: int, floater_share: float = FLOATER_FACE_SHARE
) -> trimesh.Trimesh:
    """Weld duplicates, drop degenerate faces and small floating parts, and reduce the mesh to
    at most ``max_faces`` faces by quadric edge collapse (topology and boundaries preserved).

    mesh : vertices (n, 3), faces (m, 3); colours are not kept (this runs before colouring).
    """
    import pymeshlab

    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(
        pymeshlab.Mesh(
            vertex_matrix=np.asarray(mesh.vertices, dtype=np.float64),
            face_matrix=np.asarray(mesh.faces, dtype=np.int32),
        )
    )
    meshes.apply_filter("meshing_remove_duplicate_vertices")
    meshes.apply_filter("meshing_remove_duplicate_faces")
    meshes.apply_filter("meshing_remove_null_faces")
    meshes.apply_filter(
        "compute_selection_by_small_disconnected_components_per_face", nbfaceratio=floater_share
    )
    meshes.apply_filter("compute_selection_transfer_face_to_vertex", inclusive=False)
    meshes.apply_filter("meshing_remove_selected_vertices_and_faces")
    meshes.apply_filter("meshing_remove_unreferenced_vertices")
    if meshes.current_mesh().face_number() > max_faces:
        meshes.apply_filter(
            "meshing_decimation_quadric_edge_collapse",
            targetfacenum=max_faces,
            qualitythr=1.0,
            preserveboundary=True,
            boundaryweight=3,
            preservenormal=True,
            preservetopology=True,
            autoclean=True,
        )
    result = meshes.current_mesh()
    return trimesh.Trimesh(
        vertices=result.vertex_matrix().astype(np.float32),
        faces=result.face_matrix().astype(np.int64),
        process=False,
    )
