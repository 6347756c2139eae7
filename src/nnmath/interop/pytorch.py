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

Batch norm and dropout map to ``BatchNorm1d`` and ``Dropout``, in the spec's order
(``128relu+bn+dropout(0.3)`` is Linear, BatchNorm1d, ReLU, Dropout(0.3)): BatchNorm1d's weight and
bias are γ and β, its running_mean and running_var nnmath's running statistics, and both use the
same conventions (eps = 1e-5; momentum 0.1, running ← (1 − m)·running + m·batch with the unbiased
batch variance; training mode normalizes with the biased one). ``from_torch`` reads a BatchNorm1d
only with those conventions (affine, tracking running statistics, eps 1e-5, momentum 0.1; anything
else would compute another network), and a Dropout after a layer's activation (not after the last).
The module's train()/eval() mode is PyTorch's; nnmath passes its mode to every call.

An activation registered with ``nnmath.activations.register_activation`` becomes an
:class:`ExpressionActivation`, which computes its expression with torch operations (and reads back
as the same activation, registering it where it is not yet).

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
    "GELU(approximate='tanh'), Softmax(dim=1), BatchNorm1d (after a Linear), Dropout"
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
        """h(Z) entry by entry, as torch operations that autograd differentiates."""
        from nnmath.expressions import evaluate

        return evaluate(self._function, Z)

    def extra_repr(self) -> str:
        """The name and the expression, for the module's repr."""
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
    torch_dtype = getattr(torch, dtype_name(model.dtype)) if dtype is None else dtype
    modules: list[nn.Module] = []
    groups = zip(model.linears, model.batch_norms, model.spec.layers, strict=True)
    for linear, norm, layer in groups:
        module = nn.Linear(linear.n_in, linear.n_out, dtype=torch_dtype, device=device)
        _copy(module, weight=linear.W, bias=linear.b)
        modules.append(module)
        if norm is not None:
            batch_norm = nn.BatchNorm1d(
                norm.n, eps=norm.eps, momentum=norm.momentum, dtype=torch_dtype, device=device
            )
            _copy(batch_norm, weight=norm.gamma, bias=norm.beta, running_mean=norm.running_mean,
                  running_var=norm.running_var)  # fmt: skip
            modules.append(batch_norm)
        modules.append(_activation_module(layer.activation, layer.parameter))
        if layer.dropout is not None:
            modules.append(nn.Dropout(layer.dropout))
    return nn.Sequential(*modules)


def _copy(module: nn.Module, **arrays: Any) -> None:
    """Copy nnmath's arrays into the module's parameters and buffers of the same names."""
    with torch.no_grad():
        for name, array in arrays.items():
            getattr(module, name).copy_(torch.as_tensor(np.asarray(to_numpy(array))))


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
    """The MLP computing what ``module`` computes: a Sequential of Linear layers, each followed
    by an optional BatchNorm1d, at most one supported activation and an optional Dropout.

    A Linear without an activation (followed by another Linear, or last) gets the identity; a
    Linear without bias gets b = 0. The weights (and γ, β, running statistics) are copied to NumPy
    in the module's dtype unless ``dtype`` (a NumPy dtype) is given.
    """
    reader = _Reader()
    for position, leaf in enumerate(_flatten(module)):
        reader.read(position, leaf)
    if not reader.layers:
        raise SpecError(f"{type(module).__name__} holds no Linear layer; supported: {SUPPORTED}")
    if reader.layers[-1].dropout is not None:
        raise SpecError(
            "the module ends with Dropout after its last layer; nnmath's output layer takes no "
            "dropout (it would zero predictions): remove it"
        )
    spec = NetworkSpec(reader.n_in, tuple(reader.layers))
    arrays = {k: v if dtype is None else v.astype(dtype) for k, v in reader.arrays.items()}
    return MLP.from_arrays(spec, arrays)


