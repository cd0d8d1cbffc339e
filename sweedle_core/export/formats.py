"""Every output format Sweedle writes: a name -> exporter dict, each format's media type, and
`delivered`, one format's files the way the service delivers them (`write_format` into a folder).

An exporter takes a ``trimesh.Trimesh`` and a file stem and returns the format's files by name
(`ModelFiles`, the main file first). Single-file formats (glb, ply, stl, usdz, and obj of an
untextured mesh) give one entry; glTF gives ``.gltf`` + ``.bin`` (+ ``.png``), a textured OBJ
``.obj`` + ``.mtl`` + ``.png``. The files name each other by relative path, so they belong in
one folder: the service delivers a format whose output is several files as one zip
(``model.<format>.zip``, media type ``application/zip``), the CLI writes them side by side.

Every exporter keeps the mesh's faces and their winding: the meshes it gets have passed
`mesh_optimizer.optimize_mesh`, which winds them outward (engines cull back faces), so a mesh
looks the same whichever format it leaves in. A texture leaves as a texture (glb, gltf, obj,
usdz carry its image files, and the metallic-roughness and normal maps where the format can
hold them); PLY cannot hold one, so it gets the base colour sampled at each vertex (the one
place a texture becomes vertex colours); STL holds no colour at all.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Protocol

import numpy as np
import trimesh
from trimesh.exchange.obj import export_obj
from trimesh.exchange.ply import export_ply
from trimesh.exchange.stl import export_stl

from sweedle_core.errors import InvalidInput
from sweedle_core.export.glb import MAP_SUFFIXES, mesh_arrays, mesh_to_glb, mesh_to_gltf
from sweedle_core.export.mesh_io import vertex_colors_of
from sweedle_core.export.texture_maps import (
    METALLIC_ROUGHNESS,
    NORMAL,
    encode_png,
    sampled_colors,
    texture_maps_of,
)
from sweedle_core.export.usd_material import bind_material
from sweedle_core.storage.atomic import write_atomic

MODEL_STEM = "model"
ZIP_MEDIA_TYPE = "application/zip"

ModelFiles = dict[str, bytes]
"""A format's output: file name (relative, in one folder) -> bytes; the main file first."""


class FormatExporter(Protocol):
    def __call__(self, mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles: ...


def _plain(mesh: trimesh.Trimesh, colors: np.ndarray | None = None) -> trimesh.Trimesh:
    """``mesh`` with its vertex colours (or ``colors (n, 4) uint8``), no texture,
    unprocessed."""
    return trimesh.Trimesh(
        vertices=mesh.vertices,
        faces=mesh.faces,
        vertex_colors=vertex_colors_of(mesh) if colors is None else colors,
        process=False,
    )


def to_glb(mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles:
    """Binary glTF (`mesh_to_glb`): normals, vertex colours or an embedded PNG texture."""
    return {f"{stem}.glb": mesh_to_glb(mesh)}


def to_gltf(mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles:
    """glTF JSON + its buffer (+ its PNG texture), the content of the GLB (`mesh_to_gltf`)."""
    return mesh_to_gltf(mesh, stem)


def to_obj(mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles:
    """Wavefront OBJ with vertex normals; a textured mesh gets UVs, ``{stem}.mtl`` and
    ``{stem}.png`` (``map_Kd``), plus the normal map (``norm``) and the metallic-roughness map
    (``map_Pr``/``map_Pm`` from its green and blue channels, the PBR extension of MTL) when it
    has them; any other its vertex colours (the common ``v x y z r g b`` extension)."""
    textures = texture_maps_of(mesh)
    if textures is None:
        text = export_obj(
            _plain(mesh), include_normals=True, include_color=True, include_texture=False
        )
        return {f"{stem}.obj": text.encode("utf-8")}
    # A white, matte material named after the stem: the MTL and the image are then
    # ``{stem}.mtl`` and ``{stem}.png`` (a copy of the image has no format, so trimesh saves PNG).
    material = trimesh.visual.material.SimpleMaterial(
        image=textures.base_color.copy(),
        diffuse=(255, 255, 255, 255),
        ambient=(255, 255, 255, 255),
        specular=(0, 0, 0, 255),
        glossiness=1.0,
        name=stem,
    )
    textured = trimesh.Trimesh(
        vertices=mesh.vertices,
        faces=mesh.faces,
        visual=trimesh.visual.TextureVisuals(uv=textures.uv, material=material),
        process=False,
    )
    text, extra = export_obj(
        textured,
        include_normals=True,
        include_texture=True,
        return_texture=True,
        mtl_name=f"{stem}.mtl",
    )
    lines = []
    for name, statements in _MTL_MAPS.items():
        if name in textures.maps:
            file = f"{stem}{MAP_SUFFIXES[name]}.png"
            extra[file] = encode_png(textures.maps[name])
            lines += [statement.format(file=file) for statement in statements]
    if lines:
        extra[f"{stem}.mtl"] += ("\n" + "\n".join(lines) + "\n").encode("utf-8")
    return {f"{stem}.obj": text.encode("utf-8"), **extra}


# MTL statements for the maps beyond the base colour (glTF packs roughness in green, metallic
# in blue).
_MTL_MAPS = {
    METALLIC_ROUGHNESS: ("map_Pr -imfchan g {file}", "map_Pm -imfchan b {file}"),
    NORMAL: ("norm {file}",),
}


def to_ply(mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles:
    """Binary little-endian PLY with vertex colours when the mesh has them. PLY holds no
    texture: a textured mesh's base colour is sampled at its vertices (bilinear), which loses
    the detail between them."""
    textures = texture_maps_of(mesh)
    colors = None if textures is None else sampled_colors(textures)
    return {f"{stem}.ply": export_ply(_plain(mesh, colors), encoding="binary")}


def to_stl(mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles:
    """Binary STL (geometry only: STL has no colours)."""
    return {f"{stem}.stl": export_stl(_plain(mesh))}


def to_usdz(mesh: trimesh.Trimesh, stem: str = MODEL_STEM) -> ModelFiles:
    """USDZ (Apple's AR format) through usd-core: a `UsdGeom.Mesh` with points, triangles and
    vertex normals, shown through a `UsdPreviewSurface` (`usd_material`) reading the texture
    maps through the ``st`` primvar (the images packed into the USDZ), else the vertex colours
    as the ``displayColor`` primvar; +Y up, 1 unit = 1 metre, like glTF."""
    try:
        from pxr import Sdf, Usd, UsdGeom, UsdUtils, Vt
    except ImportError as exc:  # pragma: no cover - usd-core is a core dependency
        raise RuntimeError("USDZ export needs usd-core: pip install usd-core") from exc

    arrays = mesh_arrays(mesh)
    textures = texture_maps_of(mesh)
    with tempfile.TemporaryDirectory(prefix="sweedle-usdz-") as tmp:
        layer_path = str(Path(tmp) / f"{stem}.usdc")
        stage = Usd.Stage.CreateNew(layer_path)
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, "/model")
        stage.SetDefaultPrim(root.GetPrim())

        geom = UsdGeom.Mesh.Define(stage, "/model/mesh")
        points = Vt.Vec3fArray.FromNumpy(arrays.positions)
        geom.CreatePointsAttr(points)
        geom.CreateExtentAttr(UsdGeom.PointBased.ComputeExtent(points))
        counts = np.full(len(arrays.faces), 3, dtype=np.int32)
        geom.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(counts))
        indices = np.ascontiguousarray(arrays.faces, dtype=np.int32).ravel()
        geom.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(indices))
        geom.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(arrays.normals))
        geom.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
        geom.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)  # a polygon mesh, not a cage
        geom.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)

        # Beside the layer, named as the material reads them: the package takes them in.
        for name, png in arrays.maps.items():
            (Path(tmp) / f"{stem}{MAP_SUFFIXES[name]}.png").write_bytes(png)
        bind_material(stage, geom, stem, textures, arrays.colors)

        stage.GetRootLayer().Save()
        package = Path(tmp) / f"{stem}.usdz"
        if not UsdUtils.CreateNewUsdzPackage(Sdf.AssetPath(layer_path), str(package)):
            raise RuntimeError("usd-core could not package the USDZ")
        return {f"{stem}.usdz": package.read_bytes()}


