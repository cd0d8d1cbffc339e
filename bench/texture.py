"""The photo baked into a UV texture (sweedle_core/generation/photo_texture.py): what it costs
and what it weighs, on a ~40k-face irregular marching-cubes mesh (a lumpy blob, the size of a
default hunyuan3d mesh).

- time: xatlas's unwrap (in its child process, start-up included) and the whole bake
  (unwrap, rasterising the UV triangles, sampling the photo, filling the gutters) at 1024 and
  2048 px; the child process's own start-up on a 4-face mesh;
- size: the GLB and the Draco GLB with the texture against the same mesh with per-vertex
  colours (the old path, now the fallback).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.export.draco_compressor import compress_glb
from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_optimizer import optimize_mesh
from sweedle_core.generation.hunyuan_surface import extract_surface, tidy_mesh
from sweedle_core.generation.image_colors import project_image_colors
from sweedle_core.generation.photo_texture import bake_photo_texture, unwrap

SIZES = (1024, 2048)
RUNS = 3
GRID = 112  # cells across the blob's volume: ~40k faces


def blob(grid: int = GRID, seed: int = 3) -> trimesh.Trimesh:
    """A lumpy closed surface: marching cubes on a sum of random Gaussian bumps."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1.0, 1.0, grid)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    field = np.zeros_like(x)
    for centre, width in zip(rng.uniform(-0.4, 0.4, (9, 3)), rng.uniform(0.2, 0.4, 9), strict=True):
        field += np.exp(
            -((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) / width**2
        )
    return tidy_mesh(extract_surface(field - 0.6, 0.0, 1.0))


def photo(size: int = 512, seed: int = 5) -> Image.Image:
    """A busy RGBA photo: random coloured ellipses on a transparent background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size // 10, size // 10, size * 9 // 10, size * 9 // 10), fill=(120, 90, 60, 255))
    for _ in range(60):
        x, y = rng.integers(size // 8, size * 7 // 8, 2)
        r = int(rng.integers(size // 40, size // 10))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*colour, 255))
    return image


def _median_seconds(run: Any) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> dict[str, Any]:
    mesh, image = blob(), photo()
    tetrahedron = trimesh.creation.box()
    figures: dict[str, Any] = {
        "faces": len(mesh.faces),
        "vertices": len(mesh.vertices),
        "child_start_s": _median_seconds(lambda: unwrap(tetrahedron, 64)),
        "sizes": {},
    }
    coloured = trimesh.Trimesh(
        mesh.vertices, mesh.faces, vertex_colors=project_image_colors(mesh, image), process=False
    )
    plain = optimize_mesh(coloured)
    figures["vertex_colours"] = {
        "glb_kb": len(mesh_to_glb(plain)) / 1024,
        "draco_kb": len(compress_glb(plain)) / 1024,
    }
    for size in SIZES:
        baked = bake_photo_texture(mesh, image, size)
        layout = unwrap(mesh, size)
        textured = optimize_mesh(baked)
        figures["sizes"][size] = {
            "unwrap_s": _median_seconds(lambda s=size: unwrap(mesh, s)),
            "bake_s": _median_seconds(lambda s=size: bake_photo_texture(mesh, image, s)),
            "seam_vertices": len(layout.source) - len(mesh.vertices),
            "glb_kb": len(mesh_to_glb(textured)) / 1024,
            "draco_kb": len(compress_glb(textured)) / 1024,
        }
    return figures


def render(f: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {size} | {s['unwrap_s']:.2f} | {s['bake_s']:.2f} | {s['seam_vertices']:,} "
        f"| {s['glb_kb']:,.0f} | {s['draco_kb']:,.0f} |"
        for size, s in f["sizes"].items()
    )
    c = f["vertex_colours"]
    return f"""## The photo baked into a UV texture (bench/texture.py)

A lumpy marching-cubes blob of {f["faces"]:,} faces ({f["vertices"]:,} vertices), a busy 512 px
photo, median of {RUNS} runs. The unwrap runs xatlas in a child process (a crash or a hang
costs the child only); its start-up alone, on a box, is {f["child_start_s"]:.2f} s.

| texture px | xatlas unwrap s | whole bake s | vertices added at seams | GLB KB | Draco GLB KB |
| --- | --- | --- | --- | --- | --- |
{rows}
| vertex colours (the fallback) | | | | {c["glb_kb"]:,.0f} | {c["draco_kb"]:,.0f} |

The whole bake is the unwrap plus rasterising the UV triangles, sampling the photo and filling
the gutters in numpy (which grows with the texture's area). Sizes are after the export chain's
optimisation; the texture is an embedded PNG, so a busy photo weighs more than a flat one, and
Draco compresses only the geometry (UVs quantised to 12 bits), not the PNG.

Caveats: 2 cores, no GPU. xatlas's time depends on the mesh's shape, not only its face count
(charts that do not flatten are cut again), and grows faster than the face count: above
150,000 faces the bake is not attempted and the mesh keeps per-vertex colours. The child
process's start-up is mostly importing numpy and xatlas, so it shrinks with a warm page cache
and faster disks; the numpy part scales with the clock speed.
"""


if __name__ == "__main__":
    print(render(main()))
