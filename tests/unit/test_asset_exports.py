"""Exports asked through the API: a LOD chain the asset already has is reused, a new one
replaces the files made from the old (no stale download is served); an asset the default chain
never optimised is exported from its raw mesh optimised; an unknown engine is refused."""

from __future__ import annotations

import io
from typing import Any

import pytest
import trimesh

from sweedle_core.errors import InvalidInput
from sweedle_core.export.asset_exports import AssetExports
from sweedle_core.export.mesh_io import raw_mesh_bytes
from sweedle_core.export.pipeline import ExportOptions, lod_names
from sweedle_core.storage import LocalStorage
from sweedle_core.storage.layout import asset_key, raw_mesh_key
from tests.meshes import coloured_sphere

ASSET = "rock1"


def quiet(fraction: float, message: str) -> None:
    return None


@pytest.fixture
def exports(tmp_path) -> tuple[AssetExports, list[dict[str, Any]]]:
    storage = LocalStorage(tmp_path / "store")
    storage.put(raw_mesh_key(ASSET), raw_mesh_bytes(trimesh.creation.icosphere(subdivisions=4)))
    exports = AssetExports(storage)
    made = exports.chain(ASSET, raw_mesh_key(ASSET), ExportOptions(), quiet)
    return exports, made.result.lods


def faces_of(exports: AssetExports, fmt: str, lod: int, lod_count: int) -> int:
    stored = exports.download(ASSET, "Rock", fmt, lod=lod, draco=False, lod_count=lod_count)
    data = exports.storage.get(stored.path)
    return len(trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh").faces)


def test_a_chain_at_the_same_levels_is_reused_not_rebuilt(exports) -> None:
    assets, built = exports
    stored = [assets.storage.path(asset_key(ASSET, lod_names(i)[0])) for i in range(len(built))]
    before = [path.stat().st_mtime_ns for path in stored]
    messages: list[str] = []

    again = assets.lods(ASSET, [1.0, 0.5, 0.25, 0.1], built, lambda f, m: messages.append(m))

    assert again == built
    assert [path.stat().st_mtime_ns for path in stored] == before
    assert messages == ["LODs ready (already built at these levels)"]


def test_a_new_chain_drops_the_files_made_from_the_old_one(exports) -> None:
    assets, built = exports
    full = faces_of(assets, "ply", 0, len(built))
    old_lod1 = faces_of(assets, "ply", 1, len(built))
    assets.engine_bundle(ASSET, "Rock", "godot", len(built), None, quiet)

    rebuilt = assets.lods(ASSET, [1.0, 0.2], built, quiet)

    assert [record["level"] for record in rebuilt] == [1.0, 0.2]
    new_lod1 = faces_of(assets, "ply", 1, len(rebuilt))
    assert new_lod1 == rebuilt[1]["faces"] != old_lod1
    assert abs(new_lod1 / full - 0.2) <= 0.05
    assert rebuilt[1]["bytes"] == assets.storage.size(asset_key(ASSET, lod_names(1)[0]))
    assert faces_of(assets, "ply", 0, len(rebuilt)) == full  # the full mesh's files stay
    kept = assets.storage.list(asset_key(ASSET, "lods"))
    assert not any(name in key for key in kept for name in lod_names(2) + lod_names(3))
    with pytest.raises(Exception, match="no godot bundle yet"):
        assets.bundle_file(ASSET, "Rock", "godot")


def test_a_chain_whose_files_are_gone_is_built_again(exports) -> None:
    assets, built = exports
    assets.storage.delete(asset_key(ASSET, lod_names(2)[1]))

    again = assets.lods(ASSET, [1.0, 0.5, 0.25, 0.1], built, quiet)

    assert [record["faces"] for record in again] == [record["faces"] for record in built]
    assert assets.storage.exists(asset_key(ASSET, lod_names(2)[1]))


def test_without_an_optimised_mesh_the_raw_one_is_exported_optimised(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "store")
    storage.put(raw_mesh_key(ASSET), raw_mesh_bytes(coloured_sphere(inverted=True)))
    assets = AssetExports(storage)

    for fmt in ("glb", "ply"):
        stored = assets.download(ASSET, "Rock", fmt, lod=0, draco=False, lod_count=1)
        loaded = trimesh.load(io.BytesIO(storage.get(stored.path)), file_type=fmt, force="mesh")
        assert loaded.volume > 0, fmt  # wound outward by optimize_mesh
    assert assets.validate(ASSET)["winding"] == "outward"


def test_an_unknown_engine_is_refused(exports) -> None:
    assets, built = exports
    with pytest.raises(InvalidInput, match="unreal"):
        assets.engine_bundle(ASSET, "Rock", "cryengine", len(built), None, quiet)


def test_an_asset_named_in_another_script_gets_a_bundle_named_after_its_id(exports) -> None:
    assets, built = exports
    result = assets.engine_bundle(ASSET, "猫", "unity", len(built), None, quiet)

    name = f"asset_{ASSET[:8]}"
    assert result["manifest"]["name"] == name
    paths = {f["path"] for f in result["manifest"]["files"]}
    assert f"Assets/Sweedle/{name}/{name}_LOD0.glb" in paths, paths
