"""Colouring a mesh from its photo: the projection lines the photo up with the mesh."""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.generation.image_colors import project_image_colors


def split_photo() -> Image.Image:
    """A square object on a transparent background: red left half, blue right half, with a
    green top band; the object fills only the middle of the frame."""
    image = Image.new("RGBA", (100, 100), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle((20, 30, 49, 79), fill=(255, 0, 0, 255))
    draw.rectangle((50, 30, 79, 79), fill=(0, 0, 255, 255))
    draw.rectangle((20, 30, 79, 39), fill=(0, 255, 0, 255))
    return image


def test_the_photo_lands_on_the_matching_side_of_the_mesh_front_and_back() -> None:
    box = trimesh.creation.box(extents=(2.0, 3.0, 1.0))  # any scale: fitted to the outline
    box = box.subdivide().subdivide()

    colours = project_image_colors(box, split_photo())

    assert colours.shape == (len(box.vertices), 4) and colours.dtype == np.uint8
    x, y = box.vertices[:, 0], box.vertices[:, 1]
    middle = (y < 0.5) & (y > -1.4)
    assert (colours[(x < -0.5) & middle][:, :3] == (255, 0, 0)).all()
    assert (colours[(x > 0.5) & middle][:, :3] == (0, 0, 255)).all()
    assert (colours[y > 1.45][:, :3] == (0, 255, 0)).all()  # +Y is the top of the photo
    assert (colours[:, 3] == 255).all()


def test_outline_vertices_never_take_the_background_colour() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)

    colours = project_image_colors(sphere, split_photo())

    assert not (colours[:, :3] == (255, 255, 255)).all(axis=1).any()
