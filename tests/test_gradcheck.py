"""The gradient checker: it passes on correct networks, fails on deliberately broken primitives (and
so does the torch oracle), and reports ReLU kinks as kinks instead of failures."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from oracles import worst_torch_mismatch

from nnmath import gradcheck
from nnmath.activations import ACTIVATIONS, RELU, SIGMOID
from nnmath.errors import SpecError
from nnmath.gradcheck import (
    check_gradients,
    check_size,
    default_loss_name,
    numerical_gradient,
    numerical_jacobian,
    random_problem,
    relative_error,
)
from nnmath.layers import Linear, Softmax, softmax
from nnmath.losses import SoftmaxCrossEntropy, get_loss
from nnmath.network import MLP
from nnmath.spec import parse_spec

NETWORKS = [
    ("3-10relu-6relu-3softmax", "cross-entropy", None),
    ("4-8sigmoid-1sigmoid", "binary-cross-entropy", None),
    ("2-2sigmoid-2sigmoid", "squared-error", None),
    ("3-5tanh-4gelu-2", "mse", None),
    ("3-4elu(0.5)-4leaky_relu(0.1)-3softmax", "cross-entropy", 2.0),
    ("3-4softplus-3softmax", "squared-error", None),
]


def setup(spec: str, loss_name: str, base: float | None = None, seed: int = 0, samples: int = 6):
    rng = np.random.default_rng(seed)
    model = MLP(spec, rng=rng)
    for linear in model.linears:
        linear.b[...] = rng.normal(scale=0.3, size=linear.b.shape)
    loss = get_loss(loss_name, base=base)
    X, T = random_problem(model, loss, samples, rng)
    return model, X, T, loss


def failing(report) -> list[str]:
    return [c.name for c in report.checks if not c.passed]


# ---- the oracle itself --------------------------------------------------------------------------


def test_numerical_derivatives_of_known_functions():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    assert_allclose(numerical_gradient(lambda: float(np.sum(x**3)), x), 3 * x**2, rtol=1e-9)
    A = np.random.default_rng(0).normal(size=(3, 4))
    assert_allclose(numerical_jacobian(lambda v: A @ v, np.ones(4)), A, rtol=1e-9)
    # f may return its argument itself (the identity layer does): the Jacobian is still I
    assert_allclose(numerical_jacobian(lambda v: v, x), np.eye(4), atol=1e-10)


def test_relative_error():
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(
        math.sqrt(2) / 2
    )
    assert relative_error(np.array([2.0]), np.array([2.0])) == 0.0


# ---- correct networks pass ------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "loss_name", "base"), NETWORKS, ids=[n[0] for n in NETWORKS])
def test_check_gradients_passes(spec, loss_name, base):
    model, X, T, loss = setup(spec, loss_name, base)
    before = [p.copy() for p in model.parameters()]
    report = check_gradients(model, X, T, loss)
    assert report.passed, report.format()
    assert report.worst_relative_error < 1e-7
    names = [f"{k}{i}" for i in range(1, len(model.linears) + 1) for k in "Wb"] + ["X"]
    assert [c.name for c in report.checks] == names
    assert [c.shape for c in report.checks] == [p.shape for p in model.parameters()] + [X.shape]
    for p, q in zip(before, model.parameters(), strict=True):
        assert_array_equal(p, q)  # the model is left unchanged
    assert worst_torch_mismatch(model, X, T, loss) < 1e-10
    assert "all gradients match" in report.format()
    assert report.to_dict()["passed"] is True


# ---- broken primitives fail, in the checker and against torch -----------------------------------


def assert_caught(model, X, T, loss, expected_failures):
    report = check_gradients(model, X, T, loss)
    assert not report.passed
    assert failing(report) == expected_failures, report.format()
    assert "MISMATCH" in report.format()
    assert report.to_dict()["passed"] is False
    assert worst_torch_mismatch(model, X, T, loss) > 1e-6


def test_softmax_vjp_without_its_subtracted_term_is_caught(monkeypatch):
    monkeypatch.setattr(Softmax, "vjp", lambda self, Y, dY: (Y * dY, {}))  # drops −(dY⊙Y)11ᵀ
    model, X, T, loss = setup("3-4tanh-3softmax", "squared-error")
    assert_caught(model, X, T, loss, ["W1", "b1", "W2", "b2", "X"])


def test_wrong_sigmoid_derivative_is_caught_below_that_layer_only(monkeypatch):
    broken = dataclasses.replace(SIGMOID, df=lambda Z, Y: Y * (1.0 + Y))
    monkeypatch.setitem(ACTIVATIONS, "sigmoid", lambda: broken)
    model, X, T, loss = setup("4-8sigmoid-1sigmoid", "binary-cross-entropy")
    # the output pair is fused (σ(z) − t, no σ′), so only what lies below the hidden layer breaks
    assert_caught(model, X, T, loss, ["W1", "b1", "X"])


def test_relu_derivative_of_one_everywhere_is_caught(monkeypatch):
    broken = dataclasses.replace(RELU, df=lambda Z, Y: np.ones_like(Z))
    monkeypatch.setitem(ACTIVATIONS, "relu", lambda: broken)
    model, X, T, loss = setup("3-10relu-6relu-3softmax", "cross-entropy")
    assert_caught(model, X, T, loss, ["W1", "b1", "W2", "b2", "X"])


def test_slightly_scaled_weight_gradient_is_caught(monkeypatch):
    original = Linear.vjp

    def scaled(self, cache, dY):
        dX, grads = original(self, cache, dY)
        return dX, {**grads, "W": 1.001 * grads["W"]}

    monkeypatch.setattr(Linear, "vjp", scaled)
    model, X, T, loss = setup("2-2sigmoid-2sigmoid", "squared-error")
    assert_caught(model, X, T, loss, ["W1", "W2"])


def test_transposed_weight_gradient_is_caught(monkeypatch):
    def transposed(self, cache, dY):
        return dY @ self.W, {"W": cache.T @ dY, "b": dY.sum(axis=0)}  # Xᵀ dY instead of dYᵀ X

    monkeypatch.setattr(Linear, "vjp", transposed)
    model, X, T, loss = setup("3-3tanh-3", "mse")
    assert_caught(model, X, T, loss, ["W1", "W2"])


def test_notes_shortcut_in_the_fused_pair_is_caught_when_rows_of_t_do_not_sum_to_one(monkeypatch):
    """With (Ŷ − T)/ln b as the fused gradient, one-hot targets still pass, halved targets fail."""
    monkeypatch.setattr(
        SoftmaxCrossEntropy, "grad", lambda self, Z, T: (softmax(Z) - T) / self.log_base
    )
    model, X, T, loss = setup("3-4tanh-3softmax", "cross-entropy")
    assert check_gradients(model, X, T, loss).passed
    assert worst_torch_mismatch(model, X, T, loss) < 1e-10
    assert_caught(model, X, 0.5 * T, loss, ["W1", "b1", "W2", "b2", "X"])


# ---- kinks ----------------------------------------------------------------------------------------


def kinked_model(offset: float):
    """2-3relu-2 with mse where unit 1's pre-activation on sample 0 is exactly ``offset``."""
    model, X, T, loss = setup("2-3relu-2", "mse", seed=4)
    first = model.linears[0]
    first.b[0] = offset - float(X[0] @ first.W[0])
    if offset == 0.0:  # make z exactly 0: x₀ = 0 and b₁ = 0, so z = W·0 + 0
        X[0] = 0.0
        first.b[0] = 0.0
    Z = X @ first.W.T + first.b
    assert Z[0, 0] == offset or abs(Z[0, 0] - offset) < 1e-15
    return model, X, T, loss


