"""Text to image on a tiny random diffusers pipeline: loading, seeds, progress, cancelling, errors.

The pipeline is built once per module (about half a megabyte); a render of a few steps at
32 px takes tens of milliseconds on the CPU. Nothing here reaches the Hugging Face hub: the
hub tests run offline or against a local server that never answers.
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from sweedle_core.config import Settings
from sweedle_core.errors import InvalidInput, JobCancelled, ModelUnavailable
from sweedle_core.text_to_image import TextToImageModel
from tests.models.tiny_diffusers import build_tiny_text_to_image

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

STEPS, SIZE = 4, 32
ABSENT = "sweedle-tests/absent-text-to-image"
CACHED = "sweedle-tests/tiny-text-to-image"


class Progress:
    """Records every report; raises `JobCancelled` at report ``cancel_at``, as a cancelled job."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.calls: list[tuple[float, str]] = []
        self.cancel_at = cancel_at

    def __call__(self, fraction: float, message: str) -> None:
        self.calls.append((fraction, message))
        if len(self.calls) == self.cancel_at:
            raise JobCancelled("cancelled by the user")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy 2-core machine torch's spinning
    worker threads turn 10 ms steps into 100s of ms."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_text_to_image(tmp_path_factory.mktemp("tiny-text-to-image"))