EXPORTERS: dict[str, FormatExporter] = {
    "glb": to_glb,
    "gltf": to_gltf,
    "obj": to_obj,
    "ply": to_ply,
    "stl": to_stl,
    "usdz": to_usdz,
}

# Of each format's main file; IANA registrations where they exist (PLY has none). A format
# delivered as several files comes as a zip: ZIP_MEDIA_TYPE.
MEDIA_TYPES: dict[str, str] = {
    "glb": "model/gltf-binary",
    "gltf": "model/gltf+json",
    "obj": "model/obj",
    "ply": "application/octet-stream",
    "stl": "model/stl",
    "usdz": "model/vnd.usdz+zip",
}


def exporter_for(fmt: str) -> FormatExporter:
    """The exporter of ``fmt``; raises `InvalidInput` naming the accepted formats."""
    exporter = EXPORTERS.get(fmt)
    if exporter is None:
        accepted = ", ".join(EXPORTERS)
        raise InvalidInput(f"unknown output format {fmt!r}; accepted: {accepted}")
    return exporter


def delivered_names(fmt: str) -> tuple[str, str]:
    """The names a format is delivered under: one file, or the zip of several."""
    return f"{MODEL_STEM}.{fmt}", f"{MODEL_STEM}.{fmt}.zip"


def delivered(mesh: trimesh.Trimesh, fmt: str) -> tuple[str, bytes]:
    """``mesh`` in ``fmt`` as the service delivers it: ``(name, bytes)`` of one file
    (``model.<fmt>``) or of the zip of several (``model.<fmt>.zip``). Raises `InvalidInput` for
    an unknown format."""
    files = exporter_for(fmt)(mesh, MODEL_STEM)
    single, bundle = delivered_names(fmt)
    if len(files) == 1:
        return single, next(iter(files.values()))
    return bundle, zip_files(files)


def write_format(mesh: trimesh.Trimesh, fmt: str, out_dir: Path) -> Path:
    """Write ``mesh`` in ``fmt`` into ``out_dir`` as `delivered`, atomically; the file's path."""
    name, data = delivered(mesh, fmt)
    path = Path(out_dir) / name
    write_atomic(path, data)
    return path


def zip_files(files: ModelFiles) -> bytes:
    """``files`` as a zip archive, flat, in their order, with a fixed timestamp (the same
    files give the same bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()
