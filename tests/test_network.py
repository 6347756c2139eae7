"""The whole network: gradients of every W, b and the input against PyTorch, full Jacobians against
the backward pass and central differences, and the errors, summary, dtype and initialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from oracles import batch_jacobian, block_diagonal, torch_gradients

from nnmath import network as network_module
from nnmath.activations import ACTIVATIONS
from nnmath.errors import DataError, ShapeError, SpecError, WrongTypeError
from nnmath.gradcheck import numerical_jacobian
from nnmath.losses import LOSSES, get_loss
from nnmath.network import MLP
from nnmath.spec import ACTIVATION_NAMES

S = 7
# The notes' own networks, every loss, fused and unfused outputs, and every registered activation
# as a hidden layer (so a new activation is enrolled here too).
NETWORKS = [
    ("3-10relu-6relu-3softmax", "cross-entropy", None),
    ("3-10relu-6relu-3softmax", "cross-entropy", 2.0),
    ("4-8sigmoid-1sigmoid", "binary-cross-entropy", None),
    ("5-16relu-3softmax", "cross-entropy", None),
    ("2-2sigmoid-2sigmoid", "squared-error", None),
    ("3-6tanh-4", "mse", None),
    ("3-5gelu-4elu(0.5)-2", "mse", None),
    ("4-5leaky_relu(0.1)-4softplus-3softmax", "cross-entropy", 10.0),
    ("3-4elu-3sigmoid", "binary-cross-entropy", None),
    ("3-4tanh-3softmax", "squared-error", None),  # softmax output, unfused: Softmax.vjp runs
    ("3-4relu-2sigmoid", "mse", None),  # sigmoid output, unfused
    ("3-4tanh-3sigmoid", "squared-error", None),
] + [(f"3-5{name}-2", "mse", None) for name in ACTIVATIONS]


def network_id(case) -> str:
    spec, loss, base = case
    return f"{spec}-{loss}" + ("" if base is None else f"-base{base:g}")


def problem(spec: str, loss_name: str, seed: int = 0, dtype=np.float64):
    """A model with random weights and biases, inputs X, and targets that suit the loss."""
    rng = np.random.default_rng(seed)
    model = MLP(spec, seed=seed, dtype=dtype)
    for linear in model.linears:
        linear.b[...] = rng.normal(scale=0.5, size=linear.b.shape)
    X = rng.normal(size=(S, model.n_in)).astype(dtype)
    if loss_name == "cross-entropy":
        T = rng.integers(0, model.n_out, size=S)  # class labels
    elif loss_name == "binary-cross-entropy":
        shape = (S,) if model.n_out == 1 else (S, model.n_out)
        T = rng.integers(0, 2, size=shape)
    else:
        T = rng.normal(size=(S, model.n_out)).astype(dtype)
    return model, X, T


def assert_matches_torch(model, X, T, loss, rtol=1e-10):
    cost, ours = model.loss_and_gradients(X, T, loss)
    theirs = torch_gradients(model, X, T, loss)
    assert cost == pytest.approx(theirs.cost, rel=rtol)
    assert cost == pytest.approx(model.cost(X, T, loss), rel=1e-14)
    for index, (a, b) in enumerate(zip(ours.W, theirs.W, strict=True), 1):
        assert_allclose(a, b, rtol=rtol, atol=1e-13, err_msg=f"dW{index}")
    for index, (a, b) in enumerate(zip(ours.b, theirs.b, strict=True), 1):
        assert_allclose(a, b, rtol=rtol, atol=1e-13, err_msg=f"db{index}")
    assert_allclose(ours.X, theirs.X, rtol=rtol, atol=1e-13, err_msg="dX")


@pytest.mark.parametrize("case", NETWORKS, ids=network_id)
def test_gradients_match_torch(case):
    spec, loss_name, base = case
    model, X, T = problem(spec, loss_name)
    assert_matches_torch(model, X, T, get_loss(loss_name, base=base))


def test_every_loss_is_enrolled_in_a_network_case():
    assert {loss for _, loss, _ in NETWORKS} == set(LOSSES)


@pytest.mark.parametrize("targets", ["smoothed", "halved", "random"], ids=lambda t: f"targets-{t}")
def test_softmax_cross_entropy_network_with_rows_of_t_not_one_hot(targets):
    """The fused backward pass agrees with torch's softmax-then-log for any non-negative targets."""
    model, X, labels = problem("3-6tanh-4softmax", "cross-entropy", seed=3)
    one_hot = np.eye(4)[labels]
    T = {
        "smoothed": 0.9 * one_hot + 0.1 / 4,
        "halved": 0.5 * one_hot,
        "random": np.random.default_rng(4).uniform(size=one_hot.shape),
    }[targets]
    assert_matches_torch(model, X, T, get_loss("cross-entropy"))


