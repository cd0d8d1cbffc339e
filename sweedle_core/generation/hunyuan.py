"""The ``hunyuan3d`` backend: Tencent's Hunyuan3D shape model behind the `Generator` protocol.

The 2.0 family (``tencent/Hunyuan3D-2``, ``-2mini``, their turbo subfolders) runs on ``hy3dgen``
2.0.2 from PyPI. The 2.1 weights name ``hy3dshape`` classes, a package installed from the
Hunyuan3D-2.1 repository. Both expose the same pipeline and post-processor API, so one class
drives either. Weights are found by `hunyuan_weights.locate_weights`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import trimesh
from PIL import Image

from sweedle_core.devices import free_cuda_cache, resolve_device
from sweedle_core.errors import GenerationFailed, ModelUnavailable
from sweedle_core.export.mesh_io import outward_winding
from sweedle_core.generation.hunyuan_texture import Texturer
from sweedle_core.generation.hunyuan_weights import (
    HUNYUAN_INSTALL,
    locate_weights,
    needs_hy3dshape,
)
from sweedle_core.generation.mesh_cleanup import clean_mesh
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.hy3dshape_setup import missing_message
from sweedle_core.params import GenerationParams

_NO_SURFACE = "the model found no surface for this image and seed; try another seed"

# Progress: image encoding up to 0.05, denoising 0.05-0.85, surface extraction up to 0.9,
# clean-up and face reduction up to 0.95, colour up to 1.
_DENOISE_START, _DENOISE_SPAN = 0.05, 0.8


@dataclass(frozen=True)
class _Library:
    """torch and the pipeline class of the Hunyuan3D package these weights need."""

    torch: Any
    pipeline: Any


class Hunyuan3DGenerator:
    """Hunyuan3D shape generation; the pipeline is loaded once, in ``__init__`` (warm).

    ``device``: "auto" picks CUDA when torch sees a GPU, else the CPU. Weights run in fp16 on
    CUDA and fp32 on the CPU (fp16 on the CPU is slow or unsupported for many operations).

    ``low_vram`` makes these savings, each real in hy3dgen 2.0.2:

    - FlashVDM surface decoding (``enable_flashvdm``): it decodes only the voxels near the
      surface instead of the whole octree grid, the largest activation peak of a generation;
      we always generate one image at a time, the batch size FlashVDM supports;
    - half precision, on CUDA (the default there already; the 2.0 shape model needs ~6 GB);
    - the texture model is loaded for each textured job and freed afterwards, instead of
      staying resident beside the shape model;
    - ``torch.cuda.empty_cache()`` after every generation, which hands the allocator's cached
      blocks back to the driver between jobs (it lowers the idle footprint, not the peak).

    It does not offload parts of the model to the CPU: hy3dgen's ``enable_model_cpu_offload``
    raises ``AttributeError`` in 2.0.2.
    """

    name = "hunyuan3d"

    def __init__(
        self,
        model_path: str,
        subfolder: str,
        device: str = "auto",
        low_vram: bool = False,
        models_base: str | None = None,
        texture_model_path: str = "tencent/Hunyuan3D-2",
    ) -> None:
        self._lib = _import_library(model_path, subfolder)
        torch = self._lib.torch
        self.device = resolve_device(torch, device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.low_vram = low_vram

        # On disk only: `sweedle models pull` fetches the weights (one format, with progress)
        # before the app starts; a replica never downloads gigabytes behind a health check.
        weights = locate_weights(model_path, subfolder, models_base)
        self.weights_file = weights.file
        # An absolute root makes the library's own resolver use it as is: no second hub look-up.
        self._pipeline = self._lib.pipeline.from_pretrained(
            str(weights.root),
            subfolder=subfolder,
            device=self.device,
            dtype=self.dtype,
            use_safetensors=weights.use_safetensors,
            variant=weights.variant,
        )
        self.flashvdm = low_vram and hasattr(self._pipeline, "enable_flashvdm")
        if self.flashvdm:
            # replace_vae=False: the turbo VAE it would swap in is another download; FlashVDM's
            # decoder works on the VAE that is loaded.
            self._pipeline.enable_flashvdm(replace_vae=False)
        self.texturer = Texturer(
            texture_model_path, models_base, self.device, keep_loaded=not low_vram
        )
        # The pipeline keeps per-call state (the scheduler's timesteps): one generation at a time.
        self._lock = threading.Lock()

    def generate(
        self, image: Image.Image, params: GenerationParams, on_progress: ProgressCallback
    ) -> trimesh.Trimesh:
        """One mesh for one RGBA image (background already transparent).

        Raises `GenerationFailed` when marching cubes finds no surface, and lets `JobCancelled`
        from ``on_progress`` propagate, which stops the denoising loop at the next step.
        """
        steps = params.inference_steps

        def on_step(step: int, _timestep: Any, _latents: Any) -> None:
            done = min(step + 1, steps)
            fraction = _DENOISE_START + _DENOISE_SPAN * done / steps
            on_progress(fraction, f"denoising step {done}/{steps}")
            if done == steps:  # the pipeline decodes the surface next, without a callback
                on_progress(fraction, "extracting the surface")

        on_progress(0.0, "encoding the image")
        if image.mode != "RGBA":
            image = image.convert("RGBA")
        with self._lock:
            try:
                meshes = self._pipeline(
                    image=image,
                    num_inference_steps=steps,
                    guidance_scale=params.guidance_scale,
                    octree_resolution=params.octree_resolution,
                    num_chunks=params.num_chunks,
                    generator=self._lib.torch.Generator(self.device).manual_seed(params.seed),
                    output_type="trimesh",
                    callback=on_step,
                    callback_steps=1,
                    enable_pbar=False,
                )
            finally:
                self._free_cache()
        mesh = meshes[0] if meshes else None
        if mesh is None or len(mesh.faces) == 0:
            raise GenerationFailed(_NO_SURFACE)

        on_progress(0.9, "removing floaters and degenerate faces")
        mesh = self.clean(mesh, params.max_faces)
        painting = params.texture and self.texturer.can_paint
        on_progress(0.95, "painting the texture" if painting else "colouring from the photo")
        mesh = self.texturer.colour(mesh, image, params.texture)
        self._free_cache()
        on_progress(1.0, "done")
        return mesh

    def clean(self, mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
        """Upstream's post-processing (floaters, degenerate faces, reduction to ``max_faces``),
        then `tidy_mesh`. Raises `GenerationFailed` if nothing is left."""
        mesh = tidy_mesh(clean_mesh(mesh, max_faces))
        if len(mesh.faces) == 0:
            raise GenerationFailed(_NO_SURFACE)
        return mesh

    def _free_cache(self) -> None:
        if self.low_vram and self.device.startswith("cuda"):
            free_cuda_cache(self._lib.torch)


def tidy_mesh(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Drop degenerate faces and unused vertices, wind outward, centre the bounds on the origin.

    Marching-cubes output is often inside-out (negative signed volume), which engines cull.
    hy3dgen already flips its faces; this check is the safety net for other weights or
    versions, and a global flip is enough because the winding is consistent across the
    surface. Returns the tidied mesh (``mesh`` itself unless it had to be flipped).
    """
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    if len(mesh.faces) == 0:
        return mesh
    mesh = outward_winding(mesh)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    return mesh


def _import_library(model_path: str, subfolder: str) -> _Library:
    """The package these weights need, or `ModelUnavailable` naming the fix."""
    v21 = needs_hy3dshape(model_path, subfolder)
    try:
        import torch
    except ImportError as exc:
        extra = " (plus hy3dshape for the 2.1 weights)" if v21 else ""
        raise ModelUnavailable(
            f"the hunyuan3d backend needs torch and hy3dgen, and torch is not importable "
            f"({exc}). Install them with: {HUNYUAN_INSTALL}{extra}"
        ) from exc
    if v21:
        try:
            from hy3dshape.pipelines import Hunyuan3DDiTFlowMatchingPipeline
        except ImportError as exc:
            raise ModelUnavailable(missing_message(model_path, subfolder, exc)) from exc
    else:
        try:
            from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline
        except ImportError as exc:
            raise ModelUnavailable(
                f"the hunyuan3d backend needs hy3dgen 2.0.2, which is not importable ({exc}). "
                f"Install it with: {HUNYUAN_INSTALL}"
            ) from exc
    return _Library(torch=torch, pipeline=Hunyuan3DDiTFlowMatchingPipeline)
