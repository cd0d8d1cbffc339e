"""GrabCut seeded from the border's colours: the cut-out for an object on a textured background.

OpenCV's GrabCut separates two colour models (Gaussian mixtures) with a graph cut that prefers
boundaries along image edges; what it needs is a first guess of which pixels are which. Ours
comes from the photo's border, which in a photo of an object shows mostly background:

1. the border band's colours are clustered (k-means); clusters holding a small share of the
   band and unlike every large cluster are dropped, since they are most likely the object
   where it runs off an edge;
2. each pixel is compared with what remains, allowing each background colour to be darkened
   down to ``min_shade`` of its brightness (a shadow cast on the background is background);
3. pixels like the background start as probable background (certain on the border band), the
   rest as probable object, and GrabCut iterates from there on a small copy (``coarse_side``);
4. the result is refined on a larger copy (``refine_side``) in a thin band around the edge
   only, then scaled to the photo; parts much smaller than the largest are dropped.

Plain backgrounds are left to the flood fill, which is exact there; this is for the rest. It
cannot separate an object from background of the same colours (a white cup on a white table).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from sweedle_core.preprocess.masks import MAX_OBJECT_SHARE

_GRABCUT_STATE = 65  # the (1, 65) float64 arrays OpenCV keeps its two mixtures in
_KMEANS_CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
_MIN_SPREAD = 8.0  # RGB units: a flat background still admits sensor noise
_MIN_SIDE = 16


class GrabCutCutout:
    """A classical segmentation for objects in front of textured or non-uniform backgrounds."""

    name = "grabcut"

    def __init__(
        self,
        coarse_side: int = 320,
        refine_side: int = 640,
        clusters: int = 6,
        band_share: float = 0.03,
        min_shade: float = 0.45,
        minor_share: float = 0.08,
        iterations: int = 5,
        refine_iterations: int = 2,
        refine_band: int = 6,
        min_part_share: float = 0.05,
    ) -> None:
        """
        coarse_side, refine_side : longer side (px) of the copies GrabCut runs on.
        clusters : background colours sought in the border band.
        band_share : width of the border band, as a share of the shorter side.
        min_shade : how dark a shadow on the background may be, as a share of its brightness.
        minor_share : a border colour cluster below this share of the band may be the object.
        refine_band : half-width (px of the refined copy) of the band the refinement may move.
        min_part_share : object parts smaller than this share of the largest are dropped.
        """
        self.coarse_side = coarse_side
        self.refine_side = max(refine_side, coarse_side)
        self.clusters = clusters
        self.band_share = band_share
        self.min_shade = min_shade
        self.minor_share = minor_share
        self.iterations = iterations
        self.refine_iterations = refine_iterations
        self.refine_band = refine_band
        self.min_part_share = min_part_share

    def foreground_mask(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb : (h, w, 3) uint8 -> (h, w) bool, True on the object; None if none was found."""
        if min(rgb.shape[:2]) < _MIN_SIDE:
            return None
        cv2.setRNGSeed(0)  # k-means and GrabCut's mixtures start from OpenCV's RNG: same photo,
        # same cut-out (the seed is per thread)
        try:
            coarse = self._coarse(rgb)
            if coarse is None:
                return None
            mask = self._refine(rgb, coarse)
        except cv2.error:  # a mixture with too few pixels to learn from: no clear object
            return None
        return mask if mask.any() and mask.mean() <= MAX_OBJECT_SHARE else None

    def _coarse(self, rgb: np.ndarray) -> np.ndarray | None:
        small = _resized(rgb, self.coarse_side)
        h, w = small.shape[:2]
        band = _border_band(h, w, max(2, round(self.band_share * min(h, w))))
        colours = small.reshape(-1, 3).astype(np.float32)
        centres, spread = self._background_colours(colours[band.ravel()])
        like_background = (shade_distance(colours, centres, self.min_shade) < spread).reshape(h, w)

        labels = np.full((h, w), cv2.GC_PR_FGD, dtype=np.uint8)
        labels[like_background] = cv2.GC_PR_BGD
        if (labels == cv2.GC_PR_FGD).mean() < 0.01:
            # Nothing stands out from the border's colours: fall back to GrabCut's usual
            # start, the middle of the frame as the probable object.
            labels[h // 8 : h - h // 8, w // 8 : w - w // 8] = cv2.GC_PR_FGD
        labels[band & like_background] = cv2.GC_BGD
        _grabcut(small, labels, self.iterations)
        found = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        found = _main_parts(found, self.min_part_share)
        return found if found.any() else None

    def _background_colours(self, samples: np.ndarray) -> tuple[np.ndarray, float]:
        """The border band's colours ``(n, 3) float32`` -> background colours ``(k, 3)`` and
        the distance within which a pixel counts as one of them (RGB units)."""
        count = min(self.clusters, len(samples))
        _, labels, centres = cv2.kmeans(
            samples, count, None, _KMEANS_CRITERIA, 2, cv2.KMEANS_PP_CENTERS
        )
        labels = labels.ravel()
        share = np.bincount(labels, minlength=count) / len(labels)
        major = share >= self.minor_share
        spread = self._spread(samples[major[labels]], centres[major])
        # A small cluster stays only if a large one explains it (a darker patch of the same
        # wall); otherwise it is probably the object running off an edge.
        near = shade_distance(centres, centres[major], self.min_shade) < spread
        keep = major | near
        return centres[keep], self._spread(samples[keep[labels]], centres[keep])

    def _spread(self, samples: np.ndarray, centres: np.ndarray) -> float:
        """The 90th percentile of the samples' distances to their background colours."""
        distances = shade_distance(samples, centres, self.min_shade)
        return max(float(np.percentile(distances, 90)), _MIN_SPREAD)

    def _refine(self, rgb: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """The coarse mask, its edge re-cut on a larger copy, at the photo's size."""
        height, width = rgb.shape[:2]
        image = _resized(rgb, self.refine_side)
        h, w = image.shape[:2]
        inside = cv2.resize(coarse.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * self.refine_band + 1, 2 * self.refine_band + 1)
        )
        labels = np.full((h, w), cv2.GC_BGD, dtype=np.uint8)
        labels[cv2.dilate(inside, kernel) > 0] = cv2.GC_PR_BGD
        labels[inside > 0] = cv2.GC_PR_FGD
        labels[cv2.erode(inside, kernel) > 0] = cv2.GC_FGD
        if (labels == cv2.GC_PR_BGD).any() and (labels == cv2.GC_PR_FGD).any():
            _grabcut(image, labels, self.refine_iterations)
        found = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
        return cv2.resize(found, (width, height), interpolation=cv2.INTER_LINEAR) > 0.5


def shade_distance(colours: np.ndarray, centres: np.ndarray, min_shade: float) -> np.ndarray:
    """Distance ``(n,)`` from each colour ``(n, 3)`` to the nearest of the centres ``(k, 3)``,
    each centre standing for itself darkened by any factor in ``[min_shade, 1]``."""
    best = np.full(len(colours), np.inf, dtype=np.float32)
    for centre in centres.astype(np.float32):
        scale = np.clip(colours @ centre / (float(centre @ centre) + 1e-3), min_shade, 1.0)
        gap = colours - scale[:, None] * centre[None, :]
        np.minimum(best, np.sqrt(np.einsum("ij,ij->i", gap, gap)), out=best)
    return best


def _grabcut(rgb: np.ndarray, labels: np.ndarray, iterations: int) -> None:
    """Run GrabCut in place on ``labels`` (h, w) uint8 of ``cv2.GC_*`` values."""
    background = np.zeros((1, _GRABCUT_STATE), dtype=np.float64)
    foreground = np.zeros((1, _GRABCUT_STATE), dtype=np.float64)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    no_rect = (0, 0, 0, 0)  # unused: the labels are the start
    cv2.grabCut(bgr, labels, no_rect, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)


def _resized(rgb: np.ndarray, side: int) -> np.ndarray:
    """``rgb`` with its longer side at most ``side``, by area averaging."""
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return np.ascontiguousarray(rgb)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _border_band(h: int, w: int, width: int) -> np.ndarray:
    band = np.zeros((h, w), dtype=bool)
    band[:width] = band[-width:] = True
    band[:, :width] = band[:, -width:] = True
    return band


def _main_parts(mask: np.ndarray, min_share: float) -> np.ndarray:
    """The 8-connected parts of ``mask`` at least ``min_share`` of the largest one's area."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())
    areas[0] = 0
    keep = areas >= min_share * areas.max()
    keep[0] = False
    return np.take(keep, labels)
