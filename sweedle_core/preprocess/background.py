"""Background removal: an RGB photo in, the same photo with a transparent background out.

Two interchangeable removers behind one protocol: rembg (a segmentation network, optional extra)
and a classical flood fill from the image border that needs nothing but numpy and scipy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from scipy import ndimage

REMBG_EXTRA_HINT = 'pip install "sweedle[rembg]"'


class BackgroundRemover(Protocol):
    name: str

    def remove(self, image: Image.Image) -> Image.Image:
        """Return ``image`` as RGBA with the background transparent (alpha 0)."""
        ...


class BorderFloodFill:
    """Clears the background a product photo's border shows: uniform, touching every edge.

    The background colour is the median of the border pixels. Unless enough of the border is
    close to it, nothing is removed (the image comes back fully opaque): a busy border means the
    background is not one colour, and guessing would cut into the object. Otherwise every pixel
    within ``tolerance`` of that colour and connected to the border becomes transparent.
    Regions of background colour enclosed by the object (a white logo, the inside of a handle)
    stay opaque: the fill cannot reach them.
    """

    name = "flood_fill"

    def __init__(
        self,
        tolerance: float = 32.0,
        min_border_share: float = 0.6,
        min_speck_share: float = 0.0005,
        soften_edge: bool = True,
    ) -> None:
        """
        tolerance : Euclidean RGB distance (0-441) within which a pixel counts as background.
        min_border_share : share of border pixels that must be background-coloured.
        min_speck_share : foreground islands smaller than this share of the image are noise.
        soften_edge : blur the alpha edge by about a pixel (anti-aliasing).
        """
        self.tolerance = tolerance
        self.min_border_share = min_border_share
        self.min_speck_share = min_speck_share
        self.soften_edge = soften_edge

    def remove(self, image: Image.Image) -> Image.Image:
        result = image.convert("RGBA")
        mask = self.foreground_mask(np.asarray(image.convert("RGB")))
        if mask is None:
            result.putalpha(255)
            return result
        alpha = _blur_one_pixel(mask) if self.soften_edge else mask.astype(np.uint8) * 255
        result.putalpha(Image.fromarray(alpha))
        return result

    def foreground_mask(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb : (h, w, 3) uint8 -> (h, w) bool, True on the object; None if the border is busy."""
        border = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]).astype(np.int32)
        background = np.median(border, axis=0).round().astype(np.int32)
        limit = self.tolerance**2
        near_border = np.square(border - background).sum(axis=1) <= limit
        if near_border.mean() < self.min_border_share:
            return None

        flooded = _touching_border(_squared_distance(rgb, background) <= limit)
        foreground = ~flooded
        # Seal gaps of a pixel or two through which the fill leaked into the object, then fill
        # what that sealed off.
        closed = _erode(_dilate(foreground))
        if (closed & flooded).any():
            foreground = ~_touching_border(~closed)
        return _without_specks(foreground, self.min_speck_share * foreground.size)


def _squared_distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """rgb : (h, w, 3) uint8, colour : (3,) -> (h, w) int32 squared Euclidean distance."""
    total = np.zeros(rgb.shape[:2], dtype=np.int32)
    for channel in range(3):  # per channel: three (h, w) temporaries instead of one (h, w, 3)
        diff = rgb[..., channel].astype(np.int32)
        diff -= colour[channel]
        diff *= diff
        total += diff
    return total


def _touching_border(mask: np.ndarray) -> np.ndarray:
    """The 4-connected regions of ``mask`` that touch the image border."""
    labels, count = ndimage.label(mask)
    edge_labels = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.zeros(count + 1, dtype=bool)
    keep[edge_labels] = True
    keep[0] = False
    return np.take(keep, labels)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary dilation; outside the image counts as empty."""
    padded = np.pad(mask, 1, constant_values=False)
    rows = padded[:-2] | padded[1:-1] | padded[2:]
    return rows[:, :-2] | rows[:, 1:-1] | rows[:, 2:]


def _erode(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary erosion; outside the image counts as full, so edges are not eaten."""
    return ~_dilate(~mask)


def _without_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Drop 8-connected islands smaller than ``min_area`` pixels, never the largest one."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[int(np.argmax(areas[1:])) + 1] = True
    keep[0] = False
    return np.take(keep, labels)


def _blur_one_pixel(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool -> (h, w) uint8 alpha, smoothed by a separable [1, 2, 1] / 4 kernel."""
    level = np.pad(mask.astype(np.uint16) * 255, 1, mode="edge")
    rows = level[:-2] + 2 * level[1:-1] + level[2:]
    smooth = rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]
    return ((smooth + 8) >> 4).astype(np.uint8)


class RembgRemover:
    """rembg with one session, built once. The model file must already be on disk."""

    def __init__(self, model_name: str, model_home: Path | None = None) -> None:
        if model_home is not None:
            os.environ["U2NET_HOME"] = str(model_home)
        model_file = rembg_model_dir() / f"{model_name}.onnx"
        # Offline, rembg would retry the download for minutes before failing; and importing
        # rembg costs seconds (minutes on first use, while numba compiles): check first.
        if not model_file.is_file():
            raise FileNotFoundError(
                f"rembg model {model_name!r} is not downloaded: looked for {model_file} "
                "(set U2NET_HOME to the folder that holds it)"
            )
        try:
            import rembg
        except ImportError as exc:
            raise ImportError(
                f"background removal with rembg needs the optional extra: {REMBG_EXTRA_HINT} "
                f"({exc})"
            ) from exc
        self._rembg: Any = rembg
        self.session = rembg.new_session(model_name)
        self.name = f"rembg:{model_name}"

    def remove(self, image: Image.Image) -> Image.Image:
        result = self._rembg.remove(image, session=self.session)
        return result if result.mode == "RGBA" else result.convert("RGBA")


def rembg_model_dir() -> Path:
    """Where rembg looks for its models: ``$U2NET_HOME``, else ``$XDG_DATA_HOME/.u2net``, else
    ``~/.u2net`` (the same rule as rembg's ``BaseSession.u2net_home``)."""
    default = Path(os.environ.get("XDG_DATA_HOME", "~")) / ".u2net"
    return Path(os.environ.get("U2NET_HOME", default)).expanduser()


def build_background_remover(
    model_name: str, model_home: Path | None = None
) -> tuple[BackgroundRemover, str | None]:
    """rembg when it loads, else the flood fill together with the reason rembg did not load."""
    try:
        return RembgRemover(model_name, model_home), None
    except Exception as exc:  # any load failure degrades to the classical remover
        reason = f"rembg background removal unavailable, using flood fill instead: {exc}"
        return BorderFloodFill(), reason
