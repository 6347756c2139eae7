"""The network's forward pass as a graph of named values, for checking a derivation on numbers.

A derivation names every quantity of the forward pass: X, then for each layer l Z_l (the linear
map), with batch norm μ_l, σ²_l, Ẑ_l and U_l, the activation's output (H_l before dropout), A_l,
and finally Ŷ. :func:`engine_values` runs nnmath's layers once, in training mode, and returns each
of them (engine layout) with the layers' caches; :func:`run` runs the same pass with any of them
(or any parameter) *pinned* to a given value, and returns the cost, so that a gradient of the
derivation can be compared with central differences of the cost in that very quantity.

Training mode: batch norm uses the batch's statistics (so perturbing one sample moves every
sample's output: the differences see the coupling), and dropout uses the masks drawn once from
``default_rng(mask_seed)``, the masks the engine's own ``loss_and_gradients(..., rng=...)`` draws
from a generator seeded alike. Batch norm's running statistics are never touched (the pass runs
on a copy). Where μ, σ² or Ẑ is pinned, batch norm is computed step by step,
μ = mean(Z), σ² = mean((Z − μ)²), Ẑ = (Z − μ)/√(σ² + ε), U = γ ⊙ Ẑ + β, each from the pinned
values; otherwise by the engine's layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.dropout import Dropout
from nnmath.layers import EVALUATION, Elementwise, Linear, Mode
from nnmath.losses import Loss, cost, fuse
from nnmath.network import MLP
from nnmath.normalization import BatchNorm
from nnmath.penalties import Penalty, penalty_scale

TRAINING = Mode(training=True)
_VECTORS = re.compile(r"(b|gamma|beta|mu|var)\d+")


@dataclass
class Graph:
    """What a check needs of a problem: the network, its data, the masks, weights and penalty."""

    model: MLP
    X: np.ndarray
    T: np.ndarray
    loss: Loss
    mask_seed: int = 0
    sample_weight: np.ndarray | None = None
    penalty: Penalty | None = None

    @property
    def S(self) -> int:
        """S, the number of samples (rows of X)."""
        return int(self.X.shape[0])


def kind_of(name: str) -> str:
    """How a quantity is laid out: 'W' (a weight matrix), 'b' (a vector per unit: b, γ, β, μ, σ²)
    or 'batch' (one row per sample); Notation.from_engine/to_engine take it."""
    if re.fullmatch(r"W\d+", name):
        return "W"
    return "b" if _VECTORS.fullmatch(name) else "batch"


def output_name(layer: int, kind: str, K: int, dropout: bool) -> str:
    """The derivation's name for what a layer of group l computes."""
    if kind == "linear":
        return f"Z{layer}"
    if kind == "bn":
        return f"U{layer}"
    if kind == "activation":
        return "Yhat" if layer == K else f"H{layer}" if dropout else f"A{layer}"
    return f"A{layer}"


def layer_kind(layer: Any) -> str:
    """The kind of an engine layer: ``"linear"``, ``"bn"``, ``"dropout"`` or ``"activation"``."""
    if isinstance(layer, Linear):
        return "linear"
    if isinstance(layer, BatchNorm):
        return "bn"
    return "dropout" if isinstance(layer, Dropout) else "activation"


def named_layers(model: MLP) -> list[tuple[str, int, Any]]:
    """(the name of its output, l, layer) for every layer of the forward pass."""
    K = len(model.linears)
    return [
        (output_name(l, layer_kind(layer), K, model.dropouts[l - 1] is not None), l, layer)
        for l, layer in model.numbered_layers()
    ]


