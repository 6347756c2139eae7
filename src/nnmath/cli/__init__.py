"""The ``nnmath`` command: parse the arguments, call the library, print. No math lives here.

Each subcommand is a module of this package with two functions, ``add_parser(subparsers)`` and
``run(args) -> int``; ``COMMANDS`` lists them in the order ``nnmath --help`` shows them. Errors that
nnmath raises on purpose (``NNMathError``) print as one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

import nnmath
from nnmath.errors import NNMathError

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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` alone: a run imports only the
    module of the command it runs (``nnmath train`` need not load the derivations)."""
    parser = argparse.ArgumentParser(
        prog="nnmath",
        description="The mathematics of neural networks, verified: train, derive and check MLPs.",
        epilog="Run 'nnmath COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"nnmath {nnmath.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS if only not in COMMANDS else (only,):
        module = importlib.import_module(f"nnmath.cli.{name}")
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    command = next((word for word in words if not word.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return int(args.run(args))
    except NNMathError as error:
        print(f"nnmath {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nnmath {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`nnmath info MODEL | head`): not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
