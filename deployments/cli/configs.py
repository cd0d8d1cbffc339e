"""The Serve config `make serve` runs on this machine, and the settings it gives the app.

``serve_config.yaml`` where ``nvidia-smi`` lists a GPU (the ``hunyuan3d`` generator on
``num_gpus: 1``), ``configs/cpu.yaml`` otherwise (the ``depth`` generator on fractional CPUs).
The settings are what `deployments.app.build_app` builds: the environment (and ``.env``), with
the config's ``args.settings`` on top.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sweedle_core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
GPU_CONFIG = ROOT / "serve_config.yaml"
CPU_CONFIG = ROOT / "configs" / "cpu.yaml"


@dataclass(frozen=True)
class ServeConfig:
    path: Path
    why: str  # one sentence: why this config

    def settings(self) -> Settings:
        """The app's settings under this config (the environment, then ``args.settings``)."""
        return Settings(**app_settings(self.path))

    def settings_or_say(self, command: str) -> Settings | None:
        """The settings, or None after telling the user on stderr why they are invalid."""
        try:
            return self.settings()
        except (ValidationError, ValueError) as exc:
            print(f"sweedle {command}: the settings are invalid:\n{exc}", file=sys.stderr)
            return None


def chosen_config(path: str | Path | None = None) -> ServeConfig:
    """The given config, or the one `make serve` picks for this machine."""
    if path is not None:
        return ServeConfig(Path(path), f"{path}, as asked")
    gpu = first_gpu()
    if gpu is not None:
        why = f"GPU found ({gpu}): serve_config.yaml, hunyuan3d generator on num_gpus: 1"
        return ServeConfig(GPU_CONFIG, why)
    why = "no GPU found (nvidia-smi lists none): configs/cpu.yaml, depth generator on the CPU"
    return ServeConfig(CPU_CONFIG, why)


def first_gpu() -> str | None:
    """The first line ``nvidia-smi -L`` prints for a GPU, or None."""
    return next(iter(listed_gpus() or []), None)


def listed_gpus() -> list[str] | None:
    """The lines ``nvidia-smi -L`` prints for GPUs; None when there is no nvidia-smi."""
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=15, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.strip() for line in listed.splitlines() if line.startswith("GPU ")]


def http_options(path: Path) -> dict[str, Any]:
    """The config's ``http_options`` (where Serve listens)."""
    document = yaml.safe_load(path.read_text()) or {}
    return dict(document.get("http_options") or {})


def with_http(path: Path, host: str | None, port: str | None, folder: Path) -> Path:
    """A copy of the config in ``folder`` listening on ``host`` and ``port`` where given
    (SWEEDLE_HOST, SWEEDLE_PORT); the config itself where neither is."""
    if not host and not port:
        return path
    document = yaml.safe_load(path.read_text()) or {}
    options = document.setdefault("http_options", {})
    if host:
        options["host"] = host
    if port:
        options["port"] = int(port)
    copy = folder / path.name
    copy.write_text(yaml.safe_dump(document, sort_keys=False))
    return copy


def app_settings(path: Path) -> dict[str, Any]:
    """``applications[0].args.settings`` of a Serve config file (the one Sweedle app)."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the Serve config {path}: {exc}") from exc
    applications = document.get("applications") or [{}]
    args = applications[0].get("args") or {}
    values = args.get("settings") or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: args.settings must be a mapping of settings")
    return values
