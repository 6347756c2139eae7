"""PyTorch round trip: to_torch gives a module that computes the same outputs and gradients (torch
autograd against the engine's hand-derived backward), from_torch reads it back exactly, and modules
nnmath cannot represent are refused with an error naming them.

Parametrised over the activation registry (plus non-default parameters), so a new activation must
get a torch module here the moment it is registered.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from oracles import ACTIVATION_CASES, TORCH_LOSSES, ActivationCase, case_params, one_hot_targets
from torch import nn

from nnmath.activations import elu, leaky_relu
from nnmath.errors import SpecError
from nnmath.gradcheck import default_loss_name
from nnmath.interop import from_torch, to_torch
from nnmath.interop.pytorch import DEFAULT_ALPHA, DEFAULT_SLOPE
from nnmath.losses import get_loss
from nnmath.network import MLP

# (rtol, atol) per dtype: float64 agrees to round-off; torch's Softplus switches to z past z = 20,
# which never happens for these inputs.
TOLERANCES = {np.float64: (1e-10, 1e-12), np.float32: (2e-5, 2e-6)}
DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]


def spec_for(case: ActivationCase) -> str:
    """A two-layer spec using the activation in the hidden layer and at the output."""
    return f"4-6{case.id}-3{case.id}"


def problem(model: MLP, dtype: type, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(9, model.n_in)).astype(dtype)
    if model.output == "softmax":
        T = rng.integers(0, model.n_out, size=9)
    elif model.output == "sigmoid":
        T = rng.integers(0, 2, size=(9, model.n_out)).astype(dtype)
    else:
        T = rng.normal(size=(9, model.n_out)).astype(dtype)
    return X, T


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", case_params(ACTIVATION_CASES))
def test_to_torch_outputs_and_gradients_match(case: ActivationCase, dtype: type) -> None:
    model = MLP(spec_for(case), seed=3, dtype=dtype)
    X, T = problem(model, dtype)
    net = to_torch(model)
    rtol, atol = TOLERANCES[dtype]

    assert all(p.dtype == getattr(torch, np.dtype(dtype).name) for p in net.parameters())
    with torch.no_grad():
        assert_allclose(net(torch.from_numpy(X)).numpy(), model.predict(X), rtol=rtol, atol=atol)

    # Gradients: torch autograd through the module against the engine's backward pass.
    loss = get_loss(default_loss_name(model.output))
    cost, grads = model.loss_and_gradients(X, T, loss)
    Xt = torch.from_numpy(X).requires_grad_(True)
    Tt = torch.from_numpy(one_hot_targets(T, model.n_out).astype(dtype))
    torch_cost = TORCH_LOSSES[loss.name](net(Xt), Tt, None).mean()
    torch_cost.backward()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert cost == pytest.approx(float(torch_cost.detach()), rel=rtol, abs=atol)
    for ours, module in zip(grads.W, linears, strict=True):
        assert_allclose(ours, module.weight.grad.numpy(), rtol=rtol * 10, atol=atol * 10)
    for ours, module in zip(grads.b, linears, strict=True):
        assert_allclose(ours, module.bias.grad.numpy(), rtol=rtol * 10, atol=atol * 10)
    assert_allclose(grads.X, Xt.grad.numpy(), rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", case_params(ACTIVATION_CASES))
def test_round_trip_is_exact(case: ActivationCase, dtype: type) -> None:
    model = MLP(f"3-5{case.id}-4tanh-2{case.id}", seed=1, dtype=dtype)
    back = from_torch(to_torch(model))
    assert str(back.spec) == str(model.spec)
    assert back.dtype == model.dtype
    for ours, theirs in zip(model.parameters(), back.parameters(), strict=True):
        assert_array_equal(ours, theirs)
    # the copy is independent of the module it came from
    assert all(p is not q for p, q in zip(model.parameters(), back.parameters(), strict=True))


def test_module_structure() -> None:
    net = to_torch(MLP("3-5leaky_relu(0.2)-4elu(0.5)-2softmax"))
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "LeakyReLU", "Linear", "ELU", "Linear", "Softmax"]
    assert net[1].negative_slope == 0.2 and net[3].alpha == 0.5 and net[5].dim == 1
    assert tuple(net[0].weight.shape) == (5, 3)  # weight is W: (out, in), the same convention


def test_default_parameters_agree_with_the_activation_table() -> None:
    assert leaky_relu().parameter == DEFAULT_SLOPE == nn.LeakyReLU().negative_slope
    assert elu().parameter == DEFAULT_ALPHA == nn.ELU().alpha


def test_from_torch_reads_a_hand_written_module() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Sequential(nn.Linear(3, 4), nn.Tanh()),
        nn.Linear(4, 5, bias=False),  # no activation: identity; no bias: b = 0
        nn.Linear(5, 2),
        nn.Identity(),
    ).double()
    model = from_torch(net)
    assert str(model.spec) == "3-4tanh-5-2"
    assert_array_equal(model.linears[1].b, np.zeros(5))
    X = np.random.default_rng(0).normal(size=(6, 3))
    with torch.no_grad():
        assert_allclose(model.predict(X), net(torch.from_numpy(X)).numpy(), rtol=1e-12)


def test_from_torch_dtype_option() -> None:
    model = from_torch(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), dtype=np.float64)
    assert model.dtype == np.float64  # torch's default float32 parameters, upcast on request


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5)), "Dropout"),
        (nn.Sequential(nn.Linear(3, 4), nn.GELU()), "tanh approximation"),
        (nn.Sequential(nn.Linear(3, 4), nn.Softmax(dim=0)), "dim=1"),
        (nn.Sequential(nn.Linear(3, 4), nn.Softplus(beta=2.0)), "beta=1"),
        (nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh()), "follows another activation"),
        (nn.Sequential(nn.ReLU(), nn.Linear(3, 4)), "before the first Linear"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "takes 5 inputs"),
        (nn.Sequential(nn.ReLU()), "before the first Linear"),
        (nn.Conv1d(1, 1, 3), "Conv1d"),
    ],
)
def test_unsupported_modules_are_named(module: nn.Module, message: str) -> None:
    with pytest.raises(SpecError, match=message) as error:
        from_torch(module)
    if "not supported" in str(error.value):
        assert "Linear, Identity, ReLU" in str(error.value)  # the supported list is given


# ---- batch norm and dropout ------------------------------------------------------------------

MODES_SPEC = "4-6relu+bn+dropout(0.3)-5tanh+bn-3softmax"


def trained_statistics(model: MLP, seed: int = 1) -> MLP:
    """γ, β away from 1, 0 and running statistics away from 0, 1, as a trained model has them."""
    rng = np.random.default_rng(seed)
    for norm in model.batch_norms:
        if norm is not None:
            norm.gamma = rng.uniform(0.5, 1.5, norm.n).astype(model.dtype)
            norm.beta = rng.normal(0, 0.5, norm.n).astype(model.dtype)
            norm.running_mean = rng.normal(0, 1, norm.n).astype(model.dtype)
            norm.running_var = rng.uniform(0.5, 2.0, norm.n).astype(model.dtype)
    return model


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_and_dropout_become_batchnorm1d_and_dropout(dtype: type) -> None:
    model = trained_statistics(MLP(MODES_SPEC, seed=2, dtype=dtype))
    net = to_torch(model).eval()
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d", "Tanh",
                     "Linear", "Softmax"]  # fmt: skip
    assert net[3].p == 0.3 and net[1].momentum == 0.1 and net[1].eps == 1e-5
    X, _ = problem(model, dtype)
    rtol, atol = TOLERANCES[dtype]
    with torch.no_grad():  # evaluation: running statistics, dropout the identity, in both
        assert_allclose(net(torch.from_numpy(X)).numpy(), model.predict(X), rtol=rtol, atol=atol)
    back = from_torch(net)
    assert str(back.spec) == MODES_SPEC
    for name, array in model.named_arrays().items():
        assert_array_equal(back.named_arrays()[name], array, err_msg=name)


def test_training_mode_matches_batchnorm1d_outputs_gradients_and_running_statistics() -> None:
    """Training mode: the batch's statistics, the same gradients as autograd, and the same update
    of the running statistics (momentum 0.1, unbiased variance) after the step."""
    model = trained_statistics(MLP("4-6relu+bn-5tanh+bn-3softmax", seed=4))
    X, T = problem(model, np.float64)
    net = to_torch(model).train()
    Xt = torch.from_numpy(X)
    out = net(Xt)  # updates torch's running statistics once
    loss = nn.functional.nll_loss(torch.log(out), torch.from_numpy(T))
    loss.backward()
    cost, grads = model.loss_and_gradients(X, T, get_loss("cross-entropy"))  # updates ours once
    assert cost == pytest.approx(loss.item(), rel=1e-12)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    norms = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    for ours, theirs in zip(grads.W, linears, strict=True):
        assert_allclose(ours, theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-13)
    for ours, theirs in zip(grads.gamma, norms, strict=True):
        assert_allclose(ours, theirs.weight.grad.numpy(), rtol=1e-9, atol=1e-13)
    for ours, theirs in zip([n for n in model.batch_norms if n is not None], norms, strict=True):
        assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-13, atol=1e-15)
        assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-13, atol=1e-15)


def test_dropout_in_training_mode_keeps_the_expectation() -> None:
    """Both scale the kept units by 1/(1 − p): on a large batch the means agree."""
    model = MLP("50-50identity+dropout(0.4)-1", seed=0)
    net = to_torch(model).train()
    X = np.ones((4000, 50))
    ours, _ = model.forward(X, stop=3, training=True, rng=np.random.default_rng(0))
    torch.manual_seed(0)
    theirs = net[:3](torch.from_numpy(X)).detach().numpy()
    linear = X @ model.linears[0].W.T + model.linears[0].b
    assert np.mean(ours == 0) == pytest.approx(0.4, abs=0.01)
    assert np.mean(theirs == 0) == pytest.approx(0.4, abs=0.01)
    assert_allclose(ours[ours != 0], (linear / 0.6)[ours != 0], rtol=1e-12)
    assert_allclose(theirs[theirs != 0], (linear / 0.6)[theirs != 0], rtol=1e-12)


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ([nn.Linear(3, 4), nn.BatchNorm1d(4, momentum=None), nn.ReLU()], "momentum=None"),
        ([nn.Linear(3, 4), nn.BatchNorm1d(4, eps=1e-3)], "eps=0.001"),
        ([nn.Linear(3, 4), nn.BatchNorm1d(4, affine=False)], "affine=False"),
        ([nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4)], "between the Linear and the activation"),
        ([nn.Linear(3, 4), nn.Dropout(0.2), nn.ReLU()], "follows a Dropout"),
        ([nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.2)], "ends with Dropout"),
    ],
)
def test_batch_norm_and_dropout_nnmath_cannot_compute_are_refused(modules, message) -> None:
    with pytest.raises(SpecError, match=message):
        from_torch(nn.Sequential(*modules))
