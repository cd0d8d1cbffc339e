"""The USD material of an exported mesh: a `UsdPreviewSurface` reading the mesh's texture maps
(`UsdUVTexture` through a ``st`` primvar reader) or its vertex colours (``displayColor``).

The maps are referenced by relative file names (``{stem}.png``, ``{stem}_metallic_roughness.png``,
``{stem}_normal.png``, as glTF's folder has them): the caller writes them beside the layer, and
``UsdUtils.CreateNewUsdzPackage`` packs every file the layer references. glTF's
metallic-roughness map keeps roughness in green and metallic in blue; its normal map is
tangent-space in 0..1, which UsdPreviewSurface reads after scale 2 and bias -1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sweedle_core.export.glb import MAP_SUFFIXES
from sweedle_core.export.texture_maps import (
    BASE_COLOR,
    METALLIC_ROUGHNESS,
    NORMAL,
    TextureMaps,
)

_MATERIAL = "/model/material"
_ROUGHNESS, _METALLIC = 0.8, 0.0  # the glTF writer's matte defaults


def bind_material(
    stage: Any, geom: Any, stem: str, textures: TextureMaps | None, colors: np.ndarray | None
) -> None:
    """Define ``/model/material`` on ``stage`` and bind it to ``geom`` (a `UsdGeom.Mesh`):
    ``textures``' maps through UVs, else ``colors (n, 4) uint8`` per vertex, else light grey."""
    from pxr import Sdf, UsdShade

    material = UsdShade.Material.Define(stage, _MATERIAL)
    shader = UsdShade.Shader.Define(stage, f"{_MATERIAL}/surface")
    shader.CreateIdAttr("UsdPreviewSurface")
    inputs = {
        name: shader.CreateInput(name, kind)
        for name, kind in (
            ("diffuseColor", Sdf.ValueTypeNames.Color3f),
            ("roughness", Sdf.ValueTypeNames.Float),
            ("metallic", Sdf.ValueTypeNames.Float),
            ("normal", Sdf.ValueTypeNames.Normal3f),
        )
    }
    inputs["roughness"].Set(_ROUGHNESS)
    inputs["metallic"].Set(_METALLIC)
    if textures is not None:
        _textured(stage, geom, stem, textures, inputs)
    elif colors is not None:
        _vertex_colored(stage, geom, colors, inputs["diffuseColor"])
    else:
        inputs["diffuseColor"].Set((0.8, 0.8, 0.8))
    surface = shader.CreateOutput("surface", Sdf.ValueTypeNames.Token)
    material.CreateSurfaceOutput().ConnectToSource(surface)
    UsdShade.MaterialBindingAPI.Apply(geom.GetPrim()).Bind(material)


def _textured(stage: Any, geom: Any, stem: str, textures: TextureMaps, inputs: dict) -> None:
    """UVs as the ``st`` primvar (per vertex, origin bottom-left as trimesh keeps them) and one
    `UsdUVTexture` per map wired into the surface's inputs."""
    from pxr import Sdf, UsdGeom, UsdShade, Vt

    st = UsdGeom.PrimvarsAPI(geom).CreatePrimvar(
        "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex
    )
    st.Set(Vt.Vec2fArray.FromNumpy(np.ascontiguousarray(textures.uv, dtype=np.float32)))
    reader = UsdShade.Shader.Define(stage, f"{_MATERIAL}/st_reader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
    coordinates = reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)

    def texture(name: str, color_space: str) -> Any:
        node = UsdShade.Shader.Define(stage, f"{_MATERIAL}/{name}")
        node.CreateIdAttr("UsdUVTexture")
        file = f"{stem}{MAP_SUFFIXES[name]}.png"
        node.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(file)
        node.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set(color_space)
        node.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(coordinates)
        for wrap in ("wrapS", "wrapT"):
            node.CreateInput(wrap, Sdf.ValueTypeNames.Token).Set("repeat")
        return node

    base = texture(BASE_COLOR, "sRGB")
    rgb = base.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    inputs["diffuseColor"].ConnectToSource(rgb)
    if METALLIC_ROUGHNESS in textures.maps:
        node = texture(METALLIC_ROUGHNESS, "raw")
        inputs["roughness"].ConnectToSource(node.CreateOutput("g", Sdf.ValueTypeNames.Float))
        inputs["metallic"].ConnectToSource(node.CreateOutput("b", Sdf.ValueTypeNames.Float))
    if NORMAL in textures.maps:
        node = texture(NORMAL, "raw")
        node.CreateInput("scale", Sdf.ValueTypeNames.Float4).Set((2.0, 2.0, 2.0, 1.0))
        node.CreateInput("bias", Sdf.ValueTypeNames.Float4).Set((-1.0, -1.0, -1.0, 0.0))
        inputs["normal"].ConnectToSource(node.CreateOutput("rgb", Sdf.ValueTypeNames.Float3))


def _vertex_colored(stage: Any, geom: Any, colors: np.ndarray, diffuse: Any) -> None:
    """``colors (n, 4) uint8`` as the ``displayColor`` primvar, read into the diffuse colour."""
    from pxr import Sdf, UsdGeom, UsdShade, Vt

    rgb = np.ascontiguousarray(colors[:, :3], dtype=np.float32) / np.float32(255.0)
    primvar = UsdGeom.PrimvarsAPI(geom).CreatePrimvar(
        "displayColor", Sdf.ValueTypeNames.Color3fArray, UsdGeom.Tokens.vertex
    )
    primvar.Set(Vt.Vec3fArray.FromNumpy(rgb))
    reader = UsdShade.Shader.Define(stage, f"{_MATERIAL}/display_color")
    reader.CreateIdAttr("UsdPrimvarReader_float3")
    reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("displayColor")
    diffuse.ConnectToSource(reader.CreateOutput("result", Sdf.ValueTypeNames.Float3))
