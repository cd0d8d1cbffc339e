"""``sweedle doctor``: each check against fakes, and the command end to end.

Fake ``torch``, ``hy3dgen`` and ``hy3dshape`` modules stand in ``sys.modules`` (None makes an
import fail), weights folders are made in ``tmp_path``, and the Ray probe is a lambda: nothing
here imports torch, loads a model or starts Ray.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from deployments import cli
from sweedle_core import doctor
from sweedle_core.config import Settings
from sweedle_core.doctor import Check, exit_code, format_report, run_checks

V20 = {"hunyuan_model_path": "tencent/Hunyuan3D-2", "hunyuan_subfolder": "hunyuan3d-dit-v2-0"}
V21 = {"hunyuan_model_path": "tencent/Hunyuan3D-2.1", "hunyuan_subfolder": "hunyuan3d-dit-v2-1"}
ONE_GPU = (1.0, "Ray cluster at 10.0.0.1:6379: 1 GPU")
NO_GPU = (0.0, "no Ray cluster running; a new local one would see 0 GPUs (torch sees none)")
_ENV = ("GENERATOR_BACKEND", "HUNYUAN_MODEL_PATH", "HUNYUAN_SUBFOLDER", "HY3DGEN_MODELS")
_ENV_MORE = ("U2NET_HOME", "REMBG_HOME", "XDG_DATA_HOME", "REMBG_MODEL", "TEXT_TO_IMAGE_MODEL")


class FakeCuda:
    def __init__(self, vram_gb: list[float]) -> None:
        self.vram_gb = vram_gb

    def is_available(self) -> bool:
        return bool(self.vram_gb)

    def device_count(self) -> int:
        return len(self.vram_gb)

    def get_device_properties(self, index: int) -> Any:
        return types.SimpleNamespace(name="NVIDIA Test", total_memory=self.vram_gb[index] * 1e9)


def fake_torch(vram_gb: list[float]) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.__version__ = "9.9.9"  # type: ignore[attr-defined]
    torch.version = types.SimpleNamespace(cuda="12.8")  # type: ignore[attr-defined]
    torch.cuda = FakeCuda(vram_gb)  # type: ignore[attr-defined]
    return torch


@pytest.fixture(autouse=True)
def machine(monkeypatch, tmp_path):
    """A GPU machine with torch and hy3dgen (2.0) but no hy3dshape, texture pipeline, rembg
    model or weights; no settings from the environment or a .env file."""
    monkeypatch.chdir(tmp_path)
    for name in _ENV + _ENV_MORE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    modules = {
        "torch": fake_torch([24.0]),
        "hy3dgen": types.ModuleType("hy3dgen"),
        "hy3dgen.shapegen": types.ModuleType("hy3dgen.shapegen"),
        "hy3dgen.texgen": None,
        "hy3dshape": None,
        "hy3dshape.pipelines": None,
    }
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def settings(tmp_path: Path, **values: Any) -> Settings:
    values.setdefault("hy3dgen_models", str(tmp_path / "models"))
    values.setdefault("u2net_home", tmp_path / "u2net")
    values.setdefault("storage_dir", tmp_path / "storage")
    return Settings(_env_file=None, **values)


def put_weights(base: Path, model_path: str, subfolder: str) -> Path:
    folder = base / model_path / subfolder
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {}\n")
    weights = folder / "model.fp16.safetensors"
    weights.write_bytes(b"\0" * 2048)
    return weights


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_weights_found_is_ok_and_hunyuan_can_generate(tmp_path):
    weights = put_weights(tmp_path / "models", *V20.values())
    checks = run_checks(settings(tmp_path, generator_backend="hunyuan3d", **V20), lambda: ONE_GPU)

    found = by_name(checks)
    assert found["weights"].status == "ok"
    assert str(weights) in found["weights"].detail
    assert found["torch"].status == "ok" and found["GPU 0"].status == "ok"
    assert found["ray"].status == "ok"
    assert "hy3dshape" not in found  # the 2.0 family needs hy3dgen alone
    assert exit_code(checks) == 0
    assert format_report(checks).splitlines()[-1].startswith("[ ok ] verdict:")


def test_weights_missing_fails_hunyuan3d_but_not_silhouette(tmp_path):
    hunyuan = run_checks(settings(tmp_path, generator_backend="hunyuan3d", **V20), lambda: ONE_GPU)
    preview = run_checks(settings(tmp_path, generator_backend="silhouette", **V20), lambda: ONE_GPU)

    assert by_name(hunyuan)["weights"].status == "fail"
    assert "hf download tencent/Hunyuan3D-2" in by_name(hunyuan)["weights"].detail
    assert exit_code(hunyuan) == 1
    assert "[FAIL] weights:" in format_report(hunyuan)
    assert format_report(hunyuan).splitlines()[-1].startswith("[FAIL] verdict:")

    weights = by_name(preview)["weights"]
    assert weights.status == "fail" and not weights.required
    assert "GENERATOR_BACKEND=silhouette does not need this" in weights.detail
    assert exit_code(preview) == 0
    assert "generation works" in format_report(preview).splitlines()[-1]


def test_hy3dshape_needed_and_missing_fails_naming_the_repository(tmp_path):
    checks = run_checks(settings(tmp_path, generator_backend="hunyuan3d", **V21), lambda: ONE_GPU)

    shape = by_name(checks)["hy3dshape"]
    assert shape.status == "fail" and shape.required
    assert "not on PyPI" in shape.detail and "`make hy3dshape`" in shape.detail
    assert "HUNYUAN_SUBFOLDER=hunyuan3d-dit-v2-0" in shape.detail
    assert exit_code(checks) == 1


def test_any_import_error_is_reported_with_its_message(tmp_path, monkeypatch):
    def broken(name: str) -> types.ModuleType:
        if name == "torch":
            raise OSError("libcudart.so.12: cannot open shared object file")
        return sys.modules[name]  # the fakes

    monkeypatch.setattr(doctor.probe, "_import", broken)
    checks = run_checks(settings(tmp_path, generator_backend="hunyuan3d", **V20), lambda: ONE_GPU)

    torch = by_name(checks)["torch"]
    assert torch.status == "fail" and "OSError: libcudart.so.12" in torch.detail


def test_no_cuda_warns_and_little_vram_warns(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", fake_torch([]))
    hunyuan = settings(tmp_path, generator_backend="hunyuan3d", **V21)
    no_cuda = by_name(run_checks(hunyuan, lambda: NO_GPU))["torch"]
    assert no_cuda.status == "warn" and "CPU" in no_cuda.detail
    depth = by_name(run_checks(settings(tmp_path, generator_backend="depth"), lambda: NO_GPU))
    assert depth["torch"].status == "ok"  # the depth model is made for the CPU

    monkeypatch.setitem(sys.modules, "torch", fake_torch([8.0]))
    gpu = by_name(run_checks(hunyuan, lambda: ONE_GPU))["GPU 0"]
    assert gpu.status == "warn"  # the 2.1 shape model: upstream states 10 GB
    assert "NVIDIA Test, 8.0 GB" in gpu.detail and "10 GB" in gpu.detail


def test_no_gpu_in_ray_fails_hunyuan3d_only(tmp_path):
    hunyuan = by_name(
        run_checks(settings(tmp_path, generator_backend="hunyuan3d", **V20), lambda: NO_GPU)
    )["ray"]
    preview = by_name(run_checks(settings(tmp_path, **V20), lambda: NO_GPU))["ray"]

    assert hunyuan.status == "fail" and hunyuan.required
    assert "configs/cpu.yaml" in hunyuan.detail and "GPU node" in hunyuan.detail
    assert preview.status == "info"


def test_a_ray_probe_that_cannot_tell_warns(tmp_path):
    ray = by_name(run_checks(settings(tmp_path), lambda: "the Ray cluster did not answer"))["ray"]
    assert ray.status == "warn" and "did not answer" in ray.detail


def test_rembg_model_present_in_either_layout(tmp_path, monkeypatch):
    legacy = tmp_path / "u2net" / "u2net.onnx"
    legacy.parent.mkdir()
    legacy.write_bytes(b"onnx")
    rembg = by_name(run_checks(settings(tmp_path), lambda: ONE_GPU))["rembg"]
    assert rembg.status == "ok" and str(legacy) in rembg.detail

    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    current = tmp_path / "rembg" / "models" / "isnet-general-use" / "isnet-general-use.onnx"
    current.parent.mkdir(parents=True)
    current.write_bytes(b"onnx")
    values = {"u2net_home": None, "rembg_model": "isnet-general-use"}
    rembg = by_name(run_checks(settings(tmp_path, **values), lambda: ONE_GPU))["rembg"]
    assert rembg.status == "ok" and str(current) in rembg.detail


def test_rembg_model_missing_warns_with_the_paths(tmp_path):
    rembg = by_name(run_checks(settings(tmp_path), lambda: ONE_GPU))["rembg"]

    assert rembg.status == "warn"
    assert str(tmp_path / "u2net" / "u2net.onnx") in rembg.detail
    assert "flood fill" in rembg.detail


def test_rembg_custom_file_must_be_inside_u2net_home(tmp_path):
    custom = tmp_path / "elsewhere" / "mine.onnx"
    custom.parent.mkdir()
    custom.write_bytes(b"onnx")

    outside = by_name(run_checks(settings(tmp_path, rembg_model_file=custom), lambda: ONE_GPU))
    anywhere = by_name(
        run_checks(settings(tmp_path, rembg_model_file=custom, u2net_home=None), lambda: ONE_GPU)
    )

    assert outside["rembg"].status == "warn" and "outside U2NET_HOME" in outside["rembg"].detail
    assert anywhere["rembg"].status == "ok" and str(custom) in anywhere["rembg"].detail


def test_text_to_image_unset_is_info_and_a_local_folder_is_checked(tmp_path):
    unset = by_name(run_checks(settings(tmp_path), lambda: ONE_GPU))["text-to-image"]
    assert unset.status == "info" and "TEXT_TO_IMAGE_MODEL" in unset.detail

    folder = tmp_path / "sdxl"
    folder.mkdir()
    values = {"text_to_image_model": str(folder)}
    empty = by_name(run_checks(settings(tmp_path, **values), lambda: ONE_GPU))["text-to-image"]
    assert empty.status == "warn" and "model_index.json" in empty.detail
    (folder / "model_index.json").write_text("{}")
    ready = by_name(run_checks(settings(tmp_path, **values), lambda: ONE_GPU))["text-to-image"]
    assert ready.status == "ok"


def test_doctor_json_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENERATOR_BACKEND", "hunyuan3d")
    monkeypatch.setenv("HUNYUAN_MODEL_PATH", V20["hunyuan_model_path"])
    monkeypatch.setenv("HUNYUAN_SUBFOLDER", V20["hunyuan_subfolder"])
    monkeypatch.setenv("HY3DGEN_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(cli.doctor, "ray_gpus", lambda: NO_GPU)

    code = cli.main(["doctor", "--json", "--config", str(cli.configs.GPU_CONFIG)])

    report = json.loads(capsys.readouterr().out)
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert code == 1 and report["exit_code"] == 1 and report["ok"] is False
    assert statuses["weights"] == "fail" and statuses["ray"] == "fail"
    assert statuses["torch"] == "ok" and statuses["hy3dgen"] == "ok"
    assert "weights" in report["verdict"] and "ray" in report["verdict"]


def depth_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "depth-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_the_depth_default_without_its_model_says_how_to_fetch_it_and_what_runs(tmp_path):
    checks = by_name(run_checks(settings(tmp_path, generator_backend="depth"), lambda: NO_GPU))

    assert checks["depth"].status == "fail" and checks["depth"].required
    assert "sweedle models pull depth" in checks["depth"].detail
    assert checks["generator"].status == "warn"
    assert "the app runs the fallback silhouette instead of depth" in checks["generator"].detail
    assert not checks["weights"].required  # Hunyuan3D is not this backend's business


def test_hunyuan_without_weights_falls_back_to_depth_or_fails_without_fallback(tmp_path):
    values = dict(generator_backend="hunyuan3d", depth_model=str(depth_folder(tmp_path)), **V20)

    fallback = by_name(run_checks(settings(tmp_path, **values), lambda: ONE_GPU))
    strict = by_name(
        run_checks(settings(tmp_path, generator_fallback=False, **values), lambda: ONE_GPU)
    )

    assert fallback["weights"].status == "fail" and fallback["depth"].status == "ok"
    assert "the fallback depth instead of hunyuan3d" in fallback["generator"].detail
    assert strict["generator"].status == "fail" and "jobs fail" in strict["generator"].detail


def test_doctor_checks_the_config_make_serve_would_run_here(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli.doctor, "ray_gpus", lambda: NO_GPU)
    monkeypatch.setattr(cli.configs, "first_gpu", lambda: None)

    cli.main(["doctor", "--json"])

    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert "configs/cpu.yaml" in checks["config"]["detail"]
    assert "GENERATOR_BACKEND=depth" in checks["backend"]["detail"]

    monkeypatch.setattr(cli.configs, "first_gpu", lambda: "GPU 0: NVIDIA Test (UUID: GPU-1)")
    cli.main(["doctor", "--json"])

    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    assert "serve_config.yaml" in checks["config"]["detail"]
    assert "GENERATOR_BACKEND=hunyuan3d" in checks["backend"]["detail"]


def test_the_file_store_is_checked_whatever_the_backend(tmp_path, s3_server, monkeypatch):
    checks = by_name(
        run_checks(settings(tmp_path, generator_backend="silhouette"), lambda: ONE_GPU)
    )
    assert (
        checks["storage"].status == "ok" and str(tmp_path / "storage") in checks["storage"].detail
    )

    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    broken = settings(tmp_path, generator_backend="silhouette", storage_url="s3://no-such-bucket/x")
    report = run_checks(broken, lambda: ONE_GPU)
    storage = by_name(report)["storage"]
    assert storage.status == "fail" and storage.required
    assert "the bucket does not exist" in storage.detail and "STORAGE_URL" in storage.detail
    assert exit_code(report) == 1
