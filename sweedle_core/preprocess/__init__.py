"""Image preparation: check and decode an upload, remove its background, frame the object."""

from sweedle_core.preprocess.background import ClassicalRemover, build_background_remover
from sweedle_core.preprocess.cutout import BackgroundRemover, CutOut
from sweedle_core.preprocess.decode import (
    ACCEPTED_FORMATS,
    ImageInfo,
    ImageLimits,
    decode_image,
    inspect_image,
    read_image,
)
from sweedle_core.preprocess.flood_fill import BorderFloodFill
from sweedle_core.preprocess.framing import frame_object
from sweedle_core.preprocess.grabcut import GrabCutCutout
from sweedle_core.preprocess.pipeline import ImagePreparer, PreparedImage
from sweedle_core.preprocess.rembg_models import RembgRemover

__all__ = [
    "ACCEPTED_FORMATS",
    "BackgroundRemover",
    "BorderFloodFill",
    "ClassicalRemover",
    "CutOut",
    "GrabCutCutout",
    "ImageInfo",
    "ImageLimits",
    "ImagePreparer",
    "PreparedImage",
    "RembgRemover",
    "build_background_remover",
    "decode_image",
    "frame_object",
    "inspect_image",
    "read_image",
]