@pytest.mark.parametrize("offset", [0.0, 1e-7, -3e-6], ids=["at-0", "1e-7", "-3e-6"])
def test_kinks_are_reported_not_failed(offset):
    model, X, T, loss = kinked_model(offset)
    report = check_gradients(model, X, T, loss)
    assert report.passed, report.format()
    kinks = {c.name: c.kinks for c in report.checks}
    assert kinks["b1"] >= 1 and kinks["X"] >= 1
    assert kinks["W2"] == kinks["b2"] == 0  # layer 2 has no kinked activation after it
    assert "kinks" in report.format()


def test_the_kink_is_real_without_kink_detection(monkeypatch):
    """Turn kink detection off: the same check then fails on b1, so the kink handling matters."""
    model, X, T, loss = kinked_model(1e-7)
    monkeypatch.setattr(gradcheck, "kink_pattern", lambda model, X, mode=None: [])
    report = check_gradients(model, X, T, loss)
    assert "b1" in failing(report)


def test_relu_derivative_at_zero_is_zero_in_the_network():
    """With z exactly 0, the analytic ∂C/∂b equals the left difference quotient (ReLU′(0) = 0)."""
    model, X, T, loss = kinked_model(0.0)
    _, grads = model.loss_and_gradients(X, T, loss)
    b = model.linears[0].b
    eps = 1e-7
    c0 = model.cost(X, T, loss)
    b[0] -= eps
    left = (c0 - model.cost(X, T, loss)) / eps
    b[0] += 2 * eps
    right = (model.cost(X, T, loss) - c0) / eps
    b[0] -= eps
    assert grads.b[0][0] == pytest.approx(left, rel=1e-5, abs=1e-9)
    assert abs(right - left) > 1e-3  # and the right-hand slope is really different


