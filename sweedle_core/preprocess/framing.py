"""Framing: the cut-out object centred in a square with a transparent margin, as generators expect."""

from __future__ import annotations

import numpy as np
from PIL import Image

from sweedle_core.errors import ImageRejected

# Alpha at or below this is background: the soft edge and faint halos do not widen the box.
OBJECT_ALPHA_THRESHOLD = 16


def frame_object(image: Image.Image, size: int, margin: float = 0.1) -> Image.Image:
    """Crop to the object, centre it in a ``size`` x ``size`` RGBA square, keep ``margin`` free.

    ``margin`` is the share of the side left transparent on each side of the object's longer
    dimension: 0.1 makes the object span 80 % of the square.
    """
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), not {margin}")
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    left, top, right, bottom = object_box(rgba)
    crop = rgba.crop((left, top, right, bottom))

    # Scaling the crop straight into the target square equals padding it to a square and
    # resizing that, without building the padded full-resolution canvas.
    scale = size * (1 - 2 * margin) / max(crop.width, crop.height)
    fitted = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    # Pillow resizes RGBA with premultiplied alpha, so no dark fringe bleeds in from the
    # colour of transparent pixels.
    crop = crop.resize(fitted, Image.Resampling.LANCZOS, reducing_gap=3.0)
    framed = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    framed.paste(crop, ((size - fitted[0]) // 2, (size - fitted[1]) // 2))
    return framed


def object_box(image: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), exclusive, of the pixels with alpha above the threshold."""
    alpha = np.asarray(image.getchannel("A"))
    solid = alpha > OBJECT_ALPHA_THRESHOLD
    rows = np.flatnonzero(solid.any(axis=1))
    if rows.size == 0:
        raise ImageRejected("no object found in the image after background removal")
    cols = np.flatnonzero(solid.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
