"""Penalties (L2, L1) and sample weights: the records, the engine's cost and gradients against
central differences and PyTorch autograd, and scikit-learn's per-sample convention."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from oracles import TORCH_LOSSES, one_hot_targets, tensor, torch_fused_values, torch_network
from torch import nn

from nnmath.errors import DataError, SpecError
from nnmath.gradcheck import numerical_gradient
from nnmath.losses import as_sample_weight, cost, cost_gradient, get_loss
from nnmath.network import MLP
from nnmath.penalties import L1, L2, PENALTIES, get_penalty, penalty_scale, squared_norm

# (spec, loss): a fused softmax pair, a fused sigmoid pair, and an unfused pair through the VJP
CASES = [
    ("3-6relu-4tanh-3softmax", "cross-entropy"),
    ("4-5tanh-2sigmoid", "binary-cross-entropy"),
    ("3-5sigmoid-2", "mse"),
]
PENALTY_CASES = [None, L2(0.3), L1(0.2), L2(0.5, per_sample=True), L1(0.4, per_sample=True)]


def problem(spec: str, loss_name: str, S: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    model = MLP(spec, seed=seed)
    X = rng.normal(size=(S, model.n_in))
    if loss_name == "cross-entropy":
        T = rng.integers(0, model.n_out, S)
    elif loss_name == "binary-cross-entropy":
        T = (rng.random((S, model.n_out)) < 0.5).astype(np.float64)
    else:
        T = rng.normal(size=(S, model.n_out))
    w = rng.uniform(0.1, 3.0, S)
    w[1] = 0.0  # a row that does not count
    return model, X, T, w


# ---- the records -------------------------------------------------------------------------------


def test_penalty_values_and_gradients_by_hand() -> None:
    W1, W2 = np.array([[1.0, -2.0], [0.0, 3.0]]), np.array([[-0.5, 0.0, 4.0]])
    l2, l1 = L2(0.1), L1(0.1)
    assert l2.value([W1, W2]) == pytest.approx(0.05 * (1 + 4 + 9 + 0.25 + 16))
    assert l1.value([W1, W2]) == pytest.approx(0.1 * (1 + 2 + 3 + 0.5 + 4))
    np.testing.assert_array_equal(l2.grad(W1), 0.1 * W1)
    # L1's derivative at 0 is taken to be 0 (the subgradient nnmath chooses), elsewhere α sign(w)
    np.testing.assert_array_equal(l1.grad(W2), [[-0.1, 0.0, 0.1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_squared_norm_is_the_sum_of_the_squares_in_any_layout(dtype) -> None:
    """‖W‖² as one dot of W's flat view (C-ordered, F-ordered, strided) equals Σ W ⊙ W, the clear
    form, computed here in float64 from the same numbers; and a torch tensor takes the Array API
    path."""
    W = np.random.default_rng(2).normal(size=(37, 21)).astype(dtype)
    clear = float(np.sum(W.astype(np.float64) ** 2))
    tolerance = 1e-5 if dtype == np.float32 else 1e-13
    for layout in (W, np.asfortranarray(W), W.T, W[::2, 1::3]):
        expected = float(np.sum(layout.astype(np.float64) ** 2))
        assert squared_norm(layout) == pytest.approx(expected, rel=tolerance)
    assert squared_norm(W) == pytest.approx(clear, rel=tolerance)
    assert squared_norm(torch.from_numpy(W)) == pytest.approx(clear, rel=tolerance)
    assert L2(0.4).value([W, W.T]) == pytest.approx(0.4 * clear, rel=tolerance)


@pytest.mark.parametrize("name", list(PENALTIES))
def test_penalty_gradient_equals_central_differences(name: str) -> None:
    penalty = get_penalty(name, 0.7)
    W = np.random.default_rng(1).normal(size=(4, 3))
    numeric = numerical_gradient(lambda: penalty.value([W]), W)
    np.testing.assert_allclose(penalty.grad(W), numeric, rtol=1e-7, atol=1e-9)


def test_penalty_formulas_are_typeset_once() -> None:
    assert L2(1.0).tex.forward == r"P = \frac{\alpha}{2} \sum_{l} \lVert <W>^{(l)} \rVert_F^{2}"
    assert L2(1.0).tex.backward == r"\frac{\partial P}{\partial <W>^{(l)}} = \alpha <W>^{(l)}"
    assert L1(1.0).tex.forward == r"P = \alpha \sum_{l} \lVert <W>^{(l)} \rVert_1"
    assert L1(1.0).tex.backward_element == (
        r"\frac{\partial P}{\partial <W>^{(l)}_{ij}} = \alpha \operatorname{sign}"
        r"(<W>^{(l)}_{ij}),\ \operatorname{sign}(0) = 0"
    )
    assert L1(1.0).tex.text == "P = α Σ_l Σ |W⁽ˡ⁾_ij|;  ∂P/∂W⁽ˡ⁾ = α sign(W⁽ˡ⁾), sign(0) = 0"
    for record in (L2, L1):  # the docstring states the formula the record typesets
        assert record.__doc__.startswith(record(1.0).tex.text)


def test_per_sample_scale_and_bad_alpha() -> None:
    assert penalty_scale(L2(1.0), 32.0) == 1.0
    assert penalty_scale(L2(1.0, per_sample=True), 32.0) == 1 / 32
    for bad in (-1.0, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(SpecError, match="alpha"):
            L2(bad)
    with pytest.raises(SpecError, match="unknown penalty"):
        get_penalty("l3", 1.0)


def test_sample_weights_are_checked() -> None:
    with pytest.raises(DataError, match="one weight per row"):
        as_sample_weight(np.ones(3), 4, np.float64)
    with pytest.raises(DataError, match="negative"):
        as_sample_weight(np.array([1.0, -1.0]), 2, np.float64)
    with pytest.raises(DataError, match="NaN or Inf"):
        as_sample_weight(np.array([1.0, np.nan]), 2, np.float64)
    with pytest.raises(DataError, match="sums to 0"):
        as_sample_weight(np.zeros(2), 2, np.float64)


# ---- the weighted cost -------------------------------------------------------------------------


def test_weighted_cost_reduces_to_the_mean_and_counts_duplicates() -> None:
    loss = get_loss("squared-error")
    rng = np.random.default_rng(2)
    A, T = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    assert cost(loss, A, T, np.ones(5)) == pytest.approx(cost(loss, A, T), rel=1e-15)
    np.testing.assert_allclose(cost_gradient(loss, A, T, np.ones(5)), cost_gradient(loss, A, T))
    # integer weights are repeated rows: w = (2, 1, 1, 1, 3) is rows 0, 0, 1, 2, 3, 4, 4, 4
    w = np.array([2.0, 1.0, 1.0, 1.0, 3.0])
    rows = [0, 0, 1, 2, 3, 4, 4, 4]
    assert cost(loss, A, T, w) == pytest.approx(cost(loss, A[rows], T[rows]), rel=1e-14)


def test_integer_weights_train_like_repeated_rows() -> None:
    model, X, T, _ = problem("3-6relu-4tanh-3softmax", "cross-entropy")
    loss = get_loss("cross-entropy")
    w = np.array([2, 0, 1, 3, 1, 1])
    rows = np.repeat(np.arange(6), w)
    a, ga = model.loss_and_gradients(X, T, loss, sample_weight=w)
    b, gb = model.loss_and_gradients(X[rows], T[rows], loss)
    assert a == pytest.approx(b, rel=1e-14)
    for x, y in zip(ga.flat(), gb.flat(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


# ---- gradients against the two oracles -----------------------------------------------------------


@pytest.mark.parametrize("penalty", PENALTY_CASES, ids=lambda p: "none" if p is None else repr(p))
@pytest.mark.parametrize(("spec", "loss_name"), CASES)
def test_weighted_penalised_gradients_equal_central_differences(spec, loss_name, penalty) -> None:
    model, X, T, w = problem(spec, loss_name)
    loss = get_loss(loss_name)
    value, grads = model.loss_and_gradients(X, T, loss, sample_weight=w, penalty=penalty)
    assert value == pytest.approx(model.cost(X, T, loss, sample_weight=w, penalty=penalty))
    for param, got in zip(model.parameters(), grads.flat(), strict=True):
        numeric = numerical_gradient(
            lambda: model.cost(X, T, loss, sample_weight=w, penalty=penalty), param
        )
        np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


def torch_penalised_cost(model, X, T, loss_name, w, penalty):
    """Σ w ℓ / Σ w + k P(W) by torch autograd, the loss on the network's output (never fused)."""
    net = torch_network(model)
    Tt = tensor(one_hot_targets(T, model.n_out))
    if loss_name == "cross-entropy":  # torch's own log-softmax cross-entropy on the logits
        logits = net[:-1](tensor(X))
        values = torch_fused_values("softmax", logits, Tt)
    else:
        values = TORCH_LOSSES[loss_name](net(tensor(X)), Tt, None)
    wt = tensor(w)
    value = (wt * values).sum() / wt.sum()
    if penalty is not None:
        weights = [m.weight for m in net if isinstance(m, nn.Linear)]
        if isinstance(penalty, L2):
            P = 0.5 * penalty.alpha * sum((W * W).sum() for W in weights)
        else:
            P = penalty.alpha * sum(W.abs().sum() for W in weights)
        value = value + (1.0 / wt.sum() if penalty.per_sample else 1.0) * P
    value.backward()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    grads = [g for m in linears for g in (m.weight.grad.numpy(), m.bias.grad.numpy())]
    return float(value.detach()), grads