# ---- helpers of the command ------------------------------------------------------------------------


def test_random_problem_targets_suit_the_loss(rng):
    model = MLP("3-4tanh-3softmax")
    _, T = random_problem(model, get_loss("cross-entropy"), 20, rng)
    assert_array_equal(T.sum(axis=1), np.ones(20))
    assert set(np.unique(T)) <= {0.0, 1.0}
    _, T = random_problem(model, get_loss("binary-cross-entropy"), 20, rng)
    assert set(np.unique(T)) <= {0.0, 1.0}
    X, T = random_problem(model, get_loss("mse"), 20, rng)
    assert X.shape == (20, 3) and T.shape == (20, 3)


def test_default_loss_matches_the_output():
    assert default_loss_name("softmax") == "cross-entropy"
    assert default_loss_name("sigmoid") == "binary-cross-entropy"
    assert default_loss_name("identity") == "squared-error"


# ---- the check's own settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"eps": 0.0}, "eps, the finite-difference step, must be > 0"),
        ({"eps": -1.0}, "must be finite and ≥ 0, got -1.0"),
        ({"eps": float("nan")}, "eps must be finite"),
        ({"eps": 1.0}, "at most 0.1"),
        ({"rtol": -1.0}, "rtol must be finite and ≥ 0"),
        ({"atol": float("inf")}, "atol must be finite"),
    ],
)
def test_steps_and_tolerances_that_cannot_give_a_verdict_are_refused(options, fragment) -> None:
    model, X = MLP("3-4tanh-2", seed=0), np.ones((2, 3))
    with pytest.raises(SpecError) as caught:
        check_gradients(model, X, np.ones((2, 2)), get_loss("mse"), **options)
    assert fragment in str(caught.value)


def test_a_check_too_large_to_finish_is_refused_before_anything_is_built() -> None:
    with pytest.raises(SpecError, match="from 1 to 100,000, got 0"):
        check_size(parse_spec("3-4relu-2"), 0)
    with pytest.raises(SpecError, match=r"700,000,003 parameters\) on 8 samples .* 1\.6e\+19"):
        check_size(parse_spec("3-100000000relu-3"), 8)
    check_size(parse_spec("784-128relu-10softmax"), 8)  # MNIST-sized: allowed (3e11)
