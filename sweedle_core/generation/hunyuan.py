"""The ``hunyuan3d`` backend: Tencent's Hunyuan3D shape model behind the `Generator` protocol.

The 2.0 family (``tencent/Hunyuan3D-2``, subfolder ``hunyuan3d-dit-v2-0``) runs on ``hy3dgen``
2.0.2 from PyPI. The 2.1 weights name ``hy3dshape`` classes, a package installed from the
Hunyuan3D-2.1 repository. Both expose the same pipeline API, so one class drives either.

Weights live in ``$HY3DGEN_MODELS/<model_path>/<subfolder>`` (base ``~/.cache/hy3dgen``), or in
the Hugging Face cache when the hub is reachable. The folder is resolved here, before the
library sees it, so a missing folder fails at once instead of inside a download retry.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import trimesh
from PIL import Image

from sweedle_core.errors import GenerationFailed, ModelUnavailable
from sweedle_core.export.mesh_io import outward_winding
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.params import GenerationParams

_INSTALL = 'pip install ".[hunyuan]" and then pip install --no-deps hy3dgen==2.0.2'
_DEFAULT_BASE = "~/.cache/hy3dgen"
_VARIANT = "fp16"  # the file name variant the released weights use, whatever dtype runs them
_NO_SURFACE = "the model found no surface for this image and seed; try another seed"

# Progress: image encoding up to 0.05, denoising 0.05-0.85, surface extraction up to 0.95.
_DENOISE_START, _DENOISE_SPAN = 0.05, 0.8


class Hunyuan3DGenerator:
    """Hunyuan3D shape generation (untextured); the pipeline is loaded once, in ``__init__``.

    ``device``: "auto" picks CUDA when torch sees a GPU, else the CPU. Weights run in fp16 on
    CUDA and fp32 on the CPU (fp16 on the CPU is slow or unsupported for many operations).

    ``low_vram`` saves what hy3dgen 2.0.2 honestly allows, which is not much:

    - fp16 weights on CUDA (the default there already; the 2.0 shape model needs ~6 GB);
    - ``torch.cuda.empty_cache()`` after every generation, which hands the allocator's cached
      blocks back to the driver between jobs. It lowers the idle footprint, not the peak
      during a generation.

    It does not offload parts of the model to the CPU: hy3dgen's ``enable_model_cpu_offload``
    raises ``AttributeError`` in 2.0.2. On the CPU the flag changes nothing.
    """

    name = "hunyuan3d"

    def __init__(
        self, model_path: str, subfolder: str, device: str = "auto", low_vram: bool = False
    ) -> None:
        torch, pipeline_class = _import_pipeline(model_path, subfolder)
        self._torch = torch
        self.device = _resolve_device(torch, device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.low_vram = low_vram

        root = _locate_weights(model_path, subfolder)
        use_safetensors = _uses_safetensors(root / subfolder)
        # An absolute root makes hy3dgen's own resolver use it as is: no second hub look-up.
        self._pipeline = pipeline_class.from_pretrained(
            str(root),
            subfolder=subfolder,
            device=self.device,
            dtype=self.dtype,
            use_safetensors=use_safetensors,
            variant=_VARIANT,
        )
        # The pipeline keeps per-call state (the scheduler's timesteps): one generation at a time.
        self._lock = threading.Lock()

    def generate(
        self, image: Image.Image, params: GenerationParams, on_progress: ProgressCallback
    ) -> trimesh.Trimesh:
        """One mesh for one RGBA image (background already transparent); colourless.

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
                    generator=self._torch.Generator(self.device).manual_seed(params.seed),
                    output_type="trimesh",
                    callback=on_step,
                    callback_steps=1,
                    enable_pbar=False,
                )
            finally:
                if self.low_vram and self.device.startswith("cuda"):
                    self._torch.cuda.empty_cache()

        mesh = meshes[0] if meshes else None
        if mesh is None or len(mesh.faces) == 0:
            raise GenerationFailed(_NO_SURFACE)
        on_progress(0.95, "cleaning up the mesh")
        mesh = tidy_mesh(mesh)
        if len(mesh.faces) == 0:
            raise GenerationFailed(_NO_SURFACE)
        on_progress(1.0, "done")
        return mesh


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


def is_v21(model_path: str, subfolder: str) -> bool:
    """Whether these are Hunyuan3D-2.1 weights, which need ``hy3dshape`` rather than hy3dgen."""
    return "v2-1" in subfolder or "hunyuan3d-2.1" in model_path.lower()


def local_root(model_path: str) -> Path:
    """Where hy3dgen looks first for ``<subfolder>/``: ``$HY3DGEN_MODELS/<model_path>``.

    An absolute ``model_path`` replaces the base, as in ``os.path.join``.
    """
    base = os.environ.get("HY3DGEN_MODELS") or _DEFAULT_BASE
    return Path(os.path.expanduser(os.path.join(base, model_path)))


