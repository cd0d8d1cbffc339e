"""Binary mask operations shared by the classical cut-outs: (h, w) bool arrays in and out."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# A foreground covering more of the photo than this means no background was found.
MAX_OBJECT_SHARE = 0.97


def touching_border(mask: np.ndarray) -> np.ndarray:
    """The 4-connected regions of ``mask`` that touch the image border."""
    labels, count = ndimage.label(mask)
    edge_labels = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.zeros(count + 1, dtype=bool)
    keep[edge_labels] = True
    keep[0] = False
    return np.take(keep, labels)


def dilate(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary dilation; outside the image counts as empty."""
    padded = np.pad(mask, 1, constant_values=False)
    rows = padded[:-2] | padded[1:-1] | padded[2:]
    return rows[:, :-2] | rows[:, 1:-1] | rows[:, 2:]


def erode(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary erosion; outside the image counts as full, so edges are not eaten."""
    return ~dilate(~mask)


def without_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Drop 8-connected islands smaller than ``min_area`` pixels, never the largest one."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[int(np.argmax(areas[1:])) + 1] = True
    keep[0] = False
    return np.take(keep, labels)


def soft_alpha(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool -> (h, w) uint8 alpha, its edge smoothed by a separable [1, 2, 1] / 4 kernel
    (about a pixel of anti-aliasing)."""
    level = np.pad(mask.astype(np.uint16) * 255, 1, mode="edge")
    rows = level[:-2] + 2 * level[1:-1] + level[2:]
    smooth = rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]
    return ((smooth + 8) >> 4).astype(np.uint8)
