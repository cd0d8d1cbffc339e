"""Which models the configured services use, where each one is, and how to fetch it.

One entry per model a service can load: the rembg segmenter (preprocessing), the depth model
(the CPU generator), the Hunyuan3D shape and texture weights (the GPU generator) and the
text-to-image pipeline (text-to-3D). Each says where it comes from, what runs without it and
whether the settings need it. ``sweedle models`` lists and pulls them; the services load them
from disk and never download.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from sweedle_core.config import Settings
from sweedle_core.errors import ModelUnavailable
from sweedle_core.generation.hunyuan_texture import PAINT_MARKER, PAINT_SUBFOLDERS, paint_ready
from sweedle_core.generation.hunyuan_weights import WEIGHT_FILES, is_local_model_path, local_root
from sweedle_core.models import hub
from sweedle_core.models.rembg_fetch import RembgDownload
from sweedle_core.preprocess.background import CLASSICAL_CUTOUT
from sweedle_core.preprocess.rembg_models import REMBG_OFF, stock_model_paths

DEPTH_FILES = ("*.json", "*.safetensors")  # config, processor config, weights


class Source(Protocol):
    """Where a model's files come from."""

    def describe(self) -> str: ...

    def find(self) -> Path | None:
        """The model on disk, ready to load (existence only, no checksums), or None."""
        ...

    def damaged(self, thorough: bool = False) -> list[str]:
        """Files on disk that fail their checksum. Hub files that passed before and have not
        changed are not read again unless ``thorough``."""
        ...

    def url(self) -> str | None:
        """The server fetching needs, or None when there is nothing to fetch (a local path)."""
        ...

    def fetch(self, progress: bool) -> Path:
        """Download what is missing or damaged; returns the model on disk."""
        ...


@dataclass(frozen=True)
class HubFiles:
    """Files of a hub repository, fetched into huggingface_hub's cache.

    ``choose`` picks the patterns from the repository's file list when the right files are
    only known from it (which weights format a Hunyuan3D folder offers); ``ready`` says
    whether a cached snapshot holds a loadable model.
    """

    repo_id: str
    patterns: tuple[str, ...]
    marker: str  # a file every fetched snapshot holds, to find it in the cache by
    ready: Callable[[Path], bool]
    choose: Callable[[list[str]], tuple[str, ...]] | None = None
    summary: str = ""  # what is fetched, when the patterns say it badly

    def describe(self) -> str:
        what = self.summary or ", ".join(self.patterns)
        return f"{self.repo_id} ({what}) from {hub.endpoint()}"

    def find(self) -> Path | None:
        snapshot = hub.cached_snapshot(self.repo_id, self.marker)
        if snapshot is None or not self.ready(snapshot):
            return None
        # Every file the patterns name must be there, as the hub listed them (a download cut
        # off half-way leaves some out); chosen patterns name alternatives, ready() judges.
        if self.choose is None and not hub.complete(self.repo_id, self.patterns):
            return None
        return snapshot

    def damaged(self, thorough: bool = False) -> list[str]:
        snapshot = hub.cached_snapshot(self.repo_id, self.marker)
        if snapshot is None:
            return []
        return [str(p.relative_to(snapshot)) for p in self._damaged(snapshot, thorough)]

    def _damaged(self, snapshot: Path, thorough: bool = False) -> list[Path]:
        return hub.damaged_files(snapshot, self.patterns, thorough)

    def url(self) -> str | None:
        return hub.endpoint()

    def fetch(self, progress: bool) -> Path:
        snapshot = hub.cached_snapshot(self.repo_id, self.marker)
        if snapshot is not None:
            hub.forget(self._damaged(snapshot))
        patterns = self.choose(hub.repo_files(self.repo_id)) if self.choose else self.patterns
        folder = hub.download_snapshot(self.repo_id, patterns, progress)
        if not self.ready(folder):
            raise ModelUnavailable(f"{self.repo_id}: the download holds no loadable model")
        still = self._damaged(folder)
        if still:
            hub.forget(still)
            raise ModelUnavailable(
                f"{self.repo_id}: {', '.join(str(p.relative_to(folder)) for p in still)} failed "
                "their checksum after downloading; they were removed, pull again"
            )
        return folder


@dataclass(frozen=True)
class DiffusersPipeline:
    """A diffusers pipeline from the hub, fetched by diffusers' own ``download``, which picks
    the files the pipeline loads (one weights format and variant, not every file)."""

    repo_id: str

    def describe(self) -> str:
        return f"{self.repo_id} (the files diffusers loads) from {hub.endpoint()}"

    def find(self) -> Path | None:
        try:
            from diffusers import DiffusionPipeline

            folder = Path(DiffusionPipeline.download(self.repo_id, local_files_only=True))
        except Exception:  # not cached, or diffusers missing
            return None
        return folder if (folder / "model_index.json").is_file() else None

    def damaged(self, thorough: bool = False) -> list[str]:
        folder = self.find()
        if folder is None:
            return []
        return [str(p.relative_to(folder)) for p in hub.damaged_files(folder, thorough=thorough)]

    def url(self) -> str | None:
        return hub.endpoint()

    def fetch(self, progress: bool) -> Path:
        from diffusers import DiffusionPipeline
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

        folder = self.find()
        if folder is not None:
            hub.forget(hub.damaged_files(folder))
        (enable_progress_bars if progress else disable_progress_bars)()
        return Path(DiffusionPipeline.download(self.repo_id))


