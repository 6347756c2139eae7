"""The ``nnmath`` command: parse the arguments, call the library, print. No math lives here.

Each subcommand is a module of this package with two functions, ``add_parser(subparsers)`` and
``run(args) -> int``; ``COMMANDS`` lists them in the order ``nnmath --help`` shows them.

:func:`main` is the one place where errors become exit statuses (the table is in docs/errors.md):
an error nnmath raises on purpose prints as one line, ``nnmath COMMAND: error: …``, with the
status of its kind; anything else is a bug in nnmath, printed with its traceback and a line that
asks for a report.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
import warnings
from typing import Any, NoReturn

import nnmath
from nnmath.errors import DataError, DivergenceError, ModelFileError, NNMathError, OutputError

COMMANDS = (
    "gradcheck",
    "train",
    "evaluate",
    "predict",
    "info",
    "datasets",
    "export",
    "derive",
    "check",
    "init",
    "playground",
)

# Exit statuses (docs/errors.md). argparse's own usage errors exit with USAGE too.
OK = 0
MISMATCH = 1
"""A verdict, not an error: gradcheck, check or derive --verify found a gradient that differs."""
USAGE = 2
"""The command as typed cannot run: an option, spec, setting or loss that does not fit."""
DATA = 3
"""A file or data that cannot be read or written, or too little memory for the work."""
DIVERGED = 4
"""Training diverged (NaN, Inf or an exploding loss); no model was saved as if it were fine."""
BUG = 70
"""An error nnmath did not expect: a bug, reported with its traceback (sysexits' EX_SOFTWARE)."""
INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT), as shells report it."""

BUG_REPORT = (
    "this is a bug in nnmath {version}, not a problem with your input: please report it to the "
    "nnmath authors with the command you ran and the lines above"
)


class Parser(argparse.ArgumentParser):
    """argparse's parser (for ``nnmath`` and, through ``add_subparsers``, every command), whose
    usage error is one line: what is wrong, and where the options are explained."""

    def error(self, message: str) -> NoReturn:
        """Exit with status 2 and one line: the usage error, and the command whose ``--help``
        explains it."""
        self.exit(USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


class ShowVersion(argparse.Action):
    """``nnmath --version``: the installed version, read (from the package metadata) only when
    asked, so that no other run pays for it."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"nnmath {nnmath.__version__}")
        parser.exit()


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone: a run imports only the
    module of the command it runs (``nnmath train`` need not load the derivations)."""
    parser = Parser(
        prog="nnmath",
        description="The mathematics of neural networks, verified: train, derive and check MLPs.",
        epilog="Run 'nnmath COMMAND --help' for the options of one command. Exit status: 0 done, "
        "1 a mismatch found, 2 a usage error, 3 a data or file error, 4 training diverged, "
        "70 a bug in nnmath, 130 interrupted.",
    )
    parser.add_argument("--version", action=ShowVersion, nargs=0, help="print the version")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only not in COMMANDS else (only,):
        module = importlib.import_module(f"nnmath.cli.{name}")
        command = module.add_parser(subparsers)
        command.set_defaults(run=module.run, parser=command)
    return parser


def exit_status(error: BaseException) -> int:
    """The exit status of an error that reached the command line (see the constants above)."""
    if isinstance(error, DivergenceError):
        return DIVERGED
    if isinstance(error, DataError | ModelFileError | OutputError | OSError | MemoryError):
        return DATA
    return USAGE


def error_line(error: BaseException) -> str:
    """One line for an error: nnmath's own message, or what the system said about which file."""
    if isinstance(error, MemoryError):
        detail = f" ({error})" if str(error) else ""
        return (
            f"ran out of memory{detail}; try a smaller network, batch size or data set, or close "
            "other programs"
        )
    if isinstance(error, OSError) and not isinstance(error, NNMathError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}; check the path, its permissions and free space"
    return " ".join(str(error).split("\n"))


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line; argparse prints a usage error itself and exits with status 2."""
    words = sys.argv[1:] if argv is None else argv
    command = next((word for word in words if not word.startswith("-")), None)
    args, unknown = build_parser(command).parse_known_args(argv)
    if unknown:  # said by the command's own parser, with its own usage line
        args.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run ``nnmath`` with ``argv`` (default ``sys.argv[1:]``) and return its exit status; warnings
    print as one line each, once."""
    try:
        args = parse(argv)  # imports the commands: Ctrl-C may come here too
    except KeyboardInterrupt:
        print("nnmath: interrupted", file=sys.stderr)
        return INTERRUPTED
    with warnings.catch_warnings():  # a warning is one line too, without the source line, once
        shown: set[str] = set()

        def show(message: Any, category: type, *_: Any, **__: Any) -> None:
            if str(message) not in shown:
                shown.add(str(message))
                print(f"nnmath {args.command}: warning: {message}", file=sys.stderr)

        warnings.showwarning = show
        return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; every error becomes one line on stderr and its exit status."""
    name = f"nnmath {args.command}"
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (`nnmath info MODEL | head`): not an error
        sys.stderr.close()
        return OK
    except (NNMathError, OSError, MemoryError) as error:
        print(f"{name}: error: {error_line(error)}", file=sys.stderr)
        return exit_status(error)
    except Exception:
        traceback.print_exc()
        print(f"{name}: {BUG_REPORT.format(version=nnmath.__version__)}", file=sys.stderr)
        return BUG


if __name__ == "__main__":
    sys.exit(main())
