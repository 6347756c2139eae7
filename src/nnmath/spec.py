"""Network spec strings: ``3-10relu-6relu-3softmax`` and friends.

Grammar (sizes joined by ``-``; every layer after the input names its activation)::

    spec       := input ("-" layer)+
    input      := SIZE
    layer      := SIZE [ACTIVATION ["(" NUMBER ")"]]
    SIZE       := a positive integer
    ACTIVATION := identity | sigmoid | tanh | relu | leaky_relu | elu | softplus | gelu | softmax
                  (no name means identity; the number is leaky ReLU's slope or ELU's α)

Examples: ``3-10relu-6relu-3softmax``, ``2-2sigmoid-2sigmoid``, ``4-8tanh-1``,
``2-16leaky_relu(0.1)-1sigmoid``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nnmath.activations import ACTIVATIONS, ALIASES
from nnmath.errors import SpecError

ACTIVATION_NAMES = (*ACTIVATIONS, "softmax")
_SEPARATOR = re.compile(r"-(?![^()]*\))")
_LAYER = re.compile(r"^(\d+)([A-Za-z_]*)(?:\(([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\))?$")


@dataclass(frozen=True)
class LayerSpec:
    """One layer after the input: its width, activation name and optional parameter."""

    size: int
    activation: str = "identity"
    parameter: float | None = None

    def __str__(self) -> str:
        name = "" if self.activation == "identity" else self.activation
        param = "" if self.parameter is None else f"({self.parameter:g})"
        return f"{self.size}{name}{param}"


@dataclass(frozen=True)
class NetworkSpec:
    """An MLP's architecture: input width and the layers after it."""

    n_in: int
    layers: tuple[LayerSpec, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n_in, *(layer.size for layer in self.layers))

    @property
    def n_out(self) -> int:
        return self.layers[-1].size

    @property
    def output(self) -> str:
        return self.layers[-1].activation

    def __str__(self) -> str:
        return "-".join([str(self.n_in), *(str(layer) for layer in self.layers)])


def _expected() -> str:
    return (
        "expected sizes joined by '-', each layer after the input followed by its activation, "
        "e.g. '3-10relu-6relu-3softmax' or '4-8tanh-1'; valid activations: "
        + ", ".join(ACTIVATION_NAMES)
    )


def parse_spec(text: str) -> NetworkSpec:
    """Parse a spec string into a NetworkSpec, or raise SpecError saying what was expected."""
    # split on '-' outside parentheses, so a parameter may carry an exponent: elu(1e-05)
    tokens = _SEPARATOR.split(text.strip()) if text and text.strip() else []
    if len(tokens) < 2:
        raise SpecError(f"spec {text!r} needs an input size and at least one layer; {_expected()}")
    if not tokens[0].isdigit() or int(tokens[0]) == 0:
        raise SpecError(
            f"spec {text!r} must start with the input size (a positive integer); {_expected()}"
        )
    layers = []
    for position, token in enumerate(tokens[1:], start=1):
        match = _LAYER.match(token)
        if not match:
            raise SpecError(
                f"layer {position} {token!r} of spec {text!r} is not SIZE[ACTIVATION]; "
                f"{_expected()}"
            )
        size, name, parameter = match.groups()
        name = name.lower()
        name = ALIASES.get(name, name)
        if name not in ACTIVATION_NAMES:
            raise SpecError(
                f"layer {position} {token!r}: unknown activation {name!r}; valid "
                f"activations: {', '.join(ACTIVATION_NAMES)}"
            )
        if int(size) == 0:
            raise SpecError(f"layer {position} {token!r} has size 0; sizes must be positive")
        if parameter is not None and name not in ("leaky_relu", "elu"):
            raise SpecError(f"layer {position} {token!r}: {name} takes no parameter")
        layers.append(LayerSpec(int(size), name, None if parameter is None else float(parameter)))
    return NetworkSpec(int(tokens[0]), tuple(layers))