def _import_pipeline(model_path: str, subfolder: str) -> tuple[Any, Any]:
    """``(torch, the pipeline class)`` for these weights, or `ModelUnavailable` naming the fix."""
    v21 = is_v21(model_path, subfolder)
    try:
        import torch
    except ImportError as exc:
        extra = " (plus hy3dshape for the 2.1 weights)" if v21 else ""
        raise ModelUnavailable(
            f"the hunyuan3d backend needs torch and hy3dgen, and torch is not importable "
            f"({exc}). Install them with: {_INSTALL}{extra}"
        ) from exc
    if v21:
        try:
            from hy3dshape.pipelines import Hunyuan3DDiTFlowMatchingPipeline
        except ImportError as exc:
            raise ModelUnavailable(
                f"the Hunyuan3D-2.1 weights ({model_path}, {subfolder}) need the hy3dshape "
                f"package ({exc}). hy3dshape is not on PyPI: install it from the Hunyuan3D-2.1 "
                f"repository (its hy3dshape/ folder). The 2.0 family works with hy3dgen alone: "
                f"HUNYUAN_MODEL_PATH=tencent/Hunyuan3D-2 HUNYUAN_SUBFOLDER=hunyuan3d-dit-v2-0, "
                f"after {_INSTALL}"
            ) from exc
        return torch, Hunyuan3DDiTFlowMatchingPipeline
    try:
        from hy3dgen.shapegen import Hunyuan3DDiTFlowMatchingPipeline
    except ImportError as exc:
        raise ModelUnavailable(
            f"the hunyuan3d backend needs hy3dgen 2.0.2, which is not importable ({exc}). "
            f"Install it with: {_INSTALL}"
        ) from exc
    return torch, Hunyuan3DDiTFlowMatchingPipeline


def _resolve_device(torch: Any, device: str) -> str:
    cuda = bool(torch.cuda.is_available())
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if device.startswith("cuda") and not cuda:
        raise ModelUnavailable(f"device {device!r} was asked for but torch sees no CUDA GPU")
    return device


def _locate_weights(model_path: str, subfolder: str) -> Path:
    """The root holding ``<subfolder>/``: the local folder, else a Hugging Face hub snapshot.

    Offline (``HF_HUB_OFFLINE``) only the hub cache is consulted, which answers at once.
    """
    root = local_root(model_path)
    folder = root / subfolder
    if folder.is_dir():
        return root
    where = f"{folder} ($HY3DGEN_MODELS/<model_path>/<subfolder>, base {_DEFAULT_BASE} by default)"
    if os.path.isabs(os.path.expanduser(model_path)) or model_path.startswith("."):
        raise ModelUnavailable(
            f"Hunyuan3D weights not found in {where}; {model_path} is a local path, so the hub "
            f"was not asked. Put config.yaml and model.{_VARIANT}.safetensors (or .ckpt) there."
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    found = _hub_snapshot(model_path, subfolder, offline)
    if isinstance(found, Path):
        return found
    command = f"download {model_path} --include '{subfolder}/*' --local-dir {root}"
    raise ModelUnavailable(
        f"Hunyuan3D weights not found in {where}, nor fetched from the Hugging Face hub: "
        f"{found}. Download them with: hf {command} (huggingface_hub before 1.0: "
        f"huggingface-cli {command})"
    )


def _hub_snapshot(model_path: str, subfolder: str, offline: bool) -> Path | str:
    """The snapshot root holding ``<subfolder>/``, or why there is none."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return "huggingface_hub is not installed"
    try:
        root = Path(
            snapshot_download(
                repo_id=model_path, allow_patterns=[f"{subfolder}/*"], local_files_only=offline
            )
        )
    except Exception as exc:  # offline, DNS, HTTP, auth, bad repo id: all mean "not there"
        prefix = "offline (HF_HUB_OFFLINE is set) and not in the hub cache; " if offline else ""
        detail = " ".join(str(exc).split()).rstrip(".")
        return f"{prefix}{type(exc).__name__}: {detail}"
    if (root / subfolder).is_dir():
        return root
    return f"the hub snapshot {root} has no {subfolder}/"


def _uses_safetensors(folder: Path) -> bool:
    """Whether to load ``model.fp16.safetensors`` (preferred) or ``model.fp16.ckpt``."""
    if not (folder / "config.yaml").is_file():
        raise ModelUnavailable(f"{folder} has no config.yaml: the weights download is incomplete")
    if (folder / f"model.{_VARIANT}.safetensors").is_file():
        return True
    if (folder / f"model.{_VARIANT}.ckpt").is_file():
        return False
    raise ModelUnavailable(
        f"{folder} has neither model.{_VARIANT}.safetensors nor model.{_VARIANT}.ckpt: "
        f"the weights download is incomplete"
    )
