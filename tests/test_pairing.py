"""The rules of which loss fits which output layer and targets, and where they are applied."""

from __future__ import annotations

import numpy as np
import pytest

from nnmath.derivation import derive
from nnmath.errors import DataError, SpecError
from nnmath.gradcheck import check_gradients
from nnmath.losses import LOSSES, get_loss
from nnmath.network import MLP
from nnmath.pairing import UnusualPairWarning, check_targets, pair_problem
from nnmath.playground.config import OUTPUTS
from nnmath.spec import activation_names
from nnmath.training import fit

VERDICTS = [
    ("softmax", 3, "cross-entropy", None),
    ("softmax", 2, "cross-entropy", None),
    ("sigmoid", 1, "binary-cross-entropy", None),
    ("sigmoid", 4, "binary-cross-entropy", None),  # independent 0/1 targets
    ("sigmoid", 2, "squared-error", None),  # the notes' and Mazur's pairing
    ("sigmoid", 2, "mse", None),
    ("identity", 3, "mse", None),
    ("tanh", 1, "squared-error", None),
    ("softmax", 3, "mse", None),
    ("softmax", 3, "binary-cross-entropy", "warn"),
    ("softmax", 1, "binary-cross-entropy", "refuse"),
    ("softmax", 1, "cross-entropy", "refuse"),
    ("sigmoid", 1, "cross-entropy", "refuse"),
    ("sigmoid", 3, "cross-entropy", "refuse"),
    ("identity", 3, "cross-entropy", "refuse"),
    ("relu", 3, "cross-entropy", "refuse"),
    ("identity", 1, "binary-cross-entropy", "refuse"),
    ("tanh", 2, "binary-cross-entropy", "refuse"),
    ("softplus", 2, "binary-cross-entropy", "refuse"),
]


@pytest.mark.parametrize(("output", "n_out", "loss", "verdict"), VERDICTS)
def test_each_pair_gets_its_verdict(output: str, n_out: int, loss: str, verdict: str | None):
    problem = pair_problem(output, n_out, get_loss(loss))
    assert (problem and problem[0]) == verdict
    if verdict == "refuse":  # names a sound choice
        assert "softmax with cross-entropy" in problem[1] or "sigmoid with binary" in problem[1]


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("output", activation_names())
def test_every_output_and_loss_has_a_verdict(output: str, loss: str) -> None:
    """Enrolled from the registries: a new activation or loss gets a verdict, never an error."""
    for n_out in (1, 3):
        problem = pair_problem(output, n_out, loss)
        assert problem is None or problem[0] in ("warn", "refuse")
    if loss in ("mse", "squared-error"):
        assert pair_problem(output, 3, loss) is None


def test_the_playground_offers_only_sound_pairs() -> None:
    for output, loss, _ in OUTPUTS.values():
        assert pair_problem(output, 2 if output == "softmax" else 1, loss) is None


@pytest.mark.parametrize(
    ("loss", "T", "said"),
    [
        ("cross-entropy", [[0.5, 0.5], [1.0, 0.0]], None),
        ("cross-entropy", [[0.333, 0.333, 0.333]], None),  # rounded probabilities
        ("cross-entropy", [[-3.5, 2.0], [0.1, 0.2]], "rows of probabilities"),
        ("cross-entropy", [[1.0, 1.0]], "summing to 1"),
        ("binary-cross-entropy", [[0.0, 1.0], [0.25, 1.0]], None),
        ("binary-cross-entropy", [[2.0], [0.0]], "targets in [0, 1], got 2"),
        ("binary-cross-entropy", [[-0.5], [0.0]], "got -0.5"),
        ("mse", [[-300.0, 2.0]], None),
    ],
)
def test_targets_must_fit_the_loss(loss: str, T: list, said: str | None) -> None:
    if said is None:
        check_targets(get_loss(loss), np.array(T))
    else:
        with pytest.raises(DataError) as caught:
            check_targets(get_loss(loss), np.array(T))
        assert said in str(caught.value)


# ---- where the rules apply ---------------------------------------------------------------------


def data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=(20, 2)), np.arange(20) % 2


def test_fit_refuses_cross_entropy_on_regression_values(rng: np.random.Generator) -> None:
    X, _ = data(rng)
    with pytest.raises(DataError, match="for regression values use mse"):
        fit(MLP("2-4relu-2softmax"), X, 5 * rng.normal(size=(20, 2)), loss="cross-entropy")


def test_fit_refuses_cross_entropy_on_one_sigmoid_unit(rng: np.random.Generator) -> None:
    X, y = data(rng)
    with pytest.raises(SpecError, match="single sigmoid unit"):
        fit(MLP("2-4relu-1sigmoid"), X, y, loss="cross-entropy", epochs=1)


def test_fit_warns_about_binary_cross_entropy_on_a_softmax(rng: np.random.Generator) -> None:
    X, y = data(rng)
    with pytest.warns(UnusualPairWarning, match="unusual"):
        fit(MLP("2-4relu-2softmax"), X, np.eye(2)[y], loss="binary-cross-entropy", epochs=1)


def test_the_engine_refuses_a_pair_that_cannot_learn(rng: np.random.Generator) -> None:
    model, X = MLP("2-4relu-3"), rng.normal(size=(4, 2))
    T = np.eye(3)[[0, 1, 2, 0]]
    for compute in (model.loss_and_gradients, model.cost):
        with pytest.raises(SpecError, match="3softmax with cross-entropy"):
            compute(X, T, get_loss("cross-entropy"))
    with pytest.raises(SpecError, match="single sigmoid"):
        check_gradients(MLP("2-3tanh-1sigmoid"), X, np.ones((4, 1)), get_loss("cross-entropy"))
    with pytest.raises(SpecError, match="outputs in \\(0, 1\\)"):
        derive("2-3tanh-2", "binary-cross-entropy")
