"""The flood fill from the border: the cut-out for a plain background, numpy and scipy only."""

from __future__ import annotations

import numpy as np

from sweedle_core.preprocess.masks import dilate, erode, touching_border, without_specks


class BorderFloodFill:
    """Finds the object on the background a product photo's border shows: uniform, touching
    every edge.

    The background colour is the median of the border pixels. Unless enough of the border is
    close to it, nothing is found (``None``): a busy border means the background is not one
    colour, and guessing would cut into the object. Otherwise every pixel within ``tolerance``
    of that colour and connected to the border is background. Regions of background colour
    enclosed by the object (a white logo, the inside of a handle) stay with the object: the
    fill cannot reach them.
    """

    name = "flood_fill"

    def __init__(
        self,
        tolerance: float = 32.0,
        min_border_share: float = 0.6,
        min_speck_share: float = 0.0005,
    ) -> None:
        """
        tolerance : Euclidean RGB distance (0-441) within which a pixel counts as background.
        min_border_share : share of border pixels that must be background-coloured.
        min_speck_share : foreground islands smaller than this share of the image are noise.
        """
        self.tolerance = tolerance
        self.min_border_share = min_border_share
        self.min_speck_share = min_speck_share

    def foreground_mask(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb : (h, w, 3) uint8 -> (h, w) bool, True on the object; None if the border is busy."""
        border = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]).astype(np.int32)
        background = np.median(border, axis=0).round().astype(np.int32)
        limit = self.tolerance**2
        near_border = np.square(border - background).sum(axis=1) <= limit
        if near_border.mean() < self.min_border_share:
            return None

        flooded = touching_border(_squared_distance(rgb, background) <= limit)
        foreground = ~flooded
        # Seal gaps of a pixel or two through which the fill leaked into the object, then fill
        # what that sealed off.
        closed = erode(dilate(foreground))
        if (closed & flooded).any():
            foreground = ~touching_border(~closed)
        return without_specks(foreground, self.min_speck_share * foreground.size)


def _squared_distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """rgb : (h, w, 3) uint8, colour : (3,) -> (h, w) int32 squared Euclidean distance."""
    total = np.zeros(rgb.shape[:2], dtype=np.int32)
    for channel in range(3):  # per channel: three (h, w) temporaries instead of one (h, w, 3)
        diff = rgb[..., channel].astype(np.int32)
        diff -= colour[channel]
        diff *= diff
        total += diff
    return total
