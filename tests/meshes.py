"""Small meshes the export tests share: a two-coloured sphere and a textured box."""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image

GREEN = (20, 200, 40, 255)
YELLOW = (250, 250, 10, 255)
PIXELS = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5).astype(np.uint8)


def coloured_sphere(subdivisions: int = 2, inverted: bool = False) -> trimesh.Trimesh:
    """An icosphere, green with a yellow cap above y = 0.5; ``inverted`` winds it inward."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    faces = sphere.faces[:, ::-1] if inverted else sphere.faces
    colors = np.tile(np.array(GREEN, dtype=np.uint8), (len(sphere.vertices), 1))
    colors[sphere.vertices[:, 1] > 0.5] = YELLOW
    return trimesh.Trimesh(sphere.vertices, faces, vertex_colors=colors, process=False)


def textured_box() -> trimesh.Trimesh:
    """A box whose UVs are its x, y in [0, 1], textured with the 4x4 image ``PIXELS``."""
    box = trimesh.creation.box()
    box.visual = trimesh.visual.TextureVisuals(
        uv=box.vertices[:, :2] + 0.5, image=Image.fromarray(PIXELS)
    )
    return box
