"""The ``sweedle`` command: ``serve``, ``models``, ``doctor``, ``setup`` and ``keys``.

Each subcommand lives in its own module here and adds its parser; the work itself is done by
`sweedle_core` (the checks, the model catalogue, the keys file). This package adds what needs
Ray or the Serve config files, and the command line.
"""

from __future__ import annotations

import argparse

from deployments.cli import doctor, keys, models, serve, setup

COMMANDS = (serve, models, doctor, setup, keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweedle", description="Sweedle's command line.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
