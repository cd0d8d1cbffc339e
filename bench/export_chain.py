"""Benchmark of the default export chain (part of `make bench`).

A 500,000-face coloured mesh (marching cubes of a noisy blob, colours that vary smoothly with
position, as a generator's are) goes through each step the export pool runs: optimise,
validate, four LODs, GLB, Draco GLB, thumbnail. Each step is timed on its own (median of 3),
and our Draco file is set beside `gltf-transform draco` run on the same plain GLB.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from scipy import ndimage
from skimage.measure import marching_cubes

from sweedle_core.export.draco_compressor import compress_glb
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.lod_generator import build_lods
from sweedle_core.export.mesh_io import write_raw_mesh
from sweedle_core.export.mesh_optimizer import optimize_mesh
from sweedle_core.export.pipeline import ExportOptions, export_asset
from sweedle_core.export.thumbnail_generator import make_thumbnail
from sweedle_core.export.validator import validate_mesh

ROOT = Path(__file__).resolve().parents[1]
GLTF_TRANSFORM = ROOT / "bench" / "tools" / "node_modules" / ".bin" / "gltf-transform"
LEVELS = (1.0, 0.5, 0.25, 0.1)


def coloured_blob(target_faces: int = 500_000) -> trimesh.Trimesh:
    """About ``target_faces`` faces of a lumpy closed surface with smooth vertex colours."""
    # Faces grow as n^2 for this surface: about 4.7 n^2 at this noise (measured).
    n = int(np.sqrt(target_faces / 4.7)) + 1
    rng = np.random.default_rng(3)
    grid = np.linspace(-1.0, 1.0, n)
    x, y, z = np.meshgrid(grid, grid, grid, indexing="ij")
    noise = ndimage.gaussian_filter(rng.normal(size=(n, n, n)), n / 30) * 2
    field = np.sqrt(x**2 + y**2 + z**2) + noise - 0.7
    vertices, faces, _, _ = marching_cubes(field, 0.0, spacing=(2 / (n - 1),) * 3)
    vertices -= 1.0
    colours = np.empty((len(vertices), 4), dtype=np.uint8)
    colours[:, :3] = np.clip((vertices * 0.5 + 0.5) * 255, 0, 255)
    colours[:, 3] = 255
    return trimesh.Trimesh(vertices, faces, vertex_colors=colours, process=False)


def timed(step: Callable[[], Any], runs: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> dict[str, Any]:
    mesh = coloured_blob()
    steps: dict[str, float] = {}
    steps["optimise"], optimised = timed(lambda: optimize_mesh(mesh.copy()))
    steps["validate"], report = timed(lambda: validate_mesh(optimised))
    steps["lods"], lods = timed(lambda: build_lods(optimised, LEVELS))
    steps["glb"], glb = timed(lambda: mesh_to_glb(optimised))
    steps["draco"], draco = timed(lambda: compress_glb(optimised))
    steps["thumbnail"], thumbnail = timed(lambda: make_thumbnail(optimised, 256))
    with tempfile.TemporaryDirectory() as folder:
        raw = Path(folder) / "raw.npz"
        write_raw_mesh(mesh, raw)
        options = ExportOptions(lod_levels=LEVELS, thumbnail_size=256, draco=True)
        chain_s, _ = timed(lambda: export_asset(raw, Path(folder) / "out", options))
    figures: dict[str, Any] = {
        "faces_in": len(mesh.faces),
        "faces_optimised": len(optimised.faces),
        "lod_faces": [len(lod.faces) for lod in lods],
        "steps_s": steps,
        "steps_sum_s": sum(steps.values()),
        "chain_s": chain_s,
        "glb_bytes": len(glb),
        "draco_bytes": len(draco),
        "thumbnail_renderer": thumbnail.renderer,
        "validation_ok": report.get("ok"),
        "gltf_transform": gltf_transform_draco(glb),
    }
    return figures


def gltf_transform_draco(glb: bytes) -> dict[str, Any] | str:
    """`gltf-transform draco` on our plain GLB: its file size and wall time."""
    if not GLTF_TRANSFORM.exists() or shutil.which("node") is None:
        return "not installed (npm install --prefix bench/tools)"
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "in.glb", Path(folder) / "out.glb"
        source.write_bytes(glb)
        start = time.perf_counter()
        subprocess.run(
            [str(GLTF_TRANSFORM), "draco", str(source), str(target)],
            check=True,
            capture_output=True,
        )
        return {"bytes": target.stat().st_size, "seconds": time.perf_counter() - start}


def render(f: dict[str, Any]) -> str:
    s = f["steps_s"]
    gt = f["gltf_transform"]
    gt_row = (
        f"| `gltf-transform draco` on the same GLB | {gt['bytes'] / 1e6:.2f} MB | {gt['seconds']:.2f} s (node start-up included) |"
        if isinstance(gt, dict)
        else f"| `gltf-transform draco` | {gt} | |"
    )
    smaller = isinstance(gt, dict) and f["draco_bytes"] <= gt["bytes"]
    return f"""## Default export chain (bench/export_chain.py)

A {f["faces_in"]:,}-face coloured mesh (marching cubes of a lumpy blob, smooth vertex colours);
each step timed alone, then the whole chain, medians of 3. Optimised: {f["faces_optimised"]:,} faces; LODs
{", ".join(f"{n:,}" for n in f["lod_faces"])} faces; thumbnail renderer: {f["thumbnail_renderer"]}.

| step | seconds |
| --- | --- |
| optimise (weld, degenerate/duplicate faces, floaters, winding, normals) | {s["optimise"]:.2f} |
| validate | {s["validate"]:.2f} |
| four LODs (1.0, 0.5, 0.25, 0.1) | {s["lods"]:.2f} |
| GLB | {s["glb"]:.2f} |
| Draco GLB | {s["draco"]:.2f} |
| thumbnail 256 px | {s["thumbnail"]:.2f} |
| the steps one after another | {f["steps_sum_s"]:.2f} |
| **the chain as the export pool runs it** (`export_asset`: read the raw mesh, optimise, then the rest on 2 threads, every file written) | **{f["chain_s"]:.2f}** (goal < 3 s: {"met" if f["chain_s"] < 3 else "NOT met"}) |

| file | size | time |
| --- | --- | --- |
| plain GLB | {f["glb_bytes"] / 1e6:.2f} MB | {s["glb"]:.2f} s |
| our Draco GLB (q14 positions, level 7) | {f["draco_bytes"] / 1e6:.2f} MB | {s["draco"]:.2f} s |
{gt_row}

Our Draco file no larger than gltf-transform's: {"met" if smaller else "NOT met"}.
"""


if __name__ == "__main__":
    import json

    result = main()
    print(json.dumps(result, indent=2))
    print(render(result))
