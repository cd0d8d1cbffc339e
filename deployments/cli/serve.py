"""``sweedle serve`` (what `make serve` runs): pick the Serve config for this machine, fetch the
models its services need, say what is missing and what runs instead, then ``serve run`` it."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from deployments.cli.configs import chosen_config, http_options, with_http
from deployments.cli.models import report
from sweedle_core.access.exposure import LOOPBACK, Exposure, ExposureRefused, is_loopback
from sweedle_core.access.keyring import KeyRing
from sweedle_core.doctor import check_shape_packages
from sweedle_core.generation.hunyuan_weights import needs_hy3dshape
from sweedle_core.models import hub
from sweedle_core.models.catalog import models_for
from sweedle_core.models.pull import pull


def serve(args: argparse.Namespace) -> int:
    config = chosen_config(args.config)
    say(config.why)
    settings = config.settings_or_say("serve")
    if settings is None:
        return 2
    wanted = [m for m in models_for(settings) if m.wanted]
    if args.no_pull or hub.offline():
        why = "--no-pull" if args.no_pull else "HF_HUB_OFFLINE is set"
        say(f"not fetching models ({why}): the services load what is on disk")
    elif wanted:
        names = ", ".join(m.name for m in wanted)
        say(
            f"checking the models the services need ({names}); what is missing is fetched "
            "now, which on a first start may take a while"
        )
        report(pull(wanted, progress=not args.quiet, say=say))
    if settings.generator_backend == "hunyuan3d":
        v21 = needs_hy3dshape(settings.hunyuan_model_path, settings.hunyuan_subfolder)
        for check in check_shape_packages(settings, v21):
            if check.status == "fail":
                say(f"{check.name}: {check.detail}")
    host, port = os.environ.get("SWEEDLE_HOST"), os.environ.get("SWEEDLE_PORT")
    bound = host or str(http_options(config.path).get("host", LOOPBACK))
    try:
        exposure = Exposure.of(settings, bound, keys_on=KeyRing.from_settings(settings).enabled)
    except ExposureRefused as exc:
        print(f"sweedle serve: {exc.message}", file=sys.stderr)
        return 2
    if (warning := exposure.warning()) is not None:
        say(f"WARNING: {warning}")
    where = "this machine only" if is_loopback(bound) else "the network"
    say(f"listening on {bound} ({where}; SWEEDLE_HOST sets it)")
    binary = _serve_binary()
    if binary is None:
        print(
            "sweedle serve: Ray Serve's `serve` command is not installed (make setup)",
            file=sys.stderr,
        )
        return 1
    folder = Path(tempfile.mkdtemp(prefix="sweedle-serve-"))
    command = [binary, "run", str(with_http(config.path, host, port, folder))]
    say(" ".join(command))
    if args.dry_run:
        return 0
    os.execv(command[0], command)
    return 0  # not reached: execv replaces this process


def say(line: str) -> None:
    print(f"sweedle: {line}", flush=True)


def _serve_binary() -> str | None:
    beside = Path(sys.executable).parent / "serve"  # the venv's own
    return str(beside) if beside.is_file() else shutil.which("serve")


def add_parser(commands: Any) -> None:
    command = commands.add_parser(
        "serve",
        help="fetch the models this machine's config needs, then serve run it (make serve)",
        description=(
            "Picks serve_config.yaml where nvidia-smi finds a GPU, configs/cpu.yaml otherwise "
            "(or --config), fetches the models its services need (sweedle models pull), says "
            "which are missing and what runs instead, then runs `serve run` on it."
        ),
    )
    command.add_argument("--config", help="a Serve config file instead of this machine's")
    command.add_argument("--no-pull", action="store_true", help="fetch nothing; use what is here")
    command.add_argument("--quiet", action="store_true", help="no progress bars")
    command.add_argument("--dry-run", action="store_true", help="do everything but start the app")
    command.set_defaults(run=serve)
