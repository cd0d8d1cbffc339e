"""The classical cut-out on drawn photos with known masks, and on three real photos.

Floors measured on this code (see BENCHMARKS.md for the table): GrabCut's IoU against the true
mask is 0.96 on average over the ten scenes, 0.99 on most, and 0.75 on the one a colour model
cannot separate (a white mug in front of white squares). The flood fill finds no uniform border
in any of them and removes nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sweedle_core.preprocess import BorderFloodFill, ClassicalRemover, GrabCutCutout
from tests.scenes import SCENES, draw_scene, iou

WHITE_ON_WHITE = 7  # the white mug on a checker of white and blue squares


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[float, float]]:
    """Per scene: (flood fill IoU, GrabCut IoU); a finder that finds nothing removes nothing."""
    flood, grabcut = BorderFloodFill(), GrabCutCutout()
    results = {}
    for index, scene in enumerate(SCENES):
        image, truth = draw_scene(index)
        rgb = np.asarray(image)
        everything = np.ones_like(truth)
        flood_mask, grabcut_mask = flood.foreground_mask(rgb), grabcut.foreground_mask(rgb)
        results[scene.name] = (
            iou(everything if flood_mask is None else flood_mask, truth),
            iou(everything if grabcut_mask is None else grabcut_mask, truth),
        )
    return results


def test_grabcut_finds_objects_on_textured_backgrounds(
    measured: dict[str, tuple[float, float]],
) -> None:
    scores = {name: grabcut for name, (_, grabcut) in measured.items()}

    assert np.mean(list(scores.values())) >= 0.93, scores
    hard = SCENES[WHITE_ON_WHITE].name
    assert scores[hard] >= 0.6, scores
    assert all(score >= 0.9 for name, score in scores.items() if name != hard), scores


def test_grabcut_beats_the_flood_fill_on_every_scene(
    measured: dict[str, tuple[float, float]],
) -> None:
    assert all(grabcut > flood + 0.3 for flood, grabcut in measured.values()), measured


def test_the_chain_keeps_the_flood_fill_for_a_plain_background() -> None:
    image = Image.new("RGB", (160, 120), (245, 245, 245))
    ImageDraw.Draw(image).ellipse((50, 30, 110, 90), (30, 90, 200))

    cut = ClassicalRemover().remove(image)

    alpha = np.asarray(cut.image.getchannel("A"))
    assert cut.method == "flood_fill"
    assert alpha[60, 80] == 255 and alpha[5, 5] == 0


def test_the_chain_says_grabcut_on_a_textured_background() -> None:
    image, truth = draw_scene(0)

    cut = ClassicalRemover().remove(image)

    alpha = np.asarray(cut.image.getchannel("A")) > 127
    assert cut.method == "grabcut" and iou(alpha, truth) > 0.95


def test_noise_without_an_object_is_not_cut() -> None:
    noise = Image.fromarray(np.random.default_rng(3).integers(0, 256, (96, 128, 3), np.uint8))

    cut = ClassicalRemover().remove(noise)

    assert cut.method == "flood_fill and grabcut"
    assert np.asarray(cut.image.getchannel("A")).min() == 255


def test_same_photo_same_cut_out() -> None:
    image, _ = draw_scene(2)
    rgb = np.asarray(image)

    first, second = GrabCutCutout().foreground_mask(rgb), GrabCutCutout().foreground_mask(rgb)

    assert first is not None and second is not None and (first == second).all()


def test_tiny_images_are_left_alone() -> None:
    assert GrabCutCutout().foreground_mask(np.zeros((8, 8, 3), np.uint8)) is None


# Three ordinary photos from scikit-image's samples, where the flood fill removed nothing: a point
# on the object must be kept, a point of background removed, and the cut-out neither empty nor
# the whole photo. (x, y) as shares of the width and height.
PHOTOS = {
    "astronaut": ((0.45, 0.2), (0.1, 0.1)),  # her face; the dark studio wall
    "coffee": ((0.45, 0.55), (0.05, 0.9)),  # the saucer; the wooden table
    "chelsea": ((0.45, 0.45), (0.95, 0.1)),  # the cat's nose; the wall behind
}


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_real_photos_are_cut_out(name: str) -> None:
    data = pytest.importorskip("skimage.data")
    photo = Image.fromarray(getattr(data, name)())
    (ox, oy), (bx, by) = PHOTOS[name]

    cut = ClassicalRemover().remove(photo)

    alpha = np.asarray(cut.image.getchannel("A"))
    h, w = alpha.shape
    assert cut.method == "grabcut"
    assert alpha[int(oy * h), int(ox * w)] == 255
    assert alpha[int(by * h), int(bx * w)] == 0
    assert 0.15 < (alpha > 127).mean() < 0.85
    assert BorderFloodFill().foreground_mask(np.asarray(photo)) is None


def test_a_blank_photo_is_all_background_so_framing_finds_no_object() -> None:
    blank = Image.new("RGB", (128, 128), (255, 255, 255))

    cut = ClassicalRemover().remove(blank)

    assert cut.method == "flood_fill"
    assert np.asarray(cut.image.getchannel("A")).max() == 0
