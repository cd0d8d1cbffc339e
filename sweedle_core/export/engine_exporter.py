"""Engine bundles: a model's LOD GLBs plus what Unity, Unreal or Godot needs to use them.

The LODs come in already built (LOD 0 the finest); nothing here simplifies. A ``Bundle`` is a set
of files keyed by their path inside an engine project, with a ``manifest.json`` in the bundle's
folder that lists every other file with its size and SHA-256. It leaves as a zip
(``bundle_zip``) or is written straight into a project folder on the server (``write_bundle``),
which replaces only files an earlier manifest of ours lists.

The Unity and Unreal scripts are templates; they are not run by any test here.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import trimesh

from sweedle_core.errors import InvalidInput
from sweedle_core.export import engine_templates
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.safe_files import (
    checked_relative_path,
    read_existing,
    resolve_target,
    write_files,
)

MAX_NAME_LENGTH = 64
MAX_LODS = 8  # Unity's LODGroup and Unreal's static meshes hold at most 8 levels
MANIFEST_NAME = "manifest.json"
_MAX_MANIFEST_BYTES = 1 << 20
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9_-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{i}" for d in ("COM", "LPT") for i in range(10)
}
_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/sweedle/unity-guid")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Bundle:
    """Files for one engine: relative POSIX path in the project -> bytes, manifest included.

    ``root`` is the bundle's folder (where ``manifest.json`` is); ``shared`` lists files other
    bundles write too (Unity's ``Assets/Sweedle.meta``), written only where none is there yet.
    """

    name: str
    engine: str
    root: str
    files: dict[str, bytes]
    manifest: dict[str, Any]
    shared: frozenset[str] = field(default_factory=frozenset)

    @property
    def manifest_path(self) -> str:
        return f"{self.root}/{MANIFEST_NAME}"


def engine_asset_name(name: str, fallback: str = "") -> str:
    """``name`` as a file, folder and asset name in an engine project: ASCII letters, digits,
    ``_`` and ``-``, at most ``MAX_NAME_LENGTH`` long; every run of other characters becomes
    one ``_``. A name with nothing of that left ("猫") takes ``fallback`` (made the same way)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = _UNSAFE_RUN.sub("_", ascii_name).strip("_-")[:MAX_NAME_LENGTH].rstrip("_-")
    if not cleaned and fallback:
        return engine_asset_name(fallback)
    if not cleaned:
        raise InvalidInput(f"the name {name!r} has no letters or digits to name files after")
    return cleaned + "_" if cleaned.upper() in _WINDOWS_RESERVED else cleaned


def export_to_unity(
    name: str, lods: Sequence[trimesh.Trimesh], *, transition_heights: Sequence[float] | None = None
) -> Bundle:
    """``Assets/Sweedle/<Name>/``: one GLB per LOD (imported by glTFast), an editor script that
    builds a LODGroup prefab from them, a README, and a ``.meta`` with a stable GUID for every
    file and folder. ``transition_heights`` are the screen-relative heights (one per LOD,
    decreasing, the last one culls); by default 0.5, halved per level, culling at 0.02."""
    name = engine_asset_name(name)
    _check_lods(lods)
    heights = _transition_heights(len(lods), transition_heights)
    root = f"Assets/Sweedle/{name}"
    lod_files = [f"{name}_LOD{level}.glb" for level in range(len(lods))]
    files = {
        f"{root}/{file}": mesh_to_glb(mesh) for file, mesh in zip(lod_files, lods, strict=True)
    }
    script = engine_templates.UNITY_SCRIPT.substitute(
        name=name,
        ident=_csharp_ident(name),
        lod_files=", ".join(f'"{file}"' for file in lod_files),
        heights=", ".join(f"{height:.6g}f" for height in heights),
    )
    files[f"{root}/Editor/SweedleLODGroupBuilder_{name}.cs"] = script.encode("utf-8")
    files[f"{root}/README.md"] = engine_templates.UNITY_README.substitute(name=name).encode("utf-8")
    shared_meta = "Assets/Sweedle.meta"
    for path in [*files, f"{root}/{MANIFEST_NAME}"]:
        files[f"{path}.meta"] = _unity_meta(_unity_guid(name, path))
    for folder in (root, f"{root}/Editor"):
        files[f"{folder}.meta"] = _unity_meta(_unity_guid(name, folder), folder=True)
    # The folder every bundle shares: its GUID depends on the path alone, so bundles agree.
    files[shared_meta] = _unity_meta(uuid.uuid5(_GUID_NAMESPACE, "Assets/Sweedle").hex, folder=True)
    lod_paths = [f"{root}/{file}" for file in lod_files]
    return _bundle(
        name,
        "unity",
        root,
        files,
        _lod_entries(lods, lod_paths),
        shared=frozenset({shared_meta}),
        transition_heights=list(heights),
    )


def export_to_unreal(name: str, lods: Sequence[trimesh.Trimesh]) -> Bundle:
    """``Content/Sweedle/<Name>/``: ``SM_<Name>_LOD<n>.glb`` per LOD, an Editor Python script
    that imports LOD 0 through Interchange and adds the others as its LODs, and a README."""
    name = engine_asset_name(name)
    _check_lods(lods)
    root = f"Content/Sweedle/{name}"
    lod_files = [f"SM_{name}_LOD{level}.glb" for level in range(len(lods))]
    files = {
        f"{root}/{file}": mesh_to_glb(mesh) for file, mesh in zip(lod_files, lods, strict=True)
    }
    script = engine_templates.UNREAL_SCRIPT.substitute(name=name, lod_files=repr(lod_files))
    files[f"{root}/import_{name}.py"] = script.encode("utf-8")
    files[f"{root}/README.md"] = engine_templates.UNREAL_README.substitute(name=name).encode(
        "utf-8"
    )
    lod_paths = [f"{root}/{file}" for file in lod_files]
    return _bundle(name, "unreal", root, files, _lod_entries(lods, lod_paths))


def export_to_godot(name: str, lods: Sequence[trimesh.Trimesh]) -> Bundle:
    """``<Name>/<Name>.glb`` (LOD 0 only, uncompressed: Godot rejects Draco and builds its own
    LODs on import) with a ``.glb.import`` that asks for them, and a README."""
    name = engine_asset_name(name)
    _check_lods(lods)
    glb = f"{name}/{name}.glb"
    files = {
        glb: mesh_to_glb(lods[0]),
        f"{glb}.import": engine_templates.GODOT_IMPORT.substitute(
            name=name, uid=_godot_uid(name, glb)
        ).encode(),
        f"{name}/README.md": engine_templates.GODOT_README.substitute(name=name).encode("utf-8"),
    }
    return _bundle(name, "godot", name, files, _lod_entries(lods[:1], [glb]), lod_source="engine")


ENGINES: dict[str, Callable[[str, Sequence[trimesh.Trimesh]], Bundle]] = {
    "unity": export_to_unity,
    "unreal": export_to_unreal,
    "godot": export_to_godot,
}


def bundle_zip(bundle: Bundle) -> bytes:
    """The bundle as a zip, paths as in the project; same bundle, same bytes (sorted entries,
    fixed timestamps and permissions)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(bundle.files):
            info = zipfile.ZipInfo(path, date_time=_ZIP_TIME)
            info.create_system = 3  # Unix, so the permissions below are read
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, bundle.files[path])
    return buffer.getvalue()


def write_bundle(
    bundle: Bundle, project_path: str | Path, allowed_roots: Sequence[Path]
) -> list[Path]:
    """Write the bundle into a project folder under one of ``allowed_roots``; the files' paths.

    Replaces only files that the manifest already at the bundle's folder (one of ours) lists;
    any other file in the way raises ``FileConflict``, an unsafe path or link ``UnsafePath``.
    See ``safe_files.write_files``.
    """
    target = resolve_target(project_path, allowed_roots)
    previous = read_existing(target, bundle.manifest_path, _MAX_MANIFEST_BYTES)
    return write_files(
        target,
        bundle.files,
        replaceable=_listed_in(previous, bundle.manifest_path),
        keep_existing=bundle.shared,
    )


def _listed_in(manifest: bytes | None, manifest_path: str) -> frozenset[str]:
    """The files a manifest of ours lists, itself included; nothing for a foreign one."""
    try:
        document = json.loads(manifest) if manifest is not None else None
    except ValueError:
        return frozenset()
    if not isinstance(document, dict) or document.get("generator") != "sweedle":
        return frozenset()
    entries = document.get("files")
    paths = (
        {e.get("path") for e in entries if isinstance(e, dict)}
        if isinstance(entries, list)
        else set()
    )
    return frozenset(p for p in paths if isinstance(p, str)) | {manifest_path}


def _bundle(
    name: str,
    engine: str,
    root: str,
    files: dict[str, bytes],
    lods: list[dict[str, Any]],
    shared: frozenset[str] = frozenset(),
    lod_source: str = "bundle",
    **extra: Any,
) -> Bundle:
    for path in files:
        checked_relative_path(path)
    manifest = {
        "generator": "sweedle",
        "manifest_version": 1,
        "name": name,
        "engine": engine,
        "units": "meters",
        "up": "+Y",
        "lods": lods,
        "lod_source": lod_source,  # "engine": the engine builds the coarser levels itself
        **extra,
        "files": [
            {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in sorted(files.items())
        ],
    }
    manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
    all_files = {**files, f"{root}/{MANIFEST_NAME}": manifest_bytes}
    return Bundle(name, engine, root, all_files, manifest, shared)


def _check_lods(lods: Sequence[trimesh.Trimesh]) -> None:
    if not 1 <= len(lods) <= MAX_LODS:
        raise InvalidInput(f"an engine bundle needs 1 to {MAX_LODS} LODs, not {len(lods)}")
    faces = [len(mesh.faces) for mesh in lods]
    if min(faces) == 0:
        raise InvalidInput("a LOD has no faces")
    if any(finer < coarser for finer, coarser in pairwise(faces)):
        raise InvalidInput(f"LODs must go from finest to coarsest; face counts were {faces}")


def _lod_entries(lods: Sequence[trimesh.Trimesh], paths: list[str]) -> list[dict[str, Any]]:
    return [
        {"level": level, "faces": len(mesh.faces), "vertices": len(mesh.vertices), "file": path}
        for level, (mesh, path) in enumerate(zip(lods, paths, strict=True))
    ]


def _transition_heights(count: int, given: Sequence[float] | None) -> list[float]:
    """Screen-relative heights at which each LOD hands over to the next (the last one culls)."""
    if given is None:
        heights = [0.5 * 0.5**level for level in range(count - 1)]
        return [*heights, min(0.02, heights[-1] / 2) if heights else 0.02]
    heights = [float(h) for h in given]
    decreasing = all(a > b for a, b in pairwise(heights))
    if len(heights) != count or not decreasing or not all(0 < h < 1 for h in heights):
        raise InvalidInput(
            f"transition heights must be {count} decreasing values between 0 and 1, not {heights}"
        )
    return heights


def _unity_guid(name: str, path: str) -> str:
    """A GUID that stays the same for the same model and file, so re-exports keep references."""
    return uuid.uuid5(_GUID_NAMESPACE, f"{name}\n{path}").hex


def _unity_meta(guid: str, folder: bool = False) -> bytes:
    # Unity fills in the importer settings of a file's .meta itself; only the GUID must be ours.
    text = f"fileFormatVersion: 2\nguid: {guid}\n"
    if folder:
        text += (
            "folderAsset: yes\nDefaultImporter:\n  externalObjects: {}\n  userData: \n"
            "  assetBundleName: \n  assetBundleVariant: \n"
        )
    return text.encode("ascii")


def _csharp_ident(name: str) -> str:
    """``name`` as the tail of a C# identifier; ``-`` is not allowed there, so a name with one
    gets a short hash to stay distinct from the same name spelt with ``_``."""
    if "-" not in name:
        return name
    return f"{name.replace('-', '_')}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _godot_uid(name: str, path: str) -> str:
    """A stable ``uid://`` in Godot's own alphabet (base 34: ``a``-``y`` then ``0``-``8``)."""
    value = int.from_bytes(hashlib.sha256(f"{name}\n{path}".encode()).digest()[:8], "big") >> 1
    text = ""
    while True:
        value, digit = divmod(value, 34)
        text = (chr(ord("a") + digit) if digit < 25 else chr(ord("0") + digit - 25)) + text
        if value == 0:
            return f"uid://{text}"
