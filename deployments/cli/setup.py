"""``sweedle setup hy3dshape``: install the package the Hunyuan3D-2.1 weights need
(`sweedle_core.hy3dshape_setup`); ``make hy3dshape`` runs it, ``make setup`` runs it with
``--if-needed`` (when the config `make serve` picks here names the 2.1 weights)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from deployments.cli.configs import ROOT, chosen_config
from sweedle_core.generation.hunyuan_weights import needs_hy3dshape
from sweedle_core.hy3dshape_setup import COMMIT, REPOSITORY, install

CHECKOUT = Path(sys.prefix) / "src" / "Hunyuan3D-2.1"  # inside the venv: `make clean` removes it


def setup_hy3dshape(args: argparse.Namespace) -> int:
    if args.if_needed:
        try:
            settings = chosen_config(args.config).settings()
        except (ValidationError, ValueError) as exc:  # setup goes on; serve will say it again
            print(f"sweedle setup: the settings are invalid, skipping hy3dshape: {exc}")
            return 0
        v21 = needs_hy3dshape(settings.hunyuan_model_path, settings.hunyuan_subfolder)
        if settings.generator_backend != "hunyuan3d" or not v21:
            return 0
        if importlib.util.find_spec("hy3dshape") is not None:
            return 0
        print(f"sweedle: {settings.hunyuan_model_path} needs hy3dshape; installing it", flush=True)
    extra = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[hy3dshape]"],
        check=False,
    )
    if extra.returncode != 0:
        print("sweedle setup: installing the hy3dshape extra failed (above)", file=sys.stderr)
        return 1
    try:
        install(
            Path(args.checkout),
            Path(sysconfig.get_paths()["purelib"]),
            repository=args.repository,
            commit=args.commit,
            say=lambda line: print(f"sweedle: {line}", flush=True),
        )
    except RuntimeError as exc:
        print(f"sweedle setup hy3dshape: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(commands: Any) -> None:
    setup = commands.add_parser("setup", help="install optional parts: hy3dshape (Hunyuan3D-2.1)")
    parts = setup.add_subparsers(dest="part", required=True, metavar="PART")
    hy3dshape = parts.add_parser(
        "hy3dshape",
        help="the package the Hunyuan3D-2.1 shape weights need (not on PyPI)",
        description=(
            f"Checks {REPOSITORY} out at a pinned commit (hy3dshape/ and its licence only) "
            f"into the venv and puts it on the venv's path, after installing its dependencies "
            f"(the hy3dshape extra). Needs git and network access to GitHub."
        ),
    )
    hy3dshape.add_argument(
        "--if-needed",
        action="store_true",
        help="only when the config make serve picks uses the 2.1 weights and hy3dshape is absent",
    )
    hy3dshape.add_argument("--config", help="a Serve config file instead of make serve's")
    hy3dshape.add_argument("--checkout", default=str(CHECKOUT), help=f"default {CHECKOUT}")
    hy3dshape.add_argument("--repository", default=REPOSITORY, help="a mirror of the repository")
    hy3dshape.add_argument("--commit", default=COMMIT, help=f"default {COMMIT} (pinned)")
    hy3dshape.set_defaults(run=setup_hy3dshape)
