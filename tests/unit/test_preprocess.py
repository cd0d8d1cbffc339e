"""Image preparation: what a user uploads, what is refused and why, what a generator receives."""

from __future__ import annotations

import io
import struct
import sys
import types
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFile

from sweedle_core.config import Settings
from sweedle_core.errors import ImageRejected, ImageTooLarge, UnsupportedImageFormat
from sweedle_core.preprocess import (
    BorderFloodFill,
    ClassicalRemover,
    CutOut,
    ImageLimits,
    ImagePreparer,
    RembgRemover,
    build_background_remover,
    decode_image,
    frame_object,
    inspect_image,
)
from sweedle_core.preprocess.rembg_models import rembg_legacy_home

LIMITS = ImageLimits(max_bytes=10 * 1024 * 1024, max_pixels=10_000_000)
RED = (200, 30, 30)
BLUE = (30, 30, 200)


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def disc(side: int = 96, box: tuple[int, int, int, int] | None = None) -> Image.Image:
    """A red disc on a white background."""
    image = Image.new("RGB", (side, side), "white")
    ImageDraw.Draw(image).ellipse(box or (side // 4, side // 4, 3 * side // 4, 3 * side // 4), RED)
    return image


def flood_fill(image: Image.Image) -> Image.Image:
    """The flood fill alone, as the classical chain applies it: the cut-out image."""
    return ClassicalRemover([BorderFloodFill()]).remove(image).image


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple)
    return value


def alpha_of(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGBA"
    return np.asarray(image.getchannel("A"))


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def blank_png(width: int, height: int) -> bytes:
    """A valid, all-black 1-bit PNG: tiny on disk, however many pixels it claims."""
    row = bytes(1 + (width + 7) // 8)  # filter byte + packed bits
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(row * height, 1))
        + png_chunk(b"IEND", b"")
    )


class FakeRemover:
    """Cuts out with the flood fill and records what it was given."""

    name = "fake"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def remove(self, image: Image.Image) -> CutOut:
        self.seen.append(image.size)
        return CutOut(flood_fill(image), self.name)


class ForbiddenRemover:
    name = "forbidden"

    def remove(self, image: Image.Image) -> CutOut:
        raise AssertionError("background removal was not asked for")


# --- decoding: what is accepted ---------------------------------------------------------------


def test_png_is_described_and_decoded_as_rgb() -> None:
    data = encode(disc(96), "PNG")

    info = inspect_image(data, LIMITS)
    image = decode_image(data, LIMITS)

    assert (info.format, info.width, info.height, info.has_alpha) == ("PNG", 96, 96, False)
    assert image.mode == "RGB" and image.size == (96, 96)
    assert pixel(image, (48, 48)) == RED


def test_png_with_alpha_keeps_its_transparency() -> None:
    image = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((10, 10, 29, 19), (*BLUE, 255))

    data = encode(image, "PNG")
    decoded = decode_image(data, LIMITS)

    assert inspect_image(data, LIMITS).has_alpha
    assert decoded.mode == "RGBA"
    assert pixel(decoded, (0, 0))[3] == 0 and pixel(decoded, (20, 15)) == (*BLUE, 255)


@pytest.mark.parametrize("mode", ["P", "LA"])
def test_palette_and_grey_alpha_become_rgba(mode: str) -> None:
    if mode == "P":
        image = Image.new("P", (8, 8), 0)
        image.putpalette([255, 255, 255, *RED])
        image.putpixel((4, 4), 1)
        data = encode(image, "PNG", transparency=0)
    else:
        image = Image.new("LA", (8, 8), (0, 0))
        image.putpixel((4, 4), (128, 255))
        data = encode(image, "PNG")

    decoded = decode_image(data, LIMITS)

    assert inspect_image(data, LIMITS).has_alpha
    assert decoded.mode == "RGBA"
    assert pixel(decoded, (0, 0))[3] == 0 and pixel(decoded, (4, 4))[3] == 255


def test_exif_orientation_turns_the_photo_upright() -> None:
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to display
    data = encode(stored, "JPEG", exif=exif, quality=95)

    info = inspect_image(data, LIMITS)
    upright = decode_image(data, LIMITS)

    assert (info.format, info.width, info.height) == ("JPEG", 20, 40)
    assert upright.size == (20, 40) and upright.mode == "RGB"
    top, bottom = pixel(upright, (10, 5)), pixel(upright, (10, 35))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]  # stored left is now on top


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_webp_is_accepted(mode: str) -> None:
    image = disc(32).convert(mode)
    if mode == "RGBA":
        image.putpixel((0, 0), (255, 255, 255, 0))  # the encoder drops an all-opaque alpha
    data = encode(image, "WEBP", lossless=True)

    info = inspect_image(data, LIMITS)

    assert (info.format, info.width, info.has_alpha) == ("WEBP", 32, mode == "RGBA")
    assert decode_image(data, LIMITS).mode == mode


