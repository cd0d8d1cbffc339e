"""Background removal: an RGB photo in, the same photo with a transparent background out.

Two interchangeable removers behind one protocol: rembg (a segmentation network, optional extra)
and a classical flood fill from the image border that needs nothing but numpy and scipy. rembg
runs a stock model or a custom ONNX file, and only from a file already on disk: it is never
asked to download one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from scipy import ndimage

from sweedle_core.config import Settings

REMBG_EXTRA_HINT = 'pip install "sweedle[rembg]"'


class BackgroundRemover(Protocol):
    name: str

    def remove(self, image: Image.Image) -> Image.Image:
        """Return ``image`` as RGBA with the background transparent (alpha 0)."""
        ...


class BorderFloodFill:
    """Clears the background a product photo's border shows: uniform, touching every edge.

    The background colour is the median of the border pixels. Unless enough of the border is
    close to it, nothing is removed (the image comes back fully opaque): a busy border means the
    background is not one colour, and guessing would cut into the object. Otherwise every pixel
    within ``tolerance`` of that colour and connected to the border becomes transparent.
    Regions of background colour enclosed by the object (a white logo, the inside of a handle)
    stay opaque: the fill cannot reach them.
    """

    name = "flood_fill"

    def __init__(
        self,
        tolerance: float = 32.0,
        min_border_share: float = 0.6,
        min_speck_share: float = 0.0005,
        soften_edge: bool = True,
    ) -> None:
        """
        tolerance : Euclidean RGB distance (0-441) within which a pixel counts as background.
        min_border_share : share of border pixels that must be background-coloured.
        min_speck_share : foreground islands smaller than this share of the image are noise.
        soften_edge : blur the alpha edge by about a pixel (anti-aliasing).
        """
        self.tolerance = tolerance
        self.min_border_share = min_border_share
        self.min_speck_share = min_speck_share
        self.soften_edge = soften_edge

    def remove(self, image: Image.Image) -> Image.Image:
        result = image.convert("RGBA")
        mask = self.foreground_mask(np.asarray(image.convert("RGB")))
        if mask is None:
            result.putalpha(255)
            return result
        alpha = _blur_one_pixel(mask) if self.soften_edge else mask.astype(np.uint8) * 255
        result.putalpha(Image.fromarray(alpha))
        return result

    def foreground_mask(self, rgb: np.ndarray) -> np.ndarray | None:
        """rgb : (h, w, 3) uint8 -> (h, w) bool, True on the object; None if the border is busy."""
        border = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]).astype(np.int32)
        background = np.median(border, axis=0).round().astype(np.int32)
        limit = self.tolerance**2
        near_border = np.square(border - background).sum(axis=1) <= limit
        if near_border.mean() < self.min_border_share:
            return None

        flooded = _touching_border(_squared_distance(rgb, background) <= limit)
        foreground = ~flooded
        # Seal gaps of a pixel or two through which the fill leaked into the object, then fill
        # what that sealed off.
        closed = _erode(_dilate(foreground))
        if (closed & flooded).any():
            foreground = ~_touching_border(~closed)
        return _without_specks(foreground, self.min_speck_share * foreground.size)


def _squared_distance(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """rgb : (h, w, 3) uint8, colour : (3,) -> (h, w) int32 squared Euclidean distance."""
    total = np.zeros(rgb.shape[:2], dtype=np.int32)
    for channel in range(3):  # per channel: three (h, w) temporaries instead of one (h, w, 3)
        diff = rgb[..., channel].astype(np.int32)
        diff -= colour[channel]
        diff *= diff
        total += diff
    return total


def _touching_border(mask: np.ndarray) -> np.ndarray:
    """The 4-connected regions of ``mask`` that touch the image border."""
    labels, count = ndimage.label(mask)
    edge_labels = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.zeros(count + 1, dtype=bool)
    keep[edge_labels] = True
    keep[0] = False
    return np.take(keep, labels)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary dilation; outside the image counts as empty."""
    padded = np.pad(mask, 1, constant_values=False)
    rows = padded[:-2] | padded[1:-1] | padded[2:]
    return rows[:, :-2] | rows[:, 1:-1] | rows[:, 2:]


def _erode(mask: np.ndarray) -> np.ndarray:
    """3 x 3 binary erosion; outside the image counts as full, so edges are not eaten."""
    return ~_dilate(~mask)


