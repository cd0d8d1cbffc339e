"""``sweedle keys new|list``: API keys in an API_KEYS_FILE (`sweedle_core.access.keys`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sweedle_core.access.keys import SCOPE_ORDER, ordered
from sweedle_core.access.keys_file import add_key_to_file, load_keys_file


def keys_new(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        key = add_key_to_file(
            path,
            args.name,
            args.scopes,
            args.requests_per_minute,
            args.max_waiting_jobs,
            args.export_roots,
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
    rows = [("NAME", "SCOPES", "REQUESTS/MIN", "WAITING JOBS", "EXPORT ROOTS")]
    for key in keys:
        rows.append(
            (
                key.name,
                ",".join(ordered(key.scopes)),
                _limit(key.requests_per_minute),
                _limit(key.max_waiting_jobs),
                _roots(key.export_roots),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(row[i].ljust(widths[i]) for i in range(len(row))).rstrip())
    return 0


def _limit(value: int | None) -> str:
    return "default" if value is None else "none" if value == 0 else str(value)


def _roots(roots: tuple[Path, ...] | None) -> str:
    return "default" if roots is None else ",".join(map(str, roots)) or "none"


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


def add_parser(commands: Any) -> None:
    keys = commands.add_parser(
        "keys",
        help="make and list API keys in an API_KEYS_FILE",
        description=(
            "API keys for API_KEYS_FILE. The file keeps each key's SHA-256, never the key: "
            "`keys new` prints a key once, and it cannot be recovered later."
        ),
    )
    keys.set_defaults(run=_keys)
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
        help="comma-separated, of read, write, priority (may submit priority high), admin "
        "(default: read,write)",
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
    new.add_argument(
        "--export-root",
        dest="export_roots",
        action="append",
        default=None,
        metavar="FOLDER",
        help="an absolute folder this key's engine bundles may be written under, instead of "
        "EXPORT_ALLOWED_ROOTS; repeat for more",
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
