"""The CPU stage of the ``hunyuan3d`` backend: the decoded volume's surface, cleaned.

The GPU stage (`hunyuan.Hunyuan3DGenerator.generate_shape`) ends with the VAE's occupancy
logits on the octree grid. Here, in the CPU pool, marching cubes takes the surface at
``MC_LEVEL`` as upstream's default extractor does (the vertices scaled into the ``BOX_V``
cube, the faces flipped to face outward), then upstream's post-processing (floaters,
degenerate faces, reduction to ``max_faces``, `mesh_cleanup`); colour comes after (`finish`:
the photo baked into a UV texture, or the paint path). Needs no torch and no model; pymeshlab
(the hunyuan extra) for the clean-up.
"""

from __future__ import annotations

import numpy as np
import trimesh
from skimage.measure import marching_cubes

from sweedle_core.errors import GenerationFailed
from sweedle_core.export.mesh_io import outward_winding
from sweedle_core.generation.mesh_cleanup import clean_mesh
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.generation.shape import Shape
from sweedle_core.params import GenerationParams

METHOD = "hunyuan"
# Upstream's pipeline defaults: the half-size of the decoded cube, and the logit of the surface.
BOX_V = 1.01
MC_LEVEL = 0.0
NO_SURFACE = "the model found no surface for this image and seed; try another seed"


def volume_shape(generator: str, grid: np.ndarray, octree_resolution: int) -> Shape:
    """The GPU stage's hand-off: ``grid (n + 1, n + 1, n + 1)`` logits, float16."""
    values = {"bounds": BOX_V, "mc_level": MC_LEVEL, "octree_resolution": octree_resolution}
    return Shape(METHOD, generator, {"grid": grid}, values)


def surface_shape(generator: str, vertices: np.ndarray, faces: np.ndarray) -> Shape:
    """The hand-off when the surface was taken on the GPU: ``vertices (n, 3) float32`` in the
    ``BOX_V`` cube, ``faces (m, 3)`` as the extractor gives them."""
    arrays = {
        "vertices": np.ascontiguousarray(vertices, dtype=np.float32),
        "faces": np.ascontiguousarray(faces, dtype=np.int32),
    }
    return Shape(METHOD, generator, arrays)


def hunyuan_mesh(
    shape: Shape, params: GenerationParams, on_progress: ProgressCallback
) -> trimesh.Trimesh:
    """The cleaned, reduced, outward and centred surface of a `volume_shape`, uncoloured.
    Raises `GenerationFailed` when there is none."""
    on_progress(0.1, "extracting the surface")
    if "grid" in shape.arrays:
        mesh = extract_surface(
            shape.arrays["grid"],
            float(shape.values["mc_level"]),
            float(shape.values["bounds"]),
        )
    else:  # taken on the GPU; faces flipped as upstream flips every extractor's
        faces = np.ascontiguousarray(shape.arrays["faces"][:, ::-1])
        mesh = trimesh.Trimesh(vertices=shape.arrays["vertices"], faces=faces, process=False)
    on_progress(0.5, "removing floaters and degenerate faces")
    mesh = tidy_mesh(clean_mesh(mesh, params.max_faces))
    if len(mesh.faces) == 0:
        raise GenerationFailed(NO_SURFACE)
    return mesh


def extract_surface(grid: np.ndarray, level: float, bounds: float) -> trimesh.Trimesh:
    """Marching cubes on ``grid (k, k, k)`` at ``level``; vertices in the ``[-bounds, bounds]``
    cube as upstream places them (``index / k``), faces wound outward."""
    values = np.asarray(grid, dtype=np.float32)
    if values.ndim != 3 or not np.isfinite(values).any():
        raise GenerationFailed(NO_SURFACE)
    try:
        vertices, faces, _, _ = marching_cubes(values, level, method="lewiner")
    except (ValueError, RuntimeError) as exc:  # the level is outside the grid's values
        raise GenerationFailed(NO_SURFACE) from exc
    # FlashVDM leaves the regions it skipped NaN: cells touching them make NaN vertices, which
    # upstream's processed Trimesh drops; so do we, before the clean-up sees them.
    faces = faces[np.isfinite(vertices).all(axis=1)[faces].all(axis=1)]
    if len(faces) == 0:
        raise GenerationFailed(NO_SURFACE)
    vertices = vertices / np.array(values.shape, dtype=np.float64) * 2.0 * bounds - bounds
    mesh = trimesh.Trimesh(
        vertices=vertices.astype(np.float32),
        faces=np.ascontiguousarray(faces[:, ::-1]),
        process=False,
    )
    mesh.remove_unreferenced_vertices()
    return mesh


def tidy_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Drop degenerate faces and unused vertices, wind outward, centre the bounds on the origin.

    Marching-cubes output is often inside-out (negative signed volume), and the painter
    renders this surface's normals. The faces are flipped as upstream does; this check is the
    safety net for other weights or versions, and a global flip is enough because the winding
    is consistent across the surface. Returns the tidied mesh (``mesh`` itself unless it had to
    be flipped).
    """
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        return mesh
    mesh = outward_winding(mesh)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    return mesh
