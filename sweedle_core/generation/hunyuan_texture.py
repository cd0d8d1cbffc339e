"""Hunyuan3D's texture model as the paint path's painter (`paint`), where it can run.

Hunyuan3D's texture pipeline (``hy3dgen.texgen.Hunyuan3DPaintPipeline``) runs only on CUDA: its
device is fixed to ``cuda`` and it needs ``custom_rasterizer``, compiled from the Hunyuan3D
sources with nvcc. It paints on the GPU replica over the UV layout the CPU pool made; the pool
then fills what no view saw. Its UV texture is kept as it painted it (and, where a pipeline
returns a PBR material, as Hunyuan3D-2.1's paint makes it, its metallic-roughness and normal
maps). Where it is missing, or fails, the photo is baked into a UV texture instead
(`photo_texture`) and the asset records which of the two happened: a job never fails only
because texturing is unavailable.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.devices import free_cuda_cache
from sweedle_core.export.texture_maps import texture_maps_of, textured_visual
from sweedle_core.generation.hunyuan_weights import local_root
from sweedle_core.generation.paint import Painting
from sweedle_core.generation.protocol import ProgressCallback

log = logging.getLogger(__name__)

PAINT_SUBFOLDERS = ("hunyuan3d-paint-v2-0", "hunyuan3d-delight-v2-0")
PAINT_MARKER = "model_index.json"  # each subfolder is a diffusers pipeline


class Texturer:
    """Hunyuan3D's texture model as a `paint.Painter`, where it can run.

    ``keep_loaded=False`` (low-VRAM mode) loads the paint pipeline for each textured job and
    frees it afterwards, so its ~10 GB of weights are not resident while the shape model works.
    """

    name = "hunyuan3d-paint"

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

    def paint(
        self, mesh: trimesh.Trimesh, image: Image.Image, on_progress: ProgressCallback
    ) -> Painting:
        """The texture model's painting of ``mesh``, whose UV layout the CPU pool made.

        hy3dgen's pipeline is driven step by step (`_paint_views`): its own ``__call__`` would
        unwrap the mesh again and inpaint, both CPU work, on this GPU replica. A pipeline
        without those steps (another version) is called whole, and its textured mesh, PBR
        maps included, is kept as it painted it.
        """
        pipeline = self._paint if self._paint is not None else self._load()
        try:
            if all(hasattr(pipeline, step) for step in _STEPS):
                return _paint_views(pipeline, mesh, image, on_progress)
            on_progress(0.1, "painting the texture")
            textured = pipeline(mesh, image=image)
        finally:
            if not self.keep_loaded:
                del pipeline
                _free_cuda()
        maps = texture_maps_of(textured)
        if maps is None:
            raise RuntimeError("the texture model returned a mesh without a UV texture")
        painted = trimesh.Trimesh(vertices=textured.vertices, faces=textured.faces, process=False)
        painted.visual = textured_visual(maps)
        return Painting(mesh=painted)

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


# What Sweedle calls of hy3dgen 2.0.2's paint pipeline (texgen/pipelines.py) to paint step by step.
_STEPS = (
    "models",
    "config",
    "render",
    "recenter_image",
    "render_normal_multiview",
    "render_position_multiview",
    "bake_from_multiview",
)


def _paint_views(
    pipeline: Any, mesh: trimesh.Trimesh, image: Image.Image, on_progress: ProgressCallback
) -> Painting:
    """hy3dgen's painting of ``mesh`` over its own UVs: the photo's lighting removed, normal
    and position renders of the configured views, the multi-view model's painting of them,
    and their back-projection into the texture, all on the GPU; the texels no view reached
    are left to the CPU pool (`paint.finish_painted`)."""
    import torch

    config = pipeline.config
    elevations, azimuths = config.candidate_camera_elevs, config.candidate_camera_azims
    with torch.inference_mode():
        on_progress(0.05, "removing the photo's lighting")
        prompt = pipeline.models["delight_model"](pipeline.recenter_image(image))
        pipeline.render.load_mesh(mesh)
        on_progress(0.15, f"rendering {len(azimuths)} views of the mesh")
        normals = pipeline.render_normal_multiview(elevations, azimuths, use_abs_coor=True)
        positions = pipeline.render_position_multiview(elevations, azimuths)
        on_progress(0.25, f"painting {len(azimuths)} views")
        cameras = [view_index(e, a) for e, a in zip(elevations, azimuths, strict=True)]
        views = pipeline.models["multiview_model"](prompt, normals + positions, cameras)
        views = [view.resize((config.render_size, config.render_size)) for view in views]
        on_progress(0.85, "baking the views into the texture")
        texture, seen = pipeline.bake_from_multiview(
            views, elevations, azimuths, config.candidate_view_weights, method=config.merge_method
        )
        values = np.asarray(texture.cpu().numpy(), dtype=np.float32)
        texels = np.clip(np.rint(values[..., :3] * 255.0), 0, 255).astype(np.uint8)
        mask = np.asarray(seen.cpu().numpy()).reshape(texels.shape[:2]).astype(bool)
    return Painting(texture=texels, seen=mask)


def view_index(elevation: int, azimuth: int) -> int:
    """The multi-view paint model's index of the camera at ``elevation`` / ``azimuth``
    degrees: its embedding table holds 12 azimuths (30 degrees apart, starting at -90) at
    each of the elevations -20, 0 and 20, then 4 each looking up and down (90 degrees apart)."""
    step = ((azimuth // 30) + 9) % 12
    if elevation in (-90, 90):
        return step // 3 + (36 if elevation == -90 else 40)
    return step + {-20: 0, 0: 12, 20: 24}[elevation]
