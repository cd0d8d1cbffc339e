"""Colour for Hunyuan3D meshes: the texture model where it can run, the photo where it cannot.

Hunyuan3D's texture pipeline (``hy3dgen.texgen.Hunyuan3DPaintPipeline``) runs only on CUDA: its
device is fixed to ``cuda`` and it needs ``custom_rasterizer``, compiled from the Hunyuan3D
sources with nvcc. Its UV texture is kept as it painted it (and, where the painted mesh's
material is PBR, as Hunyuan3D-2.1's paint makes it, its metallic-roughness and normal maps).
Where it is missing, or fails, the photo is baked into a UV texture instead (`photo_texture`)
and the asset records which of the two happened: a job never fails only because texturing is
unavailable.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import trimesh
from PIL import Image

from sweedle_core.devices import free_cuda_cache
from sweedle_core.export.texture_maps import texture_maps_of, textured_visual
from sweedle_core.generation.hunyuan_weights import local_root
from sweedle_core.generation.photo_texture import texture_from_photo
from sweedle_core.generation.protocol import TEXTURE_KEY, TEXTURE_PAINT
from sweedle_core.params import DEFAULT_TEXTURE_SIZE

log = logging.getLogger(__name__)

PAINT_SUBFOLDERS = ("hunyuan3d-paint-v2-0", "hunyuan3d-delight-v2-0")
PAINT_MARKER = "model_index.json"  # each subfolder is a diffusers pipeline


class Texturer:
    """Colours meshes; owns the paint pipeline when there is one.

    ``keep_loaded=False`` (low-VRAM mode) loads the paint pipeline for each textured job and
    frees it afterwards, so its ~10 GB of weights are not resident while the shape model works.
    """

    def __init__(
        self, model_path: str, models_base: str | None, device: str, keep_loaded: bool = True
    ) -> None:
        self.model_path = model_path
        self.models_base = models_base
        self.keep_loaded = keep_loaded
        self._paint: Any = None
        self._paint_class, self.unavailable = _paint_class(device)
        self.folder = paint_folder(model_path, models_base)
        if self._paint_class is not None:
            folder = local_root(model_path, models_base)
            if self.folder is None:
                self._paint_class = None
                self.unavailable = (
                    f"texture weights ({', '.join(PAINT_SUBFOLDERS)}) are neither in {folder} "
                    f"nor in the Hugging Face cache; fetch them with: sweedle models pull "
                    f"hunyuan-texture"
                )
            elif keep_loaded:
                self._paint = self._load()

    @property
    def can_paint(self) -> bool:
        return self._paint_class is not None

    def colour(
        self,
        mesh: trimesh.Trimesh,
        image: Image.Image,
        texture: bool,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
    ) -> trimesh.Trimesh:
        """``mesh`` with a UV texture and ``metadata[TEXTURE_KEY]`` saying where it came from.

        With ``texture`` and a usable paint pipeline, the texture model paints it and its
        texture maps are kept as they are; otherwise, and whenever painting fails, the photo is
        baked into a ``texture_size`` px texture (`texture_from_photo`, vertex colours only
        where unwrapping fails).
        """
        if texture and self.can_paint:
            try:
                painted = self._painted(mesh, image)
            except Exception as exc:  # the texture model failing must not fail the job
                log.warning("texturing failed, colouring from the photo instead: %s", exc)
            else:
                painted.metadata.update(mesh.metadata)
                painted.metadata[TEXTURE_KEY] = TEXTURE_PAINT
                return painted
        return texture_from_photo(mesh, image, texture_size)

    def _painted(self, mesh: trimesh.Trimesh, image: Image.Image) -> trimesh.Trimesh:
        """The paint model's mesh with its UVs and maps, as they came (no resampling)."""
        paint = self._paint if self._paint is not None else self._load()
        try:
            textured = paint(mesh, image=image)
        finally:
            if not self.keep_loaded:
                del paint
                _free_cuda()
        maps = texture_maps_of(textured)
        if maps is None:
            raise RuntimeError("the texture model returned a mesh without a UV texture")
        painted = trimesh.Trimesh(vertices=textured.vertices, faces=textured.faces, process=False)
        painted.visual = textured_visual(maps)
        return painted

    def _load(self) -> Any:
        # An existing absolute folder makes hy3dgen use it as is, with no hub look-up.
        return self._paint_class.from_pretrained(str(self.folder))


def paint_folder(model_path: str, models_base: str | None) -> Path | None:
    """The folder holding the paint and delight models: ``HY3DGEN_MODELS/<model_path>`` as
    upstream looks first, else the Hugging Face cache's snapshot; None when neither has them."""
    from sweedle_core.models.hub import cached_snapshot

    cached = cached_snapshot(model_path, f"{PAINT_SUBFOLDERS[0]}/{PAINT_MARKER}")
    for folder in (local_root(model_path, models_base), cached):
        if folder is not None and paint_ready(folder):
            return folder.resolve()
    return None


def paint_ready(folder: Path) -> bool:
    """Whether ``folder`` holds both texture pipelines (each a diffusers folder)."""
    return all((folder / name / PAINT_MARKER).is_file() for name in PAINT_SUBFOLDERS)


def _paint_class(device: str) -> tuple[Any, str]:
    """hy3dgen's paint pipeline class, or None and why it cannot be used here."""
    if not device.startswith("cuda"):
        return None, f"the texture model needs a CUDA GPU; this replica runs on {device}"
    try:
        from hy3dgen.texgen import Hunyuan3DPaintPipeline
    except Exception as exc:  # ImportError, or a CUDA extension that fails to load
        return None, (
            f"hy3dgen's texture pipeline is not importable ({type(exc).__name__}: {exc}); it "
            f"needs custom_rasterizer and differentiable_renderer built from the Hunyuan3D-2 "
            f"sources (hy3dgen/texgen) with nvcc"
        )
    return Hunyuan3DPaintPipeline, ""


def _free_cuda() -> None:
    try:
        import torch
    except ImportError:
        gc.collect()
        return
    free_cuda_cache(torch)
