"""The hunyuan3d backend: install and weights errors, the load call, progress and mesh tidying.

Most tests stand fake ``torch``, ``hy3dgen.shapegen`` and ``huggingface_hub`` modules in
``sys.modules``, so they run (in milliseconds) whether or not the real libraries are installed.
Tests of the real library skip unless ``hy3dgen.shapegen`` imports.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.errors import GenerationFailed, JobCancelled, ModelUnavailable
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import write_raw_mesh
from sweedle_core.export.pipeline import ExportOptions, export_asset
from sweedle_core.export.texture_maps import (
    BASE_COLOR,
    METALLIC_ROUGHNESS,
    NORMAL,
    TextureMaps,
    texture_maps_of,
    textured_visual,
)
from sweedle_core.generation.finish import finished
from sweedle_core.generation.hunyuan import Hunyuan3DGenerator
from sweedle_core.generation.hunyuan_surface import tidy_mesh
from sweedle_core.generation.shape import read_shape, shape_bytes
from sweedle_core.params import GenerationParams
from tests.generation import make_mesh
from tests.painting import PAINT_SIZE, Hy3dgenPaint
from tests.textures import glb_maps, gradient, is_flat, same_pixels, surface_colors, welded

MODEL, SUBFOLDER = "tencent/Hunyuan3D-2", "hunyuan3d-dit-v2-0"


class FakeTorchGenerator:
    def __init__(self, device: str) -> None:
        self.device = device
        self.seed: int | None = None

    def manual_seed(self, seed: int) -> FakeTorchGenerator:
        self.seed = seed
        return self


def sphere_logits(n: int = 32, radius: float = 0.5) -> np.ndarray:
    """Occupancy logits of a sphere on hy3dgen's (n + 1)^3 grid over [-1.01, 1.01]^3, positive
    inside, off-centre so the tidy-up has to centre it."""
    axis = np.linspace(-1.01, 1.01, n + 1)
    x, y, z = np.meshgrid(axis - 0.2, axis + 0.1, axis, indexing="ij")
    return (radius - np.sqrt(x**2 + y**2 + z**2)).astype(np.float32) * 10


class FakeTensor:
    """The little of a torch tensor the volume hand-off touches."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __getitem__(self, index: int) -> FakeTensor:
        return FakeTensor(self.values[index])

    def __truediv__(self, other: float) -> FakeTensor:
        return self

    def to(self, dtype: str) -> FakeTensor:
        return FakeTensor(self.values.astype(dtype))

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.values


class VanillaVolumeDecoding:
    def __init__(self, pipeline: FakePipeline) -> None:
        self.pipeline = pipeline

    def __call__(self, latents: Any, geo_decoder: Any, **kwargs: Any) -> FakeTensor:
        self.pipeline.decoded.append({"decoder": type(self).__name__, **kwargs})
        if self.pipeline.fail_decoding:
            raise RuntimeError("CUDA out of memory (a stand-in)")
        return FakeTensor(self.pipeline.grid[None])


class FlashVDMVolumeDecoding(VanillaVolumeDecoding):
    """Found by the generator in the module of the model's own decoder, as in hy3dgen."""

    def __init__(self) -> None:
        self.pipeline = FakePipeline.last

    def __call__(self, latents: Any, geo_decoder: Any, **kwargs: Any) -> FakeTensor:
        geo_decoder.cross_attn_decoder.attn.attention.attn_processor = "flashvdm"
        return super().__call__(latents, geo_decoder, **kwargs)


class MCSurfaceExtractor:
    """The model's own (CPU) extractor; its module is where the GPU one is looked for."""


class DMCSurfaceExtractor:
    """hy3dgen's GPU extractor: a sphere's surface, recording its calls."""

    calls: list[dict[str, Any]] = []

    def __call__(self, grid: Any, **kwargs: Any) -> list[Any]:
        self.calls.append(kwargs)
        sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
        faces = np.ascontiguousarray(sphere.faces[:, ::-1])  # upstream flips them back later
        return [types.SimpleNamespace(mesh_v=sphere.vertices, mesh_f=faces)]


class FakeVae:
    scale_factor = 1.0

    def __init__(self, geo_decoder: Any, volume_decoder: Any) -> None:
        self.geo_decoder = geo_decoder
        self.volume_decoder = volume_decoder
        self.surface_extractor = MCSurfaceExtractor()

    def __call__(self, latents: Any) -> Any:
        return latents


