"""Where Hunyuan3D weights are, resolved the way upstream's ``smart_load_model`` does it.

Upstream looks in ``$HY3DGEN_MODELS/<model_path>/<subfolder>`` (base ``~/.cache/hy3dgen``; an
absolute ``model_path`` replaces the base) and otherwise downloads the whole subfolder from the
Hugging Face hub (every weights format it holds). Here the same folder is looked in first, then
the hub cache, where ``sweedle models pull hunyuan-shape`` puts one format; nothing is
downloaded. A missing model is one clear error at once, and ``sweedle doctor`` asks the same
question without loading anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sweedle_core.devices import TORCH_INSTALL
from sweedle_core.errors import ModelUnavailable

DEFAULT_BASE = "~/.cache/hy3dgen"
# hy3dgen 2.0.2 declares servers it never imports and omits what it does import (the hunyuan
# extra lists those): it is installed without its declared dependencies, as `make setup` does.
HUNYUAN_INSTALL = f"{TORCH_INSTALL} && pip install --no-deps hy3dgen==2.0.2"
# The released weights are named model.fp16.safetensors (or .ckpt); plain model.* also loads.
_VARIANTS: tuple[str | None, ...] = ("fp16", None)
_FORMATS = (True, False)  # safetensors first, then ckpt


@dataclass(frozen=True)
class Weights:
    """A resolved weights folder and how hy3dgen's ``from_pretrained`` should read it."""

    root: Path  # the folder holding <subfolder>/; absolute, so hy3dgen asks no hub
    subfolder: str
    use_safetensors: bool
    variant: str | None

    @property
    def folder(self) -> Path:
        return self.root / self.subfolder

    @property
    def file(self) -> Path:
        return self.folder / _weight_file(self.variant, self.use_safetensors)


def _weight_file(variant: str | None, use_safetensors: bool) -> str:
    suffix = "safetensors" if use_safetensors else "ckpt"
    return f"model{f'.{variant}' if variant else ''}.{suffix}"


# The weights files a folder may hold, in the order they are preferred.
WEIGHT_FILES = tuple(_weight_file(v, f) for v in _VARIANTS for f in _FORMATS)


def needs_hy3dshape(model_path: str, subfolder: str) -> bool:
    """Whether these are Hunyuan3D-2.1 weights, which name ``hy3dshape`` classes."""
    return "v2-1" in subfolder or "hunyuan3d-2.1" in model_path.lower()


def local_root(model_path: str, base: str | None = None) -> Path:
    """``<base>/<model_path>``, where ``<subfolder>/`` is looked for first (``os.path.join``
    semantics: an absolute ``model_path`` replaces the base)."""
    base = base or os.environ.get("HY3DGEN_MODELS") or DEFAULT_BASE
    return Path(os.path.expanduser(os.path.join(base, os.path.expanduser(model_path))))


def locate_weights(model_path: str, subfolder: str, base: str | None = None) -> Weights:
    """The weights for ``model_path``/``subfolder`` on disk (the local folder, then the
    Hugging Face cache), or `ModelUnavailable` saying where they were looked for and how to
    fetch them. Never downloads: ``sweedle models pull hunyuan-shape`` does."""
    from sweedle_core.models.hub import cached_snapshot

    root = local_root(model_path, base)
    if (root / subfolder).is_dir():
        return _read_folder(root, subfolder)
    where = f"{root / subfolder} (HY3DGEN_MODELS/<model_path>/<subfolder>)"
    if is_local_model_path(model_path):
        raise ModelUnavailable(
            f"Hunyuan3D weights not found in {where}; {model_path} is a local path, so the hub "
            f"cache was not looked in. Put config.yaml and model.fp16.safetensors (or .ckpt) there."
        )
    cached = cached_snapshot(model_path, f"{subfolder}/config.yaml")
    if cached is not None:
        return _read_folder(cached, subfolder)
    command = f"download {model_path} --include '{subfolder}/*' --local-dir {root}"
    raise ModelUnavailable(
        f"Hunyuan3D weights not found in {where}, nor in the Hugging Face cache. Fetch them "
        f"with: sweedle models pull hunyuan-shape (or by hand: hf {command}; huggingface_hub "
        f"before 1.0: huggingface-cli {command})"
    )


def _read_folder(root: Path, subfolder: str) -> Weights:
    """Which weights file ``root/subfolder`` holds, preferring safetensors and the fp16 name."""
    folder = root / subfolder
    if not (folder / "config.yaml").is_file():
        raise ModelUnavailable(f"{folder} has no config.yaml: the weights download is incomplete")
    for variant in _VARIANTS:
        for use_safetensors in _FORMATS:
            weights = Weights(root.resolve(), subfolder, use_safetensors, variant)
            if weights.file.is_file():
                return weights
    raise ModelUnavailable(
        f"{folder} has config.yaml but no model.fp16.safetensors, model.fp16.ckpt, "
        f"model.safetensors or model.ckpt: the weights download is incomplete"
    )


def is_local_model_path(model_path: str) -> bool:
    """Whether a Hunyuan3D ``model_path`` is a folder rather than a hub id (upstream's rule: an
    absolute path, or one starting with a dot; anything else is looked for under the base and
    then taken for a hub id)."""
    expanded = os.path.expanduser(model_path)
    return os.path.isabs(expanded) or model_path.startswith(".")
