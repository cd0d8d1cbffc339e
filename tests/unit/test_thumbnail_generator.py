"""Thumbnails rendered offscreen with OpenGL (EGL), and the numpy fallback when GL is missing."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor

import moderngl
import numpy as np
import pytest
import trimesh
from PIL import Image

from sweedle_core.export import thumbnail_generator
from sweedle_core.export.thumbnail_generator import (
    generate_thumbnail,
    make_thumbnail,
    opengl_unavailable_reason,
)

RED = (220, 30, 30, 255)


@pytest.fixture(scope="module")
def gl() -> None:
    """Skip (saying why) where this machine has no EGL: the fallback tests still run."""
    reason = opengl_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no OpenGL through EGL here: {reason}")


@pytest.fixture
def no_gl(monkeypatch: pytest.MonkeyPatch) -> thumbnail_generator._GLBackend:
    """A fresh backend whose context creation fails, as on a machine without libEGL."""

    def fail(*args: object, **kwargs: object) -> None:
        raise Exception("libEGL.so.1 not loaded")

    backend = thumbnail_generator._GLBackend()
    monkeypatch.setattr(thumbnail_generator, "_BACKEND", backend)
    monkeypatch.setattr(moderngl, "create_standalone_context", fail)
    return backend


def sphere(color: tuple[int, int, int, int] | None = None, inverted: bool = False):
    s = trimesh.creation.icosphere(subdivisions=3)
    faces = s.faces[:, ::-1] if inverted else s.faces
    colors = None if color is None else np.tile(np.array(color, np.uint8), (len(s.vertices), 1))
    return trimesh.Trimesh(s.vertices, faces, vertex_colors=colors, process=False)


def pixels(png: bytes, size: int) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (size, size)
    assert image.mode == "RGBA"
    return np.asarray(image)


def opaque_rgb(rgba: np.ndarray) -> np.ndarray:
    return rgba[rgba[..., 3] == 255][:, :3].astype(int)


def test_png_has_the_requested_size_and_an_alpha_channel(gl: None) -> None:
    result = make_thumbnail(sphere(RED), 96)

    assert result.renderer == "opengl"
    rgba = pixels(result.png, 96)
    assert rgba[0, 0, 3] == 0  # transparent background by default
    assert generate_thumbnail(sphere(RED), 96) == result.png


def test_the_whole_object_is_framed_with_a_margin(gl: None) -> None:
    covered = pixels(generate_thumbnail(sphere(RED), 128), 128)[..., 3] > 0
    rows = np.flatnonzero(covered.any(axis=1))
    cols = np.flatnonzero(covered.any(axis=0))

    assert 0 < rows[0] and rows[-1] < 127 and 0 < cols[0] and cols[-1] < 127
    assert covered.mean() > 0.5  # the bounding sphere's disc is ~0.6 of the image
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) > 0.8 * 128


def test_vertex_colours_show(gl: None) -> None:
    rgb = opaque_rgb(pixels(generate_thumbnail(sphere(RED), 64), 64))

    reddish = (rgb[:, 0] > rgb[:, 1] + 60) & (rgb[:, 0] > rgb[:, 2] + 60)
    assert len(rgb) > 0.4 * 64 * 64
    assert reddish.mean() > 0.9


def test_an_uncoloured_mesh_is_neutral_grey(gl: None) -> None:
    rgb = opaque_rgb(pixels(generate_thumbnail(trimesh.creation.box(), 64), 64))

    assert len(rgb) > 0.2 * 64 * 64
    assert np.abs(rgb - rgb.mean(axis=1, keepdims=True)).max() <= 2


def test_lighting_varies_across_the_surface(gl: None) -> None:
    brightness = opaque_rgb(pixels(generate_thumbnail(sphere(), 128), 128)).sum(axis=1)

    assert brightness.std() > 40
    assert brightness.max() - brightness.min() > 200


def test_a_texture_is_sampled_through_the_uvs(gl: None) -> None:
    texture = np.zeros((32, 32, 3), np.uint8)
    texture[:16] = (230, 20, 20)  # top half of the image: v > 0.5 (trimesh's UVs, glTF's v up)
    texture[16:] = (20, 20, 230)
    mesh = trimesh.creation.icosphere(subdivisions=3)
    uv = np.column_stack([np.full(len(mesh.vertices), 0.5), mesh.vertices[:, 1] * 0.5 + 0.5])
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv, image=Image.fromarray(texture))

    rgba = pixels(generate_thumbnail(mesh, 64), 64)
    # Seen from above, the equator projects below the middle: compare the caps.
    top, bottom = opaque_rgb(rgba[:20]), opaque_rgb(rgba[52:])

    assert (top[:, 0] > top[:, 2] + 60).mean() > 0.9
    assert (bottom[:, 2] > bottom[:, 0] + 60).mean() > 0.9


def test_an_open_mesh_renders_from_behind(gl: None) -> None:
    plane = trimesh.Trimesh(
        vertices=[[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]],
        faces=[[0, 2, 1], [0, 3, 2]],  # facing away from the camera
        process=False,
    )
    rgba = pixels(generate_thumbnail(plane, 64), 64)

    assert (rgba[..., 3] > 0).mean() > 0.2
    assert opaque_rgb(rgba).mean() > 60  # lit, not black


def test_an_inverted_mesh_looks_like_the_outward_one(gl: None) -> None:
    outward = pixels(generate_thumbnail(sphere(RED), 64), 64).astype(int)
    inverted = pixels(generate_thumbnail(sphere(RED, inverted=True), 64), 64).astype(int)

    assert np.abs(outward - inverted).max() <= 2


def test_background_fills_around_the_object(gl: None) -> None:
    rgba = pixels(generate_thumbnail(sphere(RED), 64, background=(255, 255, 255, 255)), 64)

    assert (rgba[..., 3] == 255).all()
    assert tuple(rgba[0, 0]) == (255, 255, 255, 255)
    half = pixels(generate_thumbnail(sphere(RED), 64, background=(0, 0, 255, 128)), 64)
    assert tuple(half[0, 0]) == (0, 0, 255, 128)
    assert half[32, 32, 3] == 255


def test_an_empty_mesh_gives_the_bare_background(gl: None) -> None:
    rgba = pixels(generate_thumbnail(trimesh.Trimesh(), 32), 32)

    assert (rgba == 0).all()


def test_the_same_input_gives_the_same_image(gl: None) -> None:
    mesh = sphere(RED)

    assert generate_thumbnail(mesh, 80) == generate_thumbnail(mesh, 80)


def test_worker_threads_share_the_context(gl: None) -> None:
    mesh = sphere(RED)
    expected = generate_thumbnail(mesh, 64)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _: make_thumbnail(mesh, 64), range(6)))

    assert all(r.renderer == "opengl" and r.png == expected for r in results)


@pytest.mark.parametrize(
    ("size", "background"),
    [(0, (0, 0, 0, 0)), (5000, (0, 0, 0, 0)), (64, (1.0, 1.0, 1.0, 1.0)), (64, (0, 0, 0))],
)
def test_bad_arguments_are_rejected(size: int, background: tuple) -> None:
    with pytest.raises(ValueError):
        generate_thumbnail(sphere(), size, background)


def test_falls_back_to_numpy_when_no_context_can_be_made(
    no_gl: thumbnail_generator._GLBackend, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=thumbnail_generator.__name__):
        first = make_thumbnail(sphere(RED), 64)
        second = make_thumbnail(sphere(RED), 64, background=(255, 255, 255, 255))

    assert first.renderer == second.renderer == "numpy"
    rgba = pixels(first.png, 64)
    assert (rgba[..., 3] > 0).mean() > 0.4 and rgba[0, 0, 3] == 0
    assert (pixels(second.png, 64)[..., 3] == 255).all()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "libEGL.so.1 not loaded" in warnings[0].getMessage()
    assert opengl_unavailable_reason() == "Exception: libEGL.so.1 not loaded"