class FakePipeline:
    """Records how it was loaded and called; runs the step callback like hy3dgen does and
    decodes to ``grid`` through a VAE-shaped object."""

    grid: np.ndarray = sphere_logits()
    last: FakePipeline

    def __init__(self, model_path: str, kwargs: dict[str, Any]) -> None:
        self.loaded_with = {"model_path": model_path, **kwargs}
        self.calls: list[dict[str, Any]] = []
        self.decoded: list[dict[str, Any]] = []
        self.steps_run = 0
        self.fail_decoding = False
        attention = types.SimpleNamespace(attn_processor="default")
        geo_decoder = types.SimpleNamespace(
            cross_attn_decoder=types.SimpleNamespace(
                attn=types.SimpleNamespace(attention=attention)
            )
        )
        self.vae = FakeVae(geo_decoder, VanillaVolumeDecoding(self))
        FakePipeline.last = self

    @property
    def attention(self) -> Any:
        return self.vae.geo_decoder.cross_attn_decoder.attn.attention

    @classmethod
    def from_pretrained(cls, model_path: str, **kwargs: Any) -> FakePipeline:
        return cls(model_path, kwargs)

    def __call__(self, image: Image.Image, **kwargs: Any) -> FakeTensor:
        self.calls.append({"image": image, **kwargs})
        for i in range(kwargs["num_inference_steps"]):
            if i % kwargs["callback_steps"] == 0:
                kwargs["callback"](i, 1.0 - i, object())
            self.steps_run += 1
        return FakeTensor(np.zeros((1, 4, 8), dtype=np.float32))


class FakeCuda:
    def __init__(self) -> None:
        self.available = False
        self.emptied = 0

    def is_available(self) -> bool:
        return self.available

    def empty_cache(self) -> None:
        self.emptied += 1


class FakeTorch(types.ModuleType):
    float16, float32 = "float16", "float32"
    Generator = FakeTorchGenerator
    inference_mode = staticmethod(contextlib.nullcontext)

    def __init__(self) -> None:
        super().__init__("torch")
        self.cuda = FakeCuda()


def fake_module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


def params(**values: Any) -> GenerationParams:
    return GenerationParams.model_validate(values)


@pytest.fixture
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> FakeTorch:
    torch = FakeTorch()
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