@dataclass(frozen=True)
class RembgStock:
    """A rembg stock model, fetched as rembg fetches it (its URL, its MD5, its folder)."""

    model: str
    u2net_home: Path | None
    mirror: str = ""

    def describe(self) -> str:
        return f"rembg {self.model} from {self.download.url}"

    def find(self) -> Path | None:
        return next(
            (p for p in stock_model_paths(self.model, self.u2net_home) if p.is_file()), None
        )

    def damaged(self, thorough: bool = False) -> list[str]:
        from sweedle_core.models.rembg_fetch import file_is_intact

        found = self.find()  # one file of ~176 MB: always checked
        return [] if found is None or file_is_intact(self.download, found) else [str(found)]

    def url(self) -> str | None:
        return self.download.url

    def fetch(self, progress: bool) -> Path:
        from sweedle_core.models.rembg_fetch import fetch

        return fetch(self.download, progress)

    @cached_property
    def download(self) -> RembgDownload:
        """rembg's own URL, checksum and file for the model, read once (it imports rembg)."""
        from sweedle_core.models.rembg_fetch import rembg_download

        return rembg_download(self.model, self.mirror, self.u2net_home)


@dataclass(frozen=True)
class LocalFolder:
    """A model the settings name by path: nothing to fetch, it is there or it is not."""

    path: Path
    ready: Callable[[Path], bool]  # whether the path holds a loadable model
    needs: str  # what it must hold, for the operator

    def describe(self) -> str:
        return f"the local path {self.path} (with {self.needs})"

    def find(self) -> Path | None:
        return self.path if self.ready(self.path) else None

    def damaged(self, thorough: bool = False) -> list[str]:
        return []

    def url(self) -> str | None:
        return None

    def fetch(self, progress: bool) -> Path:
        found = self.find()
        if found is None:
            raise ModelUnavailable(
                f"{self.path} is a local path, so there is nothing to download: put the model "
                f"there ({self.needs}), or name a hub id instead"
            )
        return found


@dataclass(frozen=True)
class Model:
    """One model a service loads."""

    name: str  # what `sweedle models pull NAME` takes
    service: str
    source: Source
    size: str  # what the download weighs, roughly, for the operator
    without: str  # what runs when the model is missing
    wanted: bool = True  # whether the settings make a service load it
    why_not: str = ""  # when not wanted, why it is listed all the same


def models_for(settings: Settings) -> list[Model]:
    """Every model the configured services can load, the ones they need marked ``wanted``."""
    backend = settings.generator_backend
    fallback = settings.generator_fallback
    models = [
        _rembg(settings),
        _depth(settings, wanted=backend == "depth" or (backend == "hunyuan3d" and fallback)),
        _hunyuan_shape(settings, wanted=backend == "hunyuan3d"),
        _hunyuan_texture(settings, wanted=backend == "hunyuan3d" and painting_possible()),
        text_to_image_model(settings),
    ]
    return [m for m in models if m is not None]


def select(models: Sequence[Model], names: Sequence[str]) -> list[Model]:
    """The models named, or the wanted ones when no name is given; ValueError for an unknown
    name, naming the known ones."""
    if not names:
        return [m for m in models if m.wanted]
    known = {m.name: m for m in models}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(
            f"unknown model {', '.join(map(repr, unknown))}: the settings know {', '.join(known)}"
        )
    return [known[n] for n in dict.fromkeys(names)]


def depth_model_folder(settings: Settings) -> Path:
    """The depth model on disk, or `ModelUnavailable` saying how to fetch it."""
    model = _depth(settings, wanted=True)
    found = model.source.find()
    if found is None:
        raise ModelUnavailable(
            f"the depth model {settings.depth_model} is not on disk ({model.source.describe()}); "
            f"`sweedle models pull depth` fetches it ({model.size})"
        )
    return found