def test_16_bit_grey_png_is_scaled_not_clipped() -> None:
    levels = np.full((4, 4), 32768, dtype=np.uint16)  # mid grey in 16 bits

    decoded = decode_image(encode(Image.fromarray(levels), "PNG"), LIMITS)

    assert decoded.mode == "RGB" and pixel(decoded, (0, 0)) == (128, 128, 128)


# --- decoding: what is refused, and the message a user reads ---------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"), [("GIF", "GIF"), ("BMP", "BMP"), ("TIFF", "TIFF")], ids=str
)
def test_other_image_formats_are_refused_by_name(fmt: str, name: str) -> None:
    data = encode(disc(16), fmt)

    with pytest.raises(UnsupportedImageFormat) as caught:
        inspect_image(data, LIMITS)

    assert name in caught.value.message
    assert "PNG, JPEG or WebP" in caught.value.message


@pytest.mark.parametrize(
    "data",
    [b"hello, this is a text file\n", np.random.default_rng(0).bytes(4096)],
    ids=["text", "random"],
)
def test_non_images_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedImageFormat, match="not an image.*PNG, JPEG or WebP"):
        decode_image(data, LIMITS)


def test_empty_upload_is_refused() -> None:
    with pytest.raises(ImageRejected, match="the uploaded file is empty"):
        inspect_image(b"", LIMITS)


def test_too_many_bytes_is_refused_before_reading_the_image() -> None:
    limits = ImageLimits(max_bytes=1024 * 1024, max_pixels=LIMITS.max_pixels)
    data = b"\x89PNG\r\n\x1a\n" + bytes(3 * 1024 * 1024 // 2)

    with pytest.raises(ImageTooLarge, match=r"1\.5 MB, more than the 1\.0 MB limit"):
        inspect_image(data, limits)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_refused(fmt: str) -> None:
    noisy = Image.effect_noise((64, 64), 60).convert("RGB")
    data = encode(noisy, fmt)

    with pytest.raises(ImageRejected, match="truncated or corrupt") as caught:
        decode_image(data[: len(data) // 2], LIMITS)

    assert type(caught.value) is ImageRejected
    assert fmt in caught.value.message


def test_corrupt_header_is_refused() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"this is not a PNG header at all"

    with pytest.raises(ImageRejected, match="PNG file is truncated or corrupt"):
        inspect_image(data, LIMITS)


@pytest.mark.parametrize(
    ("width", "height", "said"),
    [
        (10_000, 5_000, "10000 x 5000 pixels (50 megapixels)"),
        # Beyond twice Image.MAX_IMAGE_PIXELS Pillow refuses before telling the size.
        (20_000, 10_000, "200 megapixels"),
    ],
)
def test_pixel_bomb_is_refused_from_its_header_without_decoding(
    width: int, height: int, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = blank_png(width, height)
    assert len(bomb) < 300_000

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    limits = ImageLimits(max_bytes=LIMITS.max_bytes, max_pixels=40_000_000)

    with pytest.raises(ImageTooLarge) as caught:
        inspect_image(bomb, limits)

    assert said in caught.value.message
    assert "more than the limit of 40 megapixels" in caught.value.message


def test_pillow_bomb_warning_is_refused_without_touching_warning_filters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 64 x 64 = 4096: Pillow warns
    data = encode(disc(64), "PNG")
    filters_before = list(warnings.filters)

    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(ImageTooLarge, match="64 x 64"),
    ):
        decode_image(data, LIMITS)

    assert warnings.filters == filters_before


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("pillow_limit", [3000, 1000], ids=["warning", "error"])
def test_pillow_bomb_guard_becomes_image_too_large(
    pillow_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pillow_limit)

    limit = f"more than the limit of {pillow_limit / 1e6:.3g} megapixels"
    with pytest.raises(ImageTooLarge, match=limit):
        inspect_image(encode(disc(64), "PNG"), LIMITS)


# --- background removal ------------------------------------------------------------------------


def test_flood_fill_clears_white_background_and_keeps_the_disc() -> None:
    cut = flood_fill(disc(96))

    alpha = alpha_of(cut)
    assert cut.size == (96, 96)
    assert alpha[0, 0] == alpha[5, 90] == alpha[90, 10] == 0
    assert alpha[48, 48] == alpha[30, 48] == 255
    assert 0 < alpha[48, 24] < 255 or 0 < alpha[48, 23] < 255  # a soft, anti-aliased edge
    assert pixel(cut, (48, 48))[:3] == RED


def test_flood_fill_survives_jpeg_noise_and_removes_specks() -> None:
    image = disc(128)
    ImageDraw.Draw(image).rectangle((4, 4, 5, 5), "black")  # dust in a corner
    noisy = Image.open(io.BytesIO(encode(image, "JPEG", quality=70)))

    alpha = alpha_of(flood_fill(noisy))

    assert alpha[4:6, 4:6].max() == 0
    assert (alpha[:, :20] == 0).all() and (alpha[:, -20:] == 0).all()
    assert (alpha[50:78, 50:78] == 255).all()


def test_flood_fill_keeps_an_object_that_touches_the_border() -> None:
    image = disc(96, box=(24, 40, 72, 140))  # the disc runs off the bottom edge

    alpha = alpha_of(flood_fill(image))

    assert alpha[95, 48] == 255 and alpha[70, 48] == 255
    assert alpha[95, 2] == 0 and alpha[2, 48] == 0


def test_flood_fill_keeps_background_coloured_parts_inside_the_object() -> None:
    image = disc(96)
    ImageDraw.Draw(image).ellipse((42, 42, 54, 54), "white")  # a white logo on the disc

    alpha = alpha_of(flood_fill(image))

    assert alpha[48, 48] == 255


def test_flood_fill_leaves_a_busy_border_opaque() -> None:
    busy = Image.effect_noise((64, 64), 120).convert("RGB")

    cut = flood_fill(busy)

    assert cut.mode == "RGBA" and alpha_of(cut).min() == 255


def test_without_rembg_the_flood_fill_is_used_and_the_reason_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "rembg", None)  # makes `import rembg` fail
    (tmp_path / "u2net.onnx").write_bytes(b"a model file")  # the model is there, rembg is not
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))

    remover, reason = build_background_remover(Settings(rembg_model="u2net", rembg_model_file=None))

    assert isinstance(remover, ClassicalRemover) and remover.name == "flood_fill or grabcut"
    assert reason is not None and 'pip install "sweedle[rembg]"' in reason