def engine_values(graph: Graph) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Every named value of the training-mode forward pass (engine layout), and the caches."""
    model = graph.model.copy()  # a training pass would move the running statistics
    _, caches = model.forward(
        graph.X, training=True, rng=np.random.default_rng(graph.mask_seed), check=False
    )
    values = {"X": graph.X}
    current = graph.X
    for (name, l, layer), cache in zip(named_layers(graph.model), caches, strict=True):
        if isinstance(layer, BatchNorm):
            values.update({f"mu{l}": cache.mean, f"var{l}": cache.var, f"Zhat{l}": cache.Xhat})
            current = layer.forward(current, TRAINING)[0]
        elif isinstance(layer, Dropout):
            values[f"D{l}"] = cache.D if cache.D is not None else np.ones_like(current)
            current = current * values[f"D{l}"]
        else:
            current = layer.forward(current, EVALUATION)[0]
        values[name] = current
    return values, caches


def masks(graph: Graph) -> dict[str, np.ndarray]:
    """The scaled dropout masks D_l (engine layout), as the engine draws them."""
    values, _ = engine_values(graph)
    return {name: value for name, value in values.items() if re.fullmatch(r"D\d+", name)}


def _batch_norm(
    norm: BatchNorm, l: int, Z: np.ndarray, pins: Mapping[str, np.ndarray]
) -> np.ndarray:
    """U_l from Z_l: the engine's layer, or step by step where μ, σ² or Ẑ is pinned."""
    gamma, beta = pins.get(f"gamma{l}", norm.gamma), pins.get(f"beta{l}", norm.beta)
    if not any(f"{name}{l}" in pins for name in ("mu", "var", "Zhat")):
        return BatchNorm(gamma, beta, norm.running_mean, norm.running_var).forward(Z, TRAINING)[0]
    mu = pins.get(f"mu{l}", np.mean(Z, axis=0))
    var = pins.get(f"var{l}", np.mean((Z - mu) ** 2, axis=0))
    Zhat = pins.get(f"Zhat{l}", (Z - mu) / np.sqrt(var + norm.eps))
    return Zhat * gamma + beta


def run(
    graph: Graph, pins: Mapping[str, np.ndarray], D: Mapping[str, np.ndarray], objective: str = "C"
) -> tuple[float, list[np.ndarray]]:
    """The cost C (or the summed loss ℓ = Σ_s ℓ_s) with the quantities in ``pins`` (engine layout)
    held at the given values, and the sides of 0 of every kinked activation's input."""
    model, K = graph.model, len(graph.model.linears)
    fused = fuse(model.output, graph.loss)
    current, kinks, logits = pins.get("X", graph.X), [], None
    for name, l, layer in named_layers(model):
        if isinstance(layer, Linear):
            W, b = pins.get(f"W{l}", layer.W), pins.get(f"b{l}", layer.b)
            current = current @ W.T + b
        elif isinstance(layer, BatchNorm):
            current = _batch_norm(layer, l, current, pins)
        elif isinstance(layer, Dropout):
            current = current * D[f"D{l}"]
        else:
            logits = current
            if isinstance(layer, Elementwise) and layer.activation.kinked:
                kinks.append(current > 0)
            current = layer.forward(current)[0]
        current = pins.get(name, current)
    return _cost(graph, fused if fused is not None and "Yhat" not in pins else None, current,
                 logits, pins, objective, K), kinks  # fmt: skip


def _cost(
    graph: Graph,
    fused: Loss | None,
    Yhat: np.ndarray,
    logits: np.ndarray | None,
    pins: Mapping[str, np.ndarray],
    objective: str,
    K: int,
) -> float:
    """C = Σ w_s ℓ_s / Σ w_s + k P(W), or ℓ = Σ_s ℓ_s (unweighted, no penalty) for objective 'l'."""
    pair, A = (fused, logits) if fused is not None else (graph.loss, Yhat)
    if objective == "l":
        return graph.S * float(cost(pair, A, graph.T))
    w = graph.sample_weight
    value = float(cost(pair, A, graph.T, w))
    if graph.penalty is not None:
        weights = [pins.get(f"W{l}", L.W) for l, L in enumerate(graph.model.linears, 1)]
        total = graph.S if w is None else float(np.sum(w))
        value += penalty_scale(graph.penalty, total) * graph.penalty.value(weights)
    return value


def objective(
    graph: Graph,
    name: str,
    to_engine: Callable[[np.ndarray], np.ndarray],
    objective_name: str = "C",
) -> Callable[[np.ndarray], tuple[float, list[np.ndarray]]]:
    """f(value) = the cost (or ℓ) with the quantity ``name`` set to ``to_engine(value)``."""
    D = masks(graph)

    def f(value: np.ndarray) -> tuple[float, list[np.ndarray]]:
        return run(graph, {name: to_engine(value)}, D, objective_name)

    return f
