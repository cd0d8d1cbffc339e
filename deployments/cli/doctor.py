"""``sweedle doctor``: what generation needs on this machine, for the config `make serve` runs.

The checks live in `sweedle_core.doctor`; this module adds what needs Ray (how many GPUs a
running cluster offers, or a new local one would see) and reads the settings the way the app
gets them: from the Serve config `make serve` picks here (or ``--config``), over the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from deployments.cli.configs import chosen_config, listed_gpus
from sweedle_core.doctor import RayGpus, exit_code, format_report, report_data, run_checks

# Connecting to a cluster whose head is gone retries for minutes, and a refused token takes
# ~20 s to surface: bound the whole probe, and run it in a child process that can be killed.
RAY_PROBE_TIMEOUT_S = 30.0
_MARK, _ERROR_MARK = "SWEEDLE_RAY_GPUS=", "SWEEDLE_RAY_ERROR="
_PROBE = f"""
import json, ray
try:
    ray.init(address="auto", log_to_driver=False, logging_level="ERROR")
except Exception as exc:
    while exc.__cause__ is not None:  # ConnectionError hides the reason (auth, version, ...)
        exc = exc.__cause__
    print("{_ERROR_MARK}" + json.dumps(f"{{type(exc).__name__}}: {{exc}}"), flush=True)
    raise SystemExit(1)
try:
    gpus = ray.cluster_resources().get("GPU", 0)
    address = ray.get_runtime_context().gcs_address
    print("{_MARK}" + json.dumps({{"gpus": gpus, "address": address}}), flush=True)
finally:
    ray.shutdown()
"""


def ray_gpus() -> RayGpus:
    """The GPUs a running Ray cluster offers, else those a new local one would see."""
    address = os.environ.get("RAY_ADDRESS", "").strip()
    address_file = ray_temp_dir() / "ray_current_cluster"
    if not address and address_file.is_file():
        address = address_file.read_text().strip()
    if address:
        return cluster_gpus(address)
    gpus, source = local_gpus()
    return gpus, f"no Ray cluster running; a new local one would see {_count(gpus)} ({source})"


def ray_temp_dir() -> Path:
    """Where ``ray start`` records the running cluster (Ray's own default temp dir rule)."""
    if "RAY_TMPDIR" in os.environ:
        system = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        system = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        system = "/tmp"
    else:
        system = tempfile.gettempdir()
    return Path(system) / "ray"


def cluster_gpus(address: str, timeout_s: float = RAY_PROBE_TIMEOUT_S) -> RayGpus:
    """Connects to the cluster at ``address`` in a child process, for at most ``timeout_s``."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"the Ray cluster at {address} did not answer within {timeout_s:g} s (stale?)"
    reason = f"exit status {done.returncode}"
    for line in done.stdout.splitlines():
        if line.startswith(_MARK):
            answer = json.loads(line[len(_MARK) :])
            gpus = float(answer["gpus"])
            return gpus, f"Ray cluster at {answer['address'] or address}: {_count(gpus)}"
        if line.startswith(_ERROR_MARK):
            reason = _last_error(str(json.loads(line[len(_ERROR_MARK) :])))
    return f"could not connect to the Ray cluster at {address}: {reason}"


def _last_error(message: str) -> str:
    """The innermost ``SomeError: ...`` of a message that may quote a whole traceback."""
    flat = " ".join(message.split())
    starts = [m.start() for m in re.finditer(r"\b[\w.]+(?:Error|Exception): ", flat)]
    return flat[starts[-1] :] if starts else flat


def local_gpus() -> tuple[float, str]:
    """What a new local Ray would count, without starting one: torch's count, else
    ``nvidia-smi -L``, limited by ``CUDA_VISIBLE_DEVICES`` as Ray limits it."""
    count, source = 0, ""
    try:
        import torch

        count, source = int(torch.cuda.device_count()), "counted by torch"
    except Exception:  # no torch, or a broken CUDA library: ask the driver instead
        pass
    if count == 0:
        listed = listed_gpus()
        if listed is None:
            source = "torch sees none and there is no nvidia-smi"
        elif listed:
            count, source = len(listed), "listed by nvidia-smi"
        else:
            source = "torch and nvidia-smi see none"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip()]))
        source += f", CUDA_VISIBLE_DEVICES={visible!r}"
    return float(count), source


def doctor(args: argparse.Namespace) -> int:
    config = chosen_config(args.config)
    settings = config.settings_or_say("doctor")
    if settings is None:
        return 2
    checks = run_checks(settings, ray_gpus, config=config.why)
    if args.json:
        print(json.dumps(report_data(checks), indent=2))
    else:
        print(format_report(checks))
    return exit_code(checks)


def _count(gpus: float) -> str:
    return f"{gpus:g} GPU" + ("" if gpus == 1 else "s")


def add_parser(commands: Any) -> None:
    check = commands.add_parser(
        "doctor",
        help="what generation needs on this machine, and what is missing",
        description=(
            "Checks torch and the GPUs, hy3dgen/hy3dshape, the models (Hunyuan3D weights, the "
            "depth model, rembg, text-to-image) and the GPUs Ray offers, for the settings "
            "`make serve` would run here: serve_config.yaml where nvidia-smi finds a GPU, "
            "configs/cpu.yaml otherwise, or --config. Exits 1 when the configured generator "
            "cannot run (the report says which fallback runs meanwhile, if one does)."
        ),
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--config", help="a Serve config file to check instead of make serve's")
    check.set_defaults(run=doctor)