class _Reader:
    """Reads leaf modules in order into layer specs and named arrays (W1, b1, gamma1, …).

    ``stage`` is how far the current layer has come: 0 after its Linear, 1 after batch norm, 2
    after its activation, 3 after dropout; each module must come later than the one before it.
    """

    def __init__(self) -> None:
        self.layers: list[LayerSpec] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.n_in: int = 0
        self.stage = 3

    def read(self, position: int, leaf: nn.Module) -> None:
        where = f"module {position} ({leaf!r})"
        if isinstance(leaf, nn.Linear):
            self.linear(where, leaf)
        elif not self.layers:
            raise SpecError(f"{where} comes before the first Linear; nnmath reads Linear layers "
                            "each followed by its batch norm, activation and dropout")  # fmt: skip
        elif isinstance(leaf, nn.BatchNorm1d):
            self.batch_norm(where, leaf)
        elif isinstance(leaf, nn.Dropout):
            self.dropout(where, leaf)
        else:
            name, parameter = _read_activation(leaf, position)
            if self.stage >= 2 and name == "identity":
                return  # a second Identity changes nothing
            self.advance(where, 2, "an activation")
            self.update(activation=name, parameter=parameter)

    def advance(self, where: str, stage: int, what: str) -> None:
        if self.stage >= stage:
            before = ["its Linear", "its BatchNorm1d", "the activation", "a Dropout"][self.stage]
            if stage == 2 and self.stage == 2:
                before = "another activation"
            raise SpecError(
                f"{where}: {what} follows {before}; nnmath reads each Linear followed by at most "
                "one BatchNorm1d, one activation and one Dropout, in that order"
            )
        self.stage = stage

    def update(self, **changes: Any) -> None:
        layer = self.layers[-1]
        fields = {"size": layer.size, "activation": layer.activation,
                  "parameter": layer.parameter, "batch_norm": layer.batch_norm,
                  "dropout": layer.dropout, **changes}  # fmt: skip
        self.layers[-1] = LayerSpec(**fields)

    def linear(self, where: str, leaf: nn.Linear) -> None:
        if self.layers and leaf.in_features != self.layers[-1].size:
            raise SpecError(
                f"{where} takes {leaf.in_features} inputs but the layer before it has "
                f"{self.layers[-1].size} outputs"
            )
        self.n_in = self.n_in or leaf.in_features
        l = len(self.layers) + 1
        W = _numpy(leaf.weight)
        self.arrays[f"W{l}"] = W
        self.arrays[f"b{l}"] = (
            _numpy(leaf.bias) if leaf.bias is not None else np.zeros(leaf.out_features, W.dtype)
        )
        self.layers.append(LayerSpec(leaf.out_features))
        self.stage = 0

    def batch_norm(self, where: str, leaf: nn.BatchNorm1d) -> None:
        from nnmath.normalization import EPS, MOMENTUM

        self.advance(where, 1, "BatchNorm1d (nnmath puts it between the Linear and the activation)")
        if (
            not (leaf.affine and leaf.track_running_stats)
            or leaf.momentum != MOMENTUM
            or (leaf.eps != EPS)
        ):
            raise SpecError(
                f"{where}: nnmath's batch norm learns γ, β and keeps running statistics with "
                f"eps={EPS:g} and momentum={MOMENTUM:g}; got affine={leaf.affine}, "
                f"track_running_stats={leaf.track_running_stats}, eps={leaf.eps:g}, "
                f"momentum={leaf.momentum}"
            )
        l = len(self.layers)
        if leaf.num_features != self.layers[-1].size:
            raise SpecError(f"{where} normalizes {leaf.num_features} features; layer {l} has "
                            f"{self.layers[-1].size}")  # fmt: skip
        self.arrays.update({f"gamma{l}": _numpy(leaf.weight), f"beta{l}": _numpy(leaf.bias),
                            f"running_mean{l}": _numpy(leaf.running_mean),
                            f"running_var{l}": _numpy(leaf.running_var)})  # fmt: skip
        self.update(batch_norm=True)

    def dropout(self, where: str, leaf: nn.Dropout) -> None:
        self.advance(where, 3, "Dropout (nnmath puts it after the activation)")
        self.update(dropout=float(leaf.p))


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()
