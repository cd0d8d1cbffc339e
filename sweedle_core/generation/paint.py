"""The paint path: a mesh painted on a GPU between two steps in the CPU pool.

A generator that can paint (Hunyuan3D's texture model, CUDA only) has a `Painter`. A job that
asks for texture on such a generator visits a GPU twice, and the CPU work around the painting
runs in the CPU pool like the rest of the CPU stage:

1. GPU: the shape (`GeneratorBackend.generate_shape`).
2. CPU pool (`unpainted_shape`): the final mesh (surface, clean-up, reduction) unwrapped by
   xatlas, stored in the shape's place as an `UNPAINTED` shape; the job waits for a GPU again.
3. GPU (`painted_shape`): the painter paints views of the mesh and bakes them into its UV
   layout: a `PAINTED` shape holding the texture and the texels some view saw. (A painter that
   must unwrap by itself returns its whole textured mesh instead, kept as it painted it.)
4. CPU pool (`finish_painted`): texels no view saw are filled from the surface around them
   (what upstream's inpainting step does), then the export chain.

Each hand-off is stored at the shape's key, so a restart needs no other record: what the store
holds says what runs next, and a lost hand-off sends the job back to its GPU stage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import trimesh
from PIL import Image
from scipy import sparse

from sweedle_core.errors import JobCancelled
from sweedle_core.export.mesh_io import position_ids, raw_mesh_bytes, read_raw_mesh
from sweedle_core.generation.photo_texture import (
    Unwrap,
    bake_photo_texture,
    fill_gutters,
    padding_for,
    rasterize,
    unwrap,
)
from sweedle_core.generation.protocol import TEXTURE_KEY, TEXTURE_PAINT, ProgressCallback
from sweedle_core.generation.shape import Shape
from sweedle_core.params import DEFAULT_TEXTURE_SIZE, GenerationParams

log = logging.getLogger(__name__)

MESH = "mesh"  # a whole textured mesh, from a painter that unwraps by itself
UNPAINTED = "unpainted"  # the final mesh with its UV layout, waiting for a painter
PAINTED = "painted"  # the same mesh and the painter's texture, texels nobody saw still empty
# Vertices without a colour take their painted neighbours' mean, one ring per round; a region
# no view saw that is more rings deep than this takes the mean painted colour.
_SPREAD_ROUNDS = 512


@dataclass(frozen=True)
class Painting:
    """What a painter made of a UV-mapped mesh.

    texture : (s, s, 3) uint8, the base colour over the mesh's own UVs (row 0 at v = 1)
    seen : (s, s) bool, the texels some painted view covered
    mesh : instead of the two above, a painter that unwraps by itself returns its whole
        textured mesh (UVs and texture maps, PBR ones included), kept as it is
    """

    texture: np.ndarray | None = None
    seen: np.ndarray | None = None
    mesh: trimesh.Trimesh | None = None


class Painter(Protocol):
    """Paints a mesh on the GPU; ``mesh`` carries its UV layout (``mesh.visual.uv``)."""

    name: str

    def paint(
        self, mesh: trimesh.Trimesh, image: Image.Image, on_progress: ProgressCallback
    ) -> Painting: ...


def painter_of(generator: object) -> Painter | None:
    """The generator's painter, if it has one that can run here."""
    return getattr(generator, "painter", None)


def unpainted_shape(
    generator: str, mesh: trimesh.Trimesh, texture_size: int = DEFAULT_TEXTURE_SIZE
) -> Shape:
    """``mesh`` (final, uncoloured) unwrapped for a ``texture_size`` px texture, as the shape
    that waits for a painter. Raises `UnwrapFailed` when xatlas cannot unwrap it."""
    layout = unwrap(mesh, texture_size)
    normals = np.asarray(mesh.vertex_normals, dtype=np.float32)[layout.source]
    arrays = {
        "vertices": np.asarray(mesh.vertices, dtype=np.float32)[layout.source],
        "faces": layout.faces.astype(np.int32),
        "uv": layout.uv.astype(np.float32),
        "normals": normals,
    }
    return Shape(UNPAINTED, generator, arrays, {"texture_size": texture_size})


def uv_mesh(shape: Shape) -> trimesh.Trimesh:
    """The UV-mapped mesh of an `UNPAINTED` or `PAINTED` shape (no texture image)."""
    a = shape.arrays
    mesh = trimesh.Trimesh(
        vertices=a["vertices"].astype(np.float64),
        faces=a["faces"].astype(np.int64),
        vertex_normals=a["normals"],
        process=False,
    )
    mesh.visual = trimesh.visual.TextureVisuals(uv=a["uv"].astype(np.float64))
    return mesh


def painted_shape(
    painter: Painter, shape: Shape, image: Image.Image, on_progress: ProgressCallback
) -> Shape:
    """The GPU step: an `UNPAINTED` shape painted, as the shape the CPU pool finishes."""
    on_progress(0.0, f"painting the texture ({painter.name})")
    painting = painter.paint(uv_mesh(shape), image, on_progress)
    on_progress(1.0, "texture painted")
    if painting.mesh is not None:
        painting.mesh.metadata[TEXTURE_KEY] = TEXTURE_PAINT
        return mesh_shape(shape.generator, painting.mesh)
    if painting.texture is None or painting.seen is None:
        raise ValueError(f"the painter {painter.name} returned neither a texture nor a mesh")
    texture = np.ascontiguousarray(painting.texture[..., :3], dtype=np.uint8)
    seen = np.asarray(painting.seen, dtype=bool)
    if texture.ndim != 3 or texture.shape[0] != texture.shape[1] or seen.shape != texture.shape[:2]:
        raise ValueError(
            f"the painter {painter.name} returned a {texture.shape} texture with a {seen.shape} "
            "mask; expected a square texture and a mask of its size"
        )
    arrays = {**shape.arrays, "texture": texture, "seen": seen}
    return Shape(PAINTED, shape.generator, arrays, dict(shape.values))


