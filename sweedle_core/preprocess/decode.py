"""Checking and decoding an uploaded image: bytes in, a loaded, upright RGB(A) image out.

Every refusal is a `sweedle_core.errors.ImageRejected` whose message a user can act on; it
becomes the body of a 4xx. The order of the checks is the point: byte size first, then the
format from the file's signature, then the pixel count from the header, and only then decoding.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from sweedle_core.errors import ImageRejected, ImageTooLarge, UnsupportedImageFormat

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
_ACCEPTED_TEXT = "a PNG, JPEG or WebP image"

_DISPLAY_NAMES = {"WEBP": "WebP"}

# What Pillow raises while decoding data that is cut short or damaged.
_CORRUPT_DATA_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

_MB = 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """What an upload may weigh: bytes on the wire and decoded pixels."""

    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class ImageInfo:
    """An accepted upload as the user sees it: size after EXIF orientation."""

    format: str  # "PNG", "JPEG" or "WEBP"
    width: int
    height: int
    has_alpha: bool


def inspect_image(data: bytes, limits: ImageLimits) -> ImageInfo:
    """Validate an upload completely (including decoding it) and describe it; keep no pixels."""
    info, _ = _load(data, limits)
    return info


def decode_image(data: bytes, limits: ImageLimits) -> Image.Image:
    """Decode an upload: upright per EXIF, RGBA when it has transparency, RGB otherwise."""
    return read_image(data, limits)[1]


def read_image(data: bytes, limits: ImageLimits) -> tuple[ImageInfo, Image.Image]:
    """`inspect_image` and `decode_image` in one decode."""
    info, image = _load(data, limits)
    return info, _to_rgb_or_rgba(image, info.has_alpha)


def _load(data: bytes, limits: ImageLimits) -> tuple[ImageInfo, Image.Image]:
    """Run every check, decode, and apply the EXIF orientation in place."""
    if not data:
        raise ImageRejected("the uploaded file is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the file is {_megabytes(len(data))}, more than the "
            f"{_megabytes(limits.max_bytes)} limit"
        )
    found = sniff_format(data)
    if found is None:
        raise UnsupportedImageFormat(
            f"the file is not an image Sweedle can read: upload {_ACCEPTED_TEXT}"
        )
    if found not in ACCEPTED_FORMATS:
        raise UnsupportedImageFormat(
            f"{_DISPLAY_NAMES.get(found, found)} images are not supported: upload {_ACCEPTED_TEXT}"
        )

    image = _open(data, found, limits)
    try:
        image.load()
    except _CORRUPT_DATA_ERRORS as exc:
        raise _corrupt(found) from exc
    _apply_orientation(image)

    has_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    width, height = image.size
    # `found`, not `image.format`: Pillow calls multi-picture JPEGs (many phone photos) "MPO".
    return ImageInfo(format=found, width=width, height=height, has_alpha=has_alpha), image


def _open(data: bytes, found: str, limits: ImageLimits) -> Image.Image:
    """Read the header only, and refuse what would decode to too many pixels.

    Pillow's own guard warns above ``Image.MAX_IMAGE_PIXELS`` and raises above twice that. The
    warning is checked here by comparing the size, not by a ``warnings.catch_warnings()`` block:
    that swaps the process-wide filter list and is not thread-safe, and preparation runs in
    worker threads. Under an "error" warnings filter the warning arrives as an exception, and
    becomes `ImageTooLarge` like the rest.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=(found,))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pillow_refused(limits, exc) from exc
    except _CORRUPT_DATA_ERRORS as exc:
        # The signature says `found`, yet its decoder cannot read the header.
        raise _corrupt(found) from exc

    width, height = image.size
    if width * height > _pixel_limit(limits):
        image.close()
        raise _too_many_pixels(limits, (width, height))
    return image


