"""rembg background removal, offline: a stock or custom model file on disk runs through rembg's
own sessions; anything else falls back to the flood fill at once, with a reason an operator can act
on. Every test runs with the network refused and rembg's folders under tmp_path."""

from __future__ import annotations

import io
import shutil
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sweedle_core.config import Settings
from sweedle_core.preprocess import (
    BorderFloodFill,
    ClassicalRemover,
    ImagePreparer,
    build_background_remover,
)
from sweedle_core.preprocess.rembg_models import (
    STOCK_MODELS,
    UNSUITABLE_MODELS,
    rembg_home,
    rembg_legacy_home,
    stock_model_paths,
)

RED = (220, 30, 30)


@pytest.fixture(scope="session")
def rembg() -> ModuleType:
    return pytest.importorskip("rembg")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx")
    from tests.models.tiny_onnx import build_tiny_segmenter

    return build_tiny_segmenter(tmp_path_factory.mktemp("tiny_onnx") / "tiny.onnx")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """rembg's folders under tmp_path, U2NET_HOME unset, the network refused."""
    # setenv first so that U2NET_HOME, which the code under test sets, is restored afterwards.
    monkeypatch.setenv("U2NET_HOME", "")
    monkeypatch.delenv("U2NET_HOME")
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def settings(**rembg_values: object) -> Settings:
    """Settings whose rembg fields are these (or the defaults), never the environment's."""
    values = {"rembg_model": "u2net", "rembg_model_file": None, "u2net_home": None}
    return Settings.model_validate({**values, **rembg_values})


def red_disc_on_noise(side: int = 300) -> Image.Image:
    """A red disc on green/blue noise: no border colour for the flood fill to clear."""
    rng = np.random.default_rng(0)
    rgb = np.empty((side, side, 3), dtype=np.uint8)
    rgb[..., 0] = rng.integers(0, 90, (side, side))
    rgb[..., 1:] = rng.integers(60, 256, (side, side, 2))
    image = Image.fromarray(rgb)
    ImageDraw.Draw(image).ellipse((side * 0.3, side * 0.3, side * 0.7, side * 0.7), RED)
    return image


