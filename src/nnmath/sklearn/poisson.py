"""MLPRegressor(loss='poisson'): half the Poisson deviance with a log link, on the network's output z.

scikit-learn's Poisson regressor predicts μ = e^z (its output activation ``exp``) and minimises half
the Poisson deviance per sample, summed over the targets:

    ℓ(z, y) = Σ_j [ y_j ln(y_j / μ_j) − y_j + μ_j ],   μ = e^z,   (0 · ln 0 = 0)
    ∂ℓ/∂z   = μ − y

so the network here ends in identity units that compute z = ln μ (the log link), and the
estimator's ``predict`` returns μ = e^z. As with the fused output pairs of ``nnmath.losses``, the
loss takes z itself: y ln(y/μ) = y ln y − y z needs no ln μ, so no ln 0 can occur.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import xlogy

from nnmath.layers import Formula

Array = Any


@dataclass(frozen=True)
class PoissonDeviance:
    """ℓ = Σ_j [y_j ln y_j − y_j z_j − y_j + e^{z_j}] on log-means z;  ∂ℓ/∂z = e^z − y."""

    name: str = "poisson"
    tex: Formula = Formula(
        forward=r"\ell = \mathbf{1}^\top\left(<t> \odot \ln <t> - <t> \odot <a> - <t> + e^{<a>}\right)",
        forward_element=(
            r"\ell_s = \sum_{j} \left(<T>_{sj} \ln <T>_{sj} - <T>_{sj} <A>_{sj} - <T>_{sj}"
            r" + e^{<A>_{sj}}\right)"
        ),
        backward=r"\frac{\partial \ell}{\partial <A>} = e^{<A>} - <T>",
        backward_element=r"\frac{\partial \ell_s}{\partial <A>_{sj}} = e^{<A>_{sj}} - <T>_{sj}",
        jacobian=r"\frac{\partial \ell}{\partial a} = (e^{a} - t)^\top",
        text="ℓ = Σ (y ln y − y z − y + e^z), z = ln μ;  ∂ℓ/∂z = e^z − y",
    )

    def value(self, A: Array, T: Array) -> Array:
        """ℓ_s = Σ_j (t_sj ln t_sj − t_sj a_sj − t_sj + e^{a_sj}) on the log-means A = ln μ
        (0 ln 0 = 0): A, T (S, C) → (S,)."""
        return np.sum(xlogy(T, T) - T * A - T + np.exp(A), axis=1)

    def grad(self, A: Array, T: Array) -> Array:
        """∂ℓ_s/∂a_s = e^{a_s} − t_s row by row: (S, C), no 1/S."""
        return np.exp(A) - T
