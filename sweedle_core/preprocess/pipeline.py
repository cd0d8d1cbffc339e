"""Image preparation: upload bytes in, the square RGBA image a generator expects out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from sweedle_core.config import Settings
from sweedle_core.preprocess.background import build_background_remover
from sweedle_core.preprocess.cutout import BackgroundRemover, CutOut
from sweedle_core.preprocess.decode import ImageInfo, ImageLimits, read_image
from sweedle_core.preprocess.framing import frame_object

# An alpha channel counts as a cut-out when some pixel is below this; 250-255 is encoder noise.
MEANINGFUL_ALPHA = 250


@dataclass(frozen=True)
class PreparedImage:
    image: Image.Image  # RGBA, size x size, object centred, background transparent
    background: str  # "alpha" (kept the upload's), "flood_fill", "grabcut", "rembg:<model>",
    # "rembg:custom:<file name>", "none" (not asked for) or "none (<method> found no background)"
    source: ImageInfo


class ImagePreparer:
    """Decodes, cuts out and frames uploads; built once per process, used from any thread."""

    def __init__(
        self,
        limits: ImageLimits,
        size: int,
        remover: BackgroundRemover,
        work_side: int = 2048,
    ) -> None:
        """
        work_side : background removal runs on a copy whose longer side is at most this; the mask
            is scaled back up and applied to the full-resolution image before framing.
        """
        self.limits = limits
        self.size = size
        self.remover = remover
        self.work_side = max(work_side, size)
        self.background_note: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ImagePreparer:
        remover, note = build_background_remover(settings)
        limits = ImageLimits(
            max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
        )
        preparer = cls(limits, settings.preprocess_size, remover)
        preparer.background_note = note
        return preparer

    def prepare(self, data: bytes, remove_background: bool) -> PreparedImage:
        info, image = read_image(data, self.limits)
        if image.mode == "RGBA" and np.asarray(image.getchannel("A")).min() < MEANINGFUL_ALPHA:
            background = "alpha"
        elif remove_background:
            cut = self._cut_out(image)
            image, background = cut.image, cut.method
            if np.asarray(image.getchannel("A")).min() >= MEANINGFUL_ALPHA:
                # The remover found no background it could tell apart: the whole photo is kept.
                background = f"none ({cut.method} found no background)"
        else:
            background = "none"
        framed = frame_object(image, self.size)
        return PreparedImage(image=framed, background=background, source=info)

    def _cut_out(self, image: Image.Image) -> CutOut:
        if max(image.size) <= self.work_side:
            return self.remover.remove(image)
        work = image.copy()
        # BOX (area averaging) is the cheapest filter without aliasing; a mask needs no more.
        work.thumbnail((self.work_side, self.work_side), Image.Resampling.BOX)
        cut = self.remover.remove(work)
        result = image.convert("RGBA")
        result.putalpha(cut.image.getchannel("A").resize(image.size, Image.Resampling.BILINEAR))
        return CutOut(result, cut.method)
