"""PyTorch round trip: an MLP as a ``torch.nn.Sequential`` and back.

The conventions already agree: ``torch.nn.Linear`` stores ``weight`` with shape (out, in) and
computes Y = X Wᵀ + b, exactly nnmath's Linear, so W and b are copied as they are. Each activation
maps to one module:

    identity   ↔ Identity            relu       ↔ ReLU            leaky_relu(s) ↔ LeakyReLU(s)
    elu(α)     ↔ ELU(α)              sigmoid    ↔ Sigmoid         tanh          ↔ Tanh
    softplus   ↔ Softplus()          gelu       ↔ GELU('tanh')    softmax       ↔ Softmax(dim=1)

``to_torch`` writes Linear, activation, Linear, activation, …; ``from_torch`` reads any
``Sequential`` of Linear layers each followed by at most one supported activation (a Linear followed
directly by another Linear, or ending the module, has the identity activation).

An activation registered with ``nnmath.activations.register_activation`` becomes an
:class:`ExpressionActivation`, which computes its expression with torch operations (and reads back
as the same activation, registering it where it is not yet). Batch norm and dropout are not written
yet: ``to_torch`` refuses a network that has them.

Two near-equalities to know: nnmath's gelu is the tanh approximation (GELU(approximate='tanh'), not
the exact erf form), and torch's Softplus returns z itself where z > 20 (an error below 2.1e-9).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnmath.activations import register_activation, registered_expressions
from nnmath.backend import dtype_name, to_numpy
from nnmath.errors import SpecError
from nnmath.network import MLP
from nnmath.spec import LayerSpec, NetworkSpec

try:
    import torch
    from torch import nn
except ImportError as error:  # pragma: no cover - torch is a test dependency
    raise ImportError(
        "nnmath.interop.pytorch needs PyTorch; install it with 'pip install torch'"
    ) from error

SUPPORTED = (
    "Linear, Identity, ReLU, LeakyReLU, ELU, Sigmoid, Tanh, Softplus (beta=1), "
    "GELU(approximate='tanh'), Softmax(dim=1)"
)

# torch's Softplus(beta=1, threshold=t) returns z where z > t; from t = 20 on the difference from
# ln(1 + eᶻ) is below ln(1 + e⁻²⁰) ≈ 2.1e-9, which we accept as equal.
SOFTPLUS_MIN_THRESHOLD = 20.0
DEFAULT_SLOPE = 0.01  # leaky_relu's slope and ELU's α when a spec names none (as in torch)
DEFAULT_ALPHA = 1.0


class ExpressionActivation(nn.Module):
    """A registered activation h(z) = ``expression``, computed entry by entry with torch operations
    (``nnmath.expressions.evaluate``), so autograd differentiates the same expression."""

    def __init__(self, name: str, expression: str) -> None:
        super().__init__()
        from nnmath.expressions import parse

        self.name, self.expression, self._function = name, expression, parse(expression)

    def forward(self, Z: torch.Tensor) -> torch.Tensor:
        from nnmath.expressions import evaluate

        return evaluate(self._function, Z)

    def extra_repr(self) -> str:
        return f"{self.name!r}, {self.expression!r}"


def _activation_module(name: str, parameter: float | None) -> nn.Module:
    """The torch module for one nnmath activation."""
    registered = registered_expressions([name])
    if registered:
        return ExpressionActivation(name, registered[name])
    if name == "leaky_relu":
        return nn.LeakyReLU(DEFAULT_SLOPE if parameter is None else parameter)
    if name == "elu":
        return nn.ELU(DEFAULT_ALPHA if parameter is None else parameter)
    simple = {
        "identity": nn.Identity,
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "softplus": nn.Softplus,
        "softmax": lambda: nn.Softmax(dim=1),
        "gelu": lambda: nn.GELU(approximate="tanh"),
    }
    if name not in simple:
        raise SpecError(f"activation {name!r} has no PyTorch module; supported: {SUPPORTED}")
    return simple[name]()


def to_torch(model: MLP, *, dtype: Any = None, device: Any = None) -> nn.Sequential:
    """An equivalent ``torch.nn.Sequential``: Linear(W, b) then the activation, for every layer.

    The weights are copied (weight = W with shape (out, in), bias = b); ``dtype`` defaults to the
    model's own precision, so a float64 model gives a float64 module.
    """
    if model.mode_dependent:
        raise SpecError(f"to_torch does not write batch norm or dropout yet; {model.spec} has them")
    torch_dtype = getattr(torch, dtype_name(model.dtype)) if dtype is None else dtype
    modules: list[nn.Module] = []
    for linear, layer in zip(model.linears, model.spec.layers, strict=True):
        module = nn.Linear(linear.n_in, linear.n_out, dtype=torch_dtype, device=device)
        with torch.no_grad():
            module.weight.copy_(torch.as_tensor(np.asarray(to_numpy(linear.W))))
            module.bias.copy_(torch.as_tensor(np.asarray(to_numpy(linear.b))))
        modules += [module, _activation_module(layer.activation, layer.parameter)]
    return nn.Sequential(*modules)


def _flatten(module: nn.Module) -> list[nn.Module]:
    """The leaf modules of nested Sequentials, in the order forward runs them."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _flatten(child)]
    return [module]


