"""``resnetlab`` command line: parse arguments, call the library, print. Nothing else lives here.

Each sub-module registers its subcommands with ``register(subparsers)`` and sets ``func`` on them.
Exit status: 0 on success; 1 for input a user can fix (bad names, bad values, missing or unreadable
files, an existing output without ``--overwrite``), reported in one line naming the file, key or
value; 2 for usage errors (argparse). An unexpected exception is a bug and keeps its traceback;
``--debug`` prints the traceback of every error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback

from .. import __version__

# Sub-modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = ("models", "train", "predict", "evaluate", "data", "detect", "reproduce")

# Optional dependencies -> the extra that installs them (pyproject.toml [project.optional-dependencies]).
OPTIONAL_MODULES = {"onnx": "export", "onnxruntime": "export", "onnxscript": "export"}


class UserError(Exception):
    """An error to report in one line, without a traceback."""


# What bad input raises: the library names the problem in ValueError messages, and file-system
# errors (missing, existing, read-only, a file where a folder belongs) name their path. KeyError,
# TypeError and the rest are bugs: they must keep their traceback, not pass for user errors.
USER_ERRORS = (UserError, ValueError, OSError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="resnetlab",
        description="Deep Residual Learning (He et al., 2016): build, train, test, reproduce, deploy.",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of any error")
    parser.add_argument("--version", action="version", version=f"resnetlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    _accept_debug_everywhere(parser)
    return parser


def _accept_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug`` also after the (sub)command, where one types it when an error surprises."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                # SUPPRESS: absent here, the top-level value (False or True) stands.
                sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                 help="print the traceback of any error")
                _accept_debug_everywhere(sub)


def check_device(name: str) -> str:
    """A torch device string that names a device this machine has; one line otherwise."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {name!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: this machine has {count} CUDA device(s), numbered from 0")
    elif device.type != "cpu":
        raise UserError(f"--device {name}: only cpu and cuda devices are supported")
    return name


def missing_extra(error: BaseException) -> str | None:
    """The one-line advice when ``error`` is (or was caused by, as torch.onnx wraps it) a missing
    optional dependency; None otherwise."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ImportError):
            name = (error.name or "").split(".")[0]
            if name in OPTIONAL_MODULES:
                return f"this needs the optional package {name}: pip install 'resnetlab[{OPTIONAL_MODULES[name]}]'"
        error = error.__cause__ or error.__context__
    return None


MAX_MESSAGE = 500  # characters of one error line; --debug prints the whole message


def describe(error: BaseException) -> str:
    """One line for a user error: OSErrors as ``path: reason``; a multi-line message (a key report,
    say) joined into one line and cut at ``MAX_MESSAGE`` characters."""
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE].rsplit(" ", 1)[0] + " ... (--debug shows all)"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"resnetlab {args.command}"
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: error: {describe(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        advice = missing_extra(error)
        if advice is None:
            raise  # a bug (or a broken installation): its traceback says where
        if args.debug:
            traceback.print_exc()
        print(f"{prefix}: error: {advice}", file=sys.stderr)
        return 1
    return int(result or 0)
