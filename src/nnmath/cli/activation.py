"""``--activation NAME=EXPRESSION``: your own activation, registered for one command's run.

Not a command: the commands that build a network from a spec (``train``, ``gradcheck``,
``derive``, ``check``) take the option and call :func:`register_activations` before they read the
spec. A model file stores its registered expressions, so ``predict``, ``evaluate``, ``info`` and
``export`` register them again from the file and need no option.
"""

from __future__ import annotations

import argparse

from nnmath.errors import SpecError


def add_activation_option(parser: argparse.ArgumentParser) -> None:
    """Add the repeatable ``--activation NAME=EXPRESSION`` option to a command's parser."""
    parser.add_argument(
        "--activation",
        action="append",
        default=[],
        metavar="NAME=EXPRESSION",
        help="register your own activation for this run, e.g. --activation 'swish=z * sigmoid(z)' "
        "(h′ is derived by SymPy and checked; needs nnmath[symbolic]); repeat for more",
    )


def register_activations(args: argparse.Namespace) -> list[str]:
    """Register every ``--activation NAME=EXPRESSION``; returns the names."""
    from nnmath.activations import register_definition

    names = []
    for item in getattr(args, "activation", None) or []:
        try:
            names.append(register_definition(item).name)
        except SpecError as error:
            raise SpecError(f"--activation: {error}") from None
    return names
