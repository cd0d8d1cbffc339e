"""Exports of a finished asset asked for through the API: LODs, formats, Draco, engine
bundles, validation, thumbnails. All start from the asset's optimised mesh (or its LODs), which
the default export chain kept, so nothing is regenerated.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trimesh

from sweedle_core.errors import FileMissing, InvalidInput
from sweedle_core.export.draco_compressor import QuantizationSettings, compress_glb
from sweedle_core.export.engine_exporter import ENGINES, bundle_zip, write_bundle
from sweedle_core.export.formats import MEDIA_TYPES, MODEL_STEM, write_format
from sweedle_core.export.mesh_io import read_raw_mesh
from sweedle_core.export.pipeline import (
    DRACO_NAME,
    OPTIMIZED_NAME,
    VALIDATION_NAME,
    Progress,
    lod_paths,
    write_lods,
)
from sweedle_core.export.thumbnail_generator import generate_thumbnail
from sweedle_core.export.validator import validate_mesh
from sweedle_core.storage import Storage, write_atomic

EXPORT_DIR = "exports"


@dataclass(frozen=True)
class StoredFile:
    """A file to send: its path in storage, media type and the name the client saves it as."""

    path: str
    media_type: str
    filename: str


class AssetExports:
    def __init__(
        self,
        storage: Storage,
        quantization: QuantizationSettings = QuantizationSettings(),
        compression_level: int = 7,
        allowed_roots: Sequence[Path] = (),
    ) -> None:
        self.storage = storage
        self.quantization = quantization
        self.compression_level = compression_level
        self.allowed_roots = list(allowed_roots)

    def lods(
        self, asset_id: str, levels: Sequence[float], on_progress: Progress
    ) -> list[dict[str, Any]]:
        """Rebuild the LOD chain at ``levels`` (the first must be 1.0)."""
        on_progress(0.1, "building LODs")
        records = write_lods(self._source(asset_id), self.storage.asset_dir(asset_id), levels)
        on_progress(1.0, "LODs ready")
        return records

    def download(
        self, asset_id: str, name: str, fmt: str, lod: int, draco: bool, lod_count: int
    ) -> StoredFile:
        """The file for ``fmt`` at LOD ``lod``, written on first request and kept."""
        if fmt not in MEDIA_TYPES:
            raise InvalidInput(f"unknown format {fmt!r}; accepted: {', '.join(MEDIA_TYPES)}")
        if draco and fmt != "glb":
            raise InvalidInput("draco=true applies to the glb format only")
        if not 0 <= lod < max(lod_count, 1):
            raise InvalidInput(f"lod must be between 0 and {max(lod_count, 1) - 1}, not {lod}")
        folder = self.storage.asset_dir(asset_id) / EXPORT_DIR / f"lod{lod}"
        suffix = f"_LOD{lod}" if lod else ""
        if draco:
            chain_made = self.storage.asset_dir(asset_id) / DRACO_NAME
            path = chain_made if lod == 0 and chain_made.is_file() else folder / DRACO_NAME
            if not path.is_file():
                mesh = self._lod(asset_id, lod)
                write_atomic(path, compress_glb(mesh, self.quantization, self.compression_level))
            filename = f"{name}{suffix}.draco.glb"
        else:
            path = write_format(self._lod(asset_id, lod), fmt, folder, reuse=True)
            filename = f"{name}{suffix}{path.name[len(MODEL_STEM) :]}"
        return StoredFile(self.storage.relative(path), _media_type(path, fmt), filename)

    def engine_bundle(
        self,
        asset_id: str,
        name: str,
        engine: str,
        lod_count: int,
        project_path: str | None,
        on_progress: Progress,
    ) -> dict[str, Any]:
        """Build the ``engine`` bundle; keep its zip; write it into ``project_path`` if given."""
        build = ENGINES.get(engine)
        if build is None:
            raise InvalidInput(f"unknown engine {engine!r}; accepted: {', '.join(ENGINES)}")
        on_progress(0.1, f"building the {engine} bundle")
        lods = [self._lod(asset_id, index) for index in range(max(lod_count, 1))]
        bundle = build(name, lods)
        zip_path = self.storage.asset_dir(asset_id) / EXPORT_DIR / f"{engine}.zip"
        write_atomic(zip_path, bundle_zip(bundle))
        written: list[str] = []
        if project_path is not None:
            on_progress(0.7, "writing into the project")
            written = [str(p) for p in write_bundle(bundle, project_path, self.allowed_roots)]
        on_progress(1.0, f"{engine} bundle ready")
        return {"engine": engine, "manifest": bundle.manifest, "written": written}

    def bundle_file(self, asset_id: str, name: str, engine: str) -> StoredFile:
        path = self.storage.asset_dir(asset_id) / EXPORT_DIR / f"{engine}.zip"
        if not path.is_file():
            raise FileMissing(f"no {engine} bundle yet: POST /api/export/{asset_id}/engine first")
        return StoredFile(self.storage.relative(path), "application/zip", f"{name}_{engine}.zip")

    def validate(self, asset_id: str) -> dict[str, Any]:
        """The stored validation report, or a fresh one when it is missing."""
        path = self.storage.asset_dir(asset_id) / VALIDATION_NAME
        if path.is_file():
            return dict(json.loads(path.read_text()))
        report = validate_mesh(self._source(asset_id))
        write_atomic(path, json.dumps(report, indent=2).encode())
        return report

    def thumbnail(self, asset_id: str, size: int) -> StoredFile:
        path = self.storage.asset_dir(asset_id) / EXPORT_DIR / f"thumbnail_{size}.png"
        write_atomic(path, generate_thumbnail(self._source(asset_id), size))
        return StoredFile(self.storage.relative(path), "image/png", f"thumbnail_{size}.png")

    def _source(self, asset_id: str) -> trimesh.Trimesh:
        folder = self.storage.asset_dir(asset_id)
        for name in (OPTIMIZED_NAME, Storage.raw_mesh_name(asset_id).rsplit("/", 1)[-1]):
            if (folder / name).is_file():
                return read_raw_mesh(folder / name)
        raise FileMissing(f"asset {asset_id} has no mesh to export yet")

    def _lod(self, asset_id: str, index: int) -> trimesh.Trimesh:
        _, npz = lod_paths(self.storage.asset_dir(asset_id), index)
        if npz.is_file():
            return read_raw_mesh(npz)
        if index == 0:
            return self._source(asset_id)
        raise FileMissing(f"asset {asset_id} has no LOD {index}: POST /api/export/{asset_id}/lods")


def _media_type(path: Path, fmt: str) -> str:
    return "application/zip" if path.suffix == ".zip" else MEDIA_TYPES[fmt]
