"""``sweedle doctor``: what this machine has and lacks for generation, without loading a model.

Each check returns one `Check` (`probe`): the machine (`machine`: torch, GPUs, the Hunyuan3D
packages, Ray), the model files (`model_files`) and the file store (`storage`). Which failures matter depends on the
backend: ``hunyuan3d`` needs torch, its shape package, the weights and a GPU in Ray; ``depth``
needs torch and the depth model; ``silhouette`` needs nothing. The others are reported but do
not fail the run, and the report ends with the generator the app would run: the configured one,
or the fallback it hands over to. Nothing here downloads, builds a model session or starts Ray:
the Ray answer is injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from sweedle_core.config import Settings
from sweedle_core.doctor.machine import (
    RayGpus,
    check_backend,
    check_ray,
    check_shape_packages,
    check_torch,
)
from sweedle_core.doctor.model_files import (
    check_depth,
    check_rembg,
    check_text_to_image,
    check_texture,
    check_weights,
)
from sweedle_core.doctor.probe import Check
from sweedle_core.doctor.storage import check_storage
from sweedle_core.generation.hunyuan_weights import needs_hy3dshape

__all__ = [
    "Check",
    "RayGpus",
    "check_shape_packages",
    "exit_code",
    "format_report",
    "report_data",
    "run_checks",
]

_TAGS: dict[str, str] = {"ok": "[ ok ]", "warn": "[warn]", "fail": "[FAIL]", "info": "[info]"}
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
    # The store is every backend's: checked beside them, not in the fallback chain.
    return [*checks, check_fallback(settings, checks), check_storage(settings)]


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
    return Check("generator", "warn", f"the app runs the fallback {runs} instead of {backend}")


def exit_code(checks: list[Check]) -> int:
    """1 when something the configured backend needs failed, else 0."""
    return 1 if any(c.status == "fail" and c.required for c in checks) else 0


def verdict(checks: list[Check]) -> str:
    """One sentence: whether the configured generator runs, and if not what runs meanwhile."""
    needed = [c.name for c in checks if c.status == "fail" and c.required and c.name != "generator"]
    generator = next((c for c in checks if c.name == "generator"), None)
    if needed:
        said = f"the configured generator cannot run until these pass: {', '.join(needed)}"
        if generator is not None and generator.status == "warn":
            return f"{said}; meanwhile {generator.detail}"
        return f"{said}; no generator runs"
    others = [c.name for c in checks if c.status == "fail"]
    warnings = sum(c.status == "warn" for c in checks)
    ready = "generation works with the configured backend"
    if others:
        ready += f" (not needed here: {', '.join(others)} failed)"
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