def rembg_settings(u2net_home: Path) -> Settings:
    return Settings(rembg_model="u2net", rembg_model_file=None, u2net_home=u2net_home)


@pytest.fixture
def fake_rembg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.SimpleNamespace:
    """A stand-in rembg module that records sessions; U2NET_HOME restored afterwards."""
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "elsewhere"))
    sessions: list[str] = []

    def new_session(model_name: str, **session_args: object) -> str:
        sessions.append(model_name)
        return f"session:{model_name}"

    def remove(image: Image.Image, session: str) -> Image.Image:
        assert session == "session:u2net"
        return image.convert("RGBA")

    module = types.SimpleNamespace(new_session=new_session, remove=remove, sessions=sessions)
    monkeypatch.setitem(sys.modules, "rembg", module)
    return module


def test_rembg_without_its_model_file_fails_fast_naming_the_path(
    fake_rembg: types.SimpleNamespace, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "u2net.onnx")):
        RembgRemover.stock("u2net", tmp_path)

    assert fake_rembg.sessions == []  # no session, hence no download attempt

    remover, reason = build_background_remover(rembg_settings(tmp_path))
    assert isinstance(remover, ClassicalRemover)
    assert reason is not None and "u2net.onnx" in reason


def test_rembg_with_its_model_file_builds_one_session(
    fake_rembg: types.SimpleNamespace, tmp_path: Path
) -> None:
    (tmp_path / "u2net.onnx").write_bytes(b"onnx")

    remover, reason = build_background_remover(rembg_settings(tmp_path))

    assert reason is None and isinstance(remover, RembgRemover)
    assert remover.name == "rembg:u2net" and fake_rembg.sessions == ["u2net"]
    cut = remover.remove(disc(16))
    assert cut.image.mode == "RGBA" and cut.method == "rembg:u2net"
    assert rembg_legacy_home() == tmp_path


def test_rembg_legacy_home_follows_rembg_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/data")
    assert rembg_legacy_home() == Path("/data/.u2net")

    monkeypatch.delenv("XDG_DATA_HOME")
    assert rembg_legacy_home() == Path("~/.u2net").expanduser()


# --- framing -----------------------------------------------------------------------------------


