"""Which loss fits which output layer and which targets: the rules, stated once.

    loss                   output layer                   targets
    squared-error, mse     any                            any real numbers
    cross-entropy          softmax of at least 2 units    class labels 0 … K−1, or rows of
                                                          probabilities (each ≥ 0, summing to 1)
    binary-cross-entropy   outputs in (0, 1): sigmoid     values in [0, 1]

Class labels need as many outputs as classes (a single sigmoid unit: the labels 0 and 1);
``losses.as_targets`` names a label outside the outputs.

Squared error on a sigmoid output is the notes' own pairing, and the textbooks' (Mazur's worked
example): it is sound. A pair that computes but is unusual **warns**: binary cross-entropy on a
softmax output, which scores each class's probability on its own although they sum to 1. A pair
is **refused**, naming the sound choices, when its loss cannot fall for some targets
(cross-entropy on one unit: a softmax of one unit is always 1, and for a sigmoid unit −t log a is
0 whenever t = 0), when the loss would take the log of values outside (0, 1] (cross-entropy or
binary cross-entropy on an identity, ReLU or tanh output), or when the targets do not fit the
loss (cross-entropy on regression values: its minimum is then −∞, not a fit).

Used by ``fit`` (pair and targets), ``MLP.loss_and_gradients`` and ``MLP.cost`` (the pair),
``check_gradients``, and the command line: ``nnmath train``, ``gradcheck``, ``derive``, ``check``
and ``init``. The playground offers only the sound pairs of this table.
"""

from __future__ import annotations

import warnings
from typing import Any

from nnmath.backend import namespace
from nnmath.errors import DataError, SpecError

SOUND_PAIRS = (
    ("softmax", "cross-entropy"),
    ("sigmoid", "binary-cross-entropy"),
    ("any", "mse"),
    ("any", "squared-error"),
)
"""(output activation, loss) pairs that are always sound; "any" is every output activation."""

PROBABILITY_TOLERANCE = 1e-3
"""How far a row of probabilities may sum from 1 (rounded probabilities such as 0.333 × 3 pass)."""

SOUND_CHOICES = (
    "the sound choices are softmax (≥ 2 units) with cross-entropy for classes, sigmoid with "
    "binary-cross-entropy for 0/1 targets, and mse or squared-error with any output"
)


class UnusualPairWarning(UserWarning):
    """A loss and output layer that compute, but not what the loss is meant for."""


def _loss_name(loss: Any) -> str:
    return loss if isinstance(loss, str) else loss.name


def pair_problem(output: str, n_out: int, loss: Any) -> tuple[str, str] | None:
    """("refuse" or "warn", the reason) for an output layer of ``n_out`` units of activation
    ``output`` scored by ``loss`` (a Loss or its name); None for a sound pair."""
    name = _loss_name(loss)
    if name == "cross-entropy":
        return _cross_entropy_problem(output, n_out)
    if name == "binary-cross-entropy":
        return _binary_cross_entropy_problem(output, n_out)
    return None  # squared error and mse fit any output


def _cross_entropy_problem(output: str, n_out: int) -> tuple[str, str] | None:
    if output == "softmax" and n_out >= 2:
        return None
    if output == "softmax":
        return "refuse", (
            "cross-entropy on a softmax of 1 unit cannot learn: a softmax over one unit is always "
            "1; for two classes use 2softmax with cross-entropy, or 1sigmoid with "
            "binary-cross-entropy"
        )
    if output == "sigmoid" and n_out == 1:
        return "refuse", (
            "cross-entropy on a single sigmoid unit cannot learn the class 0: −t log a is 0 "
            "whenever t = 0, so nothing pushes a down; use 1sigmoid with binary-cross-entropy, or "
            "2softmax with cross-entropy"
        )
    if output == "sigmoid":
        return "refuse", (
            f"cross-entropy needs a softmax output: {n_out} sigmoid units do not sum to 1, so the "
            f"loss falls by pushing every unit to 1; use {n_out}softmax with cross-entropy, or "
            "binary-cross-entropy for independent 0/1 targets"
        )
    return "refuse", (
        f"cross-entropy takes the log of the outputs, and a{_n(output)} {output} output is not "
        f"kept in (0, 1]; use {max(n_out, 2)}softmax with cross-entropy for classes, or mse for "
        "regression values"
    )


def _binary_cross_entropy_problem(output: str, n_out: int) -> tuple[str, str] | None:
    if output == "sigmoid":
        return None
    if output == "softmax" and n_out >= 2:
        return "warn", (
            "binary cross-entropy on a softmax output is unusual: it scores each class's "
            "probability on its own although they sum to 1; cross-entropy is the loss for a "
            "softmax, binary cross-entropy the one for sigmoid units"
        )
    if output == "softmax":
        return "refuse", (
            "binary cross-entropy on a softmax of 1 unit cannot learn: a softmax over one unit is "
            "always 1; use 1sigmoid with binary-cross-entropy"
        )
    return "refuse", (
        f"binary cross-entropy needs outputs in (0, 1), and a{_n(output)} {output} output does "
        f"not keep them there; use {n_out}sigmoid with binary-cross-entropy, or mse"
    )


def _n(word: str) -> str:
    return "n" if word[:1] in "aeiou" else ""


def check_pair(output: str, n_out: int, loss: Any, stacklevel: int = 2) -> None:
    """Refuse (SpecError) or warn (UnusualPairWarning) as :func:`pair_problem` says."""
    problem = pair_problem(output, n_out, loss)
    if problem is None:
        return
    verdict, reason = problem
    if verdict == "refuse":
        raise SpecError(f"{reason} ({SOUND_CHOICES})")
    warnings.warn(reason, UnusualPairWarning, stacklevel=stacklevel + 1)


def check_targets(loss: Any, T: Any) -> None:
    """Refuse targets T (S, n_out), after class labels became one-hot rows, that ``loss`` cannot
    fit: cross-entropy needs rows of probabilities, binary cross-entropy values in [0, 1]."""
    name = _loss_name(loss)
    if name not in ("cross-entropy", "binary-cross-entropy") or T.shape[0] == 0:
        return
    xp = namespace(T)
    low, high = float(xp.min(T)), float(xp.max(T))
    if name == "binary-cross-entropy" and not (low >= 0.0 and high <= 1.0):
        value = low if low < 0 else high
        raise DataError(
            f"binary cross-entropy needs targets in [0, 1], got {value:g}; for regression "
            "values use mse (with an identity output)"
        )
    if name == "cross-entropy":
        sums = xp.sum(T, axis=1)
        off = float(xp.max(xp.abs(sums - 1.0)))
        if low < 0 or off > PROBABILITY_TOLERANCE:
            raise DataError(
                "cross-entropy needs class labels 0 … K−1 or rows of probabilities (each ≥ 0, "
                f"summing to 1); these targets have values from {low:g} to {high:g} and rows "
                "summing to up to "
                f"{float(xp.max(xp.abs(sums))):g}: for regression values use mse (with an "
                "identity output), for several 0/1 labels per row binary-cross-entropy with sigmoid "
                "outputs"
            )


def default_loss_name(output: str) -> str:
    """The loss that matches an output activation: softmax → cross-entropy, sigmoid → binary
    cross-entropy, anything else → squared error."""
    return {"softmax": "cross-entropy", "sigmoid": "binary-cross-entropy"}.get(
        output, "squared-error"
    )
