"""The text files engine bundles carry: the Unity editor script, the Unreal import script, the
Godot import settings and each bundle's README, as ``string.Template``s filled in by
`engine_exporter`. None of them has been run inside an engine by a test here."""

from __future__ import annotations

from string import Template

UNITY_SCRIPT = Template("""\
// Written by Sweedle. Builds ${name}_LODGroup.prefab, a LODGroup over the LOD GLBs of ${name}.
// The GLBs are imported by glTFast (package com.unity.cloud.gltfast), which must be installed.
using System.IO;
using UnityEditor;
using UnityEngine;

namespace Sweedle.Generated
{
    public static class SweedleLODGroupBuilder_${ident}
    {
        public const string Folder = "Assets/Sweedle/${name}";
        public const string PrefabPath = Folder + "/${name}_LODGroup.prefab";
        public static readonly string[] LodFiles = { ${lod_files} };
        // Screen-relative height below which each level hands over to the next; the last culls.
        static readonly float[] TransitionHeights = { ${heights} };

        [MenuItem("Tools/Sweedle/Build LOD Group/${name}")]
        public static void Build()
        {
            var root = new GameObject("${name}");
            try
            {
                var lods = new LOD[LodFiles.Length];
                for (var level = 0; level < LodFiles.Length; level++)
                {
                    var path = Folder + "/" + LodFiles[level];
                    var model = AssetDatabase.LoadAssetAtPath<GameObject>(path);
                    if (model == null)
                    {
                        throw new FileNotFoundException(
                            "Sweedle: " + path + " is not imported as a model; install glTFast " +
                            "(com.unity.cloud.gltfast) and reimport the folder.", path);
                    }
                    var instance = (GameObject)PrefabUtility.InstantiatePrefab(model, root.transform);
                    instance.name = "${name}_LOD" + level;
                    lods[level] = new LOD(
                        TransitionHeights[level], instance.GetComponentsInChildren<Renderer>());
                }
                var group = root.AddComponent<LODGroup>();
                group.SetLODs(lods);
                group.RecalculateBounds();
                PrefabUtility.SaveAsPrefabAsset(root, PrefabPath);
                Debug.Log("Sweedle: saved " + PrefabPath);
            }
            finally
            {
                Object.DestroyImmediate(root);
            }
        }

        public static bool ModelsImported()
        {
            foreach (var file in LodFiles)
            {
                if (AssetDatabase.LoadAssetAtPath<GameObject>(Folder + "/" + file) == null)
                {
                    return false;
                }
            }
            return true;
        }
    }

    // Builds the prefab once, after the GLBs are first imported; the menu item rebuilds it.
    class SweedleLODGroupPostprocessor_${ident} : AssetPostprocessor
    {
        static void OnPostprocessAllAssets(
            string[] imported, string[] deleted, string[] moved, string[] movedFrom)
        {
            foreach (var path in imported)
            {
                if (path.StartsWith(SweedleLODGroupBuilder_${ident}.Folder + "/") && path.EndsWith(".glb"))
                {
                    EditorApplication.delayCall -= BuildOnce;
                    EditorApplication.delayCall += BuildOnce;
                    return;
                }
            }
        }

        static void BuildOnce()
        {
            var prefab = SweedleLODGroupBuilder_${ident}.PrefabPath;
            if (AssetDatabase.LoadAssetAtPath<GameObject>(prefab) == null
                && SweedleLODGroupBuilder_${ident}.ModelsImported())
            {
                SweedleLODGroupBuilder_${ident}.Build();
            }
        }
    }
}
""")

UNITY_README = Template("""\
# ${name} for Unity (from Sweedle)

1. Add the glTFast package first: Window > Package Manager > + > Add package by name >
   `com.unity.cloud.gltfast`. Without it Unity does not import `.glb` files.
2. Copy the `Assets` folder of this bundle into your project (the `.meta` files keep the GUIDs
   stable, so a later export of the same model keeps every reference).
3. When the GLBs are imported, `Editor/SweedleLODGroupBuilder_${name}.cs` builds
   `${name}_LODGroup.prefab` (a LODGroup over `${name}_LOD0.glb`...). To rebuild it, use
   Tools > Sweedle > Build LOD Group > ${name}.

Units are meters, +Y is up. `manifest.json` lists every file with its SHA-256.
""")

