"""Benchmarks of the real model paths on tiny models (part of `make bench`).

- the tiny random Hunyuan3D-2-style model (tests/models/tiny_hunyuan.py) through the real
  hy3dgen pipeline on the CPU: load time, then per denoising step, surface extraction, clean-up
  and colouring at octree 64 and 128 (medians of a few runs);
- preprocessing throughput of one replica (one thread, as a Preprocessor replica runs a job):
  decode, background removal, framing, for a 512 px photo, with the classical flood fill and
  with rembg running the tiny ONNX segmenter (tests/models/tiny_onnx.py).

The tiny models measure our code and the libraries' overheads, not Hunyuan3D's real speed:
the real model's steps are thousands of times heavier and run on a GPU.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sweedle_core.config import Settings
from sweedle_core.params import GenerationParams
from sweedle_core.preprocess import ImagePreparer
from tests.generation import make_mesh
from tests.models.tiny_hunyuan import SUBFOLDER, build_tiny_hunyuan
from tests.models.tiny_onnx import build_tiny_segmenter

STEPS = 10


def hunyuan_figures(image: Any, runs: int = 3) -> dict[str, Any]:
    start = time.perf_counter()
    import hy3dgen.shapegen  # noqa: F401  (timed: what a replica pays once at start)

    import_s = time.perf_counter() - start
    from sweedle_core.generation.hunyuan import Hunyuan3DGenerator

    with tempfile.TemporaryDirectory() as folder:
        root = build_tiny_hunyuan(Path(folder) / "tiny")
        start = time.perf_counter()
        generator = Hunyuan3DGenerator(str(root), SUBFOLDER, device="cpu")
        figures: dict[str, Any] = {"import_s": import_s, "load_s": time.perf_counter() - start}
        for octree in (64, 128):
            figures[f"octree_{octree}"] = _generation_phases(generator, image, octree, runs)
    return figures


def _generation_phases(generator: Any, image: Any, octree: int, runs: int) -> dict[str, Any]:
    """Medians over ``runs`` generations (after one warm-up) of each phase's seconds."""
    phases: dict[str, list[float]] = {}
    faces = 0
    for run in range(runs + 1):
        marks: list[tuple[float, str]] = []
        params = GenerationParams(inference_steps=STEPS, octree_resolution=octree, seed=run + 1)
        for seed in range(run + 1, run + 20):  # random weights may miss the surface
            marks.clear()
            params = params.model_copy(update={"seed": seed})
            try:
                mesh = make_mesh(generator, image, params, _timestamps(marks))
                break
            except Exception as exc:  # GenerationFailed: no surface for this seed
                if "no surface" not in str(exc):
                    raise
        if run == 0:
            continue  # warm-up: first-call costs (kernels, imports) are not per-job costs
        times = dict((message, moment) for moment, message in marks)
        step_times = [times[f"denoising step {i}/{STEPS}"] for i in range(1, STEPS + 1)]
        durations = {
            "encode_s": step_times[0] - times["encoding the image"],
            "per_step_s": (step_times[-1] - step_times[0]) / (STEPS - 1),
            "decode_s": times["volume decoded"] - step_times[-1],
            "gpu_stage_s": times["volume decoded"] - times["encoding the image"],
            "surface_s": times["removing floaters and degenerate faces"]
            - times["extracting the surface"],
            "clean_s": times["colouring from the photo"]
            - times["removing floaters and degenerate faces"],
            "colour_s": times["done"] - times["colouring from the photo"],
            "cpu_stage_s": times["done"] - times["extracting the surface"],
            "total_s": times["done"] - times["encoding the image"],
        }
        for key, value in durations.items():
            phases.setdefault(key, []).append(value)
        faces = len(mesh.faces)
    result: dict[str, Any] = {k: statistics.median(v) for k, v in phases.items()}
    result["faces"] = faces
    return result


def _timestamps(marks: list[tuple[float, str]]) -> Any:
    def on_progress(fraction: float, message: str) -> None:
        marks.append((time.perf_counter(), message))

    return on_progress


def preprocessing_figures(image_bytes: bytes, seconds: float = 5.0) -> dict[str, Any]:
    """Images per second of one preparer, with the flood fill and with rembg (tiny model)."""
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        model = build_tiny_segmenter(home / "tiny-segmenter.onnx")
        previous = os.environ.get("U2NET_HOME")
        try:
            flood = ImagePreparer.from_settings(Settings(rembg_model="none"))
            rembg = ImagePreparer.from_settings(Settings(rembg_model_file=model, u2net_home=home))
        finally:
            if previous is None:
                os.environ.pop("U2NET_HOME", None)
            else:
                os.environ["U2NET_HOME"] = previous
        return {
            "flood_fill_per_s": _throughput(flood, image_bytes, seconds),
            "rembg_tiny_per_s": _throughput(rembg, image_bytes, seconds),
            "rembg_method": rembg.remover.name,
        }


def _throughput(preparer: ImagePreparer, image_bytes: bytes, seconds: float) -> float:
    preparer.prepare(image_bytes, remove_background=True)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        preparer.prepare(image_bytes, remove_background=True)
        done += 1
    return done / (time.perf_counter() - start)


def render(figures: dict[str, Any]) -> str:
    h, p = figures["hunyuan"], figures["preprocessing"]
    rows = "\n".join(
        f"| {octree} | {o['per_step_s'] * 1000:.1f} ms | {o['decode_s']:.3f} s | "
        f"**{o['gpu_stage_s']:.3f} s** | {o['surface_s']:.3f} s | {o['clean_s']:.3f} s | "
        f"{o['colour_s']:.3f} s | **{o['cpu_stage_s']:.3f} s** | {o['total_s']:.3f} s | "
        f"{o['faces']:,} |"
        for octree, o in ((n, h[f"octree_{n}"]) for n in (64, 128))
    )
    return f"""## Real model paths on tiny models (bench/models.py)

The tiny random Hunyuan3D-2-style model (DiT hidden 32, one block of each kind, ~460 kB) through
hy3dgen's own pipeline on the CPU in fp32, {STEPS} steps, default face budget 40,000 (median of 3
after a warm-up). These figures measure our code and the libraries' overheads; the real model's
steps are far heavier and run on a GPU. `import hy3dgen.shapegen`: {h["import_s"]:.1f} s (once
per replica); loading the tiny model (from_pretrained): {h["load_s"]:.2f} s.

The GPU stage (encoding, denoising, volume decoding: what a Generator replica runs) and the CPU
stage (surface, clean-up, colour: what the export pool runs since the split) are timed apart.

| octree | per denoising step | volume decoding | GPU stage | surface extraction | clean-up (MeshLab) | colour | CPU stage | both | faces |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{rows}

Preprocessing throughput of one replica (one thread; a 512 px JPEG: decode, background removal,
framing to 512 px): flood fill {p["flood_fill_per_s"]:.1f} images/s; rembg with the tiny ONNX
segmenter ({p["rembg_method"]}) {p["rembg_tiny_per_s"]:.1f} images/s. The tiny segmenter is one
1x1 convolution: this is rembg's own cost (resize to 320 px, normalise, the ONNX call, the mask
back to full size), not a real model's (u2net is 176 MB).
"""
