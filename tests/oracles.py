"""The two independent oracles the engine's tests compare against, and the cases they share.

1. Central differences in float64: ``nnmath.gradcheck.numerical_jacobian`` (the project's own checker,
   shared with ``nnmath gradcheck``), plus ``block_diagonal`` to read per-sample Jacobians out of the
   Jacobian of a whole batch.
2. PyTorch autograd (torch==2.13.0) on the same float64 inputs and weights: one table of
   ``torch.nn`` activations (``TORCH_ACTIVATIONS``), one of per-sample losses (``TORCH_LOSSES``), the
   fused pairs (``torch_fused_values``) and a whole network (``torch_network``, ``torch_gradients``).

Both tables are keyed by the engine's registry names; ``missing_oracles`` lets a test fail loudly
when a new activation or loss is registered without an oracle here, instead of skipping it.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nnmath.activations import ACTIVATIONS
from nnmath.gradcheck import numerical_jacobian
from nnmath.layers import Elementwise, Softmax, activation_layer
from nnmath.losses import LOSSES
from nnmath.network import MLP

# ---- the cases every primitive test runs over -------------------------------------------------

# Non-default parameters, on top of each registry entry's default: the brief asks for leaky ReLU with
# a slope other than 0.01 and ELU with α ≠ 1 (where ELU has a kink at 0).
EXTRA_PARAMETERS: dict[str, tuple[float, ...]] = {"leaky_relu": (0.2,), "elu": (0.5, 2.0)}


@dataclass(frozen=True)
class ActivationCase:
    """One activation layer to test: a registry name (or "softmax") and its optional parameter."""

    name: str
    parameter: float | None = None

    @property
    def id(self) -> str:
        return self.name if self.parameter is None else f"{self.name}({self.parameter:g})"

    def layer(self) -> Elementwise | Softmax:
        return activation_layer(self.name, self.parameter)

    @property
    def piecewise(self) -> bool:
        """True where h is defined piecewise at 0, so finite differences must keep away from 0.

        ELU with α = 1 is C¹ but not C² at 0: its central difference there is off by O(ε).
        """
        layer = self.layer()
        return isinstance(layer, Elementwise) and (layer.activation.kinked or self.name == "elu")


def activation_cases(*, with_softmax: bool = True) -> list[ActivationCase]:
    """Every registered activation (default parameter), the extra parameters, and softmax."""
    cases = [ActivationCase(name) for name in ACTIVATIONS]
    cases += [ActivationCase(n, p) for n, ps in EXTRA_PARAMETERS.items() for p in ps]
    if with_softmax:
        cases.append(ActivationCase("softmax"))
    return cases


ACTIVATION_CASES = activation_cases()
ELEMENTWISE_CASES = activation_cases(with_softmax=False)


def case_params(cases: list[ActivationCase]) -> list[Any]:
    """pytest.param list with readable ids such as ``leaky_relu(0.2)``."""
    import pytest

    return [pytest.param(case, id=case.id) for case in cases]


# ---- numerics helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def strict_numerics() -> Iterator[None]:
    """Overflow, invalid operations (NaN) and division by zero raise; so does any warning.

    Underflow to 0 (e^{−1000}) is the correct answer, not an error, so it stays allowed.
    """
    with (
        np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("error")
        yield


def block_diagonal(J_full: np.ndarray, S: int, n_out: int, n_in: int) -> tuple[np.ndarray, float]:
    """Per-sample blocks of a batch Jacobian ∂vec(Y)/∂vec(X) (row-major vecs), and the largest
    entry outside them (0 when samples do not interact)."""
    J4 = J_full.reshape(S, n_out, S, n_in)
    blocks = np.stack([J4[s, :, s, :] for s in range(S)])
    off = J4.copy()
    for s in range(S):
        off[s, :, s, :] = 0.0
    return blocks, float(np.max(np.abs(off), initial=0.0))


def batch_jacobian(f: Callable[[np.ndarray], np.ndarray], X: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of vec(f(X)) with respect to vec(X), both row-major."""
    return numerical_jacobian(f, np.array(X, dtype=np.float64))