UNREAL_SCRIPT = Template('''\
"""Import ${name} and its LODs into /Game/Sweedle/${name} (written by Sweedle).

Run it in the Unreal Editor (Python Editor Script Plugin enabled): Tools > Execute Python Script,
or `py "<project>/Content/Sweedle/${name}/import_${name}.py"` in the Output Log.
"""

import os

import unreal

NAME = "${name}"
DESTINATION = "/Game/Sweedle/${name}"
LOD_FILES = ${lod_files}
try:
    HERE = os.path.dirname(os.path.abspath(__file__))
except NameError:  # run without a file name: the bundle sits in the project's Content folder
    HERE = os.path.join(unreal.Paths.project_content_dir(), "Sweedle", NAME)


def import_glb(filename, destination, asset_name):
    """Import one GLB (through Interchange's glTF importer) and return its static mesh."""
    task = unreal.AssetImportTask()
    task.set_editor_property("filename", os.path.join(HERE, filename))
    task.set_editor_property("destination_path", destination)
    task.set_editor_property("destination_name", asset_name)
    task.set_editor_property("automated", True)
    task.set_editor_property("replace_existing", True)
    task.set_editor_property("save", True)
    unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks([task])
    for path in task.get_editor_property("imported_object_paths"):
        asset = unreal.EditorAssetLibrary.load_asset(path)
        if isinstance(asset, unreal.StaticMesh):
            return asset
    raise RuntimeError("Sweedle: no static mesh was imported from " + filename)


def static_mesh_tools():
    if hasattr(unreal, "StaticMeshEditorSubsystem"):  # UE 5; the library is deprecated there
        return unreal.get_editor_subsystem(unreal.StaticMeshEditorSubsystem)
    return unreal.EditorStaticMeshLibrary


def main():
    mesh = import_glb(LOD_FILES[0], DESTINATION, "SM_" + NAME)
    tools = static_mesh_tools()
    # Each coarser level goes to its own folder first: every GLB names its mesh "model".
    for level, filename in enumerate(LOD_FILES[1:], start=1):
        folder = DESTINATION + "/LODSources/LOD" + str(level)
        source = import_glb(filename, folder, "SM_" + NAME + "_LOD" + str(level))
        tools.set_lod_from_static_mesh(mesh, level, source, 0, True)
    unreal.EditorAssetLibrary.save_loaded_asset(mesh)
    unreal.log("Sweedle: %s has %d LODs" % (mesh.get_path_name(), tools.get_lod_count(mesh)))


main()
''')

UNREAL_README = Template("""\
# ${name} for Unreal Engine 5 (from Sweedle)

1. Enable the Python Editor Script Plugin (Edit > Plugins), and restart the Editor.
2. Copy the `Content` folder of this bundle into your project.
3. Run `Content/Sweedle/${name}/import_${name}.py`: Tools > Execute Python Script, or in the
   Output Log's Python console `py "<project>/Content/Sweedle/${name}/import_${name}.py"`.
   It imports `SM_${name}_LOD0.glb` into /Game/Sweedle/${name} through the Interchange glTF
   importer and adds the other GLBs as LODs 1, 2... of that static mesh. The coarser levels are
   imported under /Game/Sweedle/${name}/LODSources first; they can be deleted afterwards.

Units are meters (Unreal converts to centimeters on import), +Y is up in the GLBs.
`manifest.json` lists every file with its SHA-256.
""")

GODOT_IMPORT = Template("""\
[remap]

importer="scene"
importer_version=1
type="PackedScene"
uid="${uid}"

[params]

nodes/root_type=""
nodes/root_name="${name}"
nodes/apply_root_scale=true
nodes/root_scale=1.0
meshes/ensure_tangents=true
meshes/generate_lods=true
meshes/create_shadow_meshes=true
meshes/light_baking=1
meshes/lightmap_texel_size=0.2
meshes/force_disable_compression=false
skins/use_named_skins=true
animation/import=false
import_script/path=""
_subresources={}
""")

GODOT_README = Template("""\
# ${name} for Godot 4 (from Sweedle)

Copy the `${name}` folder into your project. Godot imports `${name}.glb` as a scene and, as
`${name}.glb.import` asks, builds its own LODs (so only LOD 0 is here, and it is not Draco
compressed: Godot does not read Draco). Units are meters, +Y is up.
`manifest.json` lists every file with its SHA-256.
""")
