"""The default export chain, run by the export pool after every generation.

Raw mesh in; out: the optimised mesh (kept as ``optimized.npz``, the source of every later
export), its validation report, the LOD chain (``lods/lod<i>.glb`` and ``.npz``), ``model.glb``
(LOD 0), ``model.draco.glb``, the requested format and any extra configured ones, and the
thumbnail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trimesh

from sweedle_core.errors import GenerationFailed
from sweedle_core.export.draco_compressor import QuantizationSettings, compress_glb
from sweedle_core.export.formats import MODEL_STEM, exporter_for, write_format
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.lod_generator import build_lods
from sweedle_core.export.mesh_io import METADATA_KEYS, read_raw_mesh, write_raw_mesh
from sweedle_core.export.mesh_optimizer import optimize_mesh
from sweedle_core.export.thumbnail_generator import generate_thumbnail
from sweedle_core.export.validator import validate_mesh
from sweedle_core.generation.protocol import GENERATOR_KEY, TEXTURE_KEY
from sweedle_core.storage.atomic import write_atomic

OPTIMIZED_NAME = "optimized.npz"
VALIDATION_NAME = "validation.json"
THUMBNAIL_NAME = "thumbnail.png"
LOD_DIR = "lods"
DRACO_NAME = "model.draco.glb"
CHAIN_THREADS = 2

Progress = Callable[[float, str], None]


def within(report: Progress, start: float, end: float) -> Progress:
    """``report`` for a step that covers ``[start, end]`` of the whole: its own fraction in
    [0, 1] is mapped onto that span."""

    def step(fraction: float, message: str) -> None:
        report(start + (end - start) * min(max(fraction, 0.0), 1.0), message)

    return step


@dataclass(frozen=True)
class ExportOptions:
    output_format: str = "glb"
    lod_levels: Sequence[float] = (1.0, 0.5, 0.25, 0.1)
    extra_formats: Sequence[str] = ()
    thumbnail_size: int = 256
    draco: bool = True  # also write model.draco.glb, ready for the web
    draco_quantization: QuantizationSettings = QuantizationSettings()
    draco_level: int = 7


@dataclass(frozen=True)
class ExportResult:
    model_path: Path  # in the requested format
    thumbnail_path: Path
    vertex_count: int
    face_count: int
    format: str
    texture: str | None  # how the mesh was coloured (the generator's metadata), if it said
    generator: str | None  # the backend that made the mesh, if it said
    lods: list[dict[str, Any]] = field(default_factory=list)  # {level, faces, vertices, path}
    validation: dict[str, Any] = field(default_factory=dict)


def lod_names(index: int) -> tuple[str, str]:
    """``(glb, npz)`` of LOD ``index``, relative to its asset's folder (its keys in the store)."""
    return f"{LOD_DIR}/lod{index}.glb", f"{LOD_DIR}/lod{index}.npz"


def lod_paths(out_dir: Path, index: int) -> tuple[Path, Path]:
    """``(glb, npz)`` of LOD ``index`` in an asset's folder."""
    glb, npz = lod_names(index)
    return out_dir / glb, out_dir / npz


def write_lods(
    mesh: trimesh.Trimesh, out_dir: Path, levels: Sequence[float]
) -> list[dict[str, Any]]:
    """Build and write the LOD chain of ``mesh``; returns one record per level."""
    records = []
    for index, (level, lod) in enumerate(zip(levels, build_lods(mesh, levels), strict=True)):
        glb_path, npz_path = lod_paths(out_dir, index)
        write_atomic(glb_path, mesh_to_glb(lod))
        write_raw_mesh(lod, npz_path)
        records.append(
            {
                "index": index,
                "level": level,
                "faces": len(lod.faces),
                "vertices": len(lod.vertices),
                "bytes": glb_path.stat().st_size,
                "file": glb_path.relative_to(out_dir).as_posix(),
            }
        )
    return records


def export_asset(
    raw_mesh_path: Path,
    out_dir: Path,
    options: ExportOptions = ExportOptions(),
    on_progress: Progress = lambda fraction, message: None,
) -> ExportResult:
    """Run the whole chain; each file is written atomically. Raises `InvalidInput` for an
    unknown format and `GenerationFailed` when the mesh has no faces."""
    for fmt in (options.output_format, *options.extra_formats):
        exporter_for(fmt)  # an unknown format fails before anything is written
    mesh = read_raw_mesh(raw_mesh_path)
    metadata = {key: mesh.metadata[key] for key in METADATA_KEYS if key in mesh.metadata}
    if len(mesh.faces) == 0:
        raise GenerationFailed("the generated mesh has no faces")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    on_progress(0.05, "optimising the mesh")
    mesh = optimize_mesh(mesh)
    mesh.metadata.update(metadata)
    write_raw_mesh(mesh, out_dir / OPTIMIZED_NAME)

    # The steps below only read the optimised mesh: they run side by side (meshoptimizer,
    # Draco, GL and numpy release the GIL), which takes the chain from ~3 s to ~1.6 s for a
    # 500k-face mesh on 2 cores (make bench).
    thumbnail_path = out_dir / THUMBNAIL_NAME
    formats = list(dict.fromkeys([options.output_format, *options.extra_formats]))
    with ThreadPoolExecutor(max_workers=CHAIN_THREADS) as pool:
        lods_done = pool.submit(write_lods, mesh, out_dir, options.lod_levels)
        validated = pool.submit(validate_mesh, mesh)
        thumbnail = pool.submit(generate_thumbnail, mesh, options.thumbnail_size)
        draco = (
            pool.submit(compress_glb, mesh, options.draco_quantization, options.draco_level)
            if options.draco
            else None
        )
        written = {f: pool.submit(write_format, mesh, f, out_dir) for f in formats if f != "glb"}

        on_progress(0.3, "validating the mesh")
        validation = validated.result()
        write_atomic(out_dir / VALIDATION_NAME, json.dumps(validation, indent=2).encode())
        on_progress(0.4, "building LODs")
        lods = lods_done.result()
        # LOD 0 is the full optimised mesh: it is the model the viewers get.
        write_atomic(out_dir / f"{MODEL_STEM}.glb", lod_paths(out_dir, 0)[0].read_bytes())
        on_progress(0.7, "writing formats")
        paths = {f: future.result() for f, future in written.items()}
        if draco is not None:
            write_atomic(out_dir / DRACO_NAME, draco.result())
        on_progress(0.9, "rendering the thumbnail")
        write_atomic(thumbnail_path, thumbnail.result())
    model_path = paths.get(options.output_format, out_dir / f"{MODEL_STEM}.glb")
    on_progress(1.0, "exported")
    return ExportResult(
        model_path=model_path,
        thumbnail_path=thumbnail_path,
        vertex_count=len(mesh.vertices),
        face_count=len(mesh.faces),
        format=options.output_format,
        texture=metadata.get(TEXTURE_KEY),
        generator=metadata.get(GENERATOR_KEY),
        lods=lods,
        validation=validation,
    )
