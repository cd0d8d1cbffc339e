"""Which generator a backend name means. Built once per replica, at start."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sweedle_core.config import Settings
from sweedle_core.generation.protocol import Generator


def _silhouette(settings: Settings) -> Generator:
    from sweedle_core.generation.silhouette import SilhouetteGenerator

    return SilhouetteGenerator()


def _hunyuan3d(settings: Settings) -> Generator:
    from sweedle_core.generation.hunyuan import Hunyuan3DGenerator

    return Hunyuan3DGenerator(
        model_path=settings.hunyuan_model_path,
        subfolder=settings.hunyuan_subfolder,
        device=settings.device,
        low_vram=settings.low_vram_mode,
        models_base=settings.hy3dgen_models,
        texture_model_path=settings.hunyuan_texture_model_path,
    )


BACKENDS: dict[str, Callable[[Settings], Generator]] = {
    "silhouette": _silhouette,
    "hunyuan3d": _hunyuan3d,
}


def build_generator(settings: Settings) -> Generator:
    """The configured backend; ``module:Class`` names a plugin class built with the settings."""
    name = settings.generator_backend
    if name in BACKENDS:
        return BACKENDS[name](settings)
    module_name, _, attr = name.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    return factory(settings)
