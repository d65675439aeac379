"""``resnetlab`` command line: parse arguments, call the library, print. Nothing else lives here.

Each sub-module registers its subcommands with ``register(subparsers)`` and sets ``func`` on them.
Errors a user can fix (bad names, bad values, missing files) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = ("models", "train", "predict", "evaluate", "data", "detect", "reproduce")


class UserError(Exception):
    """An error to report in one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnetlab",
        description="Deep Residual Learning (He et al., 2016): build, train, test, reproduce, deploy.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (UserError, ValueError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"resnetlab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"resnetlab {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
