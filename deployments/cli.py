"""The ``sweedle`` command: ``sweedle doctor [--json]`` and ``sweedle keys new|list``.

The checks live in `sweedle_core.doctor`; this file adds what needs Ray (how many GPUs a running
cluster offers, or a new local one would see) and the command line. The keys file is read and
written by `sweedle_core.access.keys`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sweedle_core.access.keys import SCOPE_ORDER, ordered
from sweedle_core.access.keys_file import add_key_to_file, load_keys_file
from sweedle_core.config import Settings
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
        try:
            listed = subprocess.run(
                ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=15, check=False
            ).stdout
            smi = sum(line.startswith("GPU ") for line in listed.splitlines())
            if smi:
                count, source = smi, "listed by nvidia-smi"
            else:
                source = "torch and nvidia-smi see none"
        except (OSError, subprocess.TimeoutExpired):
            source = "torch sees none and there is no nvidia-smi"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip()]))
        source += f", CUDA_VISIBLE_DEVICES={visible!r}"
    return float(count), source


def doctor(args: argparse.Namespace) -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"sweedle doctor: the settings are invalid:\n{exc}", file=sys.stderr)
        return 2
    checks = run_checks(settings, ray_gpus)
    if args.json:
        print(json.dumps(report_data(checks), indent=2))
    else:
        print(format_report(checks))
    return exit_code(checks)


def keys_new(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        key = add_key_to_file(
            path, args.name, args.scopes, args.requests_per_minute, args.max_waiting_jobs
        )
    except ValueError as exc:
        print(f"sweedle keys new: {exc}", file=sys.stderr)
        return 1
    # The key alone on stdout, so `KEY=$(sweedle keys new ...)` captures just it.
    print(key)
    print(
        f"The key {args.name!r} is above; it will not be shown again (the file keeps only its "
        f"SHA-256). Start the service with API_KEYS_FILE={path.resolve()}",
        file=sys.stderr,
    )
    return 0


def keys_list(args: argparse.Namespace) -> int:
    try:
        keys = load_keys_file(Path(args.file))
    except ValueError as exc:
        print(f"sweedle keys list: {exc}", file=sys.stderr)
        return 1
    rows = [("NAME", "SCOPES", "REQUESTS/MIN", "WAITING JOBS")]
    for key in keys:
        rows.append(
            (
                key.name,
                ",".join(ordered(key.scopes)),
                _limit(key.requests_per_minute),
                _limit(key.max_waiting_jobs),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(row[i].ljust(widths[i]) for i in range(len(row))).rstrip())
    return 0


def _limit(value: int | None) -> str:
    return "default" if value is None else "none" if value == 0 else str(value)


def _scopes(text: str) -> list[str]:
    scopes = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [scope for scope in scopes if scope not in SCOPE_ORDER]
    if unknown or not scopes:
        raise argparse.ArgumentTypeError(
            f"scopes are a comma-separated list of {', '.join(SCOPE_ORDER)}, not {text!r}"
        )
    return scopes


def _keys(args: argparse.Namespace) -> int:
    return KEYS_COMMANDS[args.keys_command](args)


KEYS_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "new": keys_new,
    "list": keys_list,
}
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"doctor": doctor, "keys": _keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweedle", description="Sweedle's command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "doctor",
        help="what generation needs on this machine, and what is missing",
        description=(
            "Checks torch and the GPUs, hy3dgen/hy3dshape, the Hunyuan3D weights, rembg, the "
            "text-to-image model and the GPUs Ray offers, for the settings in the environment "
            "(and .env). Exits 1 when the configured GENERATOR_BACKEND cannot generate."
        ),
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_keys_parser(commands)
    args = parser.parse_args(argv)
    return COMMANDS[args.command](args)


def _add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="make and list API keys in an API_KEYS_FILE",
        description=(
            "API keys for API_KEYS_FILE. The file keeps each key's SHA-256, never the key: "
            "`keys new` prints a key once, and it cannot be recovered later."
        ),
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    # The file defaults to the one the service would read, so the two cannot drift apart.
    default_file = os.environ.get("API_KEYS_FILE") or None
    file_help = "the keys file (JSON)" + (f"; default {default_file}" if default_file else "")
    new = actions.add_parser(
        "new",
        help="make a key and add its SHA-256 to the file (created with mode 0600)",
        description="Makes a key, adds its SHA-256 to the file and prints the key, once.",
    )
    new.add_argument("--name", required=True, help="the name owners and logs show: [A-Za-z0-9._-]")
    new.add_argument(
        "--scopes",
        type=_scopes,
        default=["read", "write"],
        help="comma-separated, of read, write, admin (default: read,write)",
    )
    new.add_argument(
        "--requests-per-minute",
        type=int,
        default=None,
        metavar="N",
        help="this key's limit; 0: none (default: RATE_LIMIT_PER_MINUTE)",
    )
    new.add_argument(
        "--max-waiting-jobs",
        type=int,
        default=None,
        metavar="N",
        help="this key's limit; 0: none (default: MAX_WAITING_JOBS_PER_KEY)",
    )
    listing = actions.add_parser(
        "list",
        help="the keys in the file: names, scopes and limits",
        description="Lists the keys in the file: names, scopes and limits, never digests.",
    )
    for action in (new, listing):
        action.add_argument(
            "--file", required=default_file is None, default=default_file, help=file_help
        )


def _count(gpus: float) -> str:
    return f"{gpus:g} GPU" + ("" if gpus == 1 else "s")


if __name__ == "__main__":
    raise SystemExit(main())
