"""The raw mesh hand-off between generator and exporter, and small helpers every exporter shares.

The raw format is an uncompressed ``.npz`` holding ``vertices (n, 3) float32``, ``faces (m, 3)
int32``, and the mesh's colour: a textured mesh's ``uv (n, 2) float32`` with each of its maps
as PNG bytes (``png:baseColorTexture``, and ``png:metallicRoughnessTexture`` and
``png:normalTexture`` when present; `texture_maps`) and its material's kind (``material``:
``simple`` or ``pbr``), any other coloured mesh's ``vertex_colors (n, 4) uint8``. The strings of
``mesh.metadata`` that say what made it and how it was coloured (``generator``, ``texture``,
``texture_fallback``) come along. It keeps exactly what the generator produced (no merging, no
reordering), loads without pickle, and is written atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import meshoptimizer
import numpy as np
import trimesh

from sweedle_core.export.texture_maps import (
    MAP_NAMES,
    TextureMaps,
    decode_png,
    encode_png,
    texture_maps_of,
    textured_visual,
    vertex_uv_of,
)
from sweedle_core.generation.protocol import GENERATOR_KEY, TEXTURE_FALLBACK_KEY, TEXTURE_KEY
from sweedle_core.storage.atomic import write_atomic

_VERTICES = "vertices"
_FACES = "faces"
_COLORS = "vertex_colors"
_UV = "uv"
_MATERIAL = "material"
_PBR = "pbr"
_PNG = "png:"  # + a map's glTF name
# Kept with the mesh through every step.
METADATA_KEYS = (GENERATOR_KEY, TEXTURE_KEY, TEXTURE_FALLBACK_KEY)


def write_raw_mesh(mesh: trimesh.Trimesh, path: Path) -> None:
    """Store ``mesh`` (vertices, faces, its texture or vertex colours) as an uncompressed
    ``.npz``."""
    write_atomic(path, raw_mesh_bytes(mesh))


def raw_mesh_bytes(mesh: trimesh.Trimesh) -> bytes:
    """``mesh`` in the raw format, as the bytes of its ``.npz`` file."""
    arrays = {
        _VERTICES: np.ascontiguousarray(mesh.vertices, dtype=np.float32),
        _FACES: np.ascontiguousarray(mesh.faces, dtype=np.int32),
    }
    textures = texture_maps_of(mesh)
    colors = vertex_colors_of(mesh)
    if textures is not None:
        arrays[_UV] = np.ascontiguousarray(textures.uv, dtype=np.float32)
        arrays[_MATERIAL] = np.array(_PBR if textures.pbr else "simple")
        for name, image in textures.maps.items():
            arrays[_PNG + name] = np.frombuffer(encode_png(image), dtype=np.uint8)
    elif colors is not None:
        arrays[_COLORS] = colors
    for key in METADATA_KEYS:
        if key in mesh.metadata:
            arrays[key] = np.array(str(mesh.metadata[key]))
    buffer = io.BytesIO()
    # Uncompressed: zlib would cost the generator ~0.2 s per 300k faces; the file is local.
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs
    return buffer.getvalue()


def read_raw_mesh(path: Path | bytes) -> trimesh.Trimesh:
    """Load a mesh written by `write_raw_mesh` (its file, or its bytes), unprocessed (vertex
    order and count kept), with its texture (the same kind of material) or vertex colours.

    Raises ``ValueError`` when the file is not a well-formed raw mesh.
    """
    name = "raw mesh" if isinstance(path, bytes) else str(path)  # in the messages below
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with np.load(source, allow_pickle=False) as data:
        if _VERTICES not in data or _FACES not in data:
            raise ValueError(f"{name} is not a raw mesh: expected '{_VERTICES}' and '{_FACES}'")
        vertices = data[_VERTICES].astype(np.float32, copy=False)
        faces = data[_FACES].astype(np.int32, copy=False)
        colors = data[_COLORS].astype(np.uint8, copy=False) if _COLORS in data else None
        uv = data[_UV].astype(np.float64) if _UV in data else None
        pngs = {key: data[_PNG + key].tobytes() for key in MAP_NAMES if _PNG + key in data}
        pbr = _MATERIAL in data and str(data[_MATERIAL]) == _PBR
        metadata = {key: str(data[key]) for key in METADATA_KEYS if key in data}

    n = len(vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{name}: vertices must be (n, 3), got {vertices.shape}")
    if not np.isfinite(vertices).all():
        raise ValueError(f"{name}: vertices must be finite")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{name}: faces must be (m, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= n):
        raise ValueError(f"{name}: face indices out of range for {n} vertices")
    if colors is not None and colors.shape != (n, 4):
        raise ValueError(f"{name}: vertex colours must be ({n}, 4), got {colors.shape}")
    textures = _read_textures(name, n, uv, pngs, pbr)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, vertex_colors=colors, process=False)
    if textures is not None:
        mesh.visual = textured_visual(textures)
    mesh.metadata.update(metadata)
    return mesh


def _read_textures(
    name: str, n: int, uv: np.ndarray | None, pngs: dict[str, bytes], pbr: bool
) -> TextureMaps | None:
    """The raw mesh's ``uv (n, 2)`` and decoded maps, checked; None when it has neither."""
    if uv is None and not pngs:
        return None
    if uv is None or MAP_NAMES[0] not in pngs:
        raise ValueError(f"{name}: a texture needs both UVs and a base-colour image")
    if uv.shape != (n, 2) or not np.isfinite(uv).all():
        raise ValueError(f"{name}: UVs must be finite and ({n}, 2), got {uv.shape}")
    maps = {key: decode_png(data, f"{name}: {key}") for key, data in pngs.items()}
    return TextureMaps(uv=uv, maps=maps, pbr=pbr)


