"""Which generator runs: the configured backend, or the fallback chain when it cannot load
(hunyuan3d, then depth, then silhouette), saying why; never a silent swap."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweedle_core.config import Settings
from sweedle_core.errors import ModelUnavailable
from sweedle_core.generation.registry import build_generator


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path / "hy3dgen"))


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.models.tiny_depth import build_tiny_depth

    return build_tiny_depth(tmp_path_factory.mktemp("tiny_depth") / "model")


def settings(**values: object) -> Settings:
    return Settings.model_validate({"device": "cpu", **values})


def test_depth_without_its_model_hands_over_to_silhouette_saying_why() -> None:
    loaded = build_generator(settings(generator_backend="depth"))

    assert loaded.generator.name == "silhouette" and loaded.configured == "depth"
    assert loaded.note is not None
    assert loaded.note.startswith("silhouette runs instead of depth: depth: the depth model")
    assert "sweedle models pull depth" in loaded.note


def test_depth_with_its_model_runs_and_says_nothing(tiny_depth: Path) -> None:
    loaded = build_generator(settings(generator_backend="depth", depth_model=str(tiny_depth)))

    assert loaded.generator.name == "depth" and loaded.note is None


def test_hunyuan3d_without_weights_hands_over_to_depth(tiny_depth: Path) -> None:
    pytest.importorskip("hy3dgen.shapegen")
    loaded = build_generator(settings(generator_backend="hunyuan3d", depth_model=str(tiny_depth)))

    assert loaded.generator.name == "depth"
    assert loaded.note is not None and "hunyuan3d:" in loaded.note
    assert "Hunyuan3D weights not found" in loaded.note
    assert "sweedle models pull hunyuan-shape" in loaded.note


def test_without_fallback_a_backend_that_cannot_load_fails() -> None:
    with pytest.raises(ModelUnavailable, match="sweedle models pull depth"):
        build_generator(settings(generator_backend="depth", generator_fallback=False))
