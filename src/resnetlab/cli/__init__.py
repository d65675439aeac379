"""``resnetlab`` command line: parse arguments, call the library, print. Nothing else lives here.

Each sub-module registers its subcommands with ``register(subparsers)`` and sets ``func`` on them.
Exit status: 0 on success; 1 for input a user can fix (bad names, bad values, missing or unreadable
files, an existing output without ``--overwrite``), reported in one line naming the file, key or
value; 2 for usage errors (argparse). An unexpected exception is a bug and keeps its traceback;
``--debug`` prints the traceback of every error.

``--help`` must stay fast: nothing here, nor at the top of a sub-module, imports torch, numpy,
PIL, matplotlib or a library module that does; each command imports what it needs when it runs
(tests/test_cli_conventions.py checks it). The library logs through the ``resnetlab`` logger;
``main`` sends its records to stderr at the level ``--quiet`` / ``--verbose`` choose.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback
from collections.abc import Callable

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
    parser.add_argument("--version", action="version", version=f"resnetlab {__version__}")
    _add_global_flags(parser, default=False)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    _accept_global_flags_everywhere(parser)
    return parser


def _add_global_flags(parser: argparse.ArgumentParser, default) -> None:
    """``--debug``, ``--quiet`` and ``--verbose``, but for those a (sub)command declares itself."""
    have = parser._option_string_actions
    if "--debug" not in have:
        parser.add_argument("--debug", action="store_true", default=default, help="print the traceback of any error")
    chatter = parser.add_mutually_exclusive_group()
    if "--quiet" not in have:
        chatter.add_argument(
            "--quiet",
            "-q",
            action="store_true",
            default=default,
            help="only warnings, errors and results: no progress or info lines",
        )
    if "--verbose" not in have:
        chatter.add_argument(
            "--verbose", "-v", action="store_true", default=default, help="also debug messages of the library"
        )


def _accept_global_flags_everywhere(parser: argparse.ArgumentParser) -> None:
    """``--debug``, ``--quiet`` and ``--verbose`` also after the (sub)command, where one types
    them when an error surprises or a run is too chatty."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                # SUPPRESS: absent here, the top-level value (False or True) stands.
                _add_global_flags(sub, default=argparse.SUPPRESS)
                _accept_global_flags_everywhere(sub)


# --device: the same option, with the same default, on every command that computes.
class _DefaultDevice(str):
    """The default ``auto``, told apart from a typed ``--device auto`` by identity: where a recipe
    has its own ``device`` key (``train``), that key stands unless ``--device`` is given."""


DEFAULT_DEVICE = _DefaultDevice("auto")
DEVICE_HELP = "torch device: auto (the default: CUDA if present, else CPU), cpu, cuda or cuda:N"


def add_set_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable): the one override syntax of every command."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_device_argument(parser: argparse.ArgumentParser, help: str = DEVICE_HELP, choices=None) -> None:
    parser.add_argument(
        "--device", default=DEFAULT_DEVICE, choices=choices, metavar="DEVICE" if choices is None else None, help=help
    )


def device_given(args: argparse.Namespace) -> bool:
    """Whether ``--device`` was typed (``--device auto`` included), not left at its default."""
    device = getattr(args, "device", None)
    return device is not None and device is not DEFAULT_DEVICE


def check_device(name: str) -> str:
    """A torch device string that names a device this machine has (``auto``: cuda if there is
    one, else cpu); one line otherwise (``devices.resolve_device``, the library's own check)."""
    from ..devices import resolve_device

    try:
        resolved = resolve_device(name, what="--device")
    except ValueError as error:
        raise UserError(str(error)) from None
    return str(resolved) if name == "auto" else name


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


LOGGER_NAME = "resnetlab"  # the library's one logger; modules log to children (resnetlab.engine, ...)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (pytest's capture, a
    redirected stream), not to the stream of the moment it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def progress_tty(args: argparse.Namespace) -> bool | None:
    """The ``tty`` of a command's ``Progress``: None (a bar where stderr is a terminal), or False
    under ``--quiet``, where its plain lines then go to the silent ``progress_printer``."""
    return False if getattr(args, "quiet", False) else None


def configure_logging(quiet: bool = False, verbose: bool = False) -> logging.Logger:
    """The ``resnetlab`` logger at WARNING (``--quiet``), DEBUG (``--verbose``) or INFO, with one
    stderr handler however often this is called."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
    return logger


def progress_printer(args: argparse.Namespace) -> Callable[[str], None]:
    """Where a command sends the library's progress and info lines (the ``log=`` callables):
    stdout, flushed at once; nowhere under ``--quiet``. Results are printed regardless."""
    if getattr(args, "quiet", False):
        return lambda line: None
    return lambda line: print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet, args.verbose)
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