def vertex_colors_of(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """The mesh's per-vertex colours ``(n, 4) uint8``, or ``None`` when it has none.

    Face colours are converted to vertex colours by trimesh; a texture is not (it is carried
    as a texture: see `texture_maps.texture_maps_of`, and `sampled_colors` for the formats
    that need vertex colours).
    """
    visual = mesh.visual
    if visual is None or visual.kind is None or visual.kind == "texture":
        return None
    colors = np.asarray(visual.vertex_colors, dtype=np.uint8)  # type: ignore[union-attr]
    if colors.shape != (len(mesh.vertices), 4):
        return None
    return np.ascontiguousarray(colors)


def outward_winding(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` with faces wound outward (positive signed volume); a new mesh if flipped.

    For a generator's own surface (marching cubes is often inside out: a painter renders it by
    its normals before the export chain sees it) and for `convert-model`, which keeps a user's
    model as it is otherwise. What the export chain exports is wound by
    `mesh_optimizer.optimize_mesh`, piece by piece. Only the face order changes; vertices,
    colours, UVs and the material stay as they are.
    """
    if len(mesh.faces) == 0 or signed_volume(mesh.vertices, mesh.faces) >= 0:
        return mesh
    every = np.arange(len(mesh.vertices))
    return take_vertices(mesh, every, np.ascontiguousarray(mesh.faces[:, ::-1]))


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume of a mesh (``vertices (n, 3)``, ``faces (m, 3)``): < 0 when wound inward.

    trimesh's ``mesh.volume`` computes all mass properties and is ~10x slower.
    """
    v = np.asarray(vertices, dtype=np.float64)
    x, y, z = (np.ascontiguousarray(v[:, i])[faces] for i in range(3))
    cross_x = y[:, 1] * z[:, 2] - z[:, 1] * y[:, 2]
    cross_y = z[:, 1] * x[:, 2] - x[:, 1] * z[:, 2]
    cross_z = x[:, 1] * y[:, 2] - y[:, 1] * x[:, 2]
    return float(x[:, 0] @ cross_x + y[:, 0] @ cross_y + z[:, 0] @ cross_z) / 6.0


def smooth_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals ``(n, 3) float32``: area-weighted means of the face normals.

    A vertex no face uses (or with only degenerate faces) gets +Y, because glTF requires every
    normal to be of unit length.
    """
    v = np.asarray(vertices, dtype=np.float64)
    a, b, c = (v[faces[:, i]] for i in range(3))
    face_normals = np.cross(b - a, c - a)  # length = 2 * area: the weight
    normals = np.zeros_like(v)
    flat = np.asarray(faces).ravel()
    for axis in range(3):
        weights = np.repeat(face_normals[:, axis], 3)
        normals[:, axis] = np.bincount(flat, weights=weights, minlength=len(v))
    length = np.linalg.norm(normals, axis=1)
    bad = ~(length > 1e-20)
    normals[bad] = (0.0, 1.0, 0.0)
    length[bad] = 1.0
    return (normals / length[:, None]).astype(np.float32)


def position_ids(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(ids (n,) int64, first (u,) int64)``: vertices at the same (float32) position share an
    id in ``0..u-1``; ``first[id]`` is the first such vertex.

    Topology and normals are judged on ``ids[faces]``: a colour or UV seam splits vertices
    without splitting the surface, so by index alone every seam would look like a hole.
    """
    n = len(vertices)
    # + 0.0 turns -0.0 into 0.0: the remap compares bytes, and they are the same point.
    positions = np.ascontiguousarray(vertices, dtype=np.float32) + np.float32(0.0)
    remap = np.zeros(n, dtype=np.uint32)
    # Indices explicitly: with none the binding passes index_count=0, and it returns 0.
    every = np.arange(n, dtype=np.uint32)
    unique = int(
        meshoptimizer.generate_vertex_remap(
            remap, every, index_count=n, vertices=positions, vertex_count=n
        )
    )
    ids = remap.astype(np.int64)
    first = np.zeros(unique, dtype=np.int64)
    first[ids[::-1]] = np.arange(n - 1, -1, -1)
    return ids, first


def seamless_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """`smooth_normals` over positions ``(n, 3) float32``: vertices at the same position (both
    sides of a UV or colour seam) get the same normal, so a seam does not show in the light."""
    if len(vertices) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    ids, first = position_ids(vertices)
    return smooth_normals(np.asarray(vertices)[first], ids[np.asarray(faces)])[ids]


def take_vertices(
    mesh: trimesh.Trimesh,
    source: np.ndarray,
    faces: np.ndarray,
    vertex_normals: np.ndarray | None = None,
    vertices: np.ndarray | None = None,
) -> trimesh.Trimesh:
    """A new mesh whose vertex ``i`` is ``mesh``'s vertex ``source[i]``, with its position,
    colour or UV; ``faces (m, 3)`` index the new vertices, ``source (k,) int``.

    A textured mesh keeps its material (and so its image), shared rather than copied; any
    other coloured mesh keeps per-vertex colours ``(k, 4) uint8``. ``vertex_normals (k, 3)``,
    when given, are stored so ``mesh.vertex_normals`` returns them; ``vertices (k, 3)``, when
    given, replace the positions. Metadata is copied.
    """
    source = np.asarray(source, dtype=np.int64)
    if vertices is None:
        vertices = np.asarray(mesh.vertices)[source]
    if vertex_normals is not None and len(vertex_normals) == 0:
        vertex_normals = None  # trimesh fails on an empty array (a mesh simplified away)
    uv = vertex_uv_of(mesh)
    colors = None if uv is not None else vertex_colors_of(mesh)
    result = trimesh.Trimesh(
        vertices=vertices,
        faces=np.asarray(faces, dtype=np.int64).reshape(-1, 3),
        vertex_normals=vertex_normals,
        vertex_colors=None if colors is None else colors[source],
        process=False,
    )
    if uv is not None:
        material = getattr(mesh.visual, "material", None)
        result.visual = trimesh.visual.TextureVisuals(uv=uv[source], material=material)
    result.metadata.update(mesh.metadata)
    return result