def test_base_two_cross_entropy_is_natural_divided_by_ln_two():
    model, X, T = problem("3-10relu-6relu-3softmax", "cross-entropy")
    c_e, g_e = model.loss_and_gradients(X, T, get_loss("cross-entropy"))
    c_2, g_2 = model.loss_and_gradients(X, T, get_loss("cross-entropy", base=2.0))
    theirs = torch_gradients(model, X, T, get_loss("cross-entropy"))  # natural log in torch
    assert c_2 == pytest.approx(theirs.cost / math.log(2), rel=1e-12)
    assert c_2 == pytest.approx(c_e / math.log(2), rel=1e-14)
    for a, b in zip(g_2.flat(), g_e.flat(), strict=True):
        assert_allclose(a, b / math.log(2), rtol=1e-12, atol=1e-15)
    for a, b in zip(g_2.W + g_2.b, theirs.W + theirs.b, strict=True):
        assert_allclose(a, b / math.log(2), rtol=1e-10, atol=1e-14)
    assert_allclose(g_2.X, theirs.X / math.log(2), rtol=1e-10, atol=1e-14)


# ---- Jacobians of the whole network ------------------------------------------------------------

JACOBIAN_SPECS = [
    "3-4tanh-2softmax",
    "2-3relu-3sigmoid",
    "3-5gelu-4elu(0.5)-2",
    "2-4leaky_relu(0.2)-3softplus-2",
]


