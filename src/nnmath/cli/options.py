"""Types for numeric options, so that argparse refuses a value out of range as it refuses a word
where a number belongs: one line, ``nnmath COMMAND: error: argument --seed: …; see 'nnmath
COMMAND --help'``, exit 2.

``--seed -1``, ``--samples 0``, ``--eps 0``, ``--eps -1`` and ``--rtol nan`` never reach the library.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """A whole number from ``low`` (to ``high``)."""
    bound = f"from {low:,} to {high:,}" if high is not None else f"≥ {low:,}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number {bound}, got {text!r}"
            ) from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be a whole number {bound}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def real(low: float, high: float = math.inf, *, above: bool = False) -> Callable[[str], float]:
    """A finite number from ``low`` (or above it, with ``above``) to ``high``."""
    bound = f"> {low:g}" if above else f"≥ {low:g}"
    if high < math.inf:
        bound += f" and at most {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {bound}, got {text!r}") from None
        inside = value > low if above else value >= low
        if not (math.isfinite(value) and inside and value <= high):
            raise argparse.ArgumentTypeError(f"must be a finite number {bound}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


SEED = whole(0)
"""Seeds of numpy.random.default_rng: whole numbers ≥ 0."""
LOG_BASE = real(1, above=True)
"""The log base of cross-entropy: finite and > 1."""


def add_penalty_options(group: argparse._ActionsContainer) -> None:
    """--l2 ALPHA or --l1 ALPHA (one of them): a penalty on the weight matrices, a term of the
    cost (``nnmath.penalties``)."""
    penalty = group.add_mutually_exclusive_group()
    penalty.add_argument(
        "--l2", type=float, metavar="ALPHA", help="add the penalty (α/2) Σ_l ‖W_l‖² to the cost"
    )
    penalty.add_argument(
        "--l1", type=float, metavar="ALPHA", help="add the penalty α Σ_l Σ |W_l,ij| to the cost"
    )