def painting_possible() -> bool:
    """Whether Hunyuan3D's texture model could run here: a CUDA GPU and hy3dgen's paint
    pipeline built (without them its weights would only take disk space)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        from hy3dgen.texgen import Hunyuan3DPaintPipeline  # noqa: F401
    except Exception:
        return False
    return True


def _rembg(settings: Settings) -> Model | None:
    service = "preprocessing: background removal"
    if settings.rembg_model_file is not None:
        path = settings.rembg_model_file
        source: Source = LocalFolder(path, lambda p: p.is_file(), "the ONNX file")
        return Model("rembg", service, source, "-", CLASSICAL_CUTOUT)
    if settings.rembg_model == REMBG_OFF:
        return None
    source = RembgStock(settings.rembg_model, settings.u2net_home, settings.rembg_download_url)
    return Model(
        "rembg", service, source, _REMBG_SIZES.get(settings.rembg_model, "?"), CLASSICAL_CUTOUT
    )


def _depth(settings: Settings, wanted: bool) -> Model:
    service = "generation: the depth generator (CPU default)"
    without = "the silhouette generator (the outline inflated, no depth)"
    if hub.is_local_path(settings.depth_model):
        folder = Path(settings.depth_model).expanduser()
        source: Source = LocalFolder(folder, _transformers_ready, "config.json and *.safetensors")
    else:
        source = HubFiles(settings.depth_model, DEPTH_FILES, "config.json", _transformers_ready)
    why = "" if wanted else f"GENERATOR_BACKEND={settings.generator_backend} does not use it"
    return Model("depth", service, source, "~100 MB", without, wanted, why)


def _hunyuan_shape(settings: Settings, wanted: bool) -> Model:
    service = "generation: Hunyuan3D shape (GPU)"
    sub = settings.hunyuan_subfolder
    without = "the depth generator, then silhouette (GENERATOR_FALLBACK)"
    local = local_root(settings.hunyuan_model_path, settings.hy3dgen_models)
    source: Source
    if is_local_model_path(settings.hunyuan_model_path) or (local / sub).is_dir():
        needs = f"config.yaml and one of {', '.join(WEIGHT_FILES)}"
        source = LocalFolder(local / sub, _shape_ready, needs)
    else:
        source = HubFiles(
            settings.hunyuan_model_path,
            (f"{sub}/config.yaml", *(f"{sub}/{name}" for name in WEIGHT_FILES)),
            marker=f"{sub}/config.yaml",
            ready=lambda folder: _shape_ready(folder / sub),
            choose=lambda files: _shape_files(files, sub),
            summary=f"{sub}/: config.yaml and one weights file",
        )
    why = "" if wanted else f"GENERATOR_BACKEND={settings.generator_backend} does not use it"
    return Model("hunyuan-shape", service, source, "~5 GB (2.0), ~7 GB (2.1)", without, wanted, why)


def _hunyuan_texture(settings: Settings, wanted: bool) -> Model:
    service = "generation: Hunyuan3D texture (texture=true, CUDA)"
    without = "colours projected from the photo"
    patterns = tuple(f"{sub}/*" for sub in PAINT_SUBFOLDERS)
    local = local_root(settings.hunyuan_texture_model_path, settings.hy3dgen_models)
    source: Source
    if (
        is_local_model_path(settings.hunyuan_texture_model_path)
        or (local / PAINT_SUBFOLDERS[0]).is_dir()
    ):
        source = LocalFolder(
            local, paint_ready, f"{', '.join(PAINT_SUBFOLDERS)} with {PAINT_MARKER}"
        )
    else:
        source = HubFiles(
            settings.hunyuan_texture_model_path,
            patterns,
            marker=f"{PAINT_SUBFOLDERS[0]}/{PAINT_MARKER}",
            ready=paint_ready,
        )
    why = "" if wanted else "it runs only on a CUDA GPU with hy3dgen's paint pipeline built"
    return Model("hunyuan-texture", service, source, "~10 GB", without, wanted, why)


def text_to_image_model(settings: Settings) -> Model | None:
    """The text-to-image pipeline TEXT_TO_IMAGE_MODEL names, None when text-to-3D is off."""
    model = settings.text_to_image_model.strip()
    if not model:
        return None
    service = "text-to-3D: painting the prompt"
    without = "none: text-to-3D requests fail"
    source: Source
    if hub.is_local_path(model):
        folder = Path(model).expanduser()
        source = LocalFolder(
            folder, lambda p: (p / "model_index.json").is_file(), "model_index.json"
        )
    else:
        source = DiffusersPipeline(model)
    return Model("text-to-image", service, source, "several GB", without)


def _transformers_ready(folder: Path) -> bool:
    """A transformers model folder: its config and its weights."""
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _shape_ready(folder: Path) -> bool:
    """A Hunyuan3D shape folder as `hunyuan_weights.locate_weights` accepts it."""
    return (folder / "config.yaml").is_file() and any((folder / n).is_file() for n in WEIGHT_FILES)


def _shape_files(files: list[str], subfolder: str) -> tuple[str, ...]:
    """config.yaml and the one weights file Sweedle would load, of those the repository has
    (a Hunyuan3D folder ships the same weights as .safetensors and .ckpt, 5 GB each)."""
    offered = set(files)
    config = f"{subfolder}/config.yaml"
    weights = next(
        (f"{subfolder}/{n}" for n in WEIGHT_FILES if f"{subfolder}/{n}" in offered), None
    )
    if config not in offered or weights is None:
        raise ModelUnavailable(
            f"the repository has no {config} with {' or '.join(WEIGHT_FILES)}: check "
            f"HUNYUAN_MODEL_PATH and HUNYUAN_SUBFOLDER"
        )
    return config, weights


# Download sizes of the two rembg models most used (the others: see rembg's README).
_REMBG_SIZES = {"u2net": "176 MB", "u2netp": "4.7 MB"}