@pytest.mark.parametrize("spec", JACOBIAN_SPECS)
def test_jacobians_equal_the_backward_pass_row_by_row(spec):
    """Backward with G = e_c on row s (zero elsewhere) gives row c of J_s, for x and every W, b."""
    model, X, _ = problem(spec, "mse", seed=1)
    J, P = model.jacobians(X)
    assert J.shape == (X.shape[0], model.n_out, model.n_in)
    _, caches = model.forward(X)
    for s in range(X.shape[0]):
        for c in range(model.n_out):
            G = np.zeros((X.shape[0], model.n_out))
            G[s, c] = 1.0
            grads = model.backward(caches, G)
            assert_allclose(grads.X[s], J[s, c], rtol=1e-12, atol=1e-15)
            assert not np.any(np.delete(grads.X, s, axis=0))  # other samples untouched
            for layer, (dW, db) in enumerate(zip(grads.W, grads.b, strict=True)):
                assert_allclose(dW.reshape(-1), P[layer]["W"][s, c], rtol=1e-12, atol=1e-15)
                assert_allclose(db, P[layer]["b"][s, c], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("spec", JACOBIAN_SPECS)
def test_jacobians_match_central_differences(spec):
    model, X, _ = problem(spec, "mse", seed=2)
    J, P = model.jacobians(X)
    blocks, off = block_diagonal(
        batch_jacobian(lambda x: model.predict(x), X), X.shape[0], model.n_out, model.n_in
    )
    assert_allclose(J, blocks, rtol=1e-6, atol=1e-9)
    assert off < 1e-9
    weights = [(L.W.copy(), L.b.copy()) for L in model.linears]
    for layer in range(len(weights)):
        for name, position in (("W", 0), ("b", 1)):

            def output(theta, layer=layer, position=position):
                changed = [list(pair) for pair in weights]
                changed[layer][position] = theta
                return MLP.from_weights(spec, [tuple(p) for p in changed]).predict(X)

            numeric = numerical_jacobian(output, weights[layer][position])
            expected = numeric.reshape(X.shape[0], model.n_out, -1)
            assert_allclose(
                P[layer][name], expected, rtol=1e-6, atol=1e-9, err_msg=f"{name}{layer + 1}"
            )


# ---- errors that help ----------------------------------------------------------------------------


def test_wrong_input_width_names_layer_one_and_the_shape():
    model = MLP("3-10relu-6relu-3softmax")
    with pytest.raises(ShapeError) as info:
        model.forward(np.zeros((5, 4)))
    message = str(info.value)
    assert "layer 1" in message and "(S, 3)" in message and "(5, 4)" in message
    with pytest.raises(ShapeError, match=r"got shape \(3,\)"):
        model.predict(np.zeros(3))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_refused_naming_the_row(bad):
    model = MLP("3-4tanh-2softmax")
    X = np.zeros((5, 3))
    X[3, 1] = bad
    with pytest.raises(DataError, match="input row 3 holds NaN or Inf"):
        model.forward(X)
    with pytest.raises(DataError, match="row 3"):
        model.loss_and_gradients(X, np.zeros(5, dtype=int), get_loss("cross-entropy"))


def test_labels_outside_the_classes_are_refused():
    model = MLP("3-4tanh-3softmax")
    with pytest.raises(DataError, match=r"label 3 in row 1 is outside the 3 classes"):
        model.loss_and_gradients(np.zeros((2, 3)), np.array([0, 3]), get_loss("cross-entropy"))


def test_bad_spec_lists_the_valid_activations():
    with pytest.raises(SpecError) as info:
        MLP("3-10rellu-3softmax")
    for name in ACTIVATION_NAMES:
        assert name in str(info.value)


def test_unknown_loss_lists_the_valid_losses():
    with pytest.raises(SpecError) as info:
        get_loss("l1")
    for name in LOSSES:
        assert name in str(info.value)


def test_weights_of_the_wrong_shape_are_refused():
    with pytest.raises(ShapeError, match=r"layer 1 \(Linear 3→4\) expects W of shape \(4, 3\)"):
        MLP.from_weights(
            "3-4tanh-2", [(np.zeros((3, 4)), np.zeros(4)), (np.zeros((2, 4)), np.zeros(2))]
        )
    with pytest.raises(ShapeError, match="has 2 layers, got weights for 1"):
        MLP.from_weights("3-4tanh-2", [(np.zeros((4, 3)), np.zeros(4))])


# ---- description, dtype, initialisation --------------------------------------------------------


def test_summary_shows_layers_and_parameter_count():
    model = MLP("3-10relu-6relu-3softmax")
    text = model.summary()
    assert model.parameter_count == 3 * 10 + 10 + 10 * 6 + 6 + 6 * 3 + 3 == 127
    assert "127 parameters" in text
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    for line, (shape, activation, count) in zip(
        lines[2:], [("10×3", "relu", 40), ("6×10", "relu", 66), ("3×6", "softmax", 21)], strict=True
    ):
        assert shape in line and activation in line and line.rstrip().endswith(str(count))


def test_float32_model_stays_float32():
    model, X, T = problem("3-10relu-6relu-3softmax", "cross-entropy", dtype=np.float32)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model.predict(X).dtype == np.float32
    cost, grads = model.loss_and_gradients(X, T, get_loss("cross-entropy"))
    assert isinstance(cost, float) and math.isfinite(cost)
    assert all(g.dtype == np.float32 for g in [*grads.flat(), grads.X])
    for loss_name in LOSSES:
        output = "2softmax" if loss_name == "cross-entropy" else "2sigmoid"  # pairing's rules
        small, X_, T_ = problem(f"3-4tanh-{output}", loss_name, dtype=np.float32)
        _, g = small.loss_and_gradients(X_, T_, get_loss(loss_name))
        assert all(a.dtype == np.float32 for a in [*g.flat(), g.X]), loss_name
    # and float32 gradients are the float64 ones to float32 accuracy
    _, g64 = model.astype(np.float64).loss_and_gradients(
        X.astype(np.float64), T, get_loss("cross-entropy")
    )
    for a, b in zip(grads.flat(), g64.flat(), strict=True):
        assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_seeded_initialisation_is_reproducible():
    spec = "3-10relu-6relu-3softmax"
    a, b, c = MLP(spec, seed=7), MLP(spec, seed=7), MLP(spec, seed=8)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert_array_equal(p, q)
    assert not np.array_equal(a.parameters()[0], c.parameters()[0])
    d = MLP(spec, rng=np.random.default_rng(7))
    assert_array_equal(a.parameters()[0], d.parameters()[0])
    assert all(not np.any(b_) for b_ in a.parameters()[1::2])  # biases start at zero


def test_glorot_or_he_is_chosen_by_the_activation():
    """He N(0, 2/n_in) for the ReLU family; Glorot U(±√(6/(n_in+n_out))) for sigmoid/tanh/softmax."""
    model = MLP("400-300relu-200sigmoid-100tanh-50softmax", seed=0)
    W1, W2, W3, W4 = (L.W for L in model.linears)
    assert W1.std() == pytest.approx(math.sqrt(2 / 400), rel=0.03)
    assert np.abs(W1).max() > math.sqrt(6 / 700)  # a normal, not Glorot's bounded uniform
    for W in (W2, W3, W4):
        n_out, n_in = W.shape
        r = math.sqrt(6 / (n_in + n_out))
        assert np.abs(W).max() <= r
        assert W.std() == pytest.approx(r / math.sqrt(3), rel=0.05)
    explicit = MLP("400-300relu-2", init="glorot_uniform", seed=0)
    assert explicit.linears[0].W.std() == pytest.approx(math.sqrt(2 / 700), rel=0.05)
    with pytest.raises(SpecError, match="unknown initialisation 'xavier'"):
        MLP("3-2", init="xavier")


# ---- bad arguments are nnmath's own errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"seed": "abc"}, WrongTypeError, "the seed must be a whole number ≥ 0, got 'abc'"),
        ({"seed": 1.5}, WrongTypeError, "got 1.5"),
        ({"seed": -1}, SpecError, "got -1"),
        ({"rng": 3}, WrongTypeError, "numpy.random.Generator"),
        ({"dtype": "int8"}, SpecError, "floating type (float32 or float64), got int8"),
        ({"dtype": "banana"}, WrongTypeError, "floating type"),
    ],
)
def test_bad_construction_arguments_are_named(options, error, fragment) -> None:
    with pytest.raises(error) as caught:
        MLP("3-4relu-2softmax", **options)
    assert fragment in str(caught.value)


