"""The export step: a raw mesh from the generator in, the files a user downloads out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sweedle_core.errors import GenerationFailed, InvalidInput
from sweedle_core.export.formats import EXPORTERS
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import read_raw_mesh
from sweedle_core.export.thumbnail import render_thumbnail
from sweedle_core.storage import write_atomic

MODEL_STEM = "model"
THUMBNAIL_NAME = "thumbnail.png"


@dataclass(frozen=True)
class ExportResult:
    model_path: Path  # in the requested format
    thumbnail_path: Path
    vertex_count: int
    face_count: int
    format: str
    texture: str | None  # how the mesh was coloured (the generator's metadata), if it said


def export_asset(
    raw_mesh_path: Path,
    out_dir: Path,
    output_format: str = "glb",
    thumbnail_size: int = 256,
) -> ExportResult:
    """Write ``out_dir/model.<format>``, ``out_dir/model.glb`` (always: viewers need it) and
    ``out_dir/thumbnail.png`` from the raw mesh at ``raw_mesh_path``.

    Each file is written atomically, so a crash never leaves a partial file behind. Raises
    `InvalidInput` for an unknown format and `GenerationFailed` when the mesh has no faces.
    """
    exporter = EXPORTERS.get(output_format)
    if exporter is None:
        accepted = ", ".join(sorted(EXPORTERS))
        raise InvalidInput(f"unknown output format {output_format!r}; accepted: {accepted}")

    mesh = read_raw_mesh(raw_mesh_path)
    if len(mesh.faces) == 0:
        raise GenerationFailed("the generated mesh has no faces")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{MODEL_STEM}.{output_format}"
    write_atomic(model_path, exporter(mesh))
    if output_format != "glb":
        write_atomic(out_dir / f"{MODEL_STEM}.glb", mesh_to_glb(mesh))
    thumbnail_path = out_dir / THUMBNAIL_NAME
    write_atomic(thumbnail_path, render_thumbnail(mesh, thumbnail_size))

    return ExportResult(
        model_path=model_path,
        thumbnail_path=thumbnail_path,
        vertex_count=len(mesh.vertices),
        face_count=len(mesh.faces),
        format=output_format,
        texture=mesh.metadata.get("texture"),
    )