@pytest.fixture
def hub_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A fake hub that has nothing: records each ask and fails as the real one does offline."""
    calls: list[dict[str, Any]] = []

    def snapshot_download(**kwargs: Any) -> str:
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise FileNotFoundError("Cannot find an appropriate cached snapshot folder")
        raise ConnectionError("Name or service not known")

    hub = fake_module("huggingface_hub", snapshot_download=snapshot_download)
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    return calls


@pytest.fixture
def models_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_torch: FakeTorch) -> Path:
    """Fake torch and hy3dgen, ``HY3DGEN_MODELS`` in a temporary folder, the hub offline."""
    shapegen = fake_module("hy3dgen.shapegen", Hunyuan3DDiTFlowMatchingPipeline=FakePipeline)
    monkeypatch.setitem(sys.modules, "hy3dgen", types.ModuleType("hy3dgen"))
    monkeypatch.setitem(sys.modules, "hy3dgen.shapegen", shapegen)
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(FakePipeline, "grid", sphere_logits())
    return tmp_path


def write_weights(models_dir: Path, weights: str = "model.fp16.safetensors") -> Path:
    folder = models_dir / MODEL / SUBFOLDER
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {}\n")
    (folder / weights).write_bytes(b"")
    return folder


def rgba_disc(size: int = 64) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((12, 12, size - 12, size - 12), fill=(200, 80, 40, 255))
    return image


# --- install errors ------------------------------------------------------------------------


def test_without_hy3dgen_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hy3dgen", None)
    monkeypatch.setitem(sys.modules, "hy3dgen.shapegen", None)

    with pytest.raises(ModelUnavailable) as info:
        Hunyuan3DGenerator(MODEL, SUBFOLDER)

    message = info.value.message
    assert "hy3dgen" in message
    assert 'pip install -e ".[hunyuan]"' in message
    assert "pip install --no-deps hy3dgen==2.0.2" in message


def test_with_torch_but_without_hy3dgen_the_error_names_hy3dgen(
    monkeypatch: pytest.MonkeyPatch, fake_torch: FakeTorch
) -> None:
    monkeypatch.setitem(sys.modules, "hy3dgen", None)
    monkeypatch.setitem(sys.modules, "hy3dgen.shapegen", None)

    with pytest.raises(ModelUnavailable, match="hy3dgen 2.0.2") as info:
        Hunyuan3DGenerator(MODEL, SUBFOLDER)

    assert "pip install --no-deps hy3dgen==2.0.2" in info.value.message


def test_the_21_weights_without_hy3dshape_point_to_its_repository_and_to_20(
    monkeypatch: pytest.MonkeyPatch, fake_torch: FakeTorch
) -> None:
    monkeypatch.setitem(sys.modules, "hy3dshape", None)
    monkeypatch.setitem(sys.modules, "hy3dshape.pipelines", None)

    with pytest.raises(ModelUnavailable) as info:
        Hunyuan3DGenerator("tencent/Hunyuan3D-2.1", "hunyuan3d-dit-v2-1")

    message = info.value.message
    assert "hy3dshape" in message
    assert "`make hy3dshape`" in message and "not on PyPI" in message
    assert "tencent/Hunyuan3D-2" in message and "hunyuan3d-dit-v2-0" in message


def test_the_21_weights_load_through_hy3dshape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_torch: FakeTorch
) -> None:
    pipelines = fake_module("hy3dshape.pipelines", Hunyuan3DDiTFlowMatchingPipeline=FakePipeline)
    monkeypatch.setitem(sys.modules, "hy3dshape", types.ModuleType("hy3dshape"))
    monkeypatch.setitem(sys.modules, "hy3dshape.pipelines", pipelines)
    monkeypatch.setitem(sys.modules, "hy3dgen", None)  # 2.1 must not need hy3dgen
    folder = tmp_path / "tencent/Hunyuan3D-2.1/hunyuan3d-dit-v2-1"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {}\n")
    (folder / "model.fp16.ckpt").write_bytes(b"")
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path))

    generator = Hunyuan3DGenerator("tencent/Hunyuan3D-2.1", "hunyuan3d-dit-v2-1")

    assert isinstance(generator._pipeline, FakePipeline)
    assert generator._pipeline.loaded_with["use_safetensors"] is False


# --- weights -------------------------------------------------------------------------------


def test_absent_weights_fail_at_once_naming_the_folder_and_the_fetch_command(
    models_dir: Path, hub_calls: list[dict[str, Any]]
) -> None:
    with pytest.raises(ModelUnavailable) as info:
        Hunyuan3DGenerator(MODEL, SUBFOLDER)

    message = info.value.message
    assert str(models_dir / MODEL / SUBFOLDER) in message
    assert "HY3DGEN_MODELS/<model_path>/<subfolder>" in message
    assert "sweedle models pull hunyuan-shape" in message
    assert f"huggingface-cli download {MODEL} --include '{SUBFOLDER}/*'" in message
    assert hub_calls == []  # a replica never downloads: `sweedle models pull` does


def test_weights_in_the_hub_cache_are_found_without_asking_the_hub(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path, tmp_path: Path
) -> None:
    from huggingface_hub import constants

    commit = "a" * 40
    repo = tmp_path / "hub" / f"models--{MODEL.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (snapshot / SUBFOLDER).mkdir(parents=True)
    (snapshot / SUBFOLDER / "config.yaml").write_text("model: {}\n")
    (snapshot / SUBFOLDER / "model.fp16.safetensors").write_bytes(b"")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    assert generator._pipeline.loaded_with["model_path"] == str(snapshot)
    assert generator.weights_file == snapshot / SUBFOLDER / "model.fp16.safetensors"


def test_absent_weights_without_huggingface_hub_name_the_folder(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)

    with pytest.raises(ModelUnavailable, match="sweedle models pull hunyuan-shape"):
        Hunyuan3DGenerator(MODEL, SUBFOLDER)


def test_an_absent_absolute_path_is_not_looked_up_on_the_hub(
    models_dir: Path, hub_calls: list[dict[str, Any]]
) -> None:
    absent = models_dir / "nowhere"

    with pytest.raises(ModelUnavailable, match="local path"):
        Hunyuan3DGenerator(str(absent), SUBFOLDER)

    assert hub_calls == []


@pytest.mark.parametrize(
    ("weights", "use_safetensors"),
    [("model.fp16.safetensors", True), ("model.fp16.ckpt", False)],
)
def test_local_weights_load_once_in_the_format_on_disk(
    models_dir: Path, hub_calls: list[dict[str, Any]], weights: str, use_safetensors: bool
) -> None:
    write_weights(models_dir, weights)

    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    assert generator.device == "cpu"
    assert generator._pipeline.loaded_with == {
        "model_path": str(models_dir / MODEL),
        "subfolder": SUBFOLDER,
        "device": "cpu",
        "dtype": "float32",
        "use_safetensors": use_safetensors,
        "variant": "fp16",
    }
    assert hub_calls == []


def test_a_folder_without_weights_is_reported_incomplete(models_dir: Path) -> None:
    folder = write_weights(models_dir)
    (folder / "model.fp16.safetensors").unlink()

    with pytest.raises(ModelUnavailable, match="incomplete"):
        Hunyuan3DGenerator(MODEL, SUBFOLDER)


def test_cuda_asked_for_without_a_gpu_is_model_unavailable(models_dir: Path) -> None:
    write_weights(models_dir)

    with pytest.raises(ModelUnavailable, match="no CUDA GPU"):
        Hunyuan3DGenerator(MODEL, SUBFOLDER, device="cuda")


# --- generation ----------------------------------------------------------------------------


def test_the_gpu_stage_reports_every_step_and_hands_off_the_decoded_volume(
    models_dir: Path,
) -> None:
    write_weights(models_dir)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    wanted = params(
        inference_steps=3, guidance_scale=4.5, octree_resolution=32, seed=7, num_chunks=2000
    )
    events: list[tuple[float, str]] = []

    shape = generator.generate_shape(rgba_disc(), wanted, lambda f, m: events.append((f, m)))

    call = generator._pipeline.calls[0]
    assert call["image"].mode == "RGBA"
    assert call["num_inference_steps"] == 3
    assert call["guidance_scale"] == 4.5
    assert call["output_type"] == "latent", "the pipeline stops before its CPU surface step"
    assert call["callback_steps"] == 1
    assert (call["generator"].device, call["generator"].seed) == ("cpu", 7)
    (decoded,) = generator._pipeline.decoded
    assert decoded["decoder"] == "VanillaVolumeDecoding"
    assert (decoded["octree_resolution"], decoded["num_chunks"]) == (32, 2000)

    messages = [m for _, m in events]
    steps = [m for m in messages if m.startswith("denoising")]
    assert steps == ["denoising step 1/3", "denoising step 2/3", "denoising step 3/3"]
    assert pytest.approx(events[messages.index("denoising step 1/3")][0]) == 0.05 + 0.85 / 3
    assert messages.index("denoising step 3/3") < messages.index("decoding the volume")
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)
    assert events[-1][0] == 1.0

    assert shape.method == "hunyuan"
    assert shape.arrays["grid"].shape == (33, 33, 33)
    assert shape.arrays["grid"].dtype == np.float16
    again = read_shape(shape_bytes(shape))  # what the CPU pool reads back
    assert np.array_equal(again.arrays["grid"], shape.arrays["grid"])


def test_the_cpu_stage_makes_an_outward_centred_coloured_mesh_within_the_face_budget(
    models_dir: Path,
) -> None:
    write_weights(models_dir)
    FakePipeline.grid = sphere_logits(n=64)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    wanted = params(inference_steps=1, octree_resolution=64, max_faces=2000)
    shape = generator.generate_shape(rgba_disc(), wanted, lambda f, m: None)
    events: list[tuple[float, str]] = []

    mesh = finished(
        read_shape(shape_bytes(shape)), rgba_disc(), wanted, lambda f, m: events.append((f, m))
    )

    assert isinstance(mesh, trimesh.Trimesh) and 0 < len(mesh.faces) <= 2000
    assert mesh.volume > 0
    assert abs(mesh.bounds.mean(axis=0)).max() < 1e-6
    assert mesh.extents.max() == pytest.approx(1.0, rel=0.1)  # the sphere's diameter
    assert mesh.metadata["generator"] == "hunyuan3d"
    assert mesh.metadata["texture"] == "image_projection"
    assert texture_maps_of(mesh) is not None, "the photo is baked into a UV texture"
    colours = surface_colors(mesh)
    assert (np.abs(colours[:, :3].astype(int) - (200, 80, 40)) < 30).all()
    assert [m for _, m in events][0] == "extracting the surface"


def test_no_surface_is_a_generation_failure(models_dir: Path) -> None:
    write_weights(models_dir)
    FakePipeline.grid = np.full((33, 33, 33), -5.0, dtype=np.float32)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    wanted = params(inference_steps=2, octree_resolution=32)
    shape = generator.generate_shape(rgba_disc(), wanted, lambda f, m: None)

    with pytest.raises(GenerationFailed, match="no surface .* try another seed"):
        finished(shape, rgba_disc(), wanted, lambda f, m: None)


def test_fast_decoding_uses_flashvdm_for_that_job_and_puts_the_model_back(
    models_dir: Path,
) -> None:
    write_weights(models_dir)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    pipeline = generator._pipeline
    fast = params(inference_steps=1, octree_resolution=32, fast_decoding=True)

    generator.generate_shape(rgba_disc(), fast, lambda f, m: None)
    generator.generate_shape(
        rgba_disc(), params(inference_steps=1, octree_resolution=32), lambda f, m: None
    )

    assert [d["decoder"] for d in pipeline.decoded] == [
        "FlashVDMVolumeDecoding",
        "VanillaVolumeDecoding",
    ]
    assert pipeline.attention.attn_processor == "default"


def test_gpu_surface_extraction_hands_over_the_surface_for_the_pool_to_clean(
    models_dir: Path, fake_torch: FakeTorch, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_weights(models_dir)
    fake_torch.cuda.available = True
    monkeypatch.setitem(sys.modules, "diso", fake_module("diso"))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(DMCSurfaceExtractor, "calls", [])
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER, gpu_surface=True)
    wanted = params(inference_steps=1, octree_resolution=32, max_faces=500)

    shape = generator.generate_shape(rgba_disc(), wanted, noop)
    mesh = finished(read_shape(shape_bytes(shape)), rgba_disc(), wanted, noop)

    assert generator.surface_note is None
    assert DMCSurfaceExtractor.calls == [{"mc_level": 0.0, "bounds": 1.01, "octree_resolution": 32}]
    assert "grid" not in shape.arrays and shape.arrays["faces"].shape[1] == 3
    assert 0 < len(mesh.faces) <= 500 and mesh.volume > 0


def test_gpu_surface_extraction_without_cuda_or_diso_leaves_it_to_the_pool_and_says_why(
    models_dir: Path,
) -> None:
    write_weights(models_dir)

    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER, gpu_surface=True)
    shape = generator.generate_shape(
        rgba_disc(), params(inference_steps=1, octree_resolution=32), noop
    )

    assert "needs a CUDA device" in generator.surface_note
    assert "grid" in shape.arrays


def test_cancelling_from_the_progress_callback_stops_the_denoising(models_dir: Path) -> None:
    write_weights(models_dir)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    def cancel_at_second_step(fraction: float, message: str) -> None:
        if message == "denoising step 2/10":
            raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        generator.generate_shape(rgba_disc(), params(inference_steps=10), cancel_at_second_step)

    assert generator._pipeline.steps_run == 1
    assert generator._pipeline.decoded == []


def test_low_vram_on_cuda_empties_the_cache_after_each_generation_even_a_failed_one(
    models_dir: Path, fake_torch: FakeTorch
) -> None:
    write_weights(models_dir)
    fake_torch.cuda.available = True
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER, low_vram=True)
    assert (generator.device, generator.dtype) == ("cuda", "float16")

    wanted = params(inference_steps=1, octree_resolution=32)
    generator.generate_shape(rgba_disc(), wanted, lambda f, m: None)
    after_success = fake_torch.cuda.emptied
    generator._pipeline.fail_decoding = True
    with pytest.raises(RuntimeError, match="out of memory"):
        generator.generate_shape(rgba_disc(), wanted, lambda f, m: None)

    assert after_success >= 1
    assert fake_torch.cuda.emptied > after_success


def test_tidy_mesh_drops_degenerate_faces_and_keeps_an_outward_mesh_as_is() -> None:
    mesh = trimesh.creation.box()
    faces = mesh.faces.copy()
    mesh = trimesh.Trimesh(mesh.vertices, [*faces, [0, 0, 1]], process=False)

    tidy = tidy_mesh(mesh)

    assert len(tidy.faces) == len(faces)
    assert tidy.volume == pytest.approx(1.0)


# --- the real library (skipped unless hy3dgen is installed) --------------------------------


def test_real_hy3dgen_offline_with_absent_weights_fails_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("hy3dgen.shapegen")
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(ModelUnavailable) as info:
        Hunyuan3DGenerator("sweedle-tests/absent-model", SUBFOLDER, device="cpu")

    assert str(tmp_path / "sweedle-tests/absent-model" / SUBFOLDER) in info.value.message


# --- parameters, clean-up and colour -------------------------------------------------------


def test_weights_without_the_fp16_name_load_with_no_variant(models_dir: Path) -> None:
    write_weights(models_dir, "model.safetensors")

    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    assert generator._pipeline.loaded_with["variant"] is None
    assert generator.weights_file == models_dir / MODEL / SUBFOLDER / "model.safetensors"


def test_chunks_reach_the_pipeline_and_the_mesh_is_cut_to_the_face_budget(
    models_dir: Path,
) -> None:
    write_weights(models_dir)
    axis = np.linspace(-1.01, 1.01, 129)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    body = 0.5 - np.sqrt(x**2 + y**2 + z**2)
    floater = 0.03 - np.sqrt((x - 0.85) ** 2 + y**2 + z**2)  # < 0.5% of the faces
    FakePipeline.grid = (np.maximum(body, floater) * 10).astype(np.float32)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    wanted = params(octree_resolution=128, num_chunks=3000, max_faces=1000)

    mesh = make_mesh(generator, rgba_disc(), wanted, noop)

    assert generator._pipeline.decoded[0]["num_chunks"] == 3000
    assert 900 <= len(mesh.faces) <= 1000
    assert welded(mesh).is_watertight and mesh.volume > 0  # UV seams are not holes
    assert mesh.extents.max() < 1.1, "the floating part was removed"


def test_without_cuda_texture_falls_back_to_the_photo_and_says_so(models_dir: Path) -> None:
    write_weights(models_dir)
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    events: list[str] = []
    wanted = params(texture=True, octree_resolution=32)

    mesh = make_mesh(generator, rgba_disc(), wanted, lambda f, m: events.append(m))

    assert not generator.texturer.can_paint
    assert "CUDA" in generator.texturer.unavailable
    assert mesh.metadata["texture"] == "image_projection"
    assert "colouring from the photo" in events
    assert texture_maps_of(mesh) is not None, "the photo is baked into a UV texture"
    colours = surface_colors(mesh)[:, :3]
    assert np.abs(colours.astype(int) - (200, 80, 40)).max() <= 2  # the disc's colour


class FakePaint:
    """hy3dgen's paint pipeline: the mesh with a UV texture (a gradient, its UVs the vertices'
    x and y), with metallic-roughness and normal maps in a PBR material when ``pbr`` (as
    Hunyuan3D-2.1's paint), or a failure."""

    loads: list[str] = []
    fail = False
    pbr = False
    MAPS = {BASE_COLOR: gradient(64, 30), METALLIC_ROUGHNESS: gradient(32, 200)}
    MAPS[NORMAL] = gradient(16, 255)

    @classmethod
    def from_pretrained(cls, path: str) -> FakePaint:
        cls.loads.append(path)
        return cls()

    def __call__(self, mesh: trimesh.Trimesh, image: Image.Image) -> trimesh.Trimesh:
        if self.fail:
            raise RuntimeError("CUDA out of memory")
        xy = mesh.vertices[:, :2]
        uv = (xy - xy.min(axis=0)) / np.ptp(xy, axis=0)
        maps = self.MAPS if self.pbr else {BASE_COLOR: self.MAPS[BASE_COLOR]}
        painted = mesh.copy()
        painted.visual = textured_visual(TextureMaps(uv=uv, maps=dict(maps), pbr=self.pbr))
        return painted


@pytest.fixture
def paint(monkeypatch: pytest.MonkeyPatch, models_dir: Path, fake_torch: FakeTorch) -> type:
    monkeypatch.setitem(
        sys.modules,
        "hy3dgen.texgen",
        fake_module("hy3dgen.texgen", Hunyuan3DPaintPipeline=FakePaint),
    )
    monkeypatch.setattr(FakePaint, "loads", [])
    monkeypatch.setattr(FakePaint, "fail", False)
    monkeypatch.setattr(FakePaint, "pbr", False)
    fake_torch.cuda.available = True
    for name in ("hunyuan3d-paint-v2-0", "hunyuan3d-delight-v2-0"):
        (models_dir / "tencent/Hunyuan3D-2" / name).mkdir(parents=True)
        (models_dir / "tencent/Hunyuan3D-2" / name / "model_index.json").write_text("{}")
    write_weights(models_dir)
    return FakePaint


def test_on_cuda_the_texture_model_paints_and_the_mesh_says_so(paint: type) -> None:
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    mesh = make_mesh(generator, rgba_disc(), params(texture=True, octree_resolution=32), noop)

    assert generator.texturer.can_paint
    assert mesh.metadata["texture"] == "hunyuan3d_paint"
    textures = texture_maps_of(mesh)
    assert textures is not None, "the painted texture is kept, not sampled into vertex colours"
    assert same_pixels(textures.base_color, FakePaint.MAPS[BASE_COLOR])
    assert len(paint.loads) == 1  # loaded once, at start


@pytest.mark.parametrize("pbr", [False, True])
def test_the_glb_of_a_painted_mesh_carries_the_paint_models_texture_unchanged(
    paint: type, pbr: bool, tmp_path: Path
) -> None:
    paint.pbr = pbr
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)
    mesh = make_mesh(generator, rgba_disc(), params(texture=True, octree_resolution=32), noop)
    write_raw_mesh(mesh, tmp_path / "raw.npz")  # the hand-off the export chain reads

    result = export_asset(tmp_path / "raw.npz", tmp_path / "out", ExportOptions())

    assert result.texture == "hunyuan3d_paint"
    maps = glb_maps((tmp_path / "out" / "model.glb").read_bytes())
    expected = FakePaint.MAPS if pbr else {BASE_COLOR: FakePaint.MAPS[BASE_COLOR]}
    assert set(maps) == set(expected)
    for name, image in expected.items():
        assert same_pixels(maps[name], image), name
    assert not is_flat(maps[BASE_COLOR])
    assert result.validation["attributes"]["texture_maps"] == list(expected)
    assert glb_maps(mesh_to_glb(mesh)).keys() == expected.keys()