def test_a_network_that_cannot_fit_in_memory_is_refused_before_allocating(monkeypatch) -> None:
    monkeypatch.setattr(network_module, "available_memory", lambda: 1_000_000)
    with pytest.raises(SpecError, match=r"its 6e\+05 float32 parameters need 2\.3 MiB"):
        MLP("3-100000relu-2", dtype=np.float32)  # 600,002 parameters: 2.4 MB > 0.8 of 1 MB
    MLP("3-1000relu-2")  # 40 kB: fine
    with pytest.raises(SpecError, match="4.7 ZiB"):  # whatever the machine
        network_module.MLP("3-99999999999999999999relu-3")


@pytest.mark.parametrize(
    ("X", "fragment"),
    [
        ("abc", "X must be an array of shape (S, 2)"),
        ([[1.0, 2.0]], "got list"),
        (None, "got NoneType"),
        (np.array([[1, "a"]], dtype=object), "dtype object"),
        (np.array([["1", "2"]]), "dtype <U1"),
    ],
)
def test_inputs_that_are_not_arrays_of_numbers_are_type_errors(X, fragment) -> None:
    with pytest.raises(WrongTypeError) as caught:
        MLP("2-3relu-2softmax").predict(X)
    assert fragment in str(caught.value) and isinstance(caught.value, TypeError)