def test_framing_centres_the_object_with_a_transparent_margin() -> None:
    cut = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(cut).rectangle((20, 30, 119, 79), (*RED, 255))  # 100 x 50, off-centre

    framed = frame_object(cut, 100, margin=0.1)

    alpha = alpha_of(framed)
    rows = np.flatnonzero(alpha.max(axis=1) > 128)
    cols = np.flatnonzero(alpha.max(axis=0) > 128)
    assert framed.size == (100, 100)
    assert (cols[0], cols[-1]) == (10, 89)  # the longer side spans 80 %, 10 % free each side
    assert abs(rows[0] - (99 - rows[-1])) <= 1  # centred vertically
    assert alpha[:10].max() == 0 and alpha[:, :9].max() == 0  # the margin is transparent
    assert pixel(framed, (50, 50)) == (*RED, 255)


def test_framing_an_empty_cut_out_is_refused() -> None:
    with pytest.raises(ImageRejected, match="no object found"):
        frame_object(Image.new("RGBA", (20, 20), (255, 255, 255, 0)), 64)


def test_framing_rejects_a_margin_that_leaves_no_room() -> None:
    with pytest.raises(ValueError, match="margin"):
        frame_object(Image.new("RGBA", (8, 8), (0, 0, 0, 255)), 64, margin=0.5)


# --- the whole preparation -------------------------------------------------------------------


def test_photo_is_cut_out_and_framed_for_the_generator() -> None:
    preparer = ImagePreparer(LIMITS, 64, ClassicalRemover())

    prepared = preparer.prepare(encode(disc(120), "JPEG", quality=90), remove_background=True)

    alpha = alpha_of(prepared.image)
    assert prepared.image.size == (64, 64)
    assert prepared.background == "flood_fill"
    assert (prepared.source.format, prepared.source.width) == ("JPEG", 120)
    assert alpha[0, 0] == alpha[63, 63] == alpha[2, 32] == 0
    assert alpha[32, 32] == 255 and pixel(prepared.image, (32, 32))[0] > 150


def test_existing_transparency_is_kept_without_removal() -> None:
    cut = Image.new("RGBA", (50, 50), (255, 255, 255, 0))
    ImageDraw.Draw(cut).ellipse((10, 10, 39, 39), (*BLUE, 255))
    preparer = ImagePreparer(LIMITS, 32, ForbiddenRemover())

    prepared = preparer.prepare(encode(cut, "PNG"), remove_background=True)

    assert prepared.background == "alpha" and prepared.source.has_alpha
    assert alpha_of(prepared.image)[16, 16] == 255 and alpha_of(prepared.image)[0, 0] == 0


def test_opaque_alpha_channel_still_gets_the_background_removed() -> None:
    remover = FakeRemover()
    preparer = ImagePreparer(LIMITS, 32, remover)

    prepared = preparer.prepare(encode(disc(64).convert("RGBA"), "PNG"), remove_background=True)

    assert prepared.background == "fake" and remover.seen == [(64, 64)]


def test_without_removal_the_photo_is_framed_as_it_is() -> None:
    preparer = ImagePreparer(LIMITS, 32, ForbiddenRemover())

    prepared = preparer.prepare(encode(disc(64), "PNG"), remove_background=False)

    alpha = alpha_of(prepared.image)
    assert prepared.background == "none"
    assert alpha[16, 3:29].min() == 255  # the white background is still there, opaque
    assert alpha[0, 0] == 0  # only the framing margin is transparent


def test_large_photos_are_cut_out_on_a_smaller_copy() -> None:
    remover = FakeRemover()
    preparer = ImagePreparer(LIMITS, 32, remover, work_side=64)

    prepared = preparer.prepare(encode(disc(200), "PNG"), remove_background=True)

    alpha = alpha_of(prepared.image)
    assert remover.seen == [(64, 64)]
    assert alpha[0, 0] == 0 and alpha[16, 16] == 255


def test_preparation_refuses_what_decoding_refuses() -> None:
    preparer = ImagePreparer(LIMITS, 32, ForbiddenRemover())

    with pytest.raises(UnsupportedImageFormat, match="GIF"):
        preparer.prepare(encode(disc(16), "GIF"), remove_background=True)


def test_preparer_from_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "rembg", None)
    (tmp_path / "u2net.onnx").write_bytes(b"a model file")
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    settings = Settings.model_validate(
        {"max_upload_mb": 2, "max_image_pixels": 4096, "preprocess_size": 64}
    )

    preparer = ImagePreparer.from_settings(settings)

    assert preparer.limits == ImageLimits(max_bytes=2 * 1024 * 1024, max_pixels=4096)
    assert preparer.size == 64
    assert preparer.remover.name == "flood_fill or grabcut"
    assert preparer.background_note is not None and "sweedle[rembg]" in preparer.background_note
    with pytest.raises(ImageTooLarge, match="128 x 128"):
        preparer.prepare(encode(disc(128), "PNG"), remove_background=True)