def mesh_shape(generator: str, mesh: trimesh.Trimesh) -> Shape:
    """A whole textured mesh as a shape: the CPU pool keeps it as it is (`finish_mesh`)."""
    return Shape(MESH, generator, {"raw_mesh": np.frombuffer(raw_mesh_bytes(mesh), np.uint8)})


def finish_mesh(
    shape: Shape,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    on_progress(1.0, "done")
    return read_raw_mesh(shape.arrays["raw_mesh"].tobytes())


def painted_or_kept(
    painter: Painter, shape: Shape, image: Image.Image, on_progress: ProgressCallback
) -> Shape:
    """`painted_shape`, or ``shape`` unchanged when the painter fails: the CPU pool then bakes
    the photo onto it, since a job never fails only because painting did. A cancel stops it."""
    try:
        return painted_shape(painter, shape, image, on_progress)
    except JobCancelled:
        raise
    except Exception as exc:
        log.warning("painting failed, the mesh takes the photo's colours instead: %s", exc)
        return shape


def finish_painted(
    shape: Shape,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    """The CPU step after painting: texels inside the UV charts that no view saw take the
    colours of the surface around them, the charts grow into their gutters, and the mesh
    carries the texture as painted (``texture_size`` is the painter's, not the setting)."""
    if not shape.arrays["seen"].any():  # the painter saw nothing of it: take the photo
        return finish_unpainted(shape, image, params, on_progress, texture_size=texture_size)
    on_progress(0.2, "filling what no painted view saw")
    mesh = uv_mesh(shape)
    texture, seen = shape.arrays["texture"].copy(), shape.arrays["seen"]
    size = texture.shape[0]
    uv, faces = shape.arrays["uv"].astype(np.float64), np.asarray(mesh.faces)
    charts, _ = rasterize(uv, faces, np.zeros((len(uv), 1)), size)
    missing = charts & ~seen
    if missing.any():
        colours = _spread_colours(mesh.vertices, faces, uv, texture, seen)
        _, blended = rasterize(uv, faces, colours, size)
        texture[missing] = np.clip(np.rint(blended[missing]), 0, 255).astype(np.uint8)
    on_progress(0.8, "growing the texture's charts into their gutters")
    texture = fill_gutters(texture, charts | seen, 2 * padding_for(size))
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(texture))
    mesh.metadata[TEXTURE_KEY] = TEXTURE_PAINT
    on_progress(1.0, "done")
    return mesh


def finish_unpainted(
    shape: Shape,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    """An `UNPAINTED` shape no painter took (none could run, or it saw nothing): the photo
    baked onto the UV layout made for the painter (``texture_size`` is that layout's)."""
    on_progress(0.5, "no painter could run: colouring from the photo")
    mesh = uv_mesh(shape)
    faces = np.asarray(mesh.faces)
    own = Unwrap(np.arange(len(mesh.vertices)), faces, shape.arrays["uv"].astype(np.float64))
    coloured = bake_photo_texture(mesh, image, int(shape.values["texture_size"]), own)
    on_progress(1.0, "done")
    return coloured


def _spread_colours(
    vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, texture: np.ndarray, seen: np.ndarray
) -> np.ndarray:
    """``(k, 3) float``: each vertex's painted colour where a view saw it, else spread over
    the surface from its painted neighbours (seam copies joined by position)."""
    size = texture.shape[0]
    col = np.clip((uv[:, 0] * size).astype(np.int64), 0, size - 1)
    row = np.clip(((1.0 - uv[:, 1]) * size).astype(np.int64), 0, size - 1)
    ids, first = position_ids(np.asarray(vertices))
    count = len(first)
    known = seen[row, col]
    sums = np.zeros((count, 3))
    np.add.at(sums, ids[known], texture[row[known], col[known]].astype(np.float64))
    hits = np.bincount(ids[known], minlength=count).astype(np.float64)
    edges = ids[np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])]
    edges = edges[edges[:, 0] != edges[:, 1]]
    ring = sparse.coo_matrix(
        (np.ones(2 * len(edges)), (edges.ravel(), edges[:, ::-1].ravel())), shape=(count, count)
    ).tocsr()
    colours = np.zeros((count, 3))
    has = hits > 0
    colours[has] = sums[has] / hits[has, None]
    for _ in range(_SPREAD_ROUNDS):
        if has.all():
            break
        weight = ring @ has.astype(np.float64)
        total = ring @ (colours * has[:, None])
        reached = ~has & (weight > 0)
        if not reached.any():
            break
        colours[reached] = total[reached] / weight[reached, None]
        has = has | reached
    colours[~has] = colours[has].mean(axis=0) if has.any() else 128.0
    return colours[ids]
