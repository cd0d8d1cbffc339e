"""A textured asset as the API delivers it: each format's download carries the texture file,
the Draco GLB and every LOD keep UVs, the thumbnail shows the photo's colours."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from fastapi.responses import FileResponse
from PIL import Image

from deployments.http.files import send_stored
from sweedle_core.config import Settings
from sweedle_core.export.asset_exports import AssetExports
from sweedle_core.export.mesh_io import raw_mesh_bytes
from sweedle_core.export.pipeline import ExportOptions
from sweedle_core.export.texture_maps import BASE_COLOR, texture_maps_of
from sweedle_core.generation.silhouette import SilhouetteGenerator
from sweedle_core.params import GenerationParams
from sweedle_core.storage import LocalStorage
from sweedle_core.storage.layout import raw_mesh_key
from tests.generation import make_mesh
from tests.glb_files import decode_draco_glb
from tests.textures import glb_maps, is_flat, reads_red_then_blue, split_photo

ASSET = "textured1"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> AssetExports:
    storage = LocalStorage(tmp_path_factory.mktemp("store"))
    params = GenerationParams(octree_resolution=48)
    mesh = make_mesh(
        SilhouetteGenerator(), split_photo(), params, lambda f, m: None, texture_size=128
    )
    storage.put(raw_mesh_key(ASSET), raw_mesh_bytes(mesh))
    exports = AssetExports(storage)
    exports.chain(ASSET, raw_mesh_key(ASSET), ExportOptions(), lambda f, m: None)
    return exports


def sent(exports: AssetExports, stored) -> bytes:  # type: ignore[no-untyped-def]
    services = SimpleNamespace(storage=exports.storage, settings=Settings())
    response = asyncio.run(send_stored(services, stored))  # type: ignore[arg-type]
    assert isinstance(response, FileResponse)
    return Path(response.path).read_bytes()


@pytest.mark.parametrize(
    ("fmt", "texture_file"), [("gltf", "model.png"), ("obj", "model.png"), ("usdz", "0/model.png")]
)
def test_each_format_download_carries_the_texture(
    exports: AssetExports, fmt: str, texture_file: str
) -> None:
    stored = exports.download(ASSET, "Split Disc", fmt, lod=0, draco=False, lod_count=4)

    archive = zipfile.ZipFile(io.BytesIO(sent(exports, stored)))
    texture = Image.open(io.BytesIO(archive.read(texture_file)))
    assert not is_flat(texture)
    assert stored.filename.startswith("Split Disc")


def test_the_coarsest_lod_and_its_draco_glb_keep_the_texture(exports: AssetExports) -> None:
    plain = exports.download(ASSET, "d", "glb", lod=3, draco=False, lod_count=4)
    draco = exports.download(ASSET, "d", "glb", lod=3, draco=True, lod_count=4)

    assert not is_flat(glb_maps(sent(exports, plain))[BASE_COLOR])
    decoded = decode_draco_glb(sent(exports, draco))
    textures = texture_maps_of(decoded)
    assert textures is not None and len(textures.uv) == len(decoded.vertices)


def test_the_thumbnail_shows_the_photos_colours(exports: AssetExports) -> None:
    stored = exports.thumbnail(ASSET, 96)

    rgba = np.asarray(Image.open(io.BytesIO(sent(exports, stored))).convert("RGBA"))
    assert reads_red_then_blue(rgba)


def test_a_thumbnail_is_rendered_once_per_size_and_reused(
    exports: AssetExports, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking again costs no render: API callers cannot make the export pool re-render a
    thumbnail in a loop."""
    from sweedle_core.export import asset_exports

    renders: list[int] = []
    real = asset_exports.generate_thumbnail

    def counting(mesh, size):  # type: ignore[no-untyped-def]
        renders.append(size)
        return real(mesh, size)

    monkeypatch.setattr(asset_exports, "generate_thumbnail", counting)
    first = sent(exports, exports.thumbnail(ASSET, 128))
    again = sent(exports, exports.thumbnail(ASSET, 128))

    assert renders == [128] and first == again
