"""Penalties: terms of the cost that depend on the weights alone, P(W⁽¹⁾, …, W⁽ᴷ⁾).

With a penalty the cost of a batch is

    C = Σ_s w_s ℓ_s / Σ_s w_s + k P(W),   k = 1                 (the default)
                                          k = 1 / Σ_s w_s       (``per_sample=True``)

over the rows the cost is taken on (w_s = 1 without sample weights, so Σ_s w_s = S). The second
scaling is scikit-learn's: its MLP adds (α / (2 Σ_batch w)) Σ_l ‖W⁽ˡ⁾‖² to each batch's cost, which
is ``L2(alpha, per_sample=True)``. Only the weight matrices are penalised, never the biases, and
∂C/∂W⁽ˡ⁾ gains k ∂P/∂W⁽ˡ⁾.

Each penalty is one record: ``value(weights)`` (P over the list of weight matrices), ``grad(W)``
(∂P/∂W for one matrix), ``scale(weight_sum)`` (k) and ``tex`` (the formula, typeset once; its
docstring states the same in one line).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nnmath.backend import namespace
from nnmath.errors import SpecError
from nnmath.layers import Formula

Array = Any

__all__ = ["L1", "L2", "PENALTIES", "Penalty", "get_penalty", "penalty_scale"]


class Penalty(Protocol):
    """P(W⁽¹⁾, …, W⁽ᴷ⁾) with its gradient, strength α and scaling convention."""

    name: str
    alpha: float
    per_sample: bool
    tex: Formula

    def value(self, weights: Sequence[Array]) -> float:
        """P(W⁽¹⁾, …, W⁽ᴷ⁾) over the list of weight matrices, a float."""

    def grad(self, W: Array) -> Array:
        """∂P/∂W for one weight matrix, shaped like W."""


def _check_alpha(alpha: Any) -> float:
    """α as a float: finite and ≥ 0 (α = 0 is no penalty), else SpecError."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha):
        raise SpecError(f"a penalty's alpha must be a finite number ≥ 0, got {alpha!r}")
    if alpha < 0:
        raise SpecError(f"a penalty's alpha must be ≥ 0 (0 is no penalty), got {alpha!r}")
    return float(alpha)


def squared_norm(W: Array) -> float:
    """‖W‖²_F = Σ_ij W_ij².

    A NumPy array: the sum of products w · w with w = vec(W) taken in the array's own memory
    order (a view for a C- or F-contiguous W), by ``einsum``'s own loop, so no W ⊙ W is allocated
    and no BLAS thread is woken: the training step calls this every batch, and a threaded BLAS
    dot here, beside numba's BLAS (scipy's, a second thread pool), made a two-thread step ten
    times slower (tests/test_penalties.py ties it to Σ W ⊙ W). Any other array (the Array API):
    xp.sum(W * W)."""
    if isinstance(W, np.ndarray):
        w = W.ravel(order="K")
        return float(np.einsum("i,i->", w, w))
    xp = namespace(W)
    return float(xp.sum(W * W))


def penalty_scale(penalty: Penalty, weight_sum: float) -> float:
    """k: 1, or 1 / Σ_s w_s for a per-sample penalty (scikit-learn's convention)."""
    return 1.0 / weight_sum if penalty.per_sample else 1.0