def _without_specks(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Drop 8-connected islands smaller than ``min_area`` pixels, never the largest one."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask
    areas = np.bincount(labels.ravel())
    keep = areas >= min_area
    keep[int(np.argmax(areas[1:])) + 1] = True
    keep[0] = False
    return np.take(keep, labels)


def _blur_one_pixel(mask: np.ndarray) -> np.ndarray:
    """(h, w) bool -> (h, w) uint8 alpha, smoothed by a separable [1, 2, 1] / 4 kernel."""
    level = np.pad(mask.astype(np.uint16) * 255, 1, mode="edge")
    rows = level[:-2] + 2 * level[1:-1] + level[2:]
    smooth = rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]
    return ((smooth + 8) >> 4).astype(np.uint8)


# The stock models of rembg 2.0.86 that run here: local, one ONNX file named after the model,
# one cut-out per image. A constant rather than rembg's own list (``rembg.sessions``), because
# the name is checked before rembg is imported; tests/unit/test_rembg.py compares the two.
STOCK_MODELS = (
    "u2net",
    "u2netp",
    "u2net_human_seg",
    "silueta",
    "isnet-general-use",
    "isnet-anime",
    "bria-rmbg",
    "birefnet-general",
    "birefnet-general-lite",
    "birefnet-general-fp16",
    "birefnet-portrait",
    "birefnet-dis",
    "birefnet-hrsod",
    "birefnet-cod",
    "birefnet-massive",
)
# rembg sessions that are not stock models here, and why.
UNSUITABLE_MODELS = {
    "u2net_cloth_seg": "it returns three clothing cut-outs stacked into one taller image",
    "sam": "it needs point or box prompts",
    "u2net_custom": "a custom file goes in REMBG_MODEL_FILE",
    "dis_custom": "a custom file goes in REMBG_MODEL_FILE (U2-Net-shaped models only)",
    "ben_custom": "a custom file goes in REMBG_MODEL_FILE (U2-Net-shaped models only)",
    "withoutbg": "it sends every photo to a paid cloud API",
    "atlascloud": "it sends every photo to a paid cloud API",
}
REMBG_OFF = "none"


class RembgRemover:
    """One rembg session, built once (one per replica). Build it with ``stock`` or ``custom``:
    they check that the model file is on disk before rembg is imported, because rembg downloads
    a missing stock model (offline it retries for minutes before failing) and importing rembg
    costs seconds (minutes on first use, while numba compiles)."""

    def __init__(self, name: str, session_name: str, **session_args: Any) -> None:
        """
        name : what a job records as its background method, e.g. ``rembg:u2net``.
        session_name, session_args : passed to ``rembg.new_session``.
        """
        rembg = _import_rembg()
        self._rembg: Any = rembg
        self.session = rembg.new_session(session_name, **session_args)
        self.name = name

    @classmethod
    def stock(cls, model_name: str, model_home: Path | None = None) -> RembgRemover:
        """A stock model (``STOCK_MODELS``) whose file is already where rembg looks for it.

        model_home : becomes ``U2NET_HOME``, rembg's model folder, for this process.
        Raises ValueError for an unknown name, FileNotFoundError when the file is not on disk.
        """
        if model_name not in STOCK_MODELS:
            why = UNSUITABLE_MODELS.get(model_name)
            problem = f"is not used here: {why}" if why else "is not a rembg model"
            raise ValueError(
                f"REMBG_MODEL {model_name!r} {problem}. Choose one of {', '.join(STOCK_MODELS)}, "
                f"or {REMBG_OFF!r} to switch rembg off; a custom U2-Net-shaped ONNX file goes "
                "in REMBG_MODEL_FILE"
            )
        if model_home is not None:
            os.environ["U2NET_HOME"] = str(model_home)
        searched = stock_model_paths(model_name)
        if not any(path.is_file() for path in searched):
            raise FileNotFoundError(
                f"rembg model {model_name!r} is not on disk: looked for "
                f"{' and '.join(str(path) for path in searched)}. rembg would try to download "
                f"it, so it is not asked. Put {model_name}.onnx in {searched[-1].parent}, or "
                f"download it once with network access: `rembg d {model_name}` (with the same "
                f"U2NET_HOME), or set REMBG_MODEL={REMBG_OFF} to use the flood fill on purpose"
            )
        return cls(f"rembg:{model_name}", model_name)

    @classmethod
    def custom(cls, model_file: Path, model_home: Path | None = None) -> RembgRemover:
        """A custom ONNX file through rembg's ``u2net_custom`` session: U2-Net-shaped, taking
        (1, 3, 320, 320) float32 and giving the mask as the first channel of its first output.

        rembg 2.0.86 loads a custom file only from inside its model folder. With ``model_home``
        (U2NET_HOME) set, the file must be in it; without, the file's own folder becomes
        U2NET_HOME. Raises FileNotFoundError or ValueError when the file cannot be used.
        """
        path = Path(os.path.abspath(model_file.expanduser()))
        if not path.is_file():
            raise FileNotFoundError(f"REMBG_MODEL_FILE {path} does not exist")
        if model_home is not None:
            home = Path(os.path.abspath(model_home.expanduser()))
            if not path.is_relative_to(home):
                raise ValueError(
                    f"REMBG_MODEL_FILE {path} is outside U2NET_HOME {home}, and rembg loads "
                    f"custom models only from its model folder: move the file into {home}, "
                    "or unset U2NET_HOME"
                )
            os.environ["U2NET_HOME"] = str(home)
        else:
            # rembg refuses a model_path outside its model folders (validate_model_path), and
            # U2NET_HOME is the one setting that moves them all; pointing it at the file's own
            # folder lets the operator keep the file anywhere. Only this process sees the
            # change, and it builds one session.
            os.environ["U2NET_HOME"] = str(path.parent)
        return cls(f"rembg:custom:{path.name}", "u2net_custom", model_path=str(path))

    def remove(self, image: Image.Image) -> Image.Image:
        result = self._rembg.remove(image, session=self.session)
        return result if result.mode == "RGBA" else result.convert("RGBA")


