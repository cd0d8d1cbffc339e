"""An asset's exports in the store: the default chain after a generation, and what the API
asks for later (LODs, formats, Draco, engine bundles, validation, thumbnails). The later ones all
start from the asset's optimised mesh (or its LODs), which the default chain kept, so nothing is
regenerated. Tools work on local files; the results are stored through `Storage`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trimesh

from sweedle_core.errors import FileMissing, InvalidInput
from sweedle_core.export.draco_compressor import QuantizationSettings, compress_glb
from sweedle_core.export.engine_exporter import (
    ENGINES,
    bundle_zip,
    engine_asset_name,
    write_bundle,
)
from sweedle_core.export.formats import MEDIA_TYPES, MODEL_STEM, delivered, delivered_names
from sweedle_core.export.mesh_io import read_raw_mesh
from sweedle_core.export.mesh_optimizer import optimize_mesh
from sweedle_core.export.pipeline import (
    DRACO_NAME,
    LOD_DIR,
    OPTIMIZED_NAME,
    VALIDATION_NAME,
    ExportOptions,
    ExportResult,
    Progress,
    export_asset,
    lod_names,
    write_lods,
)
from sweedle_core.export.thumbnail_generator import generate_thumbnail
from sweedle_core.export.validator import validate_mesh
from sweedle_core.storage import Storage
from sweedle_core.storage.layout import asset_key, raw_mesh_key

EXPORT_DIR = "exports"


@dataclass(frozen=True)
class StoredFile:
    """A file to send: its path in storage, media type and the name the client saves it as."""

    path: str  # its key in the store
    media_type: str
    filename: str


@dataclass(frozen=True)
class StoredExport:
    """The default chain's result, with the keys of the model and the thumbnail."""

    result: ExportResult
    model_key: str
    thumbnail_key: str


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

    def chain(
        self, asset_id: str, raw_key: str, options: ExportOptions, on_progress: Progress
    ) -> StoredExport:
        """The default export chain of the raw mesh at ``raw_key``; every output stored before
        this returns (the caller records them only then)."""
        storage = self.storage
        with storage.local_file(raw_key) as raw, storage.workspace(asset_id) as out:
            result = export_asset(raw, out, options, on_progress)
            names = [
                p.relative_to(out).as_posix() for p in (result.model_path, result.thumbnail_path)
            ]
        return StoredExport(result, *(asset_key(asset_id, name) for name in names))

    def lods(
        self,
        asset_id: str,
        levels: Sequence[float],
        built: Sequence[Mapping[str, Any]],
        on_progress: Progress,
    ) -> list[dict[str, Any]]:
        """The LOD chain at ``levels`` (the first must be 1.0). ``built`` is the asset's chain
        as recorded: kept when it has these levels and its files are stored; otherwise the
        chain is built again and what was made from the old one (formats and Draco files of
        its levels, engine bundles) is removed, so nothing stale is served."""
        if [record["level"] for record in built] == list(levels) and all(
            self.storage.exists(asset_key(asset_id, lod_names(index)[1]))
            for index in range(len(built))
        ):
            on_progress(1.0, "LODs ready (already built at these levels)")
            return [dict(record) for record in built]
        on_progress(0.1, "building LODs")
        source = self._source(asset_id)
        with self.storage.workspace(asset_id) as folder:
            records = write_lods(source, folder, levels)
        self._drop_made_from_lods(asset_id, keep=len(records))
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
        folder = f"{EXPORT_DIR}/lod{lod}"
        suffix = f"_LOD{lod}" if lod else ""
        if draco:
            key = asset_key(asset_id, DRACO_NAME)  # the default chain's, if it made one
            if lod or not self.storage.exists(key):
                key = asset_key(asset_id, f"{folder}/{DRACO_NAME}")
                if not self.storage.exists(key):
                    mesh = self._lod(asset_id, lod)
                    compressed = compress_glb(mesh, self.quantization, self.compression_level)
                    self.storage.put(key, compressed)
            return StoredFile(key, MEDIA_TYPES["glb"], f"{name}{suffix}.draco.glb")
        for candidate in delivered_names(fmt):
            key = asset_key(asset_id, f"{folder}/{candidate}")
            if self.storage.exists(key):
                break
        else:
            made, data = delivered(self._lod(asset_id, lod), fmt)
            key = asset_key(asset_id, f"{folder}/{made}")
            self.storage.put(key, data)
        filename = f"{name}{suffix}{key.rsplit('/', 1)[-1][len(MODEL_STEM) :]}"
        return StoredFile(key, _media_type(key, fmt), filename)

    def engine_bundle(
        self,
        asset_id: str,
        name: str,
        engine: str,
        lod_count: int,
        project_path: str | None,
        on_progress: Progress,
        roots: Sequence[Path] | None = None,
    ) -> dict[str, Any]:
        """Build the ``engine`` bundle; keep its zip; write it into ``project_path`` if given,
        under one of ``roots`` (the caller's own; None: the service's allowed roots)."""
        build = ENGINES.get(engine)
        if build is None:
            raise InvalidInput(f"unknown engine {engine!r}; accepted: {', '.join(ENGINES)}")
        on_progress(0.1, f"building the {engine} bundle")
        lods = [self._lod(asset_id, index) for index in range(max(lod_count, 1))]
        # An asset named in another script ("猫") is named after its id in the project.
        bundle = build(engine_asset_name(name, fallback=f"asset_{asset_id[:8]}"), lods)
        self.storage.put(_bundle_key(asset_id, engine), bundle_zip(bundle))
        written: list[str] = []
        if project_path is not None:
            on_progress(0.7, "writing into the project")
            allowed = self.allowed_roots if roots is None else list(roots)
            written = [
                _under_root(path, allowed) for path in write_bundle(bundle, project_path, allowed)
            ]
        on_progress(1.0, f"{engine} bundle ready")
        return {"engine": engine, "manifest": bundle.manifest, "written": written}

    def bundle_file(self, asset_id: str, name: str, engine: str) -> StoredFile:
        key = _bundle_key(asset_id, engine)
        if not self.storage.exists(key):
            raise FileMissing(f"no {engine} bundle yet: POST /api/export/{asset_id}/engine first")
        return StoredFile(key, "application/zip", f"{name}_{engine}.zip")

    def validate(self, asset_id: str) -> dict[str, Any]:
        """The stored validation report, or a fresh one when it is missing."""
        key = asset_key(asset_id, VALIDATION_NAME)
        try:
            return dict(json.loads(self.storage.get(key)))
        except FileMissing:
            pass
        report = validate_mesh(self._source(asset_id))
        self.storage.put(key, json.dumps(report, indent=2).encode())
        return report

    def thumbnail(self, asset_id: str, size: int) -> StoredFile:
        """The asset's thumbnail at ``size`` px, rendered the first time it is asked for and
        reused after (a finished asset's mesh does not change)."""
        key = asset_key(asset_id, f"{EXPORT_DIR}/thumbnail_{size}.png")
        if not self.storage.exists(key):
            self.storage.put(key, generate_thumbnail(self._source(asset_id), size))
        return StoredFile(key, "image/png", f"thumbnail_{size}.png")

    def _drop_made_from_lods(self, asset_id: str, keep: int) -> None:
        """Remove the files an earlier LOD chain left: its levels past ``keep`` and every
        file made from a level past the full mesh (LOD 0, the thumbnails stay)."""
        folder = asset_key(asset_id, LOD_DIR)
        kept = {asset_key(asset_id, name) for index in range(keep) for name in lod_names(index)}
        made = asset_key(asset_id, EXPORT_DIR)
        full = f"{made}/lod0/"
        bundles = {_bundle_key(asset_id, engine) for engine in ENGINES}
        for key in self.storage.list(folder):
            if key not in kept:
                self.storage.delete(key)
        for key in self.storage.list(made):
            if key in bundles or (key.startswith(f"{made}/lod") and not key.startswith(full)):
                self.storage.delete(key)

    def _source(self, asset_id: str) -> trimesh.Trimesh:
        """The asset's optimised mesh; where the default chain kept none, the raw mesh
        optimised here, so every export starts from an `optimize_mesh` result."""
        try:
            return read_raw_mesh(self.storage.get(asset_key(asset_id, OPTIMIZED_NAME)))
        except FileMissing:
            pass
        try:
            raw = read_raw_mesh(self.storage.get(raw_mesh_key(asset_id)))
        except FileMissing:
            raise FileMissing(f"asset {asset_id} has no mesh to export yet") from None
        return optimize_mesh(raw)

    def _lod(self, asset_id: str, index: int) -> trimesh.Trimesh:
        try:
            return read_raw_mesh(self.storage.get(asset_key(asset_id, lod_names(index)[1])))
        except FileMissing:
            if index == 0:
                return self._source(asset_id)
        raise FileMissing(f"asset {asset_id} has no LOD {index}: POST /api/export/{asset_id}/lods")


def _under_root(path: Path, roots: Sequence[Path]) -> str:
    """``path`` relative to the allowed root it was written under: an answer names no
    folder of the server's."""
    for root in roots:
        for base in (Path(root), Path(root).resolve()):
            if path.is_relative_to(base):
                return path.relative_to(base).as_posix()
    return path.name


def _bundle_key(asset_id: str, engine: str) -> str:
    return asset_key(asset_id, f"{EXPORT_DIR}/{engine}.zip")


def _media_type(key: str, fmt: str) -> str:
    return "application/zip" if key.endswith(".zip") else MEDIA_TYPES[fmt]
