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
