"""The CPU backend: a drawn disc becomes a closed, outward, coloured, unit-sized solid."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sweedle_core.errors import GenerationFailed, JobCancelled
from sweedle_core.generation.finish import finisher_for
from sweedle_core.generation.shape import read_shape, shape_bytes
from sweedle_core.generation.silhouette import SilhouetteGenerator
from sweedle_core.params import GenerationParams
from tests.generation import make_mesh
from tests.textures import surface_colors, welded

RED = (220, 30, 30, 255)


def disc_image(size: int = 256, color: tuple[int, int, int, int] = RED) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    margin = size // 8
    ImageDraw.Draw(image).ellipse([margin, margin, size - margin, size - margin], fill=color)
    return image


def generate(image: Image.Image, octree: int = 64, on_progress=None):
    params = GenerationParams(octree_resolution=octree)
    return make_mesh(SilhouetteGenerator(), image, params, on_progress or (lambda f, m: None))


def test_follows_the_generator_protocol() -> None:
    assert SilhouetteGenerator.name == "silhouette"


def test_disc_becomes_a_closed_outward_solid() -> None:
    mesh = generate(disc_image())

    assert welded(mesh).is_watertight  # UV seams split vertices, not the surface
    assert mesh.volume > 0
    assert len(mesh.faces) > 1_000


def test_disc_is_centred_unit_sized_and_plausibly_deep() -> None:
    mesh = generate(disc_image())
    lo, hi = mesh.bounds
    width, height, depth = hi - lo

    assert max(width, height) == pytest.approx(1.0, abs=1e-5)
    assert width == pytest.approx(height, abs=0.03)  # a disc stays round
    assert np.allclose((lo + hi) / 2, 0.0, atol=1e-5)
    assert 0.45 <= depth <= 0.75  # thick like a pebble, not a coin or a ball


def test_image_top_is_plus_y() -> None:
    # Red on the upper half, blue on the lower half.
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle([16, 16, 111, 63], fill=(255, 0, 0, 255))
    draw.rectangle([16, 64, 111, 111], fill=(0, 0, 255, 255))
    mesh = generate(image)
    colors = surface_colors(mesh)
    y = mesh.vertices[:, 1]

    assert colors[y > 0.2, 0].mean() > 200 and colors[y > 0.2, 2].mean() < 50
    assert colors[y < -0.2, 2].mean() > 200 and colors[y < -0.2, 0].mean() < 50


def test_image_right_is_plus_x() -> None:
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rectangle([16, 16, 63, 111], fill=(255, 0, 0, 255))
    draw.rectangle([64, 16, 111, 111], fill=(0, 255, 0, 255))
    mesh = generate(image)
    colors = surface_colors(mesh)
    x = mesh.vertices[:, 0]

    assert colors[x > 0.2, 1].mean() > 200 and colors[x < -0.2, 0].mean() > 200


def test_the_colours_come_from_the_image() -> None:
    mesh = generate(disc_image())
    colors = surface_colors(mesh)

    assert colors.shape == (len(mesh.vertices), 4)
    assert colors.dtype == np.uint8
    reddish = (colors[:, 0] > 180) & (colors[:, 1] < 80) & (colors[:, 2] < 80)
    assert reddish.mean() > 0.95
    assert (colors[:, 3] == 255).all()


def test_each_stage_reports_progress_rising_to_one() -> None:
    """The first stage (the generator replica's) and the second (the CPU pool's) each."""
    params = GenerationParams(octree_resolution=64)
    first: list[tuple[float, str]] = []
    second: list[tuple[float, str]] = []
    shape = SilhouetteGenerator().generate_shape(
        disc_image(), params, lambda fraction, message: first.append((fraction, message))
    )
    finisher_for("silhouette")(
        read_shape(shape_bytes(shape)),
        disc_image(),
        params,
        lambda fraction, message: second.append((fraction, message)),
    )

    for seen in (first, second):
        fractions = [fraction for fraction, _ in seen]
        assert len(seen) >= 3
        assert all(a < b for a, b in zip(fractions[:-1], fractions[1:], strict=True))
        assert fractions[-1] == 1.0
        assert all(message for _, message in seen)
    assert shape.method == "silhouette"
    stored = sum(array.nbytes for array in shape.arrays.values())
    assert stored < 64 * 64 * 4 * 4, "a height map and colours, not a volume"


def test_cancel_from_the_progress_callback_stops_generation() -> None:
    calls: list[float] = []

    def cancel_at_volume(fraction: float, message: str) -> None:
        calls.append(fraction)
        if fraction >= 0.5:
            raise JobCancelled("cancelled")

    with pytest.raises(JobCancelled):
        generate(disc_image(), on_progress=cancel_at_volume)
    assert calls[-1] == 0.5  # no further step ran


def test_empty_alpha_fails_clearly() -> None:
    empty = Image.new("RGBA", (64, 64), (255, 0, 0, 0))

    with pytest.raises(GenerationFailed, match="no foreground"):
        generate(empty)


def test_a_speck_too_small_for_the_grid_fails_clearly() -> None:
    image = Image.new("RGBA", (512, 512), (0, 0, 0, 0))
    image.putpixel((256, 256), RED)

    with pytest.raises(GenerationFailed):
        generate(image, octree=16)


def test_a_ring_keeps_its_hole() -> None:
    image = disc_image(128)
    ImageDraw.Draw(image).ellipse([48, 48, 80, 80], fill=(0, 0, 0, 0))
    mesh = generate(image)

    surface = welded(mesh)
    assert surface.is_watertight
    assert surface.euler_number == 0  # a torus