def _apply_orientation(image: Image.Image) -> None:
    """Rotate to the EXIF orientation; a damaged EXIF block leaves the pixels as stored."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except _CORRUPT_DATA_ERRORS + (KeyError, TypeError):
        pass


def _to_rgb_or_rgba(image: Image.Image, has_alpha: bool) -> Image.Image:
    if image.mode.startswith("I"):
        # 16-bit greyscale PNG: Pillow's convert() clips at 255 instead of scaling.
        levels = np.clip(np.asarray(image), 0, 65535) >> 8
        image = Image.fromarray(levels.astype(np.uint8), mode="L")
        has_alpha = False
    target = "RGBA" if has_alpha else "RGB"
    return image if image.mode == target else image.convert(target)


def sniff_format(data: bytes) -> str | None:
    """Name the image format from the file signature, or None when it is not one we know.

    Only the accepted formats reach Pillow's decoders; the rest are named so that the message
    can say what was uploaded.
    """
    for name, matches in _SIGNATURES.items():
        if matches(data):
            return name
    return None


def _is_bmp(data: bytes) -> bool:
    # "BM" alone starts plenty of text files; also require a known DIB header size.
    return data[:2] == b"BM" and data[14:18] in {
        struct.pack("<I", n) for n in (12, 40, 52, 56, 64, 108, 124)
    }


def _iso_brand(data: bytes) -> bytes:
    return data[8:12] if data[4:8] == b"ftyp" else b""


_SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "PNG": lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"),
    "JPEG": lambda d: d.startswith(b"\xff\xd8\xff"),
    "WEBP": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP",
    "GIF": lambda d: d[:6] in (b"GIF87a", b"GIF89a"),
    "BMP": _is_bmp,
    "TIFF": lambda d: d[:4] in (b"II*\x00", b"MM\x00*"),
    "ICO": lambda d: d[:4] == b"\x00\x00\x01\x00",
    "PSD": lambda d: d.startswith(b"8BPS"),
    "HEIC": lambda d: _iso_brand(d) in (b"heic", b"heix", b"hevc", b"mif1", b"msf1"),
    "AVIF": lambda d: _iso_brand(d) in (b"avif", b"avis"),
    "JPEG XL": lambda d: d[:2] == b"\xff\x0a" or d.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"),
    "PDF": lambda d: d.startswith(b"%PDF"),
    "SVG": lambda d: b"<svg" in d[:1024],
}


def _too_many_pixels(limits: ImageLimits, size: tuple[int, int]) -> ImageTooLarge:
    width, height = size
    return ImageTooLarge(
        f"the image is {width} x {height} pixels ({_megapixels(width * height)}), more than "
        f"the limit of {_megapixels(_pixel_limit(limits))}"
    )


def _pillow_refused(limits: ImageLimits, exc: Exception) -> ImageTooLarge:
    """Pillow refused in `Image.open`, before the size could be read: take the pixel count
    from its message when it has one."""
    limit = f"the limit of {_megapixels(_pixel_limit(limits))}"
    counted = re.search(r"\((\d+) pixels\)", str(exc))
    if counted is None:
        return ImageTooLarge(f"the image has too many pixels to decode safely, more than {limit}")
    return ImageTooLarge(f"the image has {_megapixels(int(counted.group(1)))}, more than {limit}")


def _pixel_limit(limits: ImageLimits) -> int:
    if Image.MAX_IMAGE_PIXELS:
        return min(limits.max_pixels, Image.MAX_IMAGE_PIXELS)
    return limits.max_pixels


def _corrupt(found: str) -> ImageRejected:
    name = _DISPLAY_NAMES.get(found, found)
    return ImageRejected(f"the {name} file is truncated or corrupt and cannot be decoded")


def _megabytes(n: int) -> str:
    return f"{n / _MB:.1f} MB" if n >= _MB // 10 else f"{n / 1024:.1f} kB"


def _megapixels(n: int) -> str:
    return f"{n / 1e6:.3g} megapixels"