def random_projection_check(
    f: Callable[[np.ndarray], np.ndarray], X: np.ndarray, dX: np.ndarray, G: np.ndarray
) -> tuple[float, float]:
    """HIPS/autograd's check: ⟨vjp(G), U⟩ against the directional derivative ⟨G, J U⟩ along a random U.

    Returns (analytic, numeric); the directional derivative is a central difference of ⟨G, f(X)⟩.
    """
    U = np.random.default_rng(12345).normal(size=X.shape)
    eps = 1e-6
    plus = float(np.sum(G * f(X + eps * U)))
    minus = float(np.sum(G * f(X - eps * U)))
    return float(np.sum(dX * U)), (plus - minus) / (2 * eps)


# ---- PyTorch oracle -----------------------------------------------------------------------------

# name → (parameter or None) → torch module; torch's own defaults where the parameter is None.
TORCH_ACTIVATIONS: dict[str, Callable[[float | None], nn.Module]] = {
    "identity": lambda p: nn.Identity(),
    "sigmoid": lambda p: nn.Sigmoid(),
    "tanh": lambda p: nn.Tanh(),
    "relu": lambda p: nn.ReLU(),
    "leaky_relu": lambda p: nn.LeakyReLU() if p is None else nn.LeakyReLU(negative_slope=p),
    "elu": lambda p: nn.ELU() if p is None else nn.ELU(alpha=p),
    "softplus": lambda p: nn.Softplus(),
    "gelu": lambda p: nn.GELU(approximate="tanh"),
    "softmax": lambda p: nn.Softmax(dim=1),
}


def _log_base(base: float | None) -> float:
    return 1.0 if base is None else math.log(base)


# loss name → (A, T, log base or None) → per-sample losses (S,), written with torch's own functions.
TORCH_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, float | None], torch.Tensor]] = {
    "squared-error": lambda A, T, b: 0.5 * F.mse_loss(A, T, reduction="none").sum(dim=1),
    "mse": lambda A, T, b: F.mse_loss(A, T, reduction="none").mean(dim=1),
    "cross-entropy": lambda A, T, b: -(T * torch.log(A)).sum(dim=1) / _log_base(b),
    "binary-cross-entropy": lambda A, T, b: F.binary_cross_entropy(A, T, reduction="none").sum(
        dim=1
    ),
}


def torch_fused_values(output: str, Z: torch.Tensor, T: torch.Tensor, base: float | None = None):
    """Per-sample fused losses on logits: torch's cross_entropy (probability targets) or BCE-with-logits."""
    if output == "softmax":
        return F.cross_entropy(Z, T, reduction="none") / _log_base(base)
    if output == "sigmoid":
        return F.binary_cross_entropy_with_logits(Z, T, reduction="none").sum(dim=1)
    raise ValueError(f"no fused pair for output {output!r}")


def missing_oracles() -> list[str]:
    """Registry entries without a torch oracle here: a new activation or loss must add one."""
    names = [n for n in ACTIVATIONS if n not in TORCH_ACTIVATIONS]
    names += [n for n in LOSSES if n not in TORCH_LOSSES]
    return names


