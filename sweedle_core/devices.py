"""Which torch device a model runs on, the same rule for every model Sweedle loads."""

from __future__ import annotations

import gc
from typing import Any

from sweedle_core.errors import ModelUnavailable

# torch, transformers and diffusers come with the hunyuan extra (make setup installs it).
TORCH_INSTALL = 'pip install -e ".[hunyuan]"'


def resolve_device(torch: Any, device: str) -> str:
    """``device`` as torch should see it: "auto" is CUDA when torch sees a GPU, else the CPU;
    an explicit CUDA device without a GPU is `ModelUnavailable`."""
    cuda = bool(torch.cuda.is_available())
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if device.startswith("cuda") and not cuda:
        raise ModelUnavailable(f"device {device!r} was asked for but torch sees no CUDA GPU")
    return device


def free_cuda_cache(torch: Any) -> None:
    """Give memory a finished model or job held back to the GPU (no-op without CUDA)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
