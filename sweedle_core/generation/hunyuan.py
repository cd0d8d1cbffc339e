"""The ``hunyuan3d`` backend: Tencent's Hunyuan3D shape model behind the `GeneratorBackend`
protocol.

The 2.0 family (``tencent/Hunyuan3D-2``, ``-2mini``, their turbo subfolders) runs on ``hy3dgen``
2.0.2 from PyPI. The 2.1 weights name ``hy3dshape`` classes, a package installed from the
Hunyuan3D-2.1 repository. Both expose the same pipeline and post-processor API, so one class
drives either. Weights are found by `hunyuan_weights.locate_weights`.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from sweedle_core.devices import free_cuda_cache, resolve_device
from sweedle_core.errors import GenerationFailed, ModelUnavailable
from sweedle_core.generation.hunyuan_surface import (
    BOX_V,
    MC_LEVEL,
    NO_SURFACE,
    surface_shape,
    volume_shape,
)
from sweedle_core.generation.hunyuan_texture import Texturer
from sweedle_core.generation.hunyuan_weights import (
    HUNYUAN_INSTALL,
    locate_weights,
    needs_hy3dshape,
)
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.generation.shape import Shape
from sweedle_core.hy3dshape_setup import missing_message
from sweedle_core.params import GenerationParams

log = logging.getLogger(__name__)
MULTIVIEW_HINT = "HUNYUAN_MODEL_PATH=tencent/Hunyuan3D-2mv HUNYUAN_SUBFOLDER=hunyuan3d-dit-v2-mv"
# Progress of the GPU stage: image encoding up to 0.05, denoising 0.05-0.9, volume decoding
# up to 1.
_DENOISE_START, _DENOISE_SPAN = 0.05, 0.85


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
        gpu_surface: bool = False,
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
        # Hunyuan3D-2mv's image processor takes a dict of views and says so.
        processor = getattr(self._pipeline, "image_processor", None)
        self.multiview = bool(getattr(processor, "return_view_idx", False))
        self.flashvdm = low_vram and hasattr(self._pipeline, "enable_flashvdm")
        if self.flashvdm:
            # replace_vae=False: the turbo VAE it would swap in is another download; FlashVDM's
            # decoder works on the VAE that is loaded.
            self._pipeline.enable_flashvdm(replace_vae=False)
        self.surface_note: str | None = None  # why the surface is not taken on the GPU
        self._gpu_extractor = self._surface_extractor() if gpu_surface else None
        self.texturer = Texturer(
            texture_model_path, models_base, self.device, keep_loaded=not low_vram
        )
        # The pipeline keeps per-call state (the scheduler's timesteps): one generation at a time.
        self._lock = threading.Lock()

    def generate_shape(
        self,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        views: Mapping[str, Image.Image] | None = None,
    ) -> Shape:
        """The GPU stage for one RGBA image (background already transparent): image encoding,
        denoising and volume decoding; the grid of occupancy logits is the shape. (A textured
        job comes back later to be painted, by `painter`, once the CPU pool made its mesh.)
        Lets `JobCancelled` from ``on_progress`` propagate, which stops the denoising loop at
        the next step.
        """
        steps = params.inference_steps

        def on_step(step: int, _timestep: Any, _latents: Any) -> None:
            done = min(step + 1, steps)
            fraction = _DENOISE_START + _DENOISE_SPAN * done / steps
            on_progress(fraction, f"denoising step {done}/{steps}")

        if image.mode != "RGBA":
            image = image.convert("RGBA")
        condition = self._condition(image, views)
        on_progress(0.0, self._encoding_message(views))
        with self._lock:
            try:
                latents = self._pipeline(
                    image=condition,
                    num_inference_steps=steps,
                    guidance_scale=params.guidance_scale,
                    generator=self._lib.torch.Generator(self.device).manual_seed(params.seed),
                    output_type="latent",
                    callback=on_step,
                    callback_steps=1,
                    enable_pbar=False,
                )
                on_progress(_DENOISE_START + _DENOISE_SPAN, "decoding the volume")
                grid = self._decode_volume(latents, params)
                if self._gpu_extractor is not None:
                    shape = self._surface_shape(grid, params)
                else:
                    volume = grid[0].to(self._lib.torch.float16).cpu().numpy()
                    shape = volume_shape(self.name, volume, params.octree_resolution)
            finally:
                self._free_cache()
        on_progress(1.0, "volume decoded")
        return shape

    @property
    def painter(self) -> Texturer | None:
        """The texture model, where it can run here (`paint.Painter`)."""
        return self.texturer if self.texturer.can_paint else None

    def _condition(
        self, image: Image.Image, views: Mapping[str, Image.Image] | None
    ) -> Image.Image | dict[str, Image.Image]:
        """What the model is conditioned on: a multi-view model (Hunyuan3D-2mv) takes a dict
        of views, always; any other model the front photo."""
        if not self.multiview:
            return image
        return {name: view.convert("RGBA") for name, view in (views or {"front": image}).items()}

    def _encoding_message(self, views: Mapping[str, Image.Image] | None) -> str:
        if views is None or len(views) < 2:
            return "encoding the image"
        if self.multiview:
            return f"encoding {len(views)} views: {', '.join(views)}"
        return (
            "encoding the front photo only: this model takes one view (the multi-view weights "
            f"are {MULTIVIEW_HINT})"
        )

    def _decode_volume(self, latents: Any, params: GenerationParams) -> Any:
        """The VAE's decoding of ``latents`` into occupancy logits on the octree grid: a
        tensor ``(1, n + 1, n + 1, n + 1)`` on the model's device (NaN where FlashVDM skipped a
        region)."""
        torch = self._lib.torch
        vae = self._pipeline.vae
        with torch.inference_mode():
            decoded = vae(latents / vae.scale_factor)
            decoder, restore = self._volume_decoder(params.fast_decoding)
            try:
                grid = decoder(
                    decoded,
                    vae.geo_decoder,
                    bounds=BOX_V,
                    num_chunks=params.num_chunks,
                    octree_resolution=params.octree_resolution,
                    mc_level=MC_LEVEL,
                    enable_pbar=False,
                )
            finally:
                restore()
            return grid

    def _surface_extractor(self) -> Any | None:
        """hy3dgen's DMC surface extractor, which runs on the GPU, if it can run here; else
        None (the CPU pool extracts) with `surface_note` saying why."""
        reason = None
        if not self.device.startswith("cuda"):
            reason = "it needs a CUDA device"
        elif importlib.util.find_spec("diso") is None:
            reason = "it needs the diso package (pip install diso)"
        else:
            surface = type(getattr(self._pipeline.vae, "surface_extractor", None)).__module__
            extractor = getattr(importlib.import_module(surface), "DMCSurfaceExtractor", None)
            if extractor is not None:
                return extractor()
            reason = "this version of the model's package has no DMC extractor"
        self.surface_note = f"GPU_SURFACE_EXTRACTION is on but {reason}: the CPU pool extracts"
        log.warning(self.surface_note)
        return None

    def _surface_shape(self, grid: Any, params: GenerationParams) -> Shape:
        """The surface taken on the GPU, as the shape (the CPU pool cleans and colours it)."""
        assert self._gpu_extractor is not None
        (found,) = self._gpu_extractor(
            grid, mc_level=MC_LEVEL, bounds=BOX_V, octree_resolution=params.octree_resolution
        )
        if found is None:
            raise GenerationFailed(NO_SURFACE)
        return surface_shape(self.name, found.mesh_v, found.mesh_f)

    def _volume_decoder(self, fast: bool) -> tuple[Any, Callable[[], None]]:
        """The volume decoder for one job, and what puts the model back as it was after it.

        The model's own decoder (FlashVDM in low-VRAM mode), or FlashVDM for a job that asks
        for fast decoding. FlashVDM swaps the geometry decoder's attention processor and
        never swaps it back, so the processor in place is restored after the job.
        """
        vae = self._pipeline.vae
        if not fast or self.flashvdm:
            return vae.volume_decoder, lambda: None
        try:
            flash = importlib.import_module(type(vae.volume_decoder).__module__)
            attention = vae.geo_decoder.cross_attn_decoder.attn.attention
            processor = attention.attn_processor
            decoder = flash.FlashVDMVolumeDecoding()
        except (AttributeError, ImportError):  # another version's layout: decode as loaded
            return vae.volume_decoder, lambda: None

        def restore() -> None:
            attention.attn_processor = processor

        return decoder, restore

    def _free_cache(self) -> None:
        if self.low_vram and self.device.startswith("cuda"):
            free_cuda_cache(self._lib.torch)


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
