"""The machine's side of the doctor: torch, the GPUs, the Hunyuan3D packages, Ray."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sweedle_core.config import Settings
from sweedle_core.doctor.probe import Check, package_version, try_import
from sweedle_core.errors import one_line
from sweedle_core.generation.hunyuan_weights import HUNYUAN_INSTALL
from sweedle_core.hy3dshape_setup import missing_message

# What the Ray probe answers: (GPUs Ray would offer, a sentence saying where that count comes
# from, count included), or a sentence saying why it could not tell.
RayGpus = tuple[float, str] | str

# VRAM as the upstream READMEs state it. Hunyuan3D-2: "6 GB VRAM for shape generation and 16 GB
# for shape and texture generation in total". Hunyuan3D-2.1: "10 GB VRAM for shape generation,
# 21GB for texture generation and 29GB for shape and texture generation in total".
SHAPE_GB = {"2.0": 6.0, "2.1": 10.0}
TEXTURE_GB = {"2.0": (16.0, "16 GB for shape and texture in total"), "2.1": (21.0, "21 GB")}


def check_backend(settings: Settings) -> Check:
    backend = settings.generator_backend
    if backend == "hunyuan3d":
        what = "Hunyuan3D on a GPU; needs torch, its shape package, the weights and a Ray GPU"
    elif backend == "depth":
        what = (
            "a depth model's front surface closed into a solid, on the CPU; needs torch and "
            "the depth model. On a GPU machine make serve runs hunyuan3d (serve_config.yaml): "
            "check it with sweedle doctor --config serve_config.yaml"
        )
    elif backend == "silhouette":
        what = "the CPU preview (the outline inflated), which needs nothing below"
    else:
        what = "a plugin class; the checks below are for information"
    return Check("backend", "info", f"GENERATOR_BACKEND={backend}: {what}")


def check_torch(settings: Settings, v21: bool) -> tuple[list[Check], bool]:
    """The torch line and one line per GPU; and whether CUDA is usable."""
    torch, error = try_import("torch")
    if torch is None:
        detail = f"not importable ({error}); install it with: {HUNYUAN_INSTALL}"
        return [Check("torch", "fail", detail, required=True)], False
    version = getattr(torch, "__version__", "(version unknown)")
    build = getattr(getattr(torch, "version", None), "cuda", None)
    try:
        cuda = bool(torch.cuda.is_available())
        count = int(torch.cuda.device_count()) if cuda else 0
        why = f"a CUDA {build} build that sees no CUDA device" if build else "a CPU-only build"
    except Exception as exc:  # a broken driver or CUDA library
        cuda, count, why = False, 0, f"CUDA fails: {one_line(exc)}"
    if not cuda:
        if settings.device == "cuda":
            detail = f"{version}, {why}, and DEVICE=cuda: hunyuan3d will not load"
            return [Check("torch", "fail", detail, required=True)], False
        if settings.generator_backend != "hunyuan3d":
            return [Check("torch", "ok", f"{version}, {why}: models run on the CPU", True)], False
        detail = f"{version}, {why}: hunyuan3d then runs on the CPU, very slowly"
        return [Check("torch", "warn", detail, required=True)], False
    checks = [Check("torch", "ok", f"{version}, CUDA {build}, {count} GPU(s)", required=True)]
    checks += [check_gpu(torch, index, settings, v21) for index in range(count)]
    return checks, True


def check_gpu(torch: Any, index: int, settings: Settings, v21: bool) -> Check:
    """A GPU's name and VRAM against upstream's figures for the configured models."""
    name = f"GPU {index}"
    try:
        props = torch.cuda.get_device_properties(index)
        vram = float(props.total_memory) / 1e9
    except Exception as exc:
        return Check(name, "warn", f"cannot read its properties: {one_line(exc)}")
    family = "2.1" if v21 else "2.0"
    shape = SHAPE_GB[family]
    texture_family = "2.1" if "2.1" in settings.hunyuan_texture_model_path else "2.0"
    texture, texture_text = TEXTURE_GB[texture_family]
    detail = (
        f"{props.name}, {vram:.1f} GB; upstream states {shape:g} GB for the {family} shape "
        f"model and, for texture, {texture_text} ({texture_family})"
    )
    if vram < shape:
        return Check(name, "warn", f"{detail}: below the shape model's figure")
    if vram < texture:
        return Check(name, "ok", f"{detail}: enough for shape; texture may not fit")
    return Check(name, "ok", f"{detail}: enough for both")


def check_shape_packages(settings: Settings, v21: bool) -> list[Check]:
    """hy3dgen (the 2.0 shape model, and the texture model); hy3dshape for the 2.1 weights."""
    module, error = try_import("hy3dgen.shapegen")
    if module is not None:
        version = package_version("hy3dgen") or "(version unknown)"
        checks = [Check("hy3dgen", "ok", f"{version}, shapegen imports", required=not v21)]
    elif v21:
        detail = f"not importable ({error}); the 2.1 shape model does not need it, texture does"
        checks = [Check("hy3dgen", "warn", detail)]
    else:
        detail = f"not importable ({error}); install it with: {HUNYUAN_INSTALL}"
        checks = [Check("hy3dgen", "fail", detail, required=True)]
    if not v21:
        return checks
    module, error = try_import("hy3dshape.pipelines")
    if module is not None:
        version = package_version("hy3dshape") or "(no package metadata)"
        checks.append(Check("hy3dshape", "ok", f"{version}, imports", required=True))
        return checks
    detail = missing_message(settings.hunyuan_model_path, settings.hunyuan_subfolder, error)
    checks.append(Check("hy3dshape", "fail", detail, required=True))
    return checks


def check_ray(settings: Settings, ray_gpus: Callable[[], RayGpus]) -> Check:
    """GPUs Ray offers; serve_config.yaml reserves num_gpus: 1 per Generator replica."""
    try:
        answer = ray_gpus()
    except Exception as exc:
        answer = f"the Ray probe failed: {one_line(exc)}"
    if isinstance(answer, str):
        return Check("ray", "warn", answer)
    gpus, where = answer
    if gpus >= 1:
        return Check("ray", "ok", f"{where}; serve_config.yaml reserves 1 per Generator replica")
    if settings.generator_backend != "hunyuan3d":
        detail = f"{where}; configs/cpu.yaml needs none, serve_config.yaml (hunyuan3d) needs 1"
        return Check("ray", "info", detail)
    detail = (
        f"{where}, and serve_config.yaml reserves num_gpus: 1 per Generator: the generator "
        f"would wait for a GPU forever. Use configs/cpu.yaml (the depth generator) or add a GPU node"
    )
    return Check("ray", "fail", detail, required=True)
