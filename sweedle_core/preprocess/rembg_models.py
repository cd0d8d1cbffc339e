"""rembg: a segmentation network run through rembg's own sessions, from a model file on disk.

A stock model is used only when its file is already where rembg looks for it (``sweedle models
pull`` fetches it): rembg would otherwise download it inside a replica, and offline it retries
for minutes. Where rembg 2.0.86 looks is mirrored here, so the doctor and the model list can ask
without importing rembg (seconds; minutes on first use, while numba compiles).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image

from sweedle_core.preprocess.cutout import CutOut

REMBG_EXTRA_HINT = 'pip install "sweedle[rembg]"'


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
        check_stock_model(model_name)
        if model_home is not None:
            os.environ["U2NET_HOME"] = str(model_home)
        searched = stock_model_paths(model_name)
        if not any(path.is_file() for path in searched):
            raise FileNotFoundError(
                f"rembg model {model_name!r} is not on disk: looked for "
                f"{' and '.join(str(path) for path in searched)}. rembg would try to download "
                f"it, so it is not asked. Fetch it with `sweedle models pull rembg` (with the "
                f"same U2NET_HOME), or set REMBG_MODEL={REMBG_OFF} to use the classical cut-out "
                f"on purpose"
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

    def remove(self, image: Image.Image) -> CutOut:
        result = self._rembg.remove(image, session=self.session)
        return CutOut(result if result.mode == "RGBA" else result.convert("RGBA"), self.name)


def check_stock_model(model_name: str) -> None:
    """ValueError saying why, unless ``model_name`` is one of ``STOCK_MODELS``."""
    if model_name in STOCK_MODELS:
        return
    why = UNSUITABLE_MODELS.get(model_name)
    problem = f"is not used here: {why}" if why else "is not a rembg model"
    raise ValueError(
        f"REMBG_MODEL {model_name!r} {problem}. Choose one of {', '.join(STOCK_MODELS)}, "
        f"or {REMBG_OFF!r} to switch rembg off; a custom U2-Net-shaped ONNX file goes "
        "in REMBG_MODEL_FILE"
    )


def _import_rembg() -> Any:
    try:
        # onnxruntime first: without it, importing rembg prints a hint and calls sys.exit(1),
        # which would end the replica instead of falling back to the classical cut-out.
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