@dataclass(frozen=True)
class L2:
    """P = (α/2) Σ_l ‖W⁽ˡ⁾‖²;  ∂P/∂W⁽ˡ⁾ = α W⁽ˡ⁾  (Frobenius norms; biases are not penalised)."""

    alpha: float
    per_sample: bool = False
    name: str = field(default="l2", init=False)
    tex: Formula = field(
        default=Formula(
            forward=r"P = \frac{\alpha}{2} \sum_{l} \lVert <W>^{(l)} \rVert_F^{2}",
            forward_element=r"P = \frac{\alpha}{2} \sum_{l} \sum_{i,j} \left(<W>^{(l)}_{ij}\right)^{2}",
            backward=r"\frac{\partial P}{\partial <W>^{(l)}} = \alpha <W>^{(l)}",
            backward_element=r"\frac{\partial P}{\partial <W>^{(l)}_{ij}} = \alpha <W>^{(l)}_{ij}",
            jacobian=r"\frac{\partial P}{\partial \operatorname{vec} <W>^{(l)}} = \alpha \operatorname{vec}(<W>^{(l)})^\top",
            text="P = (α/2) Σ_l ‖W⁽ˡ⁾‖²;  ∂P/∂W⁽ˡ⁾ = α W⁽ˡ⁾",
        ),
        init=False,
        repr=False,
        compare=False,
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_alpha(self.alpha))
        object.__setattr__(self, "per_sample", bool(self.per_sample))

    def value(self, weights: Sequence[Array]) -> float:
        """P = (α/2) Σ_l Σ_ij (W⁽ˡ⁾_ij)² over the weight matrices given, a float."""
        return 0.5 * self.alpha * sum(squared_norm(W) for W in weights)

    def grad(self, W: Array) -> Array:
        """∂P/∂W = α W, shaped like W."""
        return self.alpha * W


@dataclass(frozen=True)
class L1:
    """P = α Σ_l Σ |W⁽ˡ⁾_ij|;  ∂P/∂W⁽ˡ⁾ = α sign(W⁽ˡ⁾), sign(0) = 0  (biases are not penalised).

    |w| has no derivative at 0; nnmath takes the subgradient 0 there (as PyTorch's ``sign`` does),
    so a weight that is exactly 0 feels no pull from the penalty.
    """

    alpha: float
    per_sample: bool = False
    name: str = field(default="l1", init=False)
    tex: Formula = field(
        default=Formula(
            forward=r"P = \alpha \sum_{l} \lVert <W>^{(l)} \rVert_1",
            forward_element=r"P = \alpha \sum_{l} \sum_{i,j} \left|<W>^{(l)}_{ij}\right|",
            backward=r"\frac{\partial P}{\partial <W>^{(l)}} = \alpha \operatorname{sign}(<W>^{(l)})",
            backward_element=(
                r"\frac{\partial P}{\partial <W>^{(l)}_{ij}} = \alpha \operatorname{sign}"
                r"(<W>^{(l)}_{ij}),\ \operatorname{sign}(0) = 0"
            ),
            jacobian=(
                r"\frac{\partial P}{\partial \operatorname{vec} <W>^{(l)}} = \alpha "
                r"\operatorname{sign}(\operatorname{vec} <W>^{(l)})^\top"
            ),
            text="P = α Σ_l Σ |W⁽ˡ⁾_ij|;  ∂P/∂W⁽ˡ⁾ = α sign(W⁽ˡ⁾), sign(0) = 0",
        ),
        init=False,
        repr=False,
        compare=False,
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", _check_alpha(self.alpha))
        object.__setattr__(self, "per_sample", bool(self.per_sample))

    def value(self, weights: Sequence[Array]) -> float:
        """P = α Σ_l Σ_ij |W⁽ˡ⁾_ij| over the weight matrices given, a float."""
        xp = namespace(*weights)
        return self.alpha * sum(float(xp.sum(xp.abs(W))) for W in weights)

    def grad(self, W: Array) -> Array:
        """∂P/∂W = α sign(W) with sign(0) = 0, shaped like W."""
        xp = namespace(W)
        return self.alpha * xp.sign(W)


PENALTIES: dict[str, type] = {"l2": L2, "l1": L1}


def get_penalty(name: str, alpha: float, per_sample: bool = False) -> Penalty:
    """The penalty called ``name`` ("l2" or "l1") with strength ``alpha``."""
    key = name.lower()
    if key not in PENALTIES:
        raise SpecError(f"unknown penalty {name!r}; valid names: {', '.join(PENALTIES)}")
    return PENALTIES[key](alpha, per_sample=per_sample)
