"""Where Hunyuan3D weights are, resolved the way upstream's ``smart_load_model`` does it.

Upstream looks in ``$HY3DGEN_MODELS/<model_path>/<subfolder>`` (base ``~/.cache/hy3dgen``; an
absolute ``model_path`` replaces the base) and otherwise downloads the subfolder from the
Hugging Face hub. Resolving it here, before the library sees it, turns a missing folder into one
clear error at once instead of a download retried for minutes, and lets ``sweedle doctor`` ask
the same question without loading anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sweedle_core.errors import ModelUnavailable

DEFAULT_BASE = "~/.cache/hy3dgen"
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
        suffix = "safetensors" if self.use_safetensors else "ckpt"
        infix = f".{self.variant}" if self.variant else ""
        return self.folder / f"model{infix}.{suffix}"


def needs_hy3dshape(model_path: str, subfolder: str) -> bool:
    """Whether these are Hunyuan3D-2.1 weights, which name ``hy3dshape`` classes."""
    return "v2-1" in subfolder or "hunyuan3d-2.1" in model_path.lower()


def local_root(model_path: str, base: str | None = None) -> Path:
    """``<base>/<model_path>``, where ``<subfolder>/`` is looked for first (``os.path.join``
    semantics: an absolute ``model_path`` replaces the base)."""
    base = base or os.environ.get("HY3DGEN_MODELS") or DEFAULT_BASE
    return Path(os.path.expanduser(os.path.join(base, os.path.expanduser(model_path))))


def locate_weights(
    model_path: str, subfolder: str, base: str | None = None, *, hub: bool = True
) -> Weights:
    """The weights for ``model_path``/``subfolder``, or `ModelUnavailable` saying where they
    were looked for and how to fetch them.

    ``hub=False`` looks only on disk (the local folder, then the hub's cache) and never
    downloads; so does ``HF_HUB_OFFLINE=1``.
    """
    root = local_root(model_path, base)
    if (root / subfolder).is_dir():
        return _read_folder(root, subfolder)
    where = f"{root / subfolder} (HY3DGEN_MODELS/<model_path>/<subfolder>)"
    if _is_local_path(model_path):
        raise ModelUnavailable(
            f"Hunyuan3D weights not found in {where}; {model_path} is a local path, so the hub "
            f"was not asked. Put config.yaml and model.fp16.safetensors (or .ckpt) there."
        )
    offline = not hub or _hub_offline()
    found = _hub_snapshot(model_path, subfolder, offline)
    if isinstance(found, Path):
        return _read_folder(found, subfolder)
    command = f"download {model_path} --include '{subfolder}/*' --local-dir {root}"
    raise ModelUnavailable(
        f"Hunyuan3D weights not found in {where}, nor on the Hugging Face hub: {found}. "
        f"Download them with: hf {command} "
        f"(huggingface_hub before 1.0: huggingface-cli {command})"
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


def _is_local_path(model_path: str) -> bool:
    expanded = os.path.expanduser(model_path)
    return os.path.isabs(expanded) or model_path.startswith(".")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


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
        if offline:  # the cache has no snapshot; the library's text adds nothing to that
            why = "HF_HUB_OFFLINE is set" if _hub_offline() else "looked on disk only"
            return f"not in the hub cache ({why})"
        detail = " ".join(str(exc).split()).rstrip(".")
        return f"{type(exc).__name__}: {detail}"
    if (root / subfolder).is_dir():
        return root
    return f"the hub snapshot {root} has no {subfolder}/"
