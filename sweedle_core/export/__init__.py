"""Mesh export: the raw hand-off format, GLB and other formats, thumbnails, the export step."""

from sweedle_core.export.formats import EXPORTERS, MEDIA_TYPES
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import read_raw_mesh, write_raw_mesh
from sweedle_core.export.pipeline import ExportResult, export_asset
from sweedle_core.export.thumbnail import render_thumbnail

__all__ = [
    "EXPORTERS",
    "MEDIA_TYPES",
    "ExportResult",
    "export_asset",
    "mesh_to_glb",
    "read_raw_mesh",
    "render_thumbnail",
    "write_raw_mesh",
]
