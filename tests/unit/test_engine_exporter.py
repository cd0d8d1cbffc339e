"""Engine bundles (Unity, Unreal, Godot), their zip, and writing them safely into a project."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import pytest
import trimesh

from sweedle_core.errors import FileConflict, InvalidInput, UnsafePath
from sweedle_core.export.engine_exporter import (
    ENGINES,
    Bundle,
    bundle_zip,
    engine_asset_name,
    export_to_godot,
    export_to_unity,
    export_to_unreal,
    write_bundle,
)
from sweedle_core.export.safe_files import checked_relative_path

GUID = re.compile(r"^guid: ([0-9a-f]{32})$", re.MULTILINE)


@pytest.fixture(scope="module")
def lods() -> list[trimesh.Trimesh]:
    return [trimesh.creation.icosphere(subdivisions=s) for s in (3, 2, 1)]


@pytest.fixture
def space(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(allowed root, a project folder inside it, a folder outside the root)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    project = root / "Game"
    project.mkdir(parents=True)
    outside.mkdir()
    return root, project, outside


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def glb_json(data: bytes) -> dict:
    magic, version, _ = struct.unpack_from("<III", data)
    assert (magic, version) == (0x46546C67, 2)
    length, _ = struct.unpack_from("<II", data, 12)
    return json.loads(data[20 : 20 + length])


# --- the three bundles ----------------------------------------------------------------------


def test_unity_tree(lods):
    bundle = export_to_unity("Rock", lods)
    base = "Assets/Sweedle/Rock"
    files = [
        *(f"{base}/Rock_LOD{i}.glb" for i in range(3)),
        f"{base}/Editor/SweedleLODGroupBuilder_Rock.cs",
        f"{base}/README.md",
        f"{base}/manifest.json",
    ]
    folders = ["Assets/Sweedle", base, f"{base}/Editor"]
    expected = {*files, *(f"{p}.meta" for p in files + folders)}
    assert set(bundle.files) == expected
    assert bundle.root == base and bundle.manifest_path == f"{base}/manifest.json"


def test_unreal_tree(lods):
    bundle = export_to_unreal("Rock", lods)
    base = "Content/Sweedle/Rock"
    assert set(bundle.files) == {
        *(f"{base}/SM_Rock_LOD{i}.glb" for i in range(3)),
        f"{base}/import_Rock.py",
        f"{base}/README.md",
        f"{base}/manifest.json",
    }


def test_godot_tree(lods):
    bundle = export_to_godot("Rock", lods)
    assert set(bundle.files) == {
        "Rock/Rock.glb",
        "Rock/Rock.glb.import",
        "Rock/README.md",
        "Rock/manifest.json",
    }
    assert [lod["level"] for lod in bundle.manifest["lods"]] == [0]
    assert bundle.manifest["lod_source"] == "engine"


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_manifest_lists_every_other_file_with_its_hash(engine, lods):
    bundle = ENGINES[engine]("Rock", lods)
    manifest = json.loads(bundle.files[bundle.manifest_path])
    assert manifest == bundle.manifest
    assert manifest["generator"] == "sweedle" and manifest["engine"] == engine
    assert (manifest["name"], manifest["units"], manifest["up"]) == ("Rock", "meters", "+Y")
    listed = {entry["path"]: entry for entry in manifest["files"]}
    assert set(listed) == set(bundle.files) - {bundle.manifest_path}
    for path, entry in listed.items():
        assert entry["size"] == len(bundle.files[path])
        assert entry["sha256"] == hashlib.sha256(bundle.files[path]).hexdigest()
    for lod in manifest["lods"]:
        mesh = trimesh.load(io.BytesIO(bundle.files[lod["file"]]), file_type="glb", force="mesh")
        assert len(mesh.faces) == lod["faces"] == len(lods[lod["level"]].faces)
        assert lod["vertices"] == len(lods[lod["level"]].vertices)


def test_unity_guids_are_stable_and_differ_between_names(lods):
    def guids(bundle):
        return {
            path: GUID.search(data.decode()).group(1)
            for path, data in bundle.files.items()
            if path.endswith(".meta")
        }

    first, again = guids(export_to_unity("Rock", lods)), guids(export_to_unity("Rock", lods))
    assert first == again
    assert len(set(first.values())) == len(first)  # one GUID per file and folder
    other = guids(export_to_unity("Tree", lods))
    shared = {"Assets/Sweedle.meta"}
    assert other["Assets/Sweedle.meta"] == first["Assets/Sweedle.meta"]
    assert not (set(other.values()) - {other[p] for p in shared}) & set(first.values())


def test_unity_metas_and_scripts(lods):
    bundle = export_to_unity("Old Rock!", lods)
    assert bundle.name == "Old_Rock"
    for path, data in bundle.files.items():
        if path.endswith(".meta"):
            assert data.startswith(b"fileFormatVersion: 2\nguid: ")
            assert (b"folderAsset: yes" in data) == (path[: -len(".meta")] not in bundle.files)
    base = "Assets/Sweedle/Old_Rock"
    script = bundle.files[f"{base}/Editor/SweedleLODGroupBuilder_Old_Rock.cs"].decode()
    for needle in ("LODGroup", "SetLODs", "MenuItem", "AssetPostprocessor", "SaveAsPrefabAsset"):
        assert needle in script
    assert '"Old_Rock_LOD0.glb", "Old_Rock_LOD1.glb", "Old_Rock_LOD2.glb"' in script
    assert "{ 0.5f, 0.25f, 0.02f }" in script
    assert script.count("{") == script.count("}")
    assert "com.unity.cloud.gltfast" in bundle.files[f"{base}/README.md"].decode()
    # '-' is not allowed in a C# identifier: the class gets a distinct, valid name instead.
    dashed = export_to_unity("old-rock", lods).files
    (cs,) = (p for p in dashed if p.endswith(".cs"))
    class_name = re.search(r"public static class (\S+)", dashed[cs].decode()).group(1)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", class_name) and class_name.startswith(
        "SweedleLODGroupBuilder_old_rock_"
    )


def test_unity_transition_heights_are_checked(lods):
    bundle = export_to_unity("Rock", lods, transition_heights=[0.6, 0.3, 0.05])
    assert bundle.manifest["transition_heights"] == [0.6, 0.3, 0.05]
    with pytest.raises(InvalidInput, match="decreasing"):
        export_to_unity("Rock", lods, transition_heights=[0.3, 0.6, 0.05])


def test_unreal_script_imports_every_lod(lods):
    bundle = export_to_unreal("Rock", lods)
    script = bundle.files["Content/Sweedle/Rock/import_Rock.py"].decode()
    compile(script, "import_Rock.py", "exec")
    assert "AssetImportTask" in script and "set_lod_from_static_mesh" in script
    assert '"/Game/Sweedle/Rock"' in script
    assert "['SM_Rock_LOD0.glb', 'SM_Rock_LOD1.glb', 'SM_Rock_LOD2.glb']" in script


def test_godot_glb_has_no_draco_and_asks_for_lods(lods):
    bundle = export_to_godot("Rock", lods)
    document = glb_json(bundle.files["Rock/Rock.glb"])
    used = document.get("extensionsUsed", []) + document.get("extensionsRequired", [])
    assert "KHR_draco_mesh_compression" not in used
    assert not any("extensions" in p for m in document["meshes"] for p in m["primitives"])
    sidecar = bundle.files["Rock/Rock.glb.import"].decode()
    assert 'importer="scene"' in sidecar and 'type="PackedScene"' in sidecar
    assert "meshes/generate_lods=true" in sidecar
    uid = re.search(r'uid="uid://([a-z0-9]+)"', sidecar).group(1)
    assert set(uid) <= set("abcdefghijklmnopqrstuvwxy012345678")  # Godot's base 34
    assert sidecar == export_to_godot("Rock", lods).files["Rock/Rock.glb.import"].decode()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Rock", "Rock"),
        ("..hidden", "hidden"),
        ("a/b\\c d", "a_b_c_d"),
        ("Café", "Cafe"),
        ("con", "con_"),
    ],
)
def test_names_are_sanitised(raw, clean):
    assert engine_asset_name(raw) == clean


def test_bad_names_and_lods_are_refused(lods):
    with pytest.raises(InvalidInput):
        engine_asset_name("../..")
    assert len(engine_asset_name("x" * 500)) == 64
    with pytest.raises(InvalidInput, match="1 to 8"):
        export_to_unity("Rock", [])
    with pytest.raises(InvalidInput, match="finest to coarsest"):
        export_to_unreal("Rock", lods[::-1])


def test_zip_holds_exactly_the_bundle_and_is_deterministic(lods):
    bundle = export_to_unity("Rock", lods)
    data = bundle_zip(bundle)
    assert data == bundle_zip(export_to_unity("Rock", lods))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == sorted(bundle.files)
        assert {name: archive.read(name) for name in archive.namelist()} == bundle.files
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


# --- writing into a project -----------------------------------------------------------------


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_write_bundle_writes_the_tree(engine, lods, space):
    root, project, outside = space
    bundle = ENGINES[engine]("Rock", lods)
    written = write_bundle(bundle, project, [root])
    assert sorted(written) == sorted(project / path for path in bundle.files)
    assert tree(project) == sorted({p for path in bundle.files for p in _with_parents(path)})
    for path, data in bundle.files.items():
        assert (project / path).read_bytes() == data
    assert tree(outside) == []


def _with_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def test_relative_project_path_is_taken_inside_the_first_root(lods, space):
    root, project, _ = space
    write_bundle(export_to_godot("Rock", lods), "Game", [root])
    assert (project / "Rock" / "Rock.glb").is_file()


def test_second_export_replaces_files_of_our_manifest(lods, space):
    root, project, _ = space
    write_bundle(export_to_unity("Rock", lods), project, [root])
    glb = project / "Assets/Sweedle/Rock/Rock_LOD0.glb"
    meta = project / "Assets/Sweedle/Rock/Rock_LOD0.glb.meta"
    meta.write_text(meta.read_text() + "ScriptedImporter:\n  userData: unity\n")  # as Unity does
    finer = [trimesh.creation.icosphere(subdivisions=4), *lods[1:]]
    second = export_to_unity("Rock", finer)
    write_bundle(second, project, [root])
    assert glb.read_bytes() == second.files["Assets/Sweedle/Rock/Rock_LOD0.glb"]
    assert meta.read_bytes() == second.files["Assets/Sweedle/Rock/Rock_LOD0.glb.meta"]


def test_two_unity_models_share_the_sweedle_folder(lods, space):
    root, project, _ = space
    shared = project / "Assets/Sweedle.meta"
    shared.parent.mkdir(parents=True)
    shared.write_text("fileFormatVersion: 2\nguid: 0123456789abcdef0123456789abcdef\n")
    write_bundle(export_to_unity("Rock", lods), project, [root])
    write_bundle(export_to_unity("Tree", lods), project, [root])
    assert "0123456789abcdef" in shared.read_text()  # Unity's GUID for the folder is kept
    assert (project / "Assets/Sweedle/Tree/Tree_LOD2.glb").is_file()


def test_a_foreign_file_in_the_way_is_refused(lods, space):
    root, project, _ = space
    foreign = project / "Content/Sweedle/Rock/SM_Rock_LOD1.glb"
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"someone else's work")
    before = tree(project)
    with pytest.raises(FileConflict, match="SM_Rock_LOD1.glb"):
        write_bundle(export_to_unreal("Rock", lods), project, [root])
    assert tree(project) == before  # checked before anything was written
    assert foreign.read_bytes() == b"someone else's work"


def test_a_foreign_manifest_grants_nothing(lods, space):
    root, project, _ = space
    (project / "Rock").mkdir()
    (project / "Rock/manifest.json").write_text('{"files": [{"path": "Rock/Rock.glb"}]}')
    (project / "Rock/Rock.glb").write_bytes(b"not ours")
    with pytest.raises(FileConflict, match="Rock/Rock.glb"):
        write_bundle(export_to_godot("Rock", lods), project, [root])


def test_a_folder_in_the_way_is_refused(lods, space):
    root, project, _ = space
    (project / "Rock/Rock.glb").mkdir(parents=True)
    with pytest.raises(FileConflict, match="not a regular file"):
        write_bundle(export_to_godot("Rock", lods), project, [root])


@pytest.mark.parametrize(
    "project_path",
    ["Game/../../outside", "../outside", "{outside}", "{root}/Game/../../outside", "{tmp}"],
)
def test_unsafe_project_paths_are_refused(project_path, lods, space):
    root, _, outside = space
    path = project_path.format(outside=outside, root=root, tmp=root.parent)
    with pytest.raises(UnsafePath):
        write_bundle(export_to_godot("Rock", lods), path, [root])
    assert tree(outside) == []


def test_a_symlinked_project_folder_is_refused(lods, space):
    root, project, outside = space
    (root / "Linked").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="outside"):
        write_bundle(export_to_godot("Rock", lods), root / "Linked", [root])
    # A link that stays inside the root is not followed either.
    (root / "Alias").symlink_to(project, target_is_directory=True)
    with pytest.raises(UnsafePath, match="symbolic link"):
        write_bundle(export_to_godot("Rock", lods), root / "Alias", [root])
    assert tree(outside) == []
    assert tree(project) == []


def test_a_link_planted_inside_the_project_is_not_followed(lods, space):
    root, project, outside = space
    (project / "Assets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="'Assets'.*symbolic link"):
        write_bundle(export_to_unity("Rock", lods), project, [root])
    assert tree(outside) == []


def test_a_link_planted_at_a_file_name_is_not_followed(lods, space):
    root, project, outside = space
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    (project / "Rock").mkdir()
    (project / "Rock/Rock.glb").symlink_to(victim)
    with pytest.raises(UnsafePath, match="Rock/Rock.glb"):
        write_bundle(export_to_godot("Rock", lods), project, [root])
    assert victim.read_text() == "keep me"
    assert tree(outside) == ["victim.txt"]


def test_missing_project_and_missing_roots_are_refused(lods, space):
    root, project, _ = space
    with pytest.raises(InvalidInput, match="does not exist"):
        write_bundle(export_to_godot("Rock", lods), project / "Nope", [root])
    with pytest.raises(UnsafePath, match="no allowed root"):
        write_bundle(export_to_godot("Rock", lods), project, [])


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../x", "a/../../x", "a\\..\\x", "a\0b", "C:/x", "a//b", "./a", ""]
)
def test_unsafe_bundle_paths_are_refused(path, space):
    root, project, outside = space
    with pytest.raises(UnsafePath):
        checked_relative_path(path)
    bundle = Bundle("x", "godot", "x", {"x/ok.txt": b"ok", path: b"evil"}, {})
    with pytest.raises(UnsafePath):
        write_bundle(bundle, project, [root])
    assert tree(project) == [] and tree(outside) == []


def test_a_file_where_a_folder_must_be_is_refused(space):
    root, project, _ = space
    bundle = Bundle("x", "godot", "x", {"x/a": b"file", "x/a/b": b"inside"}, {})
    with pytest.raises(InvalidInput, match="both a file and a folder"):
        write_bundle(bundle, project, [root])
    assert tree(project) == []


def test_errors_survive_pickling():
    error = pickle.loads(pickle.dumps(UnsafePath("the project path '..' contains '..'")))
    assert isinstance(error, UnsafePath) and error.code == "unsafe_path"
    assert pickle.loads(pickle.dumps(FileConflict("x"))).code == "file_conflict"


def test_writes_do_not_follow_links_even_for_the_root_subfolders(lods, space):
    # A root configured through a link is fine (it is resolved once, by the admin's choice).
    root, project, _ = space
    alias_root = root.parent / "root-alias"
    alias_root.symlink_to(root, target_is_directory=True)
    write_bundle(export_to_godot("Rock", lods), alias_root / "Game", [alias_root])
    assert (project / "Rock/Rock.glb").is_file()
    assert os.path.islink(alias_root)
