"""Network spec strings: ``3-10relu-6relu-3softmax`` and friends.

Grammar (sizes joined by ``-``; every layer after the input names its activation, then any
modifiers joined by ``+``)::

    spec       := input ("-" layer)+
    input      := SIZE
    layer      := SIZE [ACTIVATION ["(" NUMBER ")"]] ["+bn"] ["+dropout(" P ")"]
    SIZE       := a positive integer
    ACTIVATION := identity | sigmoid | tanh | relu | leaky_relu | elu | softplus | gelu | softmax
                  | a name registered with nnmath.activations.register_activation
                  (no name means identity; the number is leaky ReLU's slope or ELU's α)
    P          := the dropout probability, 0 ≤ P < 1

A modifier changes where the layer's numbers flow, in the order they act (Ioffe & Szegedy place
batch norm between the linear map and the activation)::

    128relu+bn+dropout(0.3)   =   Linear → batch norm → ReLU → dropout(p = 0.3)

``bn`` is batch normalization (``nnmath.normalization``), ``dropout(P)`` inverted dropout
(``nnmath.dropout``). Each appears at most once, ``bn`` before ``dropout``, and the output layer takes
no dropout (it would zero predictions).

Examples: ``3-10relu-6relu-3softmax``, ``2-2sigmoid-2sigmoid``, ``4-8tanh-1``,
``2-16leaky_relu(0.1)-1sigmoid``, ``64-128relu+bn+dropout(0.3)-10softmax``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from nnmath.activations import ACTIVATIONS, ALIASES
from nnmath.dropout import check_probability
from nnmath.errors import SpecError, WrongTypeError

MODIFIERS = ("bn", "dropout(p)")
DASHES = "\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"
"""Characters that look like the hyphen between sizes (U+2212 MINUS SIGN, en and em dashes, …)."""
MAX_SIZE_DIGITS = 30
"""A size written with more digits is refused as text (no network has 10³⁰ units); smaller ones
are bounded by memory when a network is built (``network.check_memory``)."""
_NUMBER = r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?"
_SEPARATOR = re.compile(r"-(?![^()]*\))")
_PLUS = re.compile(r"\+(?![^()]*\))")
_LAYER = re.compile(rf"^([0-9]+)([A-Za-z_]*)(?:\(({_NUMBER})\))?$")
_MODIFIER = re.compile(rf"^([A-Za-z_]+)(?:\(({_NUMBER})\))?$")


def activation_names() -> tuple[str, ...]:
    """Every activation a spec may name: the table's (built-in and registered) and softmax."""
    return (*ACTIVATIONS, "softmax")


def __getattr__(name: str) -> Any:
    # ACTIVATION_NAMES follows the table, which grows when an activation is registered
    if name == "ACTIVATION_NAMES":
        return activation_names()
    raise AttributeError(f"module 'nnmath.spec' has no attribute {name!r}")


def format_number(value: float) -> str:
    """The shortest text that reads back as ``value``: 0.3, 1e-05, 0.123456789."""
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))


@dataclass(frozen=True)
class LayerSpec:
    """One layer after the input: its width, activation name and optional parameter, and its
    modifiers: batch norm before the activation, dropout probability after it (None: no dropout)."""

    size: int
    activation: str = "identity"
    parameter: float | None = None
    batch_norm: bool = False
    dropout: float | None = None

    def __str__(self) -> str:
        name = "" if self.activation == "identity" else self.activation
        param = "" if self.parameter is None else f"({format_number(self.parameter)})"
        bn = "+bn" if self.batch_norm else ""
        dropout = "" if self.dropout is None else f"+dropout({format_number(self.dropout)})"
        return f"{self.size}{name}{param}{bn}{dropout}"


