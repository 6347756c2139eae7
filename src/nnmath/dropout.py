"""Dropout, inverted (Srivastava et al., 2014): after the activation, in training only.

Training: every unit is kept with probability 1 − p and scaled by 1/(1 − p), so its expectation is
unchanged:

    Y = X ⊙ D,   D = M / (1 − p),   M_si ~ Bernoulli(1 − p),   drawn from the generator passed in.

The derivative is the mask: dX = dY ⊙ D, and the per-sample Jacobian is diag(d_s). With the mask
fixed (the same generator state), the layer is linear in X, so a gradient check through it is exact.
Evaluation: Y = X (the identity). p = 0 is the identity in both modes (no number is drawn); p = 1 is
refused (every unit dropped, and 1/(1 − p) = 1/0). The mask is drawn in float64 whatever X's dtype,
so the same generator gives the same mask for float32 and float64.

Placeholders of the formula templates, beyond those of ``layers``: ``<D>`` (the scaled mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.backend import namespace
from nnmath.errors import SpecError
from nnmath.layers import EVALUATION, Formula, Mode, Rule, diagonal_jacobians

Array = Any

# Dropout in the derivations' notations (the same in both but for the order of an entry's indices):
# the scaled mask D is drawn once, so the layer is the product Y = X ⊙ D and its derivative is D.
DROPOUT_RULES: dict[str, Rule] = {
    "forward": Rule(
        tex=r"<X> \odot <D>",
        code="<X> * <D>",
        element=r"<Y>_{<si>} = <X>_{<si>} <D>_{<si>}",
    ),
    "dX": Rule(
        tex=r"<dY> \odot <D>",
        code="<dY> * <D>",
        element=r"\frac{\partial <C>}{\partial <X>_{<si>}} = \frac{\partial <C>}{\partial <Y>_{<si>}}"
        r" <D>_{<si>}",
    ),
}


def dropout_formula(p: float) -> Formula:
    """Dropout's formula record for the probability p, typeset with its number."""
    scale = rf"\tfrac{{1}}{{1 - {p:g}}}"
    return Formula(
        forward=(
            rf"<Y> = <X> \odot <D>, \quad <D> = {scale}\, M, \quad M_{{si}} \sim"
            rf" \operatorname{{Bernoulli}}(1 - {p:g}) \quad \text{{(training; evaluation: }} <Y> = <X>)"
        ),
        forward_element=r"<Y>_{si} = <X>_{si} <D>_{si}",
        backward=r"<dX> = <dY> \odot <D>",
        backward_element=(
            r"\frac{\partial L}{\partial <X>_{si}} = \frac{\partial L}{\partial <Y>_{si}} <D>_{si}"
        ),
        jacobian=r"\frac{\partial y}{\partial x} = \operatorname{diag}(d) \quad \text{(the mask of the sample)}",
        text=(
            f"Y = X ⊙ D, D = M/(1 − {p:g}), M ~ Bernoulli(1 − {p:g}) (training), Y = X (evaluation);"
            "  dX = dY ⊙ D, J = diag(d)"
        ),
        notations={"row": DROPOUT_RULES, "column": DROPOUT_RULES},
    )


def check_probability(p: float) -> float:
    """p as a float in [0, 1), or SpecError saying why not."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not math.isfinite(p):
        raise SpecError(f"dropout probability must be a number in [0, 1), got {p!r}")
    if not 0.0 <= p < 1.0:
        reason = " (p = 1 would drop every unit and scale by 1/0)" if p == 1 else ""
        raise SpecError(f"dropout probability must be in [0, 1), got {p:g}{reason}")
    return float(p)


@dataclass(frozen=True)
class DropoutCache:
    """The scaled mask D of a training pass, or None for the identity (then X, for its shape)."""

    D: Array | None
    X: Array | None = None


class Dropout:
    """Y = X ⊙ D in training (D the mask scaled by 1/(1 − p)), Y = X in evaluation."""

    name = "dropout"
    params: dict[str, Array] = {}

    def __init__(self, p: float) -> None:
        self.p = check_probability(p)
        self.tex = dropout_formula(self.p)

    def describe(self) -> str:
        """``"dropout(p)"``, for summaries."""
        return f"dropout({self.p:g})"

    def mask(self, X: Array, rng: np.random.Generator | None) -> Array:
        """D = M/(1 − p), M_si = 1 with probability 1 − p, drawn from ``rng`` in X's dtype."""
        if not isinstance(rng, np.random.Generator):
            raise SpecError(
                "dropout in training mode draws its mask from a random generator: pass "
                "rng=np.random.default_rng(seed) (there is no global one)"
            )
        keep = rng.random(tuple(X.shape)) >= self.p
        D = keep / (1.0 - self.p)
        if isinstance(X, np.ndarray):
            return D.astype(X.dtype)
        import array_api_compat

        return namespace(X).asarray(D, dtype=X.dtype, device=array_api_compat.device(X))

    def apply(self, X: Array, D: Array) -> tuple[Array, DropoutCache]:
        """Y = X ⊙ D for a given scaled mask D (what a gradient check or a test fixes)."""
        return X * D, DropoutCache(D)

    def forward(self, X: Array, mode: Mode = EVALUATION) -> tuple[Array, DropoutCache]:
        """Training: Y = X ⊙ D with a fresh mask from ``mode.rng``; evaluation (or p = 0): Y = X."""
        if not mode.training or self.p == 0.0:
            return X, DropoutCache(None, X)
        return self.apply(X, self.mask(X, mode.rng))

    def vjp(self, cache: DropoutCache, dY: Array) -> tuple[Array, dict[str, Array]]:
        """dX = dY ⊙ D (dY itself for the identity)."""
        return (dY if cache.D is None else dY * cache.D), {}

    def jacobian(self, cache: DropoutCache) -> Array:
        """diag(d_s) per sample, (S, n, n); the identity's I when no mask was drawn."""
        if cache.D is not None:
            return diagonal_jacobians(cache.D)
        xp = namespace(cache.X)
        return diagonal_jacobians(xp.ones_like(cache.X))

    def param_jacobians(self, cache: DropoutCache) -> dict[str, Array]:
        """{}: dropout has no parameters."""
        return {}
