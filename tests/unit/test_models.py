"""``sweedle models`` and the model catalogue: what the settings need, pulling through the
libraries' own download code from a local stand-in server, checksums, interrupted and corrupt
downloads, and failing fast offline. Nothing here reaches the internet."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweedle_core.config import Settings
from sweedle_core.models.catalog import models_for, select
from tests.stand_ins.model_server import ModelServer

DEPTH_REPO = "depth-anything/Depth-Anything-V2-Small-hf"
SWEEDLE = str(Path(sys.executable).parent / "sweedle")


def names(models: list) -> list[str]:
    return [m.name for m in models]


# --- what the settings need --------------------------------------------------------------------


def test_the_cpu_default_needs_rembg_and_the_depth_model() -> None:
    models = models_for(Settings(_env_file=None, generator_backend="depth"))

    wanted = [m.name for m in models if m.wanted]
    assert wanted == ["rembg", "depth"]
    assert "hunyuan-shape" in names(models)  # listed, not needed
    shape = next(m for m in models if m.name == "hunyuan-shape")
    assert "GENERATOR_BACKEND=depth does not use it" in shape.why_not


def test_the_gpu_default_needs_hunyuan_and_its_fallback() -> None:
    models = models_for(Settings(_env_file=None, generator_backend="hunyuan3d", rembg_model="none"))

    assert [m.name for m in models if m.wanted] == ["depth", "hunyuan-shape"]
    shape = next(m for m in models if m.name == "hunyuan-shape")
    assert "tencent/Hunyuan3D-2" in shape.source.describe()
    assert "hunyuan3d-dit-v2-0/: config.yaml and one weights file" in shape.source.describe()


def test_text_to_image_is_listed_when_configured() -> None:
    settings = Settings(_env_file=None, text_to_image_model="org/painter", rembg_model="none")

    assert "text-to-image" in names(models_for(settings))


def test_unknown_names_are_refused_naming_the_known_ones() -> None:
    models = models_for(Settings(_env_file=None))

    with pytest.raises(ValueError, match="unknown model 'nope'.*rembg, depth"):
        select(models, ["nope"])
    assert names(select(models, ["depth", "depth"])) == ["depth"]


def test_hunyuan_pulls_one_weights_format_of_those_offered() -> None:
    from sweedle_core.models.catalog import _shape_files

    offered = [
        "hunyuan3d-dit-v2-0/config.yaml",
        "hunyuan3d-dit-v2-0/model.fp16.ckpt",
        "hunyuan3d-dit-v2-0/model.fp16.safetensors",
        "hunyuan3d-dit-v2-0-turbo/config.yaml",
    ]

    chosen = _shape_files(offered, "hunyuan3d-dit-v2-0")

    assert chosen == ("hunyuan3d-dit-v2-0/config.yaml", "hunyuan3d-dit-v2-0/model.fp16.safetensors")


# --- pulling from a stand-in hub ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_depth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    from tests.models.tiny_depth import build_tiny_depth

    return build_tiny_depth(tmp_path_factory.mktemp("tiny_depth") / "model")


@pytest.fixture
def hub(tiny_depth: Path):
    server = ModelServer({DEPTH_REPO: tiny_depth}).start()
    yield server
    server.stop()


def run(args: list[str], home: Path, endpoint: str, **env: str) -> subprocess.CompletedProcess:
    """``sweedle <args>`` as a user runs it, with the hub at ``endpoint`` and caches in ``home``."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "TRANSFORMERS_", "REMBG", "U2NET"))
    }
    environment |= {
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(home / "hf"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HOME": str(home),
        "REMBG_MODEL": "none",
        "GENERATOR_BACKEND": "depth",
        **env,
    }
    return subprocess.run(
        [SWEEDLE, *args], cwd=home, env=environment, capture_output=True, text=True, timeout=240
    )


def blob_of(home: Path, name: str) -> Path:
    repo = home / "hf" / "hub" / f"models--{DEPTH_REPO.replace('/', '--')}"
    return next((repo / "snapshots").rglob(name)).resolve()


def test_pull_fetches_the_depth_model_and_the_generator_loads_it(
    hub: ModelServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = run(["models", "pull", "--quiet"], tmp_path, hub.url)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "depth: fetched" in done.stdout
    listing = json.loads(run(["models", "list", "--json", "--verify"], tmp_path, hub.url).stdout)
    depth = next(m for m in listing if m["name"] == "depth")
    assert depth["present"] and "checksums match" in depth["status"]
    weights = blob_of(tmp_path, "model.safetensors")
    assert weights.name == hashlib.sha256(weights.read_bytes()).hexdigest()

    again = run(["models", "pull", "--quiet"], tmp_path, hub.url)
    assert "depth: present" in again.stdout and hub.downloads("model.safetensors") == 1

    # The generator finds it in the cache, never asking the hub.
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    from sweedle_core.generation.registry import build_generator

    loaded = build_generator(Settings(_env_file=None, generator_backend="depth", device="cpu"))
    assert loaded.generator.name == "depth" and loaded.note is None


def test_a_download_cut_off_half_way_is_resumed_or_leaves_nothing_loadable(
    hub: ModelServer, tmp_path: Path
) -> None:
    hub.cut("*/model.safetensors", times=1)  # one break: huggingface_hub tries again
    done = run(["models", "pull", "--quiet"], tmp_path, hub.url)
    assert done.returncode == 0, done.stdout + done.stderr
    weights = blob_of(tmp_path, "model.safetensors")
    assert weights.name == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_a_download_that_keeps_failing_leaves_no_half_file(
    hub: ModelServer, tmp_path: Path
) -> None:
    hub.cut("*/model.safetensors", times=50)  # more breaks than the library retries
    failed = run(["models", "pull", "--quiet"], tmp_path, hub.url)

    assert failed.returncode == 1 and "depth: failed" in failed.stdout
    assert "without it: the silhouette generator" in failed.stdout
    listing = json.loads(run(["models", "list", "--json"], tmp_path, hub.url).stdout)
    assert not next(m for m in listing if m["name"] == "depth")["present"]
    snapshots = tmp_path / "hf" / "hub" / f"models--{DEPTH_REPO.replace('/', '--')}" / "snapshots"
    assert not list(snapshots.rglob("model.safetensors"))  # nothing a loader could pick up

    hub.cut("*/model.safetensors", times=0)
    assert run(["models", "pull", "--quiet"], tmp_path, hub.url).returncode == 0


def test_a_corrupt_cached_file_is_found_and_fetched_again(hub: ModelServer, tmp_path: Path) -> None:
    assert run(["models", "pull", "--quiet"], tmp_path, hub.url).returncode == 0
    weights = blob_of(tmp_path, "model.safetensors")
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, wrong content
    weights.write_bytes(bytes(data))

    listing = json.loads(run(["models", "list", "--json", "--verify"], tmp_path, hub.url).stdout)
    assert (
        "damaged (model.safetensors)" in next(m for m in listing if m["name"] == "depth")["status"]
    )
    again = run(["models", "pull", "--quiet"], tmp_path, hub.url)

    assert again.returncode == 0 and "depth: fetched" in again.stdout
    assert hub.downloads("model.safetensors") == 2
    weights = blob_of(tmp_path, "model.safetensors")
    assert weights.name == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_offline_pulling_fails_at_once_saying_why(tmp_path: Path) -> None:
    start = time.monotonic()
    offline = run(
        ["models", "pull", "depth"], tmp_path, "https://huggingface.co", HF_HUB_OFFLINE="1"
    )
    unreachable = run(["models", "pull", "depth"], tmp_path, "http://127.0.0.1:9")  # nothing there
    seconds = time.monotonic() - start

    assert offline.returncode == 1 and "HF_HUB_OFFLINE is set" in offline.stdout
    assert unreachable.returncode == 1 and "127.0.0.1:9 is not reachable" in unreachable.stdout
    assert "without it: the silhouette generator" in unreachable.stdout
    assert seconds < 30  # two interpreter starts; no retries


def test_serve_pulls_first_and_says_what_it_runs(hub: ModelServer, tmp_path: Path) -> None:
    done = run(["serve", "--dry-run", "--quiet"], tmp_path, hub.url)

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout
    assert "no GPU found" in lines and "configs/cpu.yaml" in lines
    assert "depth: fetched" in lines and "serve run" in lines and "cpu.yaml" in lines

    offline = run(["serve", "--dry-run"], tmp_path, hub.url, HF_HUB_OFFLINE="1")
    assert "not fetching models (HF_HUB_OFFLINE is set)" in offline.stdout


# --- rembg, fetched as rembg fetches it -------------------------------------------------------


@pytest.fixture
def rembg_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    pytest.importorskip("rembg")
    monkeypatch.delenv("U2NET_HOME", raising=False)
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "rembg"


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    pytest.importorskip("onnx")
    from tests.models.tiny_onnx import build_tiny_segmenter

    return build_tiny_segmenter(tmp_path / "served" / "u2net.onnx")


def md5_of(path: Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


def test_rembgs_own_url_checksum_and_folder_are_read_without_downloading(rembg_home: Path) -> None:
    from sweedle_core.models.rembg_fetch import rembg_download

    download = rembg_download("u2net")
    mirrored = rembg_download("u2net", mirror="http://mirror.example/rembg/")

    assert download.url.startswith("https://github.com/") and download.url.endswith("/u2net.onnx")
    assert download.known_hash is not None and download.known_hash.startswith("md5:")
    assert download.file == rembg_home / "models" / "u2net" / "u2net.onnx"
    assert mirrored.url == "http://mirror.example/rembg/u2net.onnx"
    assert not download.file.exists()


def test_a_fetched_rembg_model_is_checked_and_used_by_the_preprocessor(
    rembg_home: Path, tiny_onnx: Path
) -> None:
    from sweedle_core.models.rembg_fetch import RembgDownload, fetch, file_is_intact
    from sweedle_core.preprocess import RembgRemover
    from sweedle_core.preprocess.rembg_models import stock_model_paths

    server = ModelServer({}, files=tiny_onnx.parent).start()
    try:
        target = stock_model_paths("u2net")[0]
        download = RembgDownload(
            "u2net", f"{server.url}/files/u2net.onnx", md5_of(tiny_onnx), target,
            stock_model_paths("u2net"),
        )  # fmt: skip
        assert fetch(download, progress=False) == target and file_is_intact(download, target)

        corrupt = bytearray(target.read_bytes())
        corrupt[100] ^= 0xFF
        target.write_bytes(bytes(corrupt))
        assert not file_is_intact(download, target)
        fetch(download, progress=False)
        assert file_is_intact(download, target) and server.downloads("u2net.onnx") == 2
    finally:
        server.stop()
    assert RembgRemover.stock("u2net").name == "rembg:u2net"  # rembg's own session loads it


def test_an_interrupted_or_wrong_rembg_download_leaves_no_file(
    rembg_home: Path, tiny_onnx: Path
) -> None:
    from sweedle_core.models.rembg_fetch import RembgDownload, fetch
    from sweedle_core.preprocess.rembg_models import stock_model_paths

    server = ModelServer({}, files=tiny_onnx.parent).start()
    target = stock_model_paths("u2net")[0]
    url = f"{server.url}/files/u2net.onnx"
    try:
        server.cut("*/u2net.onnx")
        with pytest.raises(Exception):  # noqa: B017  (requests' or pooch's own error)
            fetch(RembgDownload("u2net", url, md5_of(tiny_onnx), target, (target,)), progress=False)
        assert not target.exists() and not list(target.parent.glob("*"))

        with pytest.raises(ValueError, match="hash"):
            fetch(RembgDownload("u2net", url, "md5:" + "0" * 32, target, (target,)), progress=False)
        assert not target.exists()
    finally:
        server.stop()


def test_the_text_to_image_pipeline_is_fetched_by_diffusers_own_download(tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    from tests.models.tiny_diffusers import build_tiny_text_to_image

    server = ModelServer({"org/painter": build_tiny_text_to_image(tmp_path / "painter")}).start()
    try:
        done = run(
            ["models", "pull", "--quiet", "text-to-image"],
            tmp_path,
            server.url,
            TEXT_TO_IMAGE_MODEL="org/painter",
        )
    finally:
        server.stop()

    assert done.returncode == 0, done.stdout + done.stderr
    assert "text-to-image: fetched" in done.stdout
    snapshot = Path(done.stdout.split("fetched: ")[1].split()[0])
    assert (snapshot / "model_index.json").is_file()
    assert (snapshot / "unet" / "diffusion_pytorch_model.safetensors").is_file()


# --- misconfigured and GPU settings, through the command line ----------------------------------


def test_a_model_that_cannot_be_looked_up_is_reported_not_crashed_on(tmp_path: Path) -> None:
    pulled = run(["models", "pull", "rembg"], tmp_path, "http://127.0.0.1:9", REMBG_MODEL="sam")
    served = run(["serve", "--dry-run"], tmp_path, "http://127.0.0.1:9", REMBG_MODEL="sam")

    assert pulled.returncode == 1 and "Traceback" not in pulled.stderr
    assert "rembg: failed: ValueError" in pulled.stdout and "prompts" in pulled.stdout
    assert served.returncode == 0 and "serve run" in served.stdout  # the app still starts


def test_rembg_is_pulled_through_rembgs_own_download_from_a_mirror(
    tmp_path: Path, tiny_onnx: Path
) -> None:
    pytest.importorskip("rembg")
    server = ModelServer({}, files=tiny_onnx.parent).start()
    mirror = {"REMBG_MODEL": "u2net", "REMBG_DOWNLOAD_URL": f"{server.url}/files/"}
    mirror["REMBG_HOME"] = str(tmp_path / "rembg")
    try:
        refused = run(["models", "pull", "--quiet", "rembg"], tmp_path, server.url, **mirror)
        accepted = run(
            ["models", "pull", "--quiet", "rembg"],
            tmp_path,
            server.url,
            MODEL_CHECKSUM_DISABLED="1",  # rembg's own switch: the mirror serves another file
            **mirror,
        )
    finally:
        server.stop()

    target = tmp_path / "rembg" / "models" / "u2net" / "u2net.onnx"
    # rembg's MD5 is u2net's: the tiny file served in its place is refused, and nothing kept.
    assert refused.returncode == 1 and "rembg: failed" in refused.stdout
    assert "hash" in refused.stdout.lower()
    assert accepted.returncode == 0 and "rembg: fetched" in accepted.stdout
    assert target.read_bytes() == tiny_onnx.read_bytes()


@pytest.fixture
def gpu_machine(tmp_path: Path) -> Path:
    """A folder with an ``nvidia-smi`` that lists one GPU, to put first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA Test (UUID: GPU-00000000)'\n")
    smi.chmod(0o755)
    return bin_dir


def test_on_a_gpu_machine_serve_pulls_one_hunyuan_weights_file_and_the_fallback(
    tmp_path: Path, tiny_depth: Path, gpu_machine: Path
) -> None:
    repo = tmp_path / "hunyuan-repo"
    shape = repo / "hunyuan3d-dit-v2-0"
    shape.mkdir(parents=True)
    (shape / "config.yaml").write_text("model: {}\n")
    (shape / "model.fp16.safetensors").write_bytes(b"weights " * 64)
    (shape / "model.fp16.ckpt").write_bytes(b"the same weights again " * 64)
    (repo / "hunyuan3d-dit-v2-0-turbo").mkdir()
    (repo / "hunyuan3d-dit-v2-0-turbo" / "config.yaml").write_text("model: {}\n")
    server = ModelServer({"tencent/Hunyuan3D-2": repo, DEPTH_REPO: tiny_depth}).start()
    path = f"{gpu_machine}:{os.environ['PATH']}"
    try:
        done = run(["serve", "--dry-run", "--quiet"], tmp_path, server.url, PATH=path)
        doctor = run(["doctor", "--json"], tmp_path, server.url, PATH=path)
    finally:
        server.stop()

    assert done.returncode == 0, done.stdout + done.stderr
    assert "GPU found (GPU 0: NVIDIA Test" in done.stdout and "serve_config.yaml" in done.stdout
    assert "hunyuan-shape: fetched" in done.stdout and "depth: fetched" in done.stdout
    assert server.downloads("hunyuan3d-dit-v2-0/model.fp16.safetensors") == 1
    assert server.downloads("model.fp16.ckpt") == 0  # one format of the two, not 10 GB
    assert server.downloads("hunyuan3d-dit-v2-0-turbo/config.yaml") == 0
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert (
        checks["weights"]["status"] == "ok"
        and "model.fp16.safetensors" in checks["weights"]["detail"]
    )