def tensor(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    """A torch tensor sharing dtype with ``array`` (float64 stays float64)."""
    return torch.tensor(np.asarray(array), requires_grad=grad)


def torch_vjp(
    f: Callable[..., torch.Tensor], G: np.ndarray, *arrays: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(f(arrays), [∂⟨G, f⟩/∂array for each array]) by torch autograd."""
    inputs = [tensor(a, grad=True) for a in arrays]
    Y = f(*inputs)
    Y.backward(tensor(G))
    return Y.detach().numpy(), [x.grad.numpy() for x in inputs]


def torch_network(model: MLP) -> nn.Sequential:
    """The same network in torch: nn.Linear with the model's weights, then each activation module."""
    modules: list[nn.Module] = []
    for linear, spec in zip(model.linears, model.spec.layers, strict=True):
        W, b = np.asarray(linear.W), np.asarray(linear.b)
        torch_linear = nn.Linear(linear.n_in, linear.n_out, dtype=torch.from_numpy(W).dtype)
        with torch.no_grad():
            torch_linear.weight.copy_(torch.from_numpy(W))
            torch_linear.bias.copy_(torch.from_numpy(b))
        modules += [torch_linear, TORCH_ACTIVATIONS[spec.activation](spec.parameter)]
    return nn.Sequential(*modules)


def one_hot_targets(T: np.ndarray, n_out: int) -> np.ndarray:
    """Labels (S,) as one-hot rows (or a 0/1 column for a single output); 2-D targets unchanged."""
    T = np.asarray(T)
    if T.ndim == 2:
        return T.astype(np.float64)
    if n_out == 1:
        return T.reshape(-1, 1).astype(np.float64)
    return np.eye(n_out)[T.astype(int)]


@dataclass
class TorchGradients:
    cost: float
    W: list[np.ndarray]
    b: list[np.ndarray]
    X: np.ndarray


def torch_gradients(model: MLP, X: np.ndarray, T: np.ndarray, loss: Any) -> TorchGradients:
    """Cost = mean over the batch of the per-sample loss on the network's output, and its gradients
    with respect to every W, b and X, by torch autograd (the loss on a⁽ᴷ⁾, never a fused shortcut)."""
    net = torch_network(model)
    Xt = tensor(X, grad=True)
    Tt = tensor(one_hot_targets(T, model.n_out).astype(np.asarray(X).dtype))
    values = TORCH_LOSSES[loss.name](net(Xt), Tt, getattr(loss, "base", None))
    cost = values.mean()
    cost.backward()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    return TorchGradients(
        cost=float(cost.detach()),
        W=[m.weight.grad.numpy() for m in linears],
        b=[m.bias.grad.numpy() for m in linears],
        X=Xt.grad.numpy(),
    )


def worst_torch_mismatch(model: MLP, X: np.ndarray, T: np.ndarray, loss: Any) -> float:
    """The largest norm-wise relative error between the engine's gradients and torch's."""
    _, ours = model.loss_and_gradients(X, T, loss)
    theirs = torch_gradients(model, X, T, loss)
    pairs = [
        *zip(ours.W, theirs.W, strict=True),
        *zip(ours.b, theirs.b, strict=True),
        (ours.X, theirs.X),
    ]
    return max(_relative(a, b) for a, b in pairs)


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.linalg.norm(a) + np.linalg.norm(b))
    return 0.0 if scale == 0.0 else float(np.linalg.norm(a - b)) / scale


# ---- inputs that suit each loss ---------------------------------------------------------------


def loss_inputs(
    name: str, rng: np.random.Generator, S: int, C: int
) -> tuple[np.ndarray, np.ndarray]:
    """(A, T) in the domain of the loss called ``name``: probabilities for the cross-entropies
    (kept away from 0 and 1 so that central differences stay accurate), any reals otherwise.
    Cross-entropy targets are random non-negative rows that need not sum to one."""
    if name == "cross-entropy":
        return rng.uniform(0.05, 1.0, size=(S, C)), rng.uniform(0.0, 1.0, size=(S, C))
    if name == "binary-cross-entropy":
        return rng.uniform(0.05, 0.95, size=(S, C)), rng.uniform(0.0, 1.0, size=(S, C))
    return rng.normal(size=(S, C)), rng.normal(size=(S, C))


# ---- Hypothesis strategies ----------------------------------------------------------------------


def batch_pairs(bound: float = 5.0, max_samples: int = 4, max_features: int = 5):
    """(X, G): a batch X of random shape S×n with entries in [−bound, bound] and a cotangent G ~ X."""
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    @st.composite
    def draw_pair(draw):
        S = draw(st.integers(1, max_samples))
        n = draw(st.integers(1, max_features))
        X = draw(arrays(np.float64, (S, n), elements=st.floats(-bound, bound)))
        G = draw(arrays(np.float64, (S, n), elements=st.floats(-2.0, 2.0)))
        return X, G

    return draw_pair()


def away_from_kink(X: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """X with every entry in [−margin, margin) moved to [margin, 3·margin): no kink within ε = 1e-5."""
    X = np.array(X, dtype=np.float64)
    X[np.abs(X) < margin] += 2 * margin
    return X
