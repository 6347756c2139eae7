"""The playground's settings: what can be chosen, within which bounds, and how a page's address
carries them.

A :class:`Config` is one experiment: the data (a built-in 2-D set with its point count, noise and
test fraction, or an uploaded CSV), the hidden layers (width and activation each), the output layer
with its loss, the optimizer, learning rate, batch size, L2 strength, seed, and the notation of the
mathematics panel. :func:`parse_config` reads one from the page's query parameters (the keys of
``QUERY_KEYS``, the same ones the page writes into its address), checks every value and raises
:class:`SettingError` naming the setting, the value and the allowed range; :meth:`Config.to_query`
writes it back, so an address reproduces the experiment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from nnmath.activations import ACTIVATIONS
from nnmath.derivation import NOTATIONS
from nnmath.errors import NNMathError
from nnmath.optimizers import OPTIMIZERS
from nnmath.spec import LayerSpec

MAX_WIDTH = 16
MAX_HIDDEN_LAYERS = 6
POINTS = (20, 2000)
NOISE = (0.0, 2.0)
TEST_FRACTION = (0.1, 0.9)
LEARNING_RATE_MAX = 10.0
BATCH_SIZE = (1, 1000)
L2_MAX = 1.0
SEED_MAX = 2**31 - 1

# Each built-in 2-D set and its default noise (the generator's own default; blobs: the spread).
BUILTIN_DATA = {"spirals": 0.03, "moons": 0.1, "circles": 0.08, "xor": 0.0, "blobs": 0.7}
UPLOAD = "upload"

# Output layer + loss pairs, by the task they are sound for. The output width follows the data.
OUTPUTS = {
    "softmax/cross-entropy": ("softmax", "cross-entropy", "classification"),
    "sigmoid/binary-cross-entropy": ("sigmoid", "binary-cross-entropy", "classification"),
    "identity/mse": ("identity", "mse", "regression"),
    "identity/squared-error": ("identity", "squared-error", "regression"),
}

# Hidden activations: every elementwise activation of the engine, with its default parameter.
HIDDEN_ACTIVATIONS = tuple(ACTIVATIONS)

# Settings that change while training goes on; any other change rebuilds the experiment.
LIVE_FIELDS = frozenset({"learning_rate", "batch_size", "l2", "notation"})
DATA_FIELDS = frozenset({"data", "points", "noise", "test_fraction", "seed"})

QUERY_KEYS = {
    "data": "data",
    "points": "points",
    "noise": "noise",
    "test": "test_fraction",
    "layers": "hidden",
    "output": "output",
    "optimizer": "optimizer",
    "lr": "learning_rate",
    "batch": "batch_size",
    "l2": "l2",
    "seed": "seed",
    "notation": "notation",
}

_LAYER = re.compile(r"^\s*(-?\d+)\s*([A-Za-z_]+)\s*$")


class SettingError(NNMathError, ValueError):
    """A playground setting outside what the page accepts (names the setting and its range)."""


@dataclass(frozen=True)
class Config:
    """One experiment's settings (defaults: spirals, 2-8tanh-8tanh-2softmax, SGD 0.1, batch 10)."""

    data: str = "spirals"
    points: int = 600
    noise: float = 0.03
    test_fraction: float = 0.3
    hidden: tuple[LayerSpec, ...] = (LayerSpec(8, "tanh"), LayerSpec(8, "tanh"))
    output: str = "softmax/cross-entropy"
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    batch_size: int = 10
    l2: float = 0.0
    seed: int = 0
    notation: str = "row"

    @property
    def output_activation(self) -> str:
        """The output layer's activation of the chosen output/loss pair."""
        return OUTPUTS[self.output][0]

    @property
    def loss_name(self) -> str:
        """The loss of the chosen output/loss pair."""
        return OUTPUTS[self.output][1]

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``, as the output/loss pair implies."""
        return OUTPUTS[self.output][2]

    def spec(self, n_in: int, n_out: int) -> str:
        """The network spec string, e.g. ``2-8tanh-8tanh-2softmax``."""
        output = LayerSpec(n_out, self.output_activation)
        return "-".join([str(n_in), *(str(layer) for layer in (*self.hidden, output))])

    def to_query(self) -> dict[str, Any]:
        """The settings under the page's address keys (the inverse of :func:`parse_config`)."""
        values = {name: getattr(self, name) for name in QUERY_KEYS.values()}
        values["hidden"] = "-".join(str(layer) for layer in self.hidden)
        return {key: values[name] for key, name in QUERY_KEYS.items()}

    def changed(self, other: Config) -> set[str]:
        """The names of the fields whose values differ."""
        return {f.name for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)}


# ---- reading one value -------------------------------------------------------------------------


