"""Which generator a backend name means, and what runs when it cannot load. Built once per
replica, at start.

A backend whose model cannot be loaded (no weights on disk, a missing package, a corrupt file)
hands over to its fallback, the next CPU method down: ``hunyuan3d`` to ``depth``, ``depth`` to
``silhouette``, which needs nothing. The replica says which ran and why; every asset records the
generator that made it. ``GENERATOR_FALLBACK=false`` makes a backend that cannot load fail
instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from sweedle_core.config import GENERATOR_BACKENDS, Settings
from sweedle_core.generation.protocol import GeneratorBackend


def _silhouette(settings: Settings) -> GeneratorBackend:
    from sweedle_core.generation.silhouette import SilhouetteGenerator

    return SilhouetteGenerator()


def _depth(settings: Settings) -> GeneratorBackend:
    from sweedle_core.generation.depth import DepthGenerator, TransformersDepth
    from sweedle_core.models.catalog import depth_model_folder

    estimator = TransformersDepth(depth_model_folder(settings), device=settings.device)
    return DepthGenerator(
        estimator, relief=settings.depth_relief, thickness=settings.depth_thickness
    )


def _hunyuan3d(settings: Settings) -> GeneratorBackend:
    from sweedle_core.generation.hunyuan import Hunyuan3DGenerator

    return Hunyuan3DGenerator(
        model_path=settings.hunyuan_model_path,
        subfolder=settings.hunyuan_subfolder,
        device=settings.device,
        low_vram=settings.low_vram_mode,
        models_base=settings.hy3dgen_models,
        texture_model_path=settings.hunyuan_texture_model_path,
        gpu_surface=settings.gpu_surface_extraction,
    )


BACKENDS: dict[str, Callable[[Settings], GeneratorBackend]] = {
    "silhouette": _silhouette,
    "depth": _depth,
    "hunyuan3d": _hunyuan3d,
}
FALLBACKS = {"hunyuan3d": "depth", "depth": "silhouette"}
assert tuple(BACKENDS) == GENERATOR_BACKENDS


@dataclass(frozen=True)
class LoadedGenerator:
    """The generator that runs, and for each configured backend that could not, why."""

    generator: GeneratorBackend
    configured: str
    fallbacks: list[str] = field(default_factory=list)  # "depth: <why>", in the order tried

    @property
    def note(self) -> str | None:
        """For /health and the logs: what was asked for, what runs instead and why."""
        if not self.fallbacks:
            return None
        reasons = "; ".join(self.fallbacks)
        return f"{self.generator.name} runs instead of {self.configured}: {reasons}"


def build_generator(settings: Settings) -> LoadedGenerator:
    """The configured backend, else its fallbacks in turn; ``module:Class`` names a plugin
    class built with the settings (no fallback)."""
    name = settings.generator_backend
    if name not in BACKENDS:
        module_name, _, attr = name.partition(":")
        factory = getattr(importlib.import_module(module_name), attr)
        return LoadedGenerator(factory(settings), name)
    fallbacks: list[str] = []
    while True:
        try:
            return LoadedGenerator(BACKENDS[name](settings), settings.generator_backend, fallbacks)
        except Exception as exc:  # ModelUnavailable, an import or load error: try the next one
            following = FALLBACKS.get(name) if settings.generator_fallback else None
            if following is None:
                raise
            fallbacks.append(f"{name}: {' '.join(str(exc).split())}")
            name = following
