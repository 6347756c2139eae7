"""Networks with batch norm and dropout: the δ recursion through them against torch (BatchNorm1d in
train and eval mode, dropout with the same masks) and against the gradient checker, the modes, the
parameters and state that copies, conversions and model files carry, and the paths that refuse them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from oracles import (
    TORCH_ACTIVATIONS,
    TORCH_LOSSES,
    batch_jacobian,
    block_diagonal,
    one_hot_targets,
    tensor,
)
from torch import nn

from nnmath import gradcheck
from nnmath.backend import convert
from nnmath.dropout import Dropout
from nnmath.errors import ModelFileError, ShapeError, SpecError
from nnmath.fast import FastStep
from nnmath.gradcheck import check_gradients
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel, load_model, save_model
from nnmath.network import MLP
from nnmath.normalization import EPS, MOMENTUM, BatchNorm

NETWORKS = [
    ("4-6relu+bn+dropout(0.3)-5tanh+bn-3softmax", "cross-entropy"),
    ("3-5tanh+dropout(0.5)-4sigmoid+bn-2sigmoid", "binary-cross-entropy"),
    ("3-6gelu+bn-2+bn", "mse"),
    ("5-7elu+bn+dropout(0.9)-4softplus+dropout(0.1)-3", "squared-error"),
]
S = 9


def problem(spec: str, loss_name: str, seed: int = 0):
    """A model with random biases, γ, β and running statistics, inputs, and suitable targets."""
    rng = np.random.default_rng(seed)
    model = MLP(spec, seed=seed)
    for linear in model.linears:
        linear.b[...] = rng.normal(scale=0.5, size=linear.b.shape)
    for norm in model.batch_norms:
        if norm is not None:
            norm.gamma[...] = rng.uniform(0.5, 1.5, size=norm.n)
            norm.beta[...] = rng.normal(scale=0.3, size=norm.n)
            norm.running_mean = rng.normal(scale=0.3, size=norm.n)
            norm.running_var = rng.uniform(0.5, 2.0, size=norm.n)
    X = rng.normal(size=(S, model.n_in))
    if loss_name == "cross-entropy":
        T = rng.integers(0, model.n_out, size=S)
    elif loss_name == "binary-cross-entropy":
        T = rng.integers(0, 2, size=(S, model.n_out))
    else:
        T = rng.normal(size=(S, model.n_out))
    return model, X, T


class FixedMask(nn.Module):
    """torch's half of "dropout with the same mask": Y = X ⊙ D with the engine's scaled mask D."""

    def __init__(self, D: np.ndarray) -> None:
        super().__init__()
        self.D = tensor(D)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return X * self.D


def torch_network(model: MLP, masks: list[np.ndarray], training: bool) -> nn.Sequential:
    """The same network in torch: Linear, BatchNorm1d, the activation, the engine's dropout mask."""
    modules: list[nn.Module] = []
    masks = list(masks)
    groups = zip(model.linears, model.batch_norms, model.spec.layers, model.dropouts, strict=True)
    for linear, norm, spec, dropout in groups:
        torch_linear = nn.Linear(linear.n_in, linear.n_out, dtype=torch.float64)
        with torch.no_grad():
            torch_linear.weight.copy_(tensor(linear.W))
            torch_linear.bias.copy_(tensor(linear.b))
        modules.append(torch_linear)
        if norm is not None:
            bn = nn.BatchNorm1d(norm.n, eps=EPS, momentum=MOMENTUM, dtype=torch.float64)
            with torch.no_grad():
                for name, value in {**norm.params, **norm.statistics}.items():
                    getattr(bn, {"gamma": "weight", "beta": "bias"}.get(name, name)).copy_(
                        tensor(value)
                    )
            modules.append(bn)
        modules.append(TORCH_ACTIVATIONS[spec.activation](spec.parameter))
        if dropout is not None and training:
            modules.append(FixedMask(masks.pop(0)))
    return nn.Sequential(*modules).train(training)


def engine_masks(model: MLP, X: np.ndarray, seed: int) -> list[np.ndarray]:
    """The scaled masks a training pass with rng = default_rng(seed) draws, in layer order."""
    copy = model.copy()
    _, caches = copy.forward(X, training=True, rng=np.random.default_rng(seed))
    layers = copy.layers
    return [
        c.D
        for layer, c in zip(layers, caches, strict=True)
        if isinstance(layer, Dropout) and c.D is not None
    ]