def _number(label: str, value: Any, low: float, high: float, *, low_open: bool = False) -> float:
    """A finite number in [low, high] (or (low, high] when ``low_open``), else SettingError."""
    if isinstance(value, bool):
        raise SettingError(f"{label} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{label} must be a number, got {value!r}") from None
    bracket = "(" if low_open else "["
    allowed = f"a finite number in {bracket}{low:g}, {high:g}]"
    below = number <= low if low_open else number < low
    if not math.isfinite(number) or below or number > high:
        raise SettingError(f"{label} must be {allowed}, got {value!r}")
    return number


def _integer(label: str, value: Any, low: int, high: int) -> int:
    number = _number(label, value, low, high)
    if not number.is_integer():
        raise SettingError(f"{label} must be a whole number from {low} to {high}, got {value!r}")
    return int(number)


def _choice(label: str, value: Any, choices: Any) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise SettingError(f"{label} must be one of {', '.join(choices)}; got {value!r}")
    return text


def parse_hidden(text: Any) -> tuple[LayerSpec, ...]:
    """Hidden layers written as ``8tanh-8tanh`` (empty: none), each width in 1 … MAX_WIDTH."""
    text = str(text).strip()
    tokens = [token for token in text.split("-") if token.strip()] if text else []
    if re.search(r"(^|-)\s*-", text):  # '8tanh--1relu': a negative width
        raise SettingError(f"hidden layers {text!r}: a width must be from 1 to {MAX_WIDTH}")
    if len(tokens) > MAX_HIDDEN_LAYERS:
        raise SettingError(
            f"{len(tokens)} hidden layers is too many; the playground allows at most "
            f"{MAX_HIDDEN_LAYERS}"
        )
    layers = []
    for position, token in enumerate(tokens, start=1):
        match = _LAYER.match(token)
        if not match:
            raise SettingError(
                f"hidden layer {position} {token!r} is not WIDTH ACTIVATION, e.g. '8tanh'"
            )
        width, activation = int(match.group(1)), match.group(2).lower()
        if not 1 <= width <= MAX_WIDTH:
            raise SettingError(
                f"hidden layer {position} has width {width}; a width must be from 1 to {MAX_WIDTH}"
            )
        if activation not in HIDDEN_ACTIVATIONS:
            raise SettingError(
                f"hidden layer {position}: unknown activation {activation!r}; choose one of "
                f"{', '.join(HIDDEN_ACTIVATIONS)}"
            )
        layers.append(LayerSpec(width, activation))
    return tuple(layers)


# ---- reading a whole configuration ------------------------------------------------------------

_READERS = {
    "data": lambda v: _choice("data set", v, (*BUILTIN_DATA, UPLOAD)),
    "points": lambda v: _integer("number of points", v, *POINTS),
    "noise": lambda v: _number("noise", v, *NOISE),
    "test_fraction": lambda v: _number("test fraction", v, *TEST_FRACTION),
    "hidden": parse_hidden,
    "output": lambda v: _choice("output and loss", v, OUTPUTS),
    "optimizer": lambda v: _choice("optimizer", v, OPTIMIZERS),
    "learning_rate": lambda v: _number("learning rate", v, 0.0, LEARNING_RATE_MAX, low_open=True),
    "batch_size": lambda v: _integer("batch size", v, *BATCH_SIZE),
    "l2": lambda v: _number("L2 penalty", v, 0.0, L2_MAX),
    "seed": lambda v: _integer("seed", v, 0, SEED_MAX),
    "notation": lambda v: _choice("notation", v, NOTATIONS),
}


def parse_config(query: Mapping[str, Any], base: Config | None = None) -> Config:
    """The Config of ``base`` (default: the defaults) with the given address keys applied.

    Unknown keys are refused, so that a mistyped address does not silently fall back.
    """
    base = Config() if base is None else base
    if not isinstance(query, Mapping):
        raise SettingError("the settings must be a JSON object of address keys")
    unknown = sorted(set(query) - set(QUERY_KEYS))
    if unknown:
        raise SettingError(
            f"unknown setting {unknown[0]!r}; the settings are {', '.join(QUERY_KEYS)}"
        )
    changes = {QUERY_KEYS[key]: _READERS[QUERY_KEYS[key]](value) for key, value in query.items()}
    return replace(base, **changes)


def options() -> dict[str, Any]:
    """What the page may offer, with the bounds it should show (the server checks them again)."""
    return {
        "data": {**BUILTIN_DATA},
        "activations": list(HIDDEN_ACTIVATIONS),
        "outputs": {name: task for name, (_, _, task) in OUTPUTS.items()},
        "optimizers": list(OPTIMIZERS),
        "notations": list(NOTATIONS),
        "bounds": {
            "width": [1, MAX_WIDTH],
            "hidden_layers": [0, MAX_HIDDEN_LAYERS],
            "points": list(POINTS),
            "noise": list(NOISE),
            "test": list(TEST_FRACTION),
            "lr": [0, LEARNING_RATE_MAX],
            "batch": list(BATCH_SIZE),
            "l2": [0, L2_MAX],
            "seed": [0, SEED_MAX],
        },
        "defaults": Config().to_query(),
    }
