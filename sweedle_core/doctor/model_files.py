"""The models' side of the doctor: each model file a service loads, on disk or not, and what
runs without it. Never downloads (``sweedle models pull`` does)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from sweedle_core.config import Settings
from sweedle_core.devices import TORCH_INSTALL
from sweedle_core.doctor.probe import Check, package_version, try_import
from sweedle_core.generation.hunyuan_texture import PAINT_SUBFOLDERS, paint_folder
from sweedle_core.generation.hunyuan_weights import locate_weights
from sweedle_core.preprocess.background import CLASSICAL_CUTOUT
from sweedle_core.preprocess.rembg_models import REMBG_OFF, STOCK_MODELS, stock_model_paths


def check_texture(settings: Settings, cuda: bool, hunyuan: bool) -> Check:
    """hy3dgen's paint pipeline: optional, texture=true falls back to colours from the photo."""
    module, error = try_import("hy3dgen.texgen")
    problems = []
    if module is None:
        problems.append(
            f"hy3dgen.texgen is not importable ({error}); it needs custom_rasterizer and "
            f"differentiable_renderer built from the Hunyuan3D-2 sources with nvcc"
        )
    elif not hasattr(module, "Hunyuan3DPaintPipeline"):
        problems.append("hy3dgen.texgen has no Hunyuan3DPaintPipeline")
    if not cuda:
        problems.append("it needs a CUDA GPU")
    folder = paint_folder(settings.hunyuan_texture_model_path, settings.hy3dgen_models)
    if folder is None:
        problems.append(
            f"its weights ({', '.join(PAINT_SUBFOLDERS)}) are not on disk: `sweedle models "
            f"pull hunyuan-texture` fetches them"
        )
    if not problems:
        return Check("texture", "ok", f"Hunyuan3DPaintPipeline imports; weights in {folder}")
    detail = "; ".join(problems) + ". texture=true jobs are coloured from the photo instead"
    return Check("texture", "warn" if hunyuan else "info", detail)


def check_weights(settings: Settings) -> Check:
    """The shape weights on disk (local folder or hub cache); never downloads."""
    try:
        weights = locate_weights(
            settings.hunyuan_model_path, settings.hunyuan_subfolder, settings.hy3dgen_models
        )
        size = weights.file.stat().st_size
    except Exception as exc:  # ModelUnavailable says where it looked and how to download
        return Check("weights", "fail", str(exc), required=True)
    return Check("weights", "ok", f"{weights.file} ({size / 1e9:.1f} GB)", required=True)


def check_depth(settings: Settings) -> Check:
    """The depth generator's model on disk (a local folder or the hub cache); never downloads."""
    from sweedle_core.models.catalog import depth_model_folder

    if package_version("transformers") is None:
        detail = f"transformers is not installed ({TORCH_INSTALL})"
        return Check("depth", "fail", detail, required=True)
    try:
        folder = depth_model_folder(settings)
    except Exception as exc:  # ModelUnavailable names the model and the pull command
        return Check("depth", "fail", str(exc), required=True)
    return Check("depth", "ok", f"{settings.depth_model} at {folder}", required=True)


def check_rembg(settings: Settings) -> Check:
    """Whether the rembg model file is where rembg 2.0.86 looks (rembg is not imported), by the
    rules of `sweedle_core.preprocess.background.build_background_remover`."""
    fallback = f"background removal uses {CLASSICAL_CUTOUT} instead"
    if settings.rembg_model_file is None and settings.rembg_model == REMBG_OFF:
        return Check("rembg", "info", f"switched off (REMBG_MODEL={REMBG_OFF}): {fallback}")
    version = package_version("rembg")
    if version is None or importlib.util.find_spec("onnxruntime") is None:
        missing = "rembg" if version is None else "onnxruntime"
        detail = f'{missing} is not installed (pip install -e ".[rembg]"): {fallback}'
        return Check("rembg", "warn", detail)
    if settings.rembg_model_file is not None:
        path = Path(os.path.abspath(settings.rembg_model_file.expanduser()))
        if not path.is_file():
            return Check("rembg", "warn", f"REMBG_MODEL_FILE {path} does not exist: {fallback}")
        if settings.u2net_home is not None:
            home = Path(os.path.abspath(settings.u2net_home.expanduser()))
            if not path.is_relative_to(home):
                detail = (
                    f"REMBG_MODEL_FILE {path} is outside U2NET_HOME {home}, and rembg loads "
                    f"custom models only from its model folder: {fallback}"
                )
                return Check("rembg", "warn", detail)
        return Check("rembg", "ok", f"{version}, custom model {path}")
    name = settings.rembg_model
    if name not in STOCK_MODELS:
        detail = f"REMBG_MODEL {name!r} is not one of {', '.join(STOCK_MODELS)}: {fallback}"
        return Check("rembg", "warn", detail)
    candidates = stock_model_paths(name, settings.u2net_home)
    found = next((p for p in candidates if p.is_file()), None)
    if found is not None:
        return Check("rembg", "ok", f"{version}, model {name} at {found}")
    where = " or ".join(str(p) for p in candidates)
    detail = f"{version}, model {name} not on disk (looked for {where}): {fallback}"
    return Check("rembg", "warn", f"{detail}; `sweedle models pull rembg` fetches it")


def check_text_to_image(settings: Settings) -> Check:
    """The text-to-image pipeline for text-to-3D: a local folder or a hub id in the cache."""
    from sweedle_core.models.catalog import text_to_image_model

    name = "text-to-image"
    model = text_to_image_model(settings)
    if model is None:
        return Check(name, "info", "text-to-3D disabled; set TEXT_TO_IMAGE_MODEL to enable it")
    missing = "text-to-3D requests will fail"
    if package_version("diffusers") is None:
        detail = f"{settings.text_to_image_model} is set but diffusers is not installed: {missing}"
        return Check(name, "warn", detail)
    found = model.source.find()
    if found is not None:
        return Check(name, "ok", f"{settings.text_to_image_model} at {found}")
    detail = f"{model.source.describe()} is not on disk: {missing}"
    if model.source.url() is None:  # a local path: nothing to fetch
        return Check(name, "warn", detail)
    return Check(name, "warn", f"{detail}; `sweedle models pull text-to-image` fetches it")