def torch_results(net: nn.Sequential, X, T, loss, n_out: int):
    X_t = tensor(X, grad=True)
    T_t = tensor(one_hot_targets(T, n_out))
    cost = TORCH_LOSSES[loss.name](net(X_t), T_t, getattr(loss, "base", None)).mean()
    cost.backward()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    norms = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    return float(cost.detach()), linears, norms, X_t.grad.numpy()


def assert_gradients_match(ours_cost, grads, theirs, rtol=1e-10):
    cost, linears, norms, dX = theirs
    assert ours_cost == pytest.approx(cost, rel=rtol)
    for ours, module in zip(grads.W, linears, strict=True):
        assert_allclose(ours, module.weight.grad.numpy(), rtol=rtol, atol=1e-13)
    for ours, module in zip(grads.b, linears, strict=True):
        assert_allclose(ours, module.bias.grad.numpy(), rtol=rtol, atol=1e-13)
    for ours, module in zip(grads.gamma, norms, strict=True):
        assert_allclose(ours, module.weight.grad.numpy(), rtol=rtol, atol=1e-13)
    for ours, module in zip(grads.beta, norms, strict=True):
        assert_allclose(ours, module.bias.grad.numpy(), rtol=rtol, atol=1e-13)
    assert_allclose(grads.X, dX, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize(("spec", "loss_name"), NETWORKS)
def test_training_mode_gradients_and_statistics_match_torch(spec, loss_name):
    model, X, T = problem(spec, loss_name)
    loss = get_loss(loss_name)
    net = torch_network(model, engine_masks(model, X, seed=4), training=True)
    cost, grads = model.loss_and_gradients(X, T, loss, rng=np.random.default_rng(4))
    theirs = torch_results(net, X, T, loss, model.n_out)
    assert_gradients_match(cost, grads, theirs)
    for norm, module in zip(
        [n for n in model.batch_norms if n is not None], theirs[2], strict=True
    ):
        assert_allclose(norm.running_mean, module.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        assert_allclose(norm.running_var, module.running_var.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("spec", "loss_name"), NETWORKS)
def test_evaluation_mode_matches_torch_eval(spec, loss_name):
    model, X, T = problem(spec, loss_name, seed=1)
    loss = get_loss(loss_name)
    net = torch_network(model, [], training=False)
    assert_allclose(model.predict(X), net(tensor(X)).detach().numpy(), rtol=1e-12, atol=1e-14)
    cost, grads = model.loss_and_gradients(X, T, loss, training=False)
    assert cost == pytest.approx(model.cost(X, T, loss), rel=1e-14)
    assert_gradients_match(cost, grads, torch_results(net, X, T, loss, model.n_out))


@pytest.mark.parametrize(("spec", "loss_name"), NETWORKS)
@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
def test_the_gradient_checker_passes(spec, loss_name, training):
    model, X, T = problem(spec, loss_name, seed=2)
    report = check_gradients(model, X, T, get_loss(loss_name), training=training)
    assert report.passed, report.format()
    names = [c.name for c in report.checks]
    assert ("gamma1" in names) == (model.batch_norms[0] is not None)
    assert report.mode.startswith("training" if training else "evaluation")


def test_the_gradient_checker_catches_a_broken_batch_norm_or_dropout(monkeypatch):
    model, X, T = problem(NETWORKS[0][0], "cross-entropy", seed=3)
    loss = get_loss("cross-entropy")
    original = BatchNorm.vjp

    def no_mean_term(self, cache, dY):  # the classic mistake: forget that μ depends on x
        dX, grads = original(self, cache, dY)
        return dX + (self.gamma * cache.inv_std) * grads["beta"] / dY.shape[0], grads

    monkeypatch.setattr(BatchNorm, "vjp", no_mean_term)
    failing = [c.name for c in check_gradients(model, X, T, loss).checks if not c.passed]
    assert "X" in failing and "W1" in failing
    monkeypatch.undo()
    from nnmath.dropout import Dropout

    monkeypatch.setattr(Dropout, "vjp", lambda self, cache, dY: (dY, {}))  # the mask forgotten
    failing = [c.name for c in check_gradients(model, X, T, loss).checks if not c.passed]
    assert "W1" in failing


def test_check_fixes_the_masks_and_uses_training_mode():
    model, X, T = problem("4-6relu+dropout(0.5)-3softmax", "cross-entropy")
    loss = get_loss("cross-entropy")
    report = check_gradients(model, X, T, loss, seed=9)
    assert report.passed and "dropout masks from seed 9" in report.format()
    # the check's gradients are those of one training pass with that seed
    _, grads = model.copy().loss_and_gradients(X, T, loss, rng=np.random.default_rng(9))
    _, other = model.copy().loss_and_gradients(X, T, loss, rng=np.random.default_rng(10))
    assert not np.allclose(grads.W[0], other.W[0])
    assert gradcheck.check_gradients(model, X, T, loss, seed=10).passed


# ---- modes --------------------------------------------------------------------------------------


def test_modes_and_the_running_statistics():
    model, X, T = problem("4-6relu+bn+dropout(0.3)-3softmax", "cross-entropy")
    norm = model.batch_norms[0]
    before, before_var = norm.running_mean.copy(), norm.running_var.copy()
    first = model.predict(X)
    assert_array_equal(model.predict(X), first)  # evaluation: deterministic, no state changed
    assert_array_equal(norm.running_mean, before)
    model.cost(X, T, get_loss("cross-entropy"))
    assert_array_equal(norm.running_mean, before)
    Y, _ = model.forward(X, training=True, rng=np.random.default_rng(0))
    assert not np.allclose(Y, first)
    Z = model.linears[0].forward(X)[0]
    assert_allclose(norm.running_mean, 0.9 * before + 0.1 * Z.mean(axis=0), rtol=1e-12)
    assert_allclose(norm.running_var, 0.9 * before_var + 0.1 * Z.var(axis=0, ddof=1), rtol=1e-12)
    with pytest.raises(SpecError, match="pass rng=np.random.default_rng"):
        model.loss_and_gradients(X, T, get_loss("cross-entropy"))
    with pytest.raises(SpecError, match="pass rng"):
        model.forward(X, training=True)


def test_a_plain_network_is_the_same_in_both_modes():
    model, X, T = problem("3-5tanh-4relu-2softmax", "cross-entropy")
    loss = get_loss("cross-entropy")
    a, ga = model.loss_and_gradients(X, T, loss)
    b, gb = model.loss_and_gradients(X, T, loss, training=False)
    assert a == b and not model.mode_dependent
    for x, y in zip(ga.flat(), gb.flat(), strict=True):
        assert_array_equal(x, y)


def test_parameters_names_and_flat_gradients_line_up():
    model, X, T = problem(NETWORKS[0][0], "cross-entropy")
    names = model.parameter_names()
    assert names == ["W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"]
    _, grads = model.loss_and_gradients(
        X, T, get_loss("cross-entropy"), rng=np.random.default_rng(0)
    )
    for name, param, grad in zip(names, model.parameters(), grads.flat(), strict=True):
        assert param.shape == grad.shape, name
    assert model.parameters()[6] is model.batch_norms[0].gamma
    # batch norm makes the bias before it redundant: its gradient is zero in training mode
    assert_allclose(grads.b[0], 0.0, atol=1e-15)


def test_summary_shows_the_steps_of_each_layer():
    text = MLP(NETWORKS[0][0]).summary()
    assert "bn → relu → dropout(0.3)" in text and "bn → tanh" in text
    assert "105 parameters" in text  # (6·4 + 6 + 2·6) + (5·6 + 5 + 2·5) + (3·5 + 3)
    assert MLP(NETWORKS[0][0]).parameter_count == 105


# ---- copies, conversions, Jacobians, files --------------------------------------------------------


def test_copies_and_conversions_carry_the_batch_norm_state():
    model, X, _ = problem(NETWORKS[0][0], "cross-entropy")
    shared = MLP.from_arrays(model.spec, model.named_arrays())  # takes the arrays, as from_weights
    assert shared.batch_norms[0].running_var is model.batch_norms[0].running_var
    for other in (model.copy(), model.astype(np.float32), shared):
        assert_allclose(
            other.predict(X.astype(other.dtype)), model.predict(X), rtol=1e-6, atol=1e-6
        )
    copy = model.copy()
    copy.batch_norms[0].running_mean += 1.0
    assert not np.allclose(copy.predict(X), model.predict(X))
    named = model.named_arrays()
    del named["running_var2"]
    with pytest.raises(ShapeError, match="running_var2"):
        MLP.from_arrays(model.spec, named)


def test_the_array_api_path_gives_the_same_gradients():
    model, X, T = problem(NETWORKS[0][0], "cross-entropy")
    loss = get_loss("cross-entropy")
    _, ours = model.copy().loss_and_gradients(X, T, loss, rng=np.random.default_rng(2))
    moved = convert(model, torch)
    _, theirs = moved.loss_and_gradients(
        torch.asarray(X), torch.asarray(T), loss, rng=np.random.default_rng(2)
    )
    for a, b in zip(ours.flat(), theirs.flat(), strict=True):
        assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-14)
    assert check_gradients(moved, X, T, loss).passed


def test_per_sample_jacobians_are_those_of_evaluation_mode():
    model, X, _ = problem("3-5tanh+bn+dropout(0.4)-4sigmoid+bn-2", "mse")
    J, P = model.jacobians(X)
    blocks, off = block_diagonal(batch_jacobian(model.predict, X), S, model.n_out, model.n_in)
    assert_allclose(J, blocks, rtol=1e-6, atol=1e-9)
    assert off < 1e-9
    assert sorted(P[0]) == ["W", "b", "beta", "gamma"]
    G = np.zeros((S, model.n_out))
    G[2, 1] = 1.0
    _, caches = model.forward(X)
    grads = model.backward(caches, G)
    assert_allclose(grads.gamma[0], P[0]["gamma"][2, 1], rtol=1e-12, atol=1e-15)
    assert_allclose(grads.beta[1], P[1]["beta"][2, 1], rtol=1e-12, atol=1e-15)


def test_a_model_file_keeps_gamma_beta_and_the_running_statistics(tmp_path):
    model, X, _ = problem(NETWORKS[0][0], "cross-entropy")
    path = save_model(
        TrainedModel(network=model, loss=get_loss("cross-entropy")), tmp_path / "m.nnm"
    )
    loaded = load_model(path).network
    assert str(loaded.spec) == str(model.spec)
    for name, array in model.named_arrays().items():
        assert_array_equal(loaded.named_arrays()[name], array, err_msg=name)
    assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_model_file_with_a_wrong_running_statistic_is_refused(tmp_path):
    model, _, _ = problem("3-4relu+bn-2", "mse")
    model.batch_norms[0].running_var = np.ones(3)  # the file will hold a (3,) array for n = 4
    path = save_model(
        TrainedModel(network=model, loss=get_loss("mse"), task="regression"), tmp_path / "m.nnm"
    )
    with pytest.raises(ModelFileError, match="running_var of shape"):
        load_model(path)


def test_the_fast_step_refuses_batch_norm_and_dropout():
    model = MLP("4-6relu+bn-3softmax", dtype=np.float32)
    with pytest.raises(SpecError, match="batch norm or dropout"):
        FastStep(model, get_loss("cross-entropy"), 8)


def test_a_hand_written_training_loop_learns_with_batch_norm_and_dropout():
    """What a training loop passes: training=True and its generator for each step; predict then
    runs in evaluation mode with the running statistics the steps collected."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2)) * [3.0, 0.3] + [5.0, -2.0]  # badly scaled on purpose
    y = ((X[:, 0] - 5.0) / 3.0 + (X[:, 1] + 2.0) / 0.3 > 0).astype(int)
    model = MLP("2-16relu+bn+dropout(0.2)-2softmax", seed=0)
    loss = get_loss("cross-entropy")
    for _ in range(30):
        for batch in np.array_split(rng.permutation(300), 10):
            _, grads = model.loss_and_gradients(X[batch], y[batch], loss, rng=rng)
            for param, grad in zip(model.parameters(), grads.flat(), strict=True):
                param -= 0.1 * grad
    accuracy = np.mean(model.predict(X).argmax(axis=1) == y)
    assert accuracy > 0.95


def test_array_api_strict_runs_batch_norm_dropout_and_their_jacobians():
    import array_api_strict as xps

    model, X, T = problem(NETWORKS[0][0], "cross-entropy")
    loss = get_loss("cross-entropy")
    _, ours = model.copy().loss_and_gradients(X, T, loss, rng=np.random.default_rng(5))
    strict = convert(model, xps)
    _, theirs = strict.loss_and_gradients(
        xps.asarray(X), xps.asarray(one_hot_targets(T, 3)), loss, rng=np.random.default_rng(5)
    )
    for a, b in zip(ours.flat(), theirs.flat(), strict=True):
        assert_allclose(np.asarray(b), a, rtol=1e-12, atol=1e-14)
    J, P = model.jacobians(X)
    # the training pass above moved `strict`'s running statistics: convert the model afresh
    J_strict, P_strict = convert(model, xps).jacobians(xps.asarray(X))
    assert_allclose(np.asarray(J_strict), J, rtol=1e-12, atol=1e-14)
    assert_allclose(np.asarray(P_strict[1]["gamma"]), P[1]["gamma"], rtol=1e-12, atol=1e-14)