def _read_activation(module: nn.Module, position: int) -> tuple[str, float | None]:
    """(nnmath activation name, parameter) for one torch activation module, or SpecError."""
    where = f"module {position} ({module!r})"
    if isinstance(module, ExpressionActivation):
        register_activation(module.name, module.expression)  # a no-op where it is registered
        return module.name, None
    if isinstance(module, nn.Identity):
        return "identity", None
    if isinstance(module, nn.ReLU):
        return "relu", None
    if isinstance(module, nn.LeakyReLU):
        slope = float(module.negative_slope)
        return "leaky_relu", None if slope == DEFAULT_SLOPE else slope
    if isinstance(module, nn.ELU):
        alpha = float(module.alpha)
        return "elu", None if alpha == DEFAULT_ALPHA else alpha
    if isinstance(module, nn.Sigmoid):
        return "sigmoid", None
    if isinstance(module, nn.Tanh):
        return "tanh", None
    if isinstance(module, nn.Softplus):
        if module.beta != 1 or module.threshold < SOFTPLUS_MIN_THRESHOLD:
            raise SpecError(
                f"{where}: nnmath's softplus is ln(1 + eᶻ), i.e. Softplus(beta=1) with threshold "
                f"≥ {SOFTPLUS_MIN_THRESHOLD:g}; got beta={module.beta}, threshold={module.threshold}"
            )
        return "softplus", None
    if isinstance(module, nn.GELU):
        if module.approximate != "tanh":
            raise SpecError(
                f"{where}: nnmath's gelu is the tanh approximation; use "
                f"nn.GELU(approximate='tanh') (the exact erf form differs by up to ~5e-4)"
            )
        return "gelu", None
    if isinstance(module, nn.Softmax):
        if module.dim not in (1, -1):
            raise SpecError(
                f"{where}: softmax must act on the features, dim=1; got dim={module.dim}"
            )
        return "softmax", None
    raise SpecError(
        f"{where} is not supported; from_torch reads a Sequential of these modules: {SUPPORTED}"
    )


def from_torch(module: nn.Module, *, dtype: Any = None) -> MLP:
    """The MLP computing what ``module`` computes: a Sequential of Linear layers and activations.

    Each Linear may be followed by at most one supported activation; a Linear without one (followed
    by another Linear, or last) gets the identity. A Linear without bias gets b = 0. The weights are
    copied to NumPy in the module's dtype unless ``dtype`` (a NumPy dtype) is given.
    """
    leaves = _flatten(module)
    weights: list[tuple[np.ndarray, np.ndarray]] = []
    layers: list[LayerSpec] = []
    n_in: int | None = None
    expecting_activation = False
    for position, leaf in enumerate(leaves):
        if isinstance(leaf, nn.Linear):
            if n_in is not None and leaf.in_features != layers[-1].size:
                raise SpecError(
                    f"module {position} ({leaf!r}) takes {leaf.in_features} inputs but the layer "
                    f"before it has {layers[-1].size} outputs"
                )
            n_in = leaf.in_features if n_in is None else n_in
            W = leaf.weight.detach().cpu().numpy().copy()
            b = (
                leaf.bias.detach().cpu().numpy().copy()
                if leaf.bias is not None
                else np.zeros(leaf.out_features, dtype=W.dtype)
            )
            weights.append((W, b))
            layers.append(LayerSpec(leaf.out_features))
            expecting_activation = True
            continue
        name, parameter = _read_activation(leaf, position)
        if not expecting_activation:
            if layers and name == "identity":
                continue  # a second Identity changes nothing
            where = "comes before the first Linear" if not layers else "follows another activation"
            raise SpecError(
                f"module {position} ({leaf!r}) {where}; nnmath reads Linear layers each followed "
                f"by at most one activation"
            )
        layers[-1] = LayerSpec(layers[-1].size, name, parameter)
        expecting_activation = False
    if not layers:
        raise SpecError(f"{type(module).__name__} holds no Linear layer; supported: {SUPPORTED}")
    spec = NetworkSpec(n_in, tuple(layers))
    if dtype is not None:
        weights = [(W.astype(dtype), b.astype(dtype)) for W, b in weights]
    return MLP.from_weights(spec, weights)