@dataclass(frozen=True)
class NetworkSpec:
    """An MLP's architecture: input width and the layers after it."""

    n_in: int
    layers: tuple[LayerSpec, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """(n₀, n₁, …, n_K): the input width, then each layer's."""
        return (self.n_in, *(layer.size for layer in self.layers))

    @property
    def n_out(self) -> int:
        """n_K, the last layer's width."""
        return self.layers[-1].size

    @property
    def output(self) -> str:
        """The output activation's name (the last layer's)."""
        return self.layers[-1].activation

    @property
    def parameter_count(self) -> int:
        """Σ_l (n_{l−1} n_l + n_l), plus γ and β (2 n_l) for each batch norm: counted, not built."""
        return sum(
            n_in * layer.size + layer.size * (3 if layer.batch_norm else 1)
            for n_in, layer in zip(self.sizes[:-1], self.layers, strict=True)
        )

    @property
    def mode_dependent(self) -> bool:
        """True when some layer has batch norm or dropout: training and evaluation then differ."""
        return any(layer.batch_norm or layer.dropout is not None for layer in self.layers)

    def __str__(self) -> str:
        return "-".join([str(self.n_in), *(str(layer) for layer in self.layers)])


def _expected() -> str:
    return (
        "expected sizes joined by '-', each layer after the input followed by its activation and "
        "any modifiers joined by '+', e.g. '3-10relu-6relu-3softmax' or "
        "'64-128relu+bn+dropout(0.3)-10softmax'; valid activations: "
        + ", ".join(activation_names())
        + "; valid modifiers: "
        + ", ".join(MODIFIERS)
    )


def _modifiers(position: int, token: str, parts: list[str]) -> tuple[bool, float | None]:
    """(batch norm?, dropout probability) from a layer's ``+``-joined modifiers."""
    batch_norm, dropout, seen = False, None, []
    for part in parts:
        match = _MODIFIER.match(part)
        name = match.group(1).lower() if match else part
        where = f"layer {position} {token!r}: modifier {part!r}"
        if not match or name not in ("bn", "dropout"):
            raise SpecError(f"{where} is unknown; valid modifiers: {', '.join(MODIFIERS)}")
        if name in seen:
            raise SpecError(f"{where} appears twice; each modifier appears at most once")
        if name == "bn" and "dropout" in seen:
            raise SpecError(
                f"{where}: write the modifiers in the order they act, '+bn' (before the "
                "activation) then '+dropout(p)' (after it)"
            )
        seen.append(name)
        if name == "bn":
            if match.group(2) is not None:
                raise SpecError(f"{where}: bn takes no parameter; write '+bn'")
            batch_norm = True
        else:
            if match.group(2) is None:
                raise SpecError(f"{where}: dropout needs its probability, e.g. '+dropout(0.3)'")
            dropout = check_probability(float(match.group(2)))
    return batch_norm, dropout


def _layer(position: int, token: str, last: bool) -> LayerSpec:
    """One layer's token, ``SIZE[ACTIVATION[(NUMBER)]][+MODIFIER]…``, read into a LayerSpec."""
    head, *parts = _PLUS.split(token)
    match = _LAYER.match(head)
    if not match:
        raise SpecError(
            f"layer {position} {token!r} is not SIZE[ACTIVATION][+MODIFIER…]; {_expected()}"
        )
    size, name, parameter = match.groups()
    name = ALIASES.get(name.lower(), name.lower())
    if name not in activation_names():
        raise SpecError(
            f"layer {position} {token!r}: unknown activation {name!r}; valid "
            f"activations: {', '.join(activation_names())}"
        )
    width = _size(size, f"layer {position} {token!r}")
    if parameter is not None and name not in ("leaky_relu", "elu"):
        raise SpecError(f"layer {position} {token!r}: {name} takes no parameter")
    batch_norm, dropout = _modifiers(position, token, parts)
    if last and dropout is not None:
        raise SpecError(
            f"layer {position} {token!r} is the output layer: dropout there would zero "
            "predictions; put '+dropout(p)' on a hidden layer"
        )
    value = None if parameter is None else float(parameter)
    return LayerSpec(width, name, value, batch_norm, dropout)


def check_characters(text: str) -> None:
    """A spec is ASCII: name a look-alike dash (and give the spec with hyphens) or a non-ASCII
    digit such as '²' or '٣', which Python's own ``int`` and ``isdigit`` would half accept."""
    for character in text:
        if character.isascii():
            continue
        name = unicodedata.name(character, f"U+{ord(character):04X}")
        if character in DASHES:
            fixed = "".join("-" if c in DASHES else c for c in text)
            raise SpecError(
                f"spec {text!r} joins its sizes with {character!r} ({name}); use the ASCII "
                f"hyphen '-': {fixed!r}"
            )
        raise SpecError(
            f"spec {text!r} contains {character!r} ({name}); a spec is plain ASCII, with sizes "
            "written in the digits 0-9, e.g. '3-10relu-3'"
        )


def _size(text: str, where: str) -> int:
    """A layer size from its ASCII digits: positive, and short enough to be a size at all."""
    if len(text) > MAX_SIZE_DIGITS:
        raise SpecError(f"{where} has a size of {len(text)} digits; no network is that wide")
    if int(text) == 0:
        raise SpecError(f"{where} has size 0; sizes must be positive")
    return int(text)


def parse_spec(text: str) -> NetworkSpec:
    """Parse a spec string into a NetworkSpec, or raise SpecError saying what was expected."""
    if not isinstance(text, str):
        raise WrongTypeError(
            f"a network spec is a string such as '3-10relu-3softmax', got {type(text).__name__} "
            f"{text!r}"[:200]
        )
    check_characters(text)
    # split on '-' outside parentheses, so a parameter may carry an exponent: elu(1e-05)
    tokens = _SEPARATOR.split(text.strip()) if text and text.strip() else []
    if len(tokens) < 2:
        raise SpecError(f"spec {text!r} needs an input size and at least one layer; {_expected()}")
    if not re.fullmatch("[0-9]+", tokens[0]) or int(tokens[0]) == 0:
        raise SpecError(
            f"spec {text!r} must start with the input size (a positive integer); {_expected()}"
        )
    layers = [
        _layer(position, token, position == len(tokens) - 1)
        for position, token in enumerate(tokens[1:], start=1)
    ]
    return NetworkSpec(_size(tokens[0], f"spec {text!r}: the input"), tuple(layers))
