"""``convert-model INPUT OUTPUT [--format FMT] [--draco]``: convert a mesh file between formats.

Reads anything trimesh loads, or Sweedle's raw ``.npz``; winds it outward if it is inside out
(only the face order changes; the export chain's clean-up is not applied to someone's model);
writes any format of `EXPORTERS` (chosen by ``--format`` or OUTPUT's extension), or with
``--draco`` a Draco-compressed GLB; then loads the result again and prints its faces, vertices
and size.

OUTPUT is a file (``out/chair.gltf``: the files are ``out/chair.*``) or a folder (``out/``,
with ``--format``: the files take INPUT's name). Formats that span files (glTF, textured OBJ)
are written side by side into that folder. Exit codes: 0 done, 1 the input or the output could
not be read, 2 a usage error (unknown format, ``--draco`` with another format).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trimesh

from sweedle_core.export.draco_compressor import QuantizationSettings, compress_glb
from sweedle_core.export.formats import EXPORTERS, ModelFiles
from sweedle_core.export.glb import texture_of
from sweedle_core.export.mesh_io import outward_winding, read_raw_mesh
from sweedle_core.storage.atomic import write_atomic


@dataclass(frozen=True)
class Reloaded:
    faces: int
    vertices: int


def load_mesh(path: Path) -> trimesh.Trimesh:
    """The mesh in ``path``: a raw ``.npz`` as written, anything else through trimesh (a
    scene's meshes concatenated). Raises ``ValueError`` when it holds no triangles."""
    if path.suffix.lower() == ".npz":
        mesh = read_raw_mesh(path)
    else:
        loaded = trimesh.load(path)
        if isinstance(loaded, trimesh.Scene):
            for geometry in loaded.geometry.values():
                _keep_vertex_colors(geometry)
            loaded = loaded.to_mesh()  # transforms applied, meshes concatenated
        if not isinstance(loaded, trimesh.Trimesh):
            raise ValueError(f"{path} holds no triangle mesh")
        _keep_vertex_colors(loaded)
        mesh = loaded
    if len(mesh.faces) == 0:
        raise ValueError(f"{path} holds no faces")
    return mesh


def _keep_vertex_colors(geometry: object) -> None:
    """Make a glTF primitive's COLOR_0 the mesh's colours when it has no texture.

    trimesh keeps COLOR_0 only as ``visual.vertex_attributes["color"]`` once the primitive has
    a material (every GLB Sweedle writes has one), and drops it when meshes are concatenated.
    """
    if not isinstance(geometry, trimesh.Trimesh):
        return
    visual = geometry.visual
    if not isinstance(visual, trimesh.visual.TextureVisuals) or texture_of(geometry) is not None:
        return
    colors = visual.vertex_attributes.get("color")
    if colors is not None and len(colors) == len(geometry.vertices):
        geometry.visual = trimesh.visual.ColorVisuals(geometry, vertex_colors=colors)


def reload(main_file: Path, fmt: str) -> Reloaded:
    """Faces and vertices of the file just written, loaded again from disk (USDZ through
    usd-core, the rest through trimesh, which finds a glTF's or an OBJ's side files)."""
    if fmt == "usdz":
        return _reload_usdz(main_file)
    loaded = trimesh.load(main_file, force="mesh", process=False)
    if not isinstance(loaded, trimesh.Trimesh):
        raise ValueError(f"{main_file} holds no triangle mesh")
    return Reloaded(faces=len(loaded.faces), vertices=len(loaded.vertices))


def _reload_usdz(path: Path) -> Reloaded:
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.Open(str(path))
    if stage is None:
        raise ValueError(f"usd-core cannot open {path}")
    faces = vertices = 0
    for prim in stage.Traverse():
        if prim.IsA(UsdGeom.Mesh):
            mesh = UsdGeom.Mesh(prim)
            faces += len(mesh.GetFaceVertexCountsAttr().Get() or [])
            vertices += len(mesh.GetPointsAttr().Get() or [])
    return Reloaded(faces=faces, vertices=vertices)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert-model",
        description="Convert a mesh (anything trimesh reads, or a Sweedle raw .npz) to "
        f"{', '.join(EXPORTERS)}; multi-file formats are written side by side.",
    )
    parser.add_argument("input", type=Path, help="the mesh to convert")
    parser.add_argument("output", type=Path, help="the file to write, or a folder")
    parser.add_argument(
        "--format", choices=sorted(EXPORTERS), help="output format (default: OUTPUT's extension)"
    )
    parser.add_argument(
        "--draco", action="store_true", help="Draco-compress the GLB (glb format only)"
    )
    return parser


def _target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, Path, str]:
    """``(format, folder, file stem)`` from the arguments; usage errors exit 2."""
    output: Path = args.output
    suffix = output.suffix.lower().lstrip(".")
    fmt = args.format or suffix
    if not fmt:
        parser.error(f"{output} has no extension: give --format ({', '.join(EXPORTERS)})")
    if fmt not in EXPORTERS:
        parser.error(f"unknown format {fmt!r}; accepted: {', '.join(EXPORTERS)}")
    if args.draco and fmt != "glb":
        parser.error(f"--draco applies to the glb format only, not {fmt}")
    if suffix == fmt:
        return fmt, output.parent, output.stem
    return fmt, output, args.input.stem  # a folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    fmt, folder, stem = _target(parser, args)

    try:
        mesh = load_mesh(args.input)
    except (OSError, ValueError) as exc:
        print(f"convert-model: cannot read {args.input}: {exc}", file=sys.stderr)
        return 1
    mesh = outward_winding(mesh)

    files: ModelFiles
    if args.draco:
        files = {f"{stem}.glb": compress_glb(mesh, QuantizationSettings())}
    else:
        files = EXPORTERS[fmt](mesh, stem)
    for name, data in files.items():
        write_atomic(folder / name, data)
    main_file = folder / next(iter(files))

    try:
        result = reload(main_file, fmt)
    except (OSError, ValueError) as exc:
        print(f"convert-model: wrote {main_file} but cannot load it again: {exc}", file=sys.stderr)
        return 1
    size = sum(len(data) for data in files.values())
    names = ", ".join(files)
    print(f"{main_file}: {result.faces} faces, {result.vertices} vertices, {size} bytes ({names})")
    if result.faces != len(mesh.faces):
        # Draco drops degenerate faces; anything else losing faces is a bug worth seeing.
        print(
            f"convert-model: note: {args.input} has {len(mesh.faces)} faces, "
            f"{main_file.name} {result.faces}",
            file=sys.stderr,
        )
        if not args.draco:
            return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