@pytest.fixture(scope="module")
def painter(tiny_folder: Path) -> TextToImageModel:
    return TextToImageModel(str(tiny_folder), device="cpu", steps=STEPS, guidance=5.0, size=SIZE)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_folder: Path) -> Path:
    """A Hugging Face hub cache holding the tiny pipeline as the snapshot of ``CACHED``."""
    from huggingface_hub import constants

    repo = tmp_path / f"models--{CACHED.replace('/', '--')}"
    commit = "0" * 40
    shutil.copytree(tiny_folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


# --- loading -----------------------------------------------------------------------------


def test_a_local_folder_loads_on_the_cpu_in_fp32(tiny_folder: Path) -> None:
    painter = TextToImageModel(str(tiny_folder), device="cpu", steps=2, size=SIZE)

    assert painter.describe() == {
        "model": str(tiny_folder),
        "pipeline": "StableDiffusionPipeline",
        "device": "cpu",
        "dtype": "float32",
    }


def test_from_settings_uses_the_text_to_image_settings_and_device_auto_follows_device(
    tiny_folder: Path,
) -> None:
    settings = Settings(
        text_to_image_model=str(tiny_folder),
        text_to_image_steps=2,
        text_to_image_size=64,
        text_to_image_device="auto",
        device="cpu",
    )

    painter = TextToImageModel.from_settings(settings)

    assert (painter.steps, painter.size, painter.device) == (2, 64, "cpu")
    assert painter.render("a chair", seed=1, on_progress=Progress()).size == (64, 64)


@pytest.mark.timeout(30)
def test_a_missing_local_folder_is_model_unavailable_naming_it(tmp_path: Path) -> None:
    absent = tmp_path / "no-such-pipeline"

    with pytest.raises(ModelUnavailable) as info:
        TextToImageModel(str(absent), device="cpu")

    assert str(absent) in info.value.message
    assert "hf download" in info.value.message


def test_a_folder_without_model_index_is_not_a_pipeline(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="no model_index.json") as info:
        TextToImageModel(str(tmp_path), device="cpu")

    assert str(tmp_path) in info.value.message


def test_a_folder_whose_parts_are_missing_is_model_unavailable(
    tmp_path: Path, tiny_folder: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(tiny_folder / "model_index.json", broken)

    with pytest.raises(ModelUnavailable, match="could not be loaded") as info:
        TextToImageModel(str(broken), device="cpu")

    assert str(broken) in info.value.message
    assert "hf download" not in info.value.message


@pytest.mark.timeout(30)
def test_an_unreachable_hub_id_offline_fails_at_once_saying_how_to_fetch_it(
    offline: None,
) -> None:
    with pytest.raises(ModelUnavailable) as info:
        TextToImageModel(ABSENT, device="cpu")

    message = info.value.message
    assert ABSENT in message
    assert "only the Hugging Face cache is read" in message
    assert "`sweedle models pull text-to-image`" in message
    assert f"hf download {ABSENT} --local-dir" in message


@pytest.mark.timeout(30)
def test_a_hub_id_in_the_hub_cache_loads_offline(offline: None, hub_cache: Path) -> None:
    painter = TextToImageModel(CACHED, device="cpu", steps=2, size=SIZE)

    assert painter.describe()["pipeline"] == "StableDiffusionPipeline"


@pytest.fixture
def silent_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A hub that accepts connections and never answers about models (404 for the rest)."""
    from huggingface_hub import constants

    release = threading.Event()

    class SilentHub(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/api/models/"):
                release.wait()
                return
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SilentHub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    # huggingface_hub read these at import; the code under test reads them at call time.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HF_HUB_ETAG_TIMEOUT", 1)
    yield endpoint
    release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.timeout(30)
def test_a_replica_never_asks_the_hub_even_one_that_never_answers(silent_hub: str) -> None:
    with pytest.raises(ModelUnavailable) as info:
        TextToImageModel(ABSENT, device="cpu")

    message = info.value.message
    assert ABSENT in message
    assert "`sweedle models pull text-to-image`" in message


@pytest.mark.timeout(30)
def test_a_hub_that_never_answers_leaves_the_hub_cache_to_load_from(
    silent_hub: str, hub_cache: Path
) -> None:
    painter = TextToImageModel(CACHED, device="cpu", steps=2, size=SIZE)

    assert painter.render("a chair", seed=1, on_progress=Progress()).size == (SIZE, SIZE)


def test_without_diffusers_the_error_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tiny_folder: Path
) -> None:
    monkeypatch.setitem(sys.modules, "diffusers", None)

    with pytest.raises(ModelUnavailable, match=r'pip install -e "\.\[hunyuan\]"'):
        TextToImageModel(str(tiny_folder), device="cpu")


def test_a_size_off_the_latent_grid_is_refused(tiny_folder: Path) -> None:
    with pytest.raises(ModelUnavailable, match="multiple of 8"):
        TextToImageModel(str(tiny_folder), device="cpu", size=100)


# --- rendering ---------------------------------------------------------------------------


def test_render_paints_an_rgb_image_of_the_configured_size(painter: TextToImageModel) -> None:
    image = painter.render("a wooden chair", seed=7, on_progress=Progress())

    assert image.mode == "RGB"
    assert image.size == (SIZE, SIZE)


def test_the_same_seed_paints_the_same_pixels_and_another_seed_others(
    painter: TextToImageModel,
) -> None:
    first = np.asarray(painter.render("a wooden chair", seed=7, on_progress=Progress()))
    again = np.asarray(painter.render("a wooden chair", seed=7, on_progress=Progress()))
    other = np.asarray(painter.render("a wooden chair", seed=8, on_progress=Progress()))

    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_negative_prompt_reaches_the_pipeline(painter: TextToImageModel) -> None:
    plain = np.asarray(painter.render("a chair", seed=7, on_progress=Progress()))
    steered = np.asarray(
        painter.render("a chair", seed=7, on_progress=Progress(), negative_prompt="blurry")
    )

    assert not np.array_equal(plain, steered)


def test_progress_is_reported_once_per_step_with_rising_fractions(
    painter: TextToImageModel,
) -> None:
    progress = Progress()

    painter.render("a lamp", seed=3, on_progress=progress)

    fractions = [fraction for fraction, _ in progress.calls]
    assert fractions == [(i + 1) / STEPS for i in range(STEPS)]
    assert progress.calls[2][1] == f"painting step 3/{STEPS}"


def test_cancelling_from_the_progress_callback_stops_the_painting(
    painter: TextToImageModel,
) -> None:
    progress = Progress(cancel_at=2)

    with pytest.raises(JobCancelled):
        painter.render("a lamp", seed=3, on_progress=progress)

    assert len(progress.calls) == 2 < STEPS
    # The pipeline is free again and whole: the next render runs every step.
    after = Progress()
    assert painter.render("a lamp", seed=3, on_progress=after).size == (SIZE, SIZE)
    assert len(after.calls) == STEPS


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t"])
def test_a_blank_prompt_is_invalid_input(painter: TextToImageModel, prompt: str) -> None:
    progress = Progress()

    with pytest.raises(InvalidInput, match="prompt is empty"):
        painter.render(prompt, seed=1, on_progress=progress)

    assert progress.calls == []
