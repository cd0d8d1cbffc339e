"""The depth generator's time on a 512 px photo (part of `make bench`).

- the whole generation (depth model, surfaces, marching cubes, colours) with the tiny random
  Depth Anything model the tests build (tests/models/tiny_depth.py), at octree 128 and 256;
- the depth model alone with the real Depth Anything V2 Small architecture (its default
  transformers config: DINOv2 ViT-S, 24.8M parameters) and random weights, at the real
  processor's 518 px input: what the real model costs on this CPU (the weights' values do not
  change the arithmetic). The real weights cannot be downloaded here.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sweedle_core.generation.depth import DepthGenerator, TransformersDepth  # noqa: E402
from sweedle_core.params import GenerationParams  # noqa: E402
from tests.generation import make_mesh  # noqa: E402
from tests.models.tiny_depth import build_tiny_depth  # noqa: E402
from tests.scenes import draw_scene  # noqa: E402

RUNS = 5


def main() -> dict[str, Any]:
    photo = _prepared_photo()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        tiny = TransformersDepth(build_tiny_depth(Path(folder) / "tiny"), device="cpu")
        generator = DepthGenerator(tiny)
        for octree in (128, 256):
            times, faces = [], 0
            for _ in range(RUNS + 1):
                start = time.perf_counter()
                mesh = make_mesh(
                    generator, photo, GenerationParams(octree_resolution=octree), _quiet
                )
                times.append(time.perf_counter() - start)
                faces = len(mesh.faces)
            figures[f"tiny_octree_{octree}"] = {
                "median_s": statistics.median(times[1:]),
                "faces": faces,
            }
        small = _small_architecture(Path(folder) / "small")
        estimator = TransformersDepth(small["folder"], device="cpu")
        times = []
        for _ in range(RUNS + 1):
            start = time.perf_counter()
            estimator.estimate(photo.convert("RGB"))
            times.append(time.perf_counter() - start)
        figures["small_architecture"] = {
            "parameters": small["parameters"],
            "median_s": statistics.median(times[1:]),
        }
    return figures


def _quiet(fraction: float, message: str) -> None:
    pass


def _prepared_photo() -> Image.Image:
    """A 512 px cut-out as the preprocessor hands it over: scene 0's object, framed."""
    image, mask = draw_scene(0, 512, 512)
    rgba = np.dstack([np.asarray(image), mask.astype(np.uint8) * 255])
    return Image.fromarray(rgba, "RGBA")


def _small_architecture(folder: Path) -> dict[str, Any]:
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig())  # the Small configuration
    model.save_pretrained(folder)
    DPTImageProcessor(
        size={"height": 518, "width": 518},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(folder)
    return {"folder": folder, "parameters": sum(p.numel() for p in model.parameters())}


def render(figures: dict[str, Any]) -> str:
    t128, t256 = figures["tiny_octree_128"], figures["tiny_octree_256"]
    small = figures["small_architecture"]
    return f"""## The depth generator (bench/depth.py)

A 512 px cut-out (the object of tests/scenes.py scene 0), median of {RUNS} after a warm-up, on
one replica's thread:

| what | time | faces |
| --- | --- | --- |
| whole generation, tiny Depth Anything model, octree 128 | {t128["median_s"]:.2f} s | {t128["faces"]:,} |
| whole generation, tiny Depth Anything model, octree 256 (the default) | {t256["median_s"]:.2f} s | {t256["faces"]:,} |
| the depth model alone, Depth Anything V2 Small's architecture ({small["parameters"] / 1e6:.1f}M parameters, random weights), 518 px input | {small["median_s"]:.2f} s | |

The tiny model's own cost is negligible: its rows are the geometry (surfaces, marching cubes,
colours). With the real model a generation on this CPU costs about the sum of the last row and
the octree-256 row. Depth Anything V2 Small has 24.8M parameters (its paper); published speed
figures are for GPUs (the Depth-Anything-ONNX port lists 13.3 ms for ViT-S at 518 px on an RTX
4080; V1 and V2 share the architecture), so the CPU figure above is this machine's own. A GPU
would cut the last row by one to two orders of magnitude and leave the geometry rows as they
are (numpy and scikit-image on the CPU).
"""


if __name__ == "__main__":
    print(render(main()))
