"""Text to image, the first half of text-to-3D: a diffusers text-to-image pipeline.

Any diffusers text-to-image pipeline works, as a local folder (one holding
``model_index.json``) or a Hugging Face hub id. Hunyuan3D-2 paints its inputs with HunyuanDiT
(``Tencent-Hunyuan/HunyuanDiT-v1.1-Diffusers-Distilled``).

A hub id is read from the Hugging Face cache only, where ``sweedle models pull text-to-image``
(and ``make serve``) put it: a replica never downloads, and never asks the hub, which diffusers
would do over a connection without a time limit (an unreachable hub that swallows packets would
hold the replica's start-up forever).
"""

from __future__ import annotations

import inspect
import logging
import threading
from pathlib import Path
from typing import Any

from PIL import Image

from sweedle_core.config import Settings
from sweedle_core.devices import TORCH_INSTALL, resolve_device
from sweedle_core.errors import InvalidInput, ModelUnavailable
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.models.hub import is_local_path

log = logging.getLogger(__name__)

# Every call passes these; a pipeline without a step callback could be neither followed nor
# cancelled.
_REQUIRED = ("prompt", "num_inference_steps", "height", "width", "generator")
_STEP_CALLBACK = "callback_on_step_end"


class TextToImageModel:
    """One diffusers text-to-image pipeline, loaded once (per replica), in ``__init__``.

    ``device``: "auto" picks CUDA when torch sees a GPU, else the CPU. Weights run in fp16 on
    CUDA and fp32 on the CPU. ``size`` is the side of the square images, a multiple of 8 (the
    latent grid of every diffusers image model is an eighth of the image or finer).
    """

    def __init__(
        self,
        model: str,
        device: str = "auto",
        steps: int = 25,
        guidance: float = 5.0,
        size: int = 1024,
    ) -> None:
        if not model.strip():
            raise ModelUnavailable("text to image is disabled: TEXT_TO_IMAGE_MODEL is empty")
        if size <= 0 or size % 8:
            raise ModelUnavailable(f"TEXT_TO_IMAGE_SIZE must be a multiple of 8, not {size}")
        if steps < 1:
            raise ModelUnavailable(f"TEXT_TO_IMAGE_STEPS must be at least 1, not {steps}")
        torch, pipeline_class = _import_libraries()
        self._torch = torch
        self.model = model
        self.device = resolve_device(torch, device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.steps, self.guidance, self.size = steps, guidance, size

        source, local_only, note = _resolve_source(model)
        try:
            pipeline = pipeline_class.from_pretrained(
                source, dtype=self.dtype, local_files_only=local_only
            )
        except Exception as exc:  # missing files, bad configs, absent libraries: not loadable
            hint = "" if Path(source).is_dir() else f" {_fetch_hint(model, None)}"
            raise ModelUnavailable(
                f"the text-to-image model {model} could not be loaded{note}: "
                f"{_one_line(exc)}.{hint}"
            ) from exc
        pipeline.to(self.device)
        pipeline.set_progress_bar_config(disable=True)
        self._accepts = set(inspect.signature(pipeline.__call__).parameters)
        missing = [name for name in (*_REQUIRED, _STEP_CALLBACK) if name not in self._accepts]
        if missing:
            raise ModelUnavailable(
                f"{type(pipeline).__name__} ({model}) is not a text-to-image pipeline Sweedle "
                f"can drive: its __call__ takes no {', '.join(missing)}"
            )
        self._pipeline = pipeline
        # The pipeline keeps per-call state (scheduler timesteps, guidance): one render at a time.
        self._lock = threading.Lock()
        self._warned_negative = False

    @classmethod
    def from_settings(cls, settings: Settings) -> TextToImageModel:
        """The pipeline the settings name; TEXT_TO_IMAGE_DEVICE "auto" follows DEVICE."""
        device = settings.text_to_image_device
        return cls(
            settings.text_to_image_model,
            device=settings.device if device == "auto" else device,
            steps=settings.text_to_image_steps,
            guidance=settings.text_to_image_guidance,
            size=settings.text_to_image_size,
        )

    def describe(self) -> dict[str, str]:
        """What runs, for /health: the model, the pipeline class, the device and the dtype."""
        return {
            "model": self.model,
            "pipeline": type(self._pipeline).__name__,
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    def render(
        self,
        prompt: str,
        seed: int,
        on_progress: ProgressCallback,
        negative_prompt: str | None = None,
    ) -> Image.Image:
        """One RGB ``size x size`` image for ``prompt``; the same seed paints the same image.

        ``on_progress`` hears every denoising step; `JobCancelled` raised from it stops the
        loop there and propagates. Raises `InvalidInput` for a blank prompt. A negative prompt
        is ignored (with one warning) by pipelines that take none.
        """
        prompt = prompt.strip()
        if not prompt:
            raise InvalidInput("the prompt is empty: describe the object to make")
        kwargs: dict[str, Any] = {
            "prompt": prompt,
            "num_inference_steps": self.steps,
            "height": self.size,
            "width": self.size,
            # A CPU generator draws the same noise whatever the device, so a seed means one
            # image on the GPU and the CPU alike (up to arithmetic differences).
            "generator": self._torch.Generator("cpu").manual_seed(seed),
            _STEP_CALLBACK: self._step_callback(on_progress),
        }
        if "guidance_scale" in self._accepts:
            kwargs["guidance_scale"] = self.guidance
        if negative_prompt and negative_prompt.strip():
            if "negative_prompt" in self._accepts:
                kwargs["negative_prompt"] = negative_prompt.strip()
            elif not self._warned_negative:  # a configured prompt would fail every job
                self._warned_negative = True
                log.warning("%s takes no negative prompt; it is ignored", self.describe())
        with self._lock:
            image = self._pipeline(**kwargs).images[0]
        if image.mode != "RGB":
            image = image.convert("RGB")
        if image.size != (self.size, self.size):  # pipelines that snap to their own sizes
            image = image.resize((self.size, self.size), Image.Resampling.LANCZOS)
        return image

    def _step_callback(self, on_progress: ProgressCallback) -> Any:
        steps = self.steps

        def on_step_end(
            pipeline: Any, step: int, _timestep: Any, tensors: dict[str, Any]
        ) -> dict[str, Any]:
            # Second-order schedulers run more timesteps than steps; the pipeline knows how many.
            total = getattr(pipeline, "_num_timesteps", None) or steps
            done = min(step + 1, total)
            on_progress(done / total, f"painting step {done}/{total}")
            return tensors

        return on_step_end


def _import_libraries() -> tuple[Any, Any]:
    """``(torch, diffusers.DiffusionPipeline)``, or `ModelUnavailable` naming the fix."""
    try:
        import torch
        from diffusers import DiffusionPipeline
    except ImportError as exc:
        raise ModelUnavailable(
            f"text to image needs torch, diffusers and transformers, which are not importable "
            f"({exc}). Install them with: {TORCH_INSTALL}"
        ) from exc
    return torch, DiffusionPipeline


def _resolve_source(model: str) -> tuple[str, bool, str]:
    """``(what from_pretrained loads, whether it may only read local files, why if so)``.

    A folder that exists is used as is. A name that can only be a path is never looked up
    on the hub. A hub id is read from the hub cache alone.
    """
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "model_index.json").is_file():
            raise ModelUnavailable(
                f"the text-to-image folder {folder} has no model_index.json: it is not a "
                f"diffusers pipeline, or its download is incomplete"
            )
        return str(folder.resolve()), True, ""
    if is_local_path(model):
        raise ModelUnavailable(
            f"the text-to-image folder {folder} (TEXT_TO_IMAGE_MODEL={model}) does not exist; "
            f"a local path is never looked up on the hub. {_fetch_hint('<hub id>', folder)}"
        )
    return model, True, " (only the Hugging Face cache is read)"


def _fetch_hint(repo: str, folder: Path | None) -> str:
    """How to put the pipeline ``repo`` into ``folder``, or into a suggested folder to name."""
    target = folder or f"./data/models/{repo.rstrip('/').split('/')[-1]}"
    command = (
        f"hf download {repo} --local-dir {target} "
        f"(huggingface_hub before 1.0: huggingface-cli download)"
    )
    if folder is not None:
        return f"Fetch it there, where the hub is reachable, with: {command}"
    return (
        f"Fetch it into the hub cache with `sweedle models pull text-to-image` where the hub "
        f"is reachable (or by hand: {command}, then set TEXT_TO_IMAGE_MODEL={target})"
    )


def _one_line(exc: BaseException) -> str:
    detail = " ".join(str(exc).split()).rstrip(".")
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