@pytest.mark.parametrize("penalty", PENALTY_CASES, ids=lambda p: "none" if p is None else repr(p))
@pytest.mark.parametrize(("spec", "loss_name"), CASES)
def test_weighted_penalised_gradients_equal_torch(spec, loss_name, penalty) -> None:
    model, X, T, w = problem(spec, loss_name, seed=3)
    loss = get_loss(loss_name)
    value, grads = model.loss_and_gradients(X, T, loss, sample_weight=w, penalty=penalty)
    expected_value, expected = torch_penalised_cost(model, X, T, loss_name, w, penalty)
    assert value == pytest.approx(expected_value, rel=1e-13)
    for got, want in zip(grads.flat(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_l1_gradient_at_a_zero_weight_is_zero() -> None:
    model, X, T, _ = problem("3-6relu-4tanh-3softmax", "cross-entropy")
    loss = get_loss("cross-entropy")
    model.linears[0].W[0, 0] = 0.0
    _, plain = model.loss_and_gradients(X, T, loss)
    _, penalised = model.loss_and_gradients(X, T, loss, penalty=L1(5.0))
    assert penalised.W[0][0, 0] == plain.W[0][0, 0]  # no pull from |w| at w = 0
    np.testing.assert_array_equal(penalised.b[0], plain.b[0])  # biases are not penalised


# ---- scikit-learn's convention -------------------------------------------------------------------


def test_per_sample_l2_is_scikit_learns_cost_and_gradients() -> None:
    """L2(alpha, per_sample=True) with sample weights is MLPClassifier's _backprop, term by term."""
    sk = pytest.importorskip("sklearn.neural_network")
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(12, 4)), np.arange(12) % 3
    w = rng.uniform(0.2, 2.0, 12)
    alpha = 0.3
    clf = sk.MLPClassifier(hidden_layer_sizes=(5,), activation="relu", alpha=alpha, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)  # only to set up its layers; the weights are replaced below
    model = MLP("4-5relu-3softmax", seed=1)
    clf.coefs_ = [L.W.T.copy() for L in model.linears]
    clf.intercepts_ = [L.b.copy() for L in model.linears]
    Y = np.eye(3)[y]
    activations = [X] + [None] * (clf.n_layers_ - 1)
    deltas = [None] * (clf.n_layers_ - 1)
    coef_grads = [np.empty_like(c) for c in clf.coefs_]
    intercept_grads = [np.empty_like(b) for b in clf.intercepts_]
    sk_loss, sk_dW, sk_db = clf._backprop(X, Y, w, activations, deltas, coef_grads, intercept_grads)
    value, grads = model.loss_and_gradients(
        X, y, get_loss("cross-entropy"), sample_weight=w, penalty=L2(alpha, per_sample=True)
    )
    assert value == pytest.approx(sk_loss, rel=1e-12)
    for index in range(2):
        np.testing.assert_allclose(grads.W[index], sk_dW[index].T, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(grads.b[index], sk_db[index], rtol=1e-10, atol=1e-13)


def test_a_torch_weighted_cross_entropy_agrees() -> None:
    """torch's own weighted reduction: Σ w ℓ / Σ w of F.cross_entropy(reduction='none')."""
    model, X, T, w = problem("3-6relu-4tanh-3softmax", "cross-entropy", seed=8)
    logits = torch_network(model)[:-1](tensor(X))
    values = torch.nn.functional.cross_entropy(logits, torch.tensor(T), reduction="none")
    expected = float((tensor(w) * values).sum().detach() / tensor(w).sum())
    assert model.cost(X, T, get_loss("cross-entropy"), sample_weight=w) == pytest.approx(
        expected, rel=1e-13
    )
