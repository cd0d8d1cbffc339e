"""Background removal: which remover runs, and the classical chain that needs no model file.

rembg (a segmentation network, `sweedle_core.preprocess.rembg_models`) runs when its model file
is on disk. Otherwise, or when it is switched off, the classical chain runs: the flood fill where
the border shows one plain colour (exact there), else GrabCut seeded from the border's colours
(an object on a textured background). The job records which method cut it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from sweedle_core.config import Settings
from sweedle_core.preprocess.cutout import BackgroundRemover, CutOut
from sweedle_core.preprocess.flood_fill import BorderFloodFill
from sweedle_core.preprocess.grabcut import GrabCutCutout
from sweedle_core.preprocess.masks import MAX_OBJECT_SHARE, soft_alpha
from sweedle_core.preprocess.rembg_models import REMBG_OFF, RembgRemover

# What runs where no segmentation model does, as the operator is told it.
CLASSICAL_CUTOUT = "the classical cut-out (flood fill on a plain background, else GrabCut)"


class MaskFinder(Protocol):
    name: str

    def foreground_mask(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb : (h, w, 3) uint8 -> (h, w) bool, True on the object; None if not found."""
        ...


class ClassicalRemover:
    """Tries each finder in turn; the first that finds an object cuts it out. When none does,
    the photo comes back opaque and the method names them all (nothing was removed)."""

    def __init__(self, finders: Sequence[MaskFinder] | None = None) -> None:
        chain: list[MaskFinder] = [BorderFloodFill(), GrabCutCutout()]
        self.finders = list(finders) if finders is not None else chain
        self.name = " or ".join(finder.name for finder in self.finders)

    def remove(self, image: Image.Image) -> CutOut:
        rgb = np.asarray(image.convert("RGB"))
        result = image.convert("RGBA")
        for finder in self.finders:
            mask = finder.foreground_mask(rgb)
            # A mask of (nearly) the whole photo found no background: try the next finder. An
            # empty one is an answer: all background, no object (framing says so).
            if mask is not None and mask.mean() <= MAX_OBJECT_SHARE:
                result.putalpha(Image.fromarray(soft_alpha(mask)))
                return CutOut(result, finder.name)
        result.putalpha(255)
        return CutOut(result, " and ".join(finder.name for finder in self.finders))


def build_background_remover(settings: Settings) -> tuple[BackgroundRemover, str | None]:
    """The remover the settings ask for, and a note for the operator when it is not rembg.

    REMBG_MODEL_FILE (a custom model) wins over REMBG_MODEL (a stock model, or ``none`` for the
    classical chain). When rembg cannot be used, the classical chain stands in and the note says
    what was looked for and how to fix it; nothing is downloaded here.
    """
    if settings.rembg_model_file is None and settings.rembg_model == REMBG_OFF:
        return ClassicalRemover(), (
            f"rembg is switched off (REMBG_MODEL={REMBG_OFF}): backgrounds are removed by "
            f"{CLASSICAL_CUTOUT}"
        )
    try:
        if settings.rembg_model_file is not None:
            remover = RembgRemover.custom(settings.rembg_model_file, settings.u2net_home)
        else:
            remover = RembgRemover.stock(settings.rembg_model, settings.u2net_home)
    except Exception as exc:  # any load failure degrades to the classical chain
        reason = f"rembg background removal unavailable, using {CLASSICAL_CUTOUT} instead: {exc}"
        return ClassicalRemover(), reason
    return remover, None
