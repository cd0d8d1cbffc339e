"""``sweedle doctor``: what this machine has and lacks for generation, without loading a model.

Each check returns one `Check`. Which failures stop generation depends on the backend:
``hunyuan3d`` needs torch, its shape package, the weights and a GPU in Ray; the ``silhouette``
CPU preview needs none of them, so for it those failures are reported but do not fail the run.
Nothing here downloads, builds a model session or starts Ray: the Ray answer is injected.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from sweedle_core.config import Settings
from sweedle_core.generation.hunyuan_texture import PAINT_SUBFOLDERS
from sweedle_core.generation.hunyuan_weights import local_root, locate_weights, needs_hy3dshape
from sweedle_core.hy3dshape_setup import missing_message
from sweedle_core.preprocess.rembg_models import REMBG_OFF, STOCK_MODELS, stock_model_paths

Status = Literal["ok", "warn", "fail", "info"]
# What the Ray probe answers: (GPUs Ray would offer, a sentence saying where that count comes
# from, count included), or a sentence saying why it could not tell.
RayGpus = tuple[float, str] | str

HUNYUAN_INSTALL = 'pip install -e ".[hunyuan]" && pip install --no-deps hy3dgen==2.0.2'
_import = importlib.import_module  # one seam, so tests can make an import fail any way
_TAGS: dict[str, str] = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]", "info": "[info]"}

# VRAM as the upstream READMEs state it. Hunyuan3D-2: "6 GB VRAM for shape generation and 16 GB
# for shape and texture generation in total". Hunyuan3D-2.1: "10 GB VRAM for shape generation,
# 21GB for texture generation and 29GB for shape and texture generation in total".
SHAPE_GB = {"2.0": 6.0, "2.1": 10.0}
TEXTURE_GB = {"2.0": (16.0, "16 GB for shape and texture in total"), "2.1": (21.0, "21 GB")}


@dataclass(frozen=True)
class Check:
    """One line of the report. ``required``: generation with the configured backend needs it."""

    name: str
    status: Status
    detail: str
    required: bool = False


# What each built-in backend needs, by check name; the others are reported for information.
NEEDS: dict[str, frozenset[str]] = {
    "hunyuan3d": frozenset({"torch", "hy3dgen", "hy3dshape", "weights", "ray"}),
    "depth": frozenset({"torch", "depth"}),
    "silhouette": frozenset(),
}


def run_checks(
    settings: Settings, ray_gpus: Callable[[], RayGpus], config: str | None = None
) -> list[Check]:
    """Every check, in report order (the config and backend first, then what it needs, then
    the extras, then which generator the app would run). ``config`` says which Serve config
    the settings come from."""
    backend = settings.generator_backend
    hunyuan = backend == "hunyuan3d"
    v21 = needs_hy3dshape(settings.hunyuan_model_path, settings.hunyuan_subfolder)
    torch_checks, cuda = check_torch(settings, v21)
    checks = [
        *([Check("config", "info", config)] if config else []),
        check_backend(settings),
        *torch_checks,
        *check_shape_packages(settings, v21),
        check_texture(settings, cuda, hunyuan),
        check_weights(settings),
        check_depth(settings),
        check_rembg(settings),
        check_text_to_image(settings),
        check_ray(settings, ray_gpus),
    ]
    needed = NEEDS.get(backend)
    if needed is not None:
        fallbacks = _chain(settings)[1:]
        checks = [c if c.name in needed else _not_needed(c, backend, fallbacks) for c in checks]
    return [*checks, check_fallback(settings, checks)]


def _chain(settings: Settings) -> list[str]:
    """The configured backend, then the fallbacks it hands over to, in order."""
    from sweedle_core.generation.registry import FALLBACKS

    chain = [settings.generator_backend]
    while settings.generator_fallback and chain[-1] in FALLBACKS:
        chain.append(FALLBACKS[chain[-1]])
    return chain


def _not_needed(check: Check, backend: str, fallbacks: list[str]) -> Check:
    """A check the configured backend does not need: reported, not failing the run."""
    if check.status != "fail":
        return replace(check, required=False)
    users = [name for name in fallbacks if check.name in NEEDS[name]]
    if users:
        note = f" (only the fallback needs this: {', '.join(users)})"
    else:
        note = f" (GENERATOR_BACKEND={backend} does not need this)"
    return replace(check, required=False, detail=check.detail + note)


def check_fallback(settings: Settings, checks: list[Check]) -> Check:
    """Which generator the app would run: the configured one, or the fallback it hands to."""
    failed = {c.name for c in checks if c.status == "fail"}
    backend = settings.generator_backend
    if backend not in NEEDS:
        return Check("generator", "info", f"{backend} is a plugin: not checked here")
    if "ray" in failed and "ray" in NEEDS[backend]:
        detail = "the Generator replica waits for a GPU that Ray does not have: nothing runs"
        return Check("generator", "fail", detail, required=True)
    runs = next((b for b in _chain(settings) if not NEEDS[b] & failed), None)
    if runs == backend:
        return Check("generator", "ok", f"{backend} runs")
    if runs is None:
        detail = f"{backend} cannot run and GENERATOR_FALLBACK is off: jobs fail"
        return Check("generator", "fail", detail, required=True)
    return Check(
        "generator", "warn", f"{backend} cannot run here; the app runs {runs} instead (fallback)"
    )


def exit_code(checks: list[Check]) -> int:
    """1 when something the configured backend needs failed, else 0."""
    return 1 if any(c.status == "fail" and c.required for c in checks) else 0


def verdict(checks: list[Check]) -> str:
    needed = [c.name for c in checks if c.status == "fail" and c.required and c.name != "generator"]
    generator = next((c for c in checks if c.name == "generator"), None)
    if needed:
        said = f"the configured generator cannot run until these pass: {', '.join(needed)}"
        if generator is not None and generator.status == "warn":
            return f"{said}; meanwhile {generator.detail.split('; ', 1)[-1]}"
        return said.replace("the configured generator cannot run", "generation cannot work")
    others = [c.name for c in checks if c.status == "fail"]
    warnings = sum(c.status == "warn" for c in checks)
    ready = "generation works with the configured backend"
    if others:
        ready += f"; hunyuan3d would not ({', '.join(others)} failed)"
    return ready + (f"; {warnings} warning(s) above" if warnings else "")


def format_report(checks: list[Check]) -> str:
    """One line per check, ``[ ok ] name: detail``, then the verdict."""
    lines = [f"{_TAGS[c.status]} {c.name}: {c.detail}" for c in checks]
    tag = _TAGS["fail"] if exit_code(checks) else _TAGS["ok"]
    lines.append(f"{tag} verdict: {verdict(checks)}")
    return "\n".join(lines)


def report_data(checks: list[Check]) -> dict[str, Any]:
    """The report as JSON-ready data: ``ok``, ``exit_code``, ``verdict`` and the checks."""
    code = exit_code(checks)
    return {
        "ok": code == 0,
        "exit_code": code,
        "verdict": verdict(checks),
        "checks": [asdict(c) for c in checks],
    }


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
        cuda, count, why = False, 0, f"CUDA fails: {_describe(exc)}"
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
        return Check(name, "warn", f"cannot read its properties: {_describe(exc)}")
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
    folder = local_root(settings.hunyuan_texture_model_path, settings.hy3dgen_models)
    missing = [name for name in PAINT_SUBFOLDERS if not (folder / name).is_dir()]
    if missing:
        problems.append(f"its weights are not in {folder} (missing {', '.join(missing)})")
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
        detail = f"transformers is not installed ({HUNYUAN_INSTALL}): silhouette runs instead"
        return Check("depth", "fail", detail, required=True)
    try:
        folder = depth_model_folder(settings)
    except Exception as exc:  # ModelUnavailable names the model and the pull command
        return Check("depth", "fail", f"{exc}; silhouette runs meanwhile", required=True)
    return Check("depth", "ok", f"{settings.depth_model} at {folder}", required=True)


def check_rembg(settings: Settings) -> Check:
    """Whether the rembg model file is where rembg 2.0.86 looks (rembg is not imported), by the
    rules of `sweedle_core.preprocess.background.build_background_remover`."""
    fallback = "background removal uses the classical chain (flood fill, else GrabCut) instead"
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
    model = settings.text_to_image_model.strip()
    name = "text-to-image"
    if not model:
        return Check(name, "info", "text-to-3D disabled; set TEXT_TO_IMAGE_MODEL to enable it")
    missing = "text-to-3D requests will fail"
    if package_version("diffusers") is None:
        return Check(name, "warn", f"{model} is set but diffusers is not installed: {missing}")
    path = Path(os.path.expanduser(model))
    if path.is_absolute() or model.startswith((".", "~")) or path.is_dir():
        if (path / "model_index.json").is_file():
            return Check(name, "ok", f"{model}: local folder with model_index.json")
        return Check(name, "warn", f"{path} has no model_index.json: {missing}")
    cached = hub_cached(model, "model_index.json")
    if isinstance(cached, Path):
        return Check(name, "ok", f"{model}: in the Hugging Face cache ({cached.parent})")
    command = "sweedle models pull text-to-image"
    return Check(name, "warn", f"{model}: {cached}; download it with: {command}")


def hub_cached(repo_id: str, filename: str) -> Path | str:
    """The cached file, or why there is none."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except Exception as exc:
        return f"huggingface_hub is not importable ({_describe(exc)})"
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception as exc:  # a malformed repo id
        return _describe(exc)
    return Path(found) if isinstance(found, str) else "not in the Hugging Face cache"


def check_ray(settings: Settings, ray_gpus: Callable[[], RayGpus]) -> Check:
    """GPUs Ray offers; serve_config.yaml reserves num_gpus: 1 per Generator replica."""
    try:
        answer = ray_gpus()
    except Exception as exc:
        answer = f"the Ray probe failed: {_describe(exc)}"
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


def try_import(name: str) -> tuple[ModuleType | None, str]:
    """The module, or None and why: any exception counts (a broken CUDA library raises
    OSError or RuntimeError, not ImportError)."""
    try:
        return _import(name), ""
    except Exception as exc:
        return None, _describe(exc)


def package_version(distribution: str) -> str | None:
    """The installed distribution's version, None when it has no metadata."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