def test_low_vram_loads_the_texture_model_per_job_and_a_paint_failure_never_fails_the_job(
    paint: type,
) -> None:
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER, low_vram=True)
    assert paint.loads == []  # not resident between jobs

    wanted = params(texture=True, octree_resolution=32)
    make_mesh(generator, rgba_disc(), wanted, noop)
    paint.fail = True
    mesh = make_mesh(generator, rgba_disc(), wanted, noop)

    assert len(paint.loads) == 2
    assert mesh.metadata["texture"] == "image_projection"


def test_hy3dgens_paint_pipeline_runs_step_by_step_on_the_pools_uv_layout(
    paint: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hy3dgen 2.0.2's own ``__call__`` unwraps the mesh again and inpaints on the GPU
    replica; Sweedle drives its steps instead: the layout comes from the CPU pool and the
    filling of unseen texels runs there too."""
    monkeypatch.setitem(
        sys.modules,
        "hy3dgen.texgen",
        fake_module("hy3dgen.texgen", Hunyuan3DPaintPipeline=Hy3dgenPaint),
    )
    monkeypatch.setattr(Hy3dgenPaint, "instances", [])
    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    mesh = make_mesh(generator, rgba_disc(), params(texture=True, octree_resolution=32), noop)

    (pipeline,) = Hy3dgenPaint.instances
    assert pipeline.steps == ["recenter", "delight", "normals", "positions", "multiview", "bake"]
    # The multi-view model's camera indices for the six default views, as upstream numbers them.
    assert pipeline.camera_info == [21, 12, 15, 18, 43, 37]
    assert mesh.metadata["texture"] == "hunyuan3d_paint"
    maps = texture_maps_of(mesh)
    assert maps is not None and maps.base_color.size == (PAINT_SIZE, PAINT_SIZE)
    assert not is_flat(maps.base_color)


def test_texture_weights_missing_on_cuda_say_how_to_fetch_them(
    paint: type, models_dir: Path
) -> None:
    shutil.rmtree(models_dir / "tencent/Hunyuan3D-2" / "hunyuan3d-delight-v2-0")

    generator = Hunyuan3DGenerator(MODEL, SUBFOLDER)

    assert not generator.texturer.can_paint
    assert "hunyuan3d-delight-v2-0" in generator.texturer.unavailable
    assert "sweedle models pull hunyuan-texture" in generator.texturer.unavailable


def noop(fraction: float, message: str) -> None:
    pass
