"""The split generation (part of `make bench`): the GPU stage on the Generator replica, the CPU
stage in the export pool, measured with the tiny random Hunyuan3D-2-style model at octree 256.

- in one process: the GPU stage alone (what a Generator replica holds the GPU for now) against
  both stages (what it held the GPU for before the split), and the shape's size;
- the app (`serve run` with the tiny model as its hunyuan3d backend, on the CPU) under a
  backlog: the Generator replica's seconds per job, the GPU stage's share of its wall time with
  the CPU stages running beside it, jobs per minute, the CPU stage's own time.

On this machine the "GPU" stage runs on the same two cores as everything else, and the tiny
model's denoising is cheap while its volume decoding and surface are full size: a real GPU
makes the GPU stage much faster, which raises the CPU stage's weight and so what the split
saves; the share of the replica's time in the GPU stage does not depend on it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from sweedle_core.generation.finish import finished
from sweedle_core.generation.shape import shape_bytes
from sweedle_core.params import GenerationParams
from tests.models.tiny_hunyuan import SUBFOLDER, build_tiny_hunyuan

OCTREE = 256
STEPS = 10


def in_process(image: Any, root: Path, runs: int = 3) -> dict[str, Any]:
    """Medians, after a warm-up, of the GPU stage, the CPU stage and both, at ``OCTREE``."""
    from sweedle_core.generation.hunyuan import Hunyuan3DGenerator

    generator = Hunyuan3DGenerator(str(root), SUBFOLDER, device="cpu")
    seed = None
    gpu, cpu, sizes = [], [], []
    for run in range(runs + 1):
        for candidate in range(1 if seed is None else seed, 40):  # random weights miss some
            params = GenerationParams(
                inference_steps=STEPS, octree_resolution=OCTREE, seed=candidate
            )
            start = time.perf_counter()
            shape = generator.generate_shape(image, params, lambda f, m: None)
            middle = time.perf_counter()
            try:
                mesh = finished(shape, image, params, lambda f, m: None)
            except Exception as exc:  # GenerationFailed: no surface for this seed
                if "no surface" not in str(exc):
                    raise
                continue
            end = time.perf_counter()
            seed = candidate
            break
        if run == 0:
            continue
        gpu.append(middle - start)
        cpu.append(end - middle)
        sizes.append(len(shape_bytes(shape)))
    return {
        "seed": seed,
        "gpu_stage_s": statistics.median(gpu),
        "cpu_stage_s": statistics.median(cpu),
        "both_s": statistics.median(g + c for g, c in zip(gpu, cpu, strict=True)),
        "shape_mb": statistics.median(sizes) / 2**20,
        "faces": len(mesh.faces),
    }


def app_config(root: Path, folder: Path) -> Path:
    """configs/cpu.yaml with the tiny model as its hunyuan3d backend."""
    from bench.run import ROOT

    config = yaml.safe_load((ROOT / "configs/cpu.yaml").read_text())
    config["applications"][0]["args"]["settings"] = {
        "generator_backend": "hunyuan3d",
        "generator_fallback": False,
        "hunyuan_model_path": str(root),
        "hunyuan_subfolder": SUBFOLDER,
        "device": "cpu",
        "default_inference_steps": STEPS,
    }
    path = folder / "tiny-hunyuan.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main(image: Any, image_bytes: bytes, jobs: int = 12) -> dict[str, Any]:
    from bench.restart_check import ray_stop
    from bench.run import App, backlog

    with tempfile.TemporaryDirectory() as folder:
        root = build_tiny_hunyuan(Path(folder) / "tiny")
        figures: dict[str, Any] = {"octree": OCTREE, "in_process": in_process(image, root)}
        data = Path(folder) / "app"
        data.mkdir()
        app = App(data, config=str(app_config(root, Path(folder))))
        try:
            app.wait_ready()
            seed = figures["in_process"]["seed"]
            figures["backlog"] = backlog(app.client, image_bytes, jobs, OCTREE, seed=seed)
        finally:
            app.stop()
            ray_stop()  # the next app of the bench takes the same port
    return figures


def render(f: dict[str, Any]) -> str:
    p, b = f["in_process"], f["backlog"]
    return f"""## Split generation: the GPU stage apart from the CPU stage (bench/split.py)

The tiny random Hunyuan3D-2-style model through hy3dgen on the CPU, octree {f["octree"]},
{STEPS} steps. In one process (median of 3 after a warm-up):

| Generator replica per job | seconds |
| --- | --- |
| before the split: both stages on the replica | {p["both_s"]:.2f} |
| after: the GPU stage only (encoding, denoising, volume decoding, storing the shape) | {p["gpu_stage_s"]:.2f} |
| the CPU stage, now in the export pool (surface, clean-up, colour) | {p["cpu_stage_s"]:.2f} |

The shape handed over (the decoded volume, float16): {p["shape_mb"]:.1f} MB; the final mesh
{p["faces"]:,} faces.

The app (`serve run`, one Generator replica, two Exporter replicas, all on these 2 cores), a
backlog of {b["jobs"]} jobs submitted at once:

| figure | value | goal |
| --- | --- | --- |
| GPU stage's share of the Generator replica's wall time | {b["gpu_share"]:.3f} | >= 0.95 |
| replica busy share (claim to hand-off) | {b["duty_cycle"]:.3f} | |
| Generator replica seconds per job (median) | {b["generate_s_median"]:.2f} | |
| CPU stage per job in the pool (median) | {b["finish_s_median"]:.2f} | |
| export pool per job, CPU stage + export chain (median) | {b["export_s_median"]:.2f} | |
| jobs per minute | {b["jobs_per_minute"]:.1f} | |

A GPU changes the GPU stage's seconds (far shorter) and so jobs per minute; with the CPU stage
off the replica, the replica's seconds per job no longer include surface extraction and
clean-up, which on a GPU box were most of a fast generation.
"""


if __name__ == "__main__":  # `python -m bench.split`: this section alone
    import json

    from bench.run import photo as bench_photo
    from bench.run import split_figures

    figures = split_figures(bench_photo())
    print(json.dumps(figures, indent=2))
    print(render(figures))
