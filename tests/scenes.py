"""Drawn photos with known masks, for measuring cut-outs: an object in front of a textured,
non-uniform background, with or without a cast shadow, sometimes running off the bottom edge.

Everything is drawn from a seed, so a scene is the same on every machine. The true mask is the
object's own outline; its shadow, where it has one, is background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class Scene:
    background: str  # wood, wall_table, checker, foliage, gradient
    shape: str  # blob, mug, figure
    colour: tuple[int, int, int]
    touches_bottom: bool
    shadow: bool

    @property
    def name(self) -> str:
        edge = "-bottom" if self.touches_bottom else ""
        return f"{self.shape}-on-{self.background}{edge}{'-shadow' if self.shadow else ''}"


SCENES = (
    Scene("wood", "blob", (200, 40, 40), False, False),
    Scene("wall_table", "mug", (40, 150, 160), False, True),
    Scene("checker", "figure", (220, 60, 30), False, False),
    Scene("foliage", "blob", (230, 200, 60), False, True),
    Scene("gradient", "mug", (180, 20, 30), True, False),
    Scene("wood", "figure", (70, 90, 200), True, True),
    Scene("wall_table", "blob", (210, 40, 20), False, False),
    Scene("checker", "mug", (235, 225, 215), True, True),  # a white mug on white squares
    Scene("foliage", "figure", (190, 30, 60), True, False),
    Scene("gradient", "blob", (60, 60, 60), False, True),
)


def draw_scene(index: int, height: int = 384, width: int = 512) -> tuple[Image.Image, np.ndarray]:
    """Scene ``index`` as an RGB photo and its true mask ``(height, width) bool``."""
    scene = SCENES[index]
    rng = np.random.default_rng(index)
    rgb = _background(scene.background, rng, height, width)
    mask = _outline(scene.shape, rng, height, width, scene.touches_bottom)
    if scene.shadow:
        rgb *= 1.0 - 0.55 * _shadow(mask)[..., None]
    soft = _blurred(mask.astype(np.float32), 0.8)[..., None]
    rgb = rgb * (1.0 - soft) + _object_colours(scene.colour, rng, mask) * soft
    rgb += rng.normal(0.0, 4.0, rgb.shape)  # sensor noise
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)), mask


def iou(found: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two ``(h, w) bool`` masks."""
    return float((found & truth).sum() / max(int((found | truth).sum()), 1))


def _noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth noise in [0, 1], ``(h, w) float32``, varying over about ``cell`` pixels."""
    small = rng.random((max(2, h // cell), max(2, w // cell)))
    image = Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def _background(kind: str, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        grain = np.sin((xx * 0.08 + 6 * _noise(rng, h, w, 40)) * 2.0)[..., None] * 0.5
        speckle = _noise(rng, h, w, 4)[..., None] - 0.5
        return np.array([150, 110, 70]) + grain * np.array([120, 90, 60]) + speckle * 30
    if kind == "wall_table":
        horizon = int(h * 0.55)
        rgb = np.zeros((h, w, 3), np.float32)
        rgb[:horizon] = np.array([200, 195, 180]) - yy[:horizon, :, None] * 0.15
        table = _noise(rng, h - horizon, w, 8)[..., None] - 0.5
        rgb[horizon:] = np.array([90, 70, 60]) + table * 50
        return rgb + (_noise(rng, h, w, 3)[..., None] - 0.5) * 20
    if kind == "checker":
        light = (((xx // 24) + (yy // 24)) % 2)[..., None]
        rgb = light * np.array([210, 210, 200]) + (1 - light) * np.array([60, 80, 110])
        return _blurred(rgb.astype(np.float32), 1.5)
    if kind == "foliage":
        coarse, fine = _noise(rng, h, w, 12), _noise(rng, h, w, 5)
        return np.stack([40 + 60 * coarse, 90 + 100 * fine, 40 + 50 * coarse * fine], axis=-1)
    if kind == "gradient":
        t = (xx / w * 0.6 + yy / h * 0.4)[..., None]
        rgb = (1 - t) * np.array([230, 200, 160]) + t * np.array([70, 90, 140])
        return rgb + (_noise(rng, h, w, 6)[..., None] - 0.5) * 25
    raise ValueError(kind)


def _outline(shape: str, rng: np.random.Generator, h: int, w: int, bottom: bool) -> np.ndarray:
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
    r = min(h, w) * rng.uniform(0.22, 0.3)
    if bottom:
        cy = h - r * 0.7
    if shape == "blob":
        angle = np.linspace(0, 2 * np.pi, 60, endpoint=False)
        radius = r * (1 + 0.25 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.1 * np.sin(5 * angle))
        points = zip(cx + radius * np.cos(angle), cy + radius * 1.2 * np.sin(angle), strict=True)
        draw.polygon(list(points), fill=255)
    elif shape == "mug":
        draw.rounded_rectangle([cx - r * 0.7, cy - r, cx + r * 0.7, cy + r], r * 0.2, fill=255)
        draw.ellipse([cx + r * 0.45, cy - r * 0.5, cx + r * 1.25, cy + r * 0.4], fill=255)
        draw.ellipse([cx + r * 0.68, cy - r * 0.28, cx + r * 1.02, cy + r * 0.18], fill=0)
    elif shape == "figure":
        draw.ellipse([cx - r * 0.35, cy - r * 1.3, cx + r * 0.35, cy - r * 0.6], fill=255)
        draw.rounded_rectangle(
            [cx - r * 0.6, cy - r * 0.6, cx + r * 0.6, cy + r * 0.7], r * 0.2, fill=255
        )
        draw.rectangle([cx - r * 0.5, cy + r * 0.6, cx - r * 0.15, cy + r * 1.4], fill=255)
        draw.rectangle([cx + r * 0.15, cy + r * 0.6, cx + r * 0.5, cy + r * 1.4], fill=255)
    else:
        raise ValueError(shape)
    return np.asarray(canvas) > 127


def _shadow(mask: np.ndarray) -> np.ndarray:
    """A soft shadow ``(h, w)`` in [0, 1], cast down and to the left of the object."""
    h, w = mask.shape
    outline = Image.fromarray(mask.astype(np.uint8) * 255)
    cast = outline.transform((w, h), Image.Transform.AFFINE, (1, 0.5, -h * 0.08, 0, 1, -h * 0.05))
    return np.asarray(cast.filter(ImageFilter.GaussianBlur(12)), dtype=np.float32) / 255.0


def _object_colours(
    colour: tuple[int, int, int], rng: np.random.Generator, mask: np.ndarray
) -> np.ndarray:
    """The object lit from the top left, with a mottled surface: ``(h, w, 3) float32``."""
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rows, cols = np.nonzero(mask)
    cx, cy = cols.mean(), rows.mean()
    r = max(np.ptp(cols), np.ptp(rows)) / 2
    light = 1.0 - 0.45 * ((xx - cx + 0.4 * r) ** 2 + (yy - cy + 0.4 * r) ** 2) / (r * r)
    shade = np.clip(light, 0.35, 1.1)[..., None]
    return np.array(colour, np.float32) * shade + (_noise(rng, h, w, 10)[..., None] - 0.5) * 40


def _blurred(values: np.ndarray, sigma: float) -> np.ndarray:
    from scipy import ndimage

    axes = (sigma, sigma, 0) if values.ndim == 3 else sigma
    return ndimage.gaussian_filter(values, axes)