def _import_rembg() -> Any:
    try:
        # onnxruntime first: without it, importing rembg prints a hint and calls sys.exit(1),
        # which would end the replica instead of falling back to the flood fill.
        import onnxruntime  # noqa: F401
        import rembg
    except ImportError as exc:
        raise ImportError(
            f"background removal with rembg needs the optional extra: {REMBG_EXTRA_HINT} ({exc})"
        ) from exc
    return rembg


# Where rembg 2.0.86 looks for a model file, mirrored from ``rembg.sessions.base.BaseSession``
# (legacy_home, rembg_home, resolve_existing) so the lookup needs no rembg import.


def rembg_homes(u2net_home: Path | None = None) -> tuple[Path, Path]:
    """``(rembg_home, legacy_home)``: rembg's data folder (models in ``<home>/models/<name>/``)
    and its old flat model folder, still searched. ``u2net_home`` stands for ``$U2NET_HOME``
    (the setting, as the background remover sets it); the environment decides the rest:
    legacy = ``$U2NET_HOME``, else ``$XDG_DATA_HOME/.u2net``, else ``~/.u2net``; home = the
    legacy folder when ``$U2NET_HOME`` is set, else ``$REMBG_HOME``, else
    ``$XDG_DATA_HOME/rembg``, else ``~/.rembg``."""
    env = dict(os.environ)
    if u2net_home is not None:
        env["U2NET_HOME"] = str(u2net_home)
    legacy = env.get("U2NET_HOME", os.path.join(env.get("XDG_DATA_HOME", "~"), ".u2net"))
    if env.get("U2NET_HOME"):
        home = legacy
    else:
        xdg = env.get("XDG_DATA_HOME")
        home = env.get("REMBG_HOME", os.path.join(xdg, "rembg") if xdg else "~/.rembg")
    return Path(os.path.expanduser(home)), Path(os.path.expanduser(legacy))


def rembg_legacy_home() -> Path:
    return rembg_homes()[1]


def rembg_home() -> Path:
    return rembg_homes()[0]


def stock_model_paths(model_name: str, u2net_home: Path | None = None) -> tuple[Path, Path]:
    """The files rembg tries for a stock model, in its order: ``<rembg home>/models/<name>/
    <name>.onnx``, then ``<legacy home>/<name>.onnx``. rembg uses the first that exists."""
    home, legacy = rembg_homes(u2net_home)
    file_name = f"{model_name}.onnx"
    return home / "models" / model_name / file_name, legacy / file_name


def build_background_remover(settings: Settings) -> tuple[BackgroundRemover, str | None]:
    """The remover the settings ask for, and a note for the operator when it is not rembg.

    REMBG_MODEL_FILE (a custom model) wins over REMBG_MODEL (a stock model, or ``none`` for the
    flood fill). When rembg cannot be used, the flood fill stands in and the note says what was
    looked for and how to fix it; nothing is downloaded.
    """
    if settings.rembg_model_file is None and settings.rembg_model == REMBG_OFF:
        return BorderFloodFill(), (
            f"rembg is switched off (REMBG_MODEL={REMBG_OFF}): backgrounds are removed by the "
            "flood fill from the border"
        )
    try:
        if settings.rembg_model_file is not None:
            remover = RembgRemover.custom(settings.rembg_model_file, settings.u2net_home)
        else:
            remover = RembgRemover.stock(settings.rembg_model, settings.u2net_home)
    except Exception as exc:  # any load failure degrades to the classical remover
        reason = f"rembg background removal unavailable, using flood fill instead: {exc}"
        return BorderFloodFill(), reason
    return remover, None
