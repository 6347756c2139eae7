"""solver='lbfgs': scipy's L-BFGS-B on the engine's cost and gradient over all parameters at once.

θ = [vec W⁽¹⁾, b⁽¹⁾, vec W⁽²⁾, b⁽²⁾, …] (float64, as scipy works), and f(θ) = C, ∇f(θ) = ∂C/∂θ from
the engine (:func:`nnmath.sklearn.engine.cost_and_gradients`: the whole training set is one batch,
with scikit-learn's L2 term α ‖W‖² / (2 Σ w)). As in scikit-learn: ``maxiter = max_iter``,
``maxfun = max_fun``, ``gtol = tol``; ``n_iter_`` = min(iterations, max_iter); ``loss_`` = f at the
solution; a ``ConvergenceWarning`` when scipy reports no convergence. (L-BFGS is unchanged by the
order of the coordinates, so packing W or scikit-learn's Wᵀ gives the same iterates.)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from nnmath.network import MLP
from nnmath.sklearn.engine import cost_and_gradients

Array = Any


def pack(arrays: list[Array]) -> np.ndarray:
    """θ: the arrays flattened (row-major) and joined, in float64."""
    return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64)


def unpack(theta: np.ndarray, params: list[Array]) -> None:
    """Write θ back into the parameter arrays, in place (cast to their dtype)."""
    start = 0
    for p in params:
        np.copyto(p, theta[start : start + p.size].reshape(p.shape), casting="unsafe")
        start += p.size


def fit_lbfgs(est: Any, model: MLP, X: Array, T: Array, sample_weight: Array | None) -> None:
    """Minimise the cost over ``model``'s parameters in place; set ``n_iter_`` and ``loss_``."""
    params, loss, alpha = model.parameters(), est._loss(), float(est.alpha)

    def cost(theta: np.ndarray) -> tuple[float, np.ndarray]:
        unpack(theta, params)
        value, grads = cost_and_gradients(model, X, T, loss, alpha, sample_weight)
        return value, pack(grads)

    result = scipy.optimize.minimize(
        cost,
        pack(params),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
    )
    est.n_iter_ = min(int(result.nit), int(est.max_iter))
    if result.status != 0:
        message = (
            f"lbfgs failed to converge after {est.n_iter_} iteration(s) (status={result.status}):"
            f"\n{result.message}\n"
        )
        if est.n_iter_ == est.max_iter:
            message += (
                f"\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={est.max_iter})."
            )
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    est.loss_ = float(result.fun)
    unpack(result.x, params)
