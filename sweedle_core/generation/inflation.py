"""The inflation profile: the rounded, front/back-symmetric depth blown up inside an outline.

The silhouette backend's whole body, and the visual hull's depth when no side view limits it;
one profile, so one photo gives the same depth in both.
"""

from __future__ import annotations

import numpy as np

from sweedle_core.generation.grid import smaller_extent

# Depth of the object (front to back) relative to the smaller of its width and height.
_DEPTH_RATIO = 0.6
# Bounds of the profile's z scale: below 0.25 a shape reads as a flat cut-out; above 1 its
# thickest part would be deeper than wide (1 makes a round cross-section there).
_MIN_Z_SCALE = 0.25
_MAX_Z_SCALE = 1.0


def inflate(sd: np.ndarray) -> np.ndarray:
    """Squared height of the front surface above the middle plane, in cells², ``(h, w) float32``;
    negative outside the outline. ``sd`` : (h, w), the signed distance to the outline in cells.

    The profile is circular in the distance: ``h = k * sqrt(s * (2D - s))``. Its square is smooth
    and nearly linear in ``s`` at the outline, where ``h`` itself is vertical; the field built
    from it then crosses zero evenly there and marching cubes places the outline within a cell.
    """
    depth_max = float(sd.max())
    z_scale = 0.5 * _DEPTH_RATIO * smaller_extent(sd) / depth_max
    z_scale = float(np.clip(z_scale, _MIN_Z_SCALE, _MAX_Z_SCALE))
    return (z_scale**2 * sd * (2.0 * depth_max - sd)).astype(np.float32)