def assert_disc_cut_out(image: Image.Image) -> None:
    alpha = np.asarray(image.getchannel("A"))
    side = alpha.shape[0]
    corners = [alpha[:20, :20], alpha[:20, -20:], alpha[-20:, :20], alpha[-20:, -20:]]
    assert image.mode == "RGBA" and image.size == (side, side)
    assert max(int(corner.max()) for corner in corners) <= 2  # the background is transparent
    assert alpha[side // 2 - 20 : side // 2 + 20, side // 2 - 20 : side // 2 + 20].min() >= 250


def without_rembg(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing rembg fails: a reason without the install hint proves it was never tried."""
    monkeypatch.setitem(sys.modules, "rembg", None)


# --- a custom model file -----------------------------------------------------------------------


def test_custom_model_cuts_out_what_the_flood_fill_cannot(
    rembg: ModuleType, tiny_model: Path, tmp_path: Path
) -> None:
    model_file = tmp_path / "anywhere" / "tiny.onnx"
    model_file.parent.mkdir()
    shutil.copy(tiny_model, model_file)
    photo = red_disc_on_noise()

    remover, note = build_background_remover(settings(rembg_model_file=model_file))

    assert note is None
    assert remover.name == "rembg:custom:tiny.onnx"
    assert_disc_cut_out(remover.remove(photo).image)
    assert BorderFloodFill().foreground_mask(np.asarray(photo)) is None


def test_custom_model_inside_u2net_home_is_used(
    rembg: ModuleType, tiny_model: Path, tmp_path: Path
) -> None:
    home = tmp_path / "models"
    model_file = home / "mine" / "tiny.onnx"
    model_file.parent.mkdir(parents=True)
    shutil.copy(tiny_model, model_file)

    remover, note = build_background_remover(settings(rembg_model_file=model_file, u2net_home=home))

    assert note is None and remover.name == "rembg:custom:tiny.onnx"


def test_custom_model_outside_u2net_home_falls_back_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_rembg(monkeypatch)
    home = tmp_path / "models"
    model_file = tmp_path / "elsewhere" / "tiny.onnx"
    model_file.parent.mkdir()
    model_file.write_bytes(b"onnx")

    remover, note = build_background_remover(settings(rembg_model_file=model_file, u2net_home=home))

    assert isinstance(remover, ClassicalRemover) and remover.name == "flood_fill or grabcut"
    assert note is not None and str(model_file) in note and str(home) in note
    assert "sweedle[rembg]" not in note


def test_missing_custom_file_falls_back_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_rembg(monkeypatch)
    model_file = tmp_path / "missing.onnx"

    remover, note = build_background_remover(settings(rembg_model_file=model_file))

    assert isinstance(remover, ClassicalRemover)
    assert note is not None and f"{model_file} does not exist" in note


# --- stock models ------------------------------------------------------------------------------


@pytest.mark.parametrize("u2net_home", [False, True], ids=["default-homes", "u2net-home"])
def test_missing_stock_model_falls_back_at_once_naming_where_it_looked(
    u2net_home: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_rembg(monkeypatch)
    home = tmp_path / "models"
    if u2net_home:
        searched = [home / "models" / "u2net" / "u2net.onnx", home / "u2net.onnx"]
    else:
        searched = [
            tmp_path / "rembg" / "models" / "u2net" / "u2net.onnx",
            tmp_path / "xdg" / ".u2net" / "u2net.onnx",
        ]

    start = time.perf_counter()
    remover, note = build_background_remover(settings(u2net_home=home if u2net_home else None))
    seconds = time.perf_counter() - start

    assert isinstance(remover, ClassicalRemover)
    assert note is not None and all(str(path) in note for path in searched)
    assert "sweedle models pull rembg" in note and "sweedle[rembg]" not in note
    assert seconds < 1.0


@pytest.mark.parametrize("layout", ["legacy", "per-model"])
def test_stock_model_on_disk_runs_through_rembgs_own_session(
    layout: str, rembg: ModuleType, tiny_model: Path, tmp_path: Path
) -> None:
    # The tiny model has u2net's input and output shapes, so rembg's u2net session runs it.
    if layout == "legacy":  # U2NET_HOME/u2net.onnx, how older rembg stored it
        home: Path | None = tmp_path / "models"
        target = tmp_path / "models" / "u2net.onnx"
    else:  # $REMBG_HOME/models/u2net/u2net.onnx, where rembg 2.0.86 downloads it
        home = None
        target = tmp_path / "rembg" / "models" / "u2net" / "u2net.onnx"
    target.parent.mkdir(parents=True)
    shutil.copy(tiny_model, target)

    preparer = ImagePreparer.from_settings(settings(u2net_home=home, preprocess_size=64))
    assert preparer.background_note is None and preparer.remover.name == "rembg:u2net"
    assert_disc_cut_out(preparer.remover.remove(red_disc_on_noise()).image)

    buffer = io.BytesIO()
    red_disc_on_noise().save(buffer, "PNG")
    prepared = preparer.prepare(buffer.getvalue(), remove_background=True)
    assert prepared.background == "rembg:u2net" and prepared.image.size == (64, 64)


@pytest.mark.parametrize(
    ("name", "said"), [("u2net-typo", "is not a rembg model"), ("sam", "prompts")]
)
def test_unknown_model_falls_back_listing_the_valid_names(
    name: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_rembg(monkeypatch)

    remover, note = build_background_remover(settings(rembg_model=name))

    assert isinstance(remover, ClassicalRemover)
    assert note is not None and repr(name) in note and said in note
    assert ", ".join(STOCK_MODELS) in note and "'none'" in note


def test_none_switches_rembg_off(monkeypatch: pytest.MonkeyPatch) -> None:
    without_rembg(monkeypatch)

    remover, note = build_background_remover(settings(rembg_model="none"))

    assert isinstance(remover, ClassicalRemover)
    assert note is not None and "rembg is switched off" in note


# --- agreement with rembg ----------------------------------------------------------------------


def test_model_names_cover_rembgs_sessions(rembg: ModuleType) -> None:
    sessions = rembg.sessions

    assert set(STOCK_MODELS) | set(UNSUITABLE_MODELS) == set(sessions.sessions_names)
    assert set(STOCK_MODELS) <= set(sessions.sessions_names_downloadable)


@pytest.mark.parametrize(
    "environment",
    [{}, {"XDG_DATA_HOME": "xdg"}, {"REMBG_HOME": "rembg"}, {"U2NET_HOME": "u2net"}],
    ids=["defaults", "xdg", "rembg-home", "u2net-home"],
)
def test_lookup_matches_rembgs(
    environment: dict[str, str],
    rembg: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for variable in ("XDG_DATA_HOME", "REMBG_HOME"):
        monkeypatch.delenv(variable)
    for variable, folder in environment.items():
        monkeypatch.setenv(variable, str(tmp_path / folder))
    session = rembg.sessions.sessions["u2net"]

    assert rembg_home() == Path(session.rembg_home())
    assert rembg_legacy_home() == Path(session.legacy_home())
    assert stock_model_paths("u2net")[0] == Path(session.model_dir()) / "u2net.onnx"
