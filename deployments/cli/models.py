"""``sweedle models list|pull``: the models the configured services load, and fetching them.

The settings are those of the Serve config `make serve` runs here (or ``--config``), so the list
is what the app would load. Pulling fetches what is missing or fails its checksum, through the
libraries' own download code (huggingface_hub, diffusers, rembg's pooch), with progress bars.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from deployments.cli.configs import chosen_config
from sweedle_core.errors import one_line
from sweedle_core.models.catalog import Model, models_for, select
from sweedle_core.models.pull import Pulled, pull


def list_models(args: argparse.Namespace) -> int:
    settings = chosen_config(args.config).settings_or_say("models list")
    if settings is None:
        return 2
    rows = [_listed(model, args.verify) for model in models_for(settings)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        needed = "" if row["wanted"] else f" (not needed: {row['why_not']})"
        print(f"{row['name']}: {row['status']}{needed}")
        print(f"    for {row['service']}; {row['source']}, {row['size']}")
        print(f"    without it: {row['without']}")
    return 0


def pull_models(args: argparse.Namespace) -> int:
    settings = chosen_config(args.config).settings_or_say("models pull")
    if settings is None:
        return 2
    try:
        chosen = select(models_for(settings), args.names)
    except ValueError as exc:
        print(f"sweedle models pull: {exc}", file=sys.stderr)
        return 2
    return report(pull(chosen, progress=not args.quiet, say=_say, thorough=args.verify))


def report(results: list[Pulled]) -> int:
    """One line per model; 1 when any could not be had."""
    for result in results:
        print(f"{result.model.name}: {result.outcome}: {result.detail}", flush=True)
    return 1 if any(r.outcome == "failed" for r in results) else 0


def _listed(model: Model, verify: bool) -> dict[str, Any]:
    try:
        found = model.source.find()
        status = "missing" if found is None else f"present at {found}"
        if found is not None and verify:
            damaged = model.source.damaged(thorough=True)
            status = f"damaged ({', '.join(damaged)})" if damaged else f"{status}, checksums match"
        source = model.source.describe()
    except Exception as exc:  # a misconfigured model: list it, saying why
        found, source = None, "?"
        status = f"cannot be looked up: {one_line(exc)}"
    return {
        "name": model.name,
        "status": status,
        "present": found is not None,
        "wanted": model.wanted,
        "why_not": model.why_not,
        "service": model.service,
        "source": source,
        "size": model.size,
        "without": model.without,
    }


def _say(line: str) -> None:
    print(line, flush=True)


def add_parser(commands: Any) -> None:
    models = commands.add_parser(
        "models",
        help="list and fetch the models the services load",
        description=(
            "The models the configured services load (rembg, the depth model, Hunyuan3D shape "
            "and texture weights, the text-to-image pipeline), for the settings `make serve` "
            "would run here (serve_config.yaml with a GPU, configs/cpu.yaml without) or "
            "--config. Services never download; `pull` does, into the libraries' usual caches."
        ),
    )
    actions = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="each model, where it comes from, if it is here")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.add_argument("--verify", action="store_true", help="also check every checksum")
    listing.set_defaults(run=list_models)
    fetch = actions.add_parser(
        "pull",
        help="fetch what is missing or damaged (the needed models, or those named)",
        description=(
            "Fetches the named models, or every model the settings need, unless present and "
            "intact. An unreachable server fails in seconds, saying what runs without the "
            "model. HF_HUB_OFFLINE=1 fetches nothing from the hub."
        ),
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help="rembg, depth, hunyuan-shape, ...")
    fetch.add_argument("--quiet", action="store_true", help="no progress bars")
    fetch.add_argument(
        "--verify", action="store_true", help="read every file for its checksum, even if checked"
    )
    fetch.set_defaults(run=pull_models)
    for action in (listing, fetch):
        action.add_argument("--config", help="a Serve config file instead of make serve's")
