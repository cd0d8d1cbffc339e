"""Where an asset's files live in the store: everything of one asset under its id.

Keys are relative (``<asset id>/input.png``) and are what the database records, so the store
can move (another folder, another bucket) without rewriting rows.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from sweedle_core.errors import InvalidInput

INPUT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def input_key(asset_id: str, image_format: str) -> str:
    return f"{asset_id}/input.{INPUT_EXTENSIONS[image_format]}"


def view_input_key(asset_id: str, view: str, image_format: str) -> str:
    """Where a multi-view submission's photo of ``view`` (left, back, right) goes; the front
    is the asset's `input_key`."""
    return f"{asset_id}/views/{view}.{INPUT_EXTENSIONS[image_format]}"


def view_prepared_key(asset_id: str, view: str) -> str:
    return f"{asset_id}/views/{view}.prepared.png"


def painted_key(asset_id: str) -> str:
    """Where a text-to-3d job's painted image goes (its input, once painted)."""
    return input_key(asset_id, "PNG")


def prepared_key(asset_id: str) -> str:
    return f"{asset_id}/prepared.png"


def shape_key(asset_id: str) -> str:
    """The GPU stage's hand-off to the CPU stage (`sweedle_core.generation.shape`)."""
    return f"{asset_id}/shape.npz"


def raw_mesh_key(asset_id: str) -> str:
    """The CPU stage's mesh, the export chain's input."""
    return f"{asset_id}/raw_mesh.npz"


def asset_key(asset_id: str, name: str) -> str:
    """The key of ``name`` (a path relative to the asset's folder, ``lods/lod1.glb``)."""
    return f"{asset_id}/{name}"


def checked_key(key: str) -> str:
    """``key`` if it names a file inside the store: relative, no ``..``, no empty part."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"stored name {key!r} is not a plain relative path inside the store")
    return key


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of a STORAGE_URL ``s3://bucket[/prefix]``; ValueError otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"STORAGE_URL must be s3://bucket[/prefix], not {url!r}")
    return parts.netloc, parts.path.strip("/")
