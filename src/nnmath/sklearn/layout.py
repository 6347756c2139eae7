"""scikit-learn's MLP layout and nnmath's: names, weight shapes and the initial weights.

scikit-learn stores layer l as ``coefs_[l]`` of shape (n_in, n_out) and ``intercepts_[l]`` and
computes A⁽ˡ⁾ = f(A⁽ˡ⁻¹⁾ coefs_[l] + intercepts_[l]); nnmath's Linear computes Y = X Wᵀ + b with W of
shape (n_out, n_in). So ``coefs_[l] = W⁽ˡ⁺¹⁾ᵀ`` and ``intercepts_[l] = b⁽ˡ⁺¹⁾``: the same numbers.

Activation names differ in one place: scikit-learn's ``logistic`` is nnmath's ``sigmoid``. Its
output activations ``softmax``, ``logistic`` and ``identity`` are nnmath's ``softmax``, ``sigmoid``
and identity; its ``exp`` (the Poisson regressor's μ = e^z) is an identity layer computing the log
mean z here, with e^z taken by the estimator's ``predict`` (:mod:`nnmath.sklearn.poisson`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnmath.network import MLP
from nnmath.spec import LayerSpec, NetworkSpec

TO_NNMATH = {"logistic": "sigmoid", "exp": "identity"}


def nnmath_name(activation: str) -> str:
    """nnmath's name for a scikit-learn activation (``logistic`` → ``sigmoid``; the output ``exp``
    → identity, whose output is the log mean)."""
    return TO_NNMATH.get(activation, activation)


def network_spec(
    n_features: int, hidden: tuple[LayerSpec, ...], n_outputs: int, out_activation: str
) -> NetworkSpec:
    """n_features → the hidden layers → n_outputs units with scikit-learn's output activation."""
    return NetworkSpec(n_features, (*hidden, LayerSpec(n_outputs, nnmath_name(out_activation))))


def initial_weights(
    spec: NetworkSpec, activation: str, random_state: np.random.RandomState, dtype: np.dtype
) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn's initialisation (``_init_coef``), drawn in its order from ``random_state``.

    For each layer, W and b ~ U(−r, r) with r = √(f / (n_in + n_out)), f = 2 when the hidden
    ``activation`` is logistic and 6 otherwise (Glorot and Bengio); the coefficients are drawn first, as an
    (n_in, n_out) matrix, then the intercepts. The same random_state gives scikit-learn's weights.
    """
    factor = 2.0 if nnmath_name(activation) == "sigmoid" else 6.0
    weights = []
    for n_in, layer in zip(spec.sizes[:-1], spec.layers, strict=True):
        bound = math.sqrt(factor / (n_in + layer.size))
        coef = random_state.uniform(-bound, bound, (n_in, layer.size))
        intercept = random_state.uniform(-bound, bound, layer.size)
        weights.append((np.ascontiguousarray(coef.T, dtype=dtype), intercept.astype(dtype)))
    return weights


def coefs(model: MLP) -> list[Any]:
    """scikit-learn's ``coefs_``: each W⁽ˡ⁾ᵀ, (n_in, n_out), a view of the network's weights."""
    return [linear.W.T for linear in model.linears]


def intercepts(model: MLP) -> list[Any]:
    """scikit-learn's ``intercepts_``: each b⁽ˡ⁾, the network's own array."""
    return [linear.b for linear in model.linears]


def from_coefs(spec: NetworkSpec, coefs: list[Any], intercepts: list[Any], dtype: Any) -> MLP:
    """The MLP of ``spec`` with W⁽ˡ⁾ = coefs[l]ᵀ and b⁽ˡ⁾ = intercepts[l] (copied, in ``dtype``)."""
    weights = [
        (np.array(np.asarray(c).T, dtype=dtype, order="C"), np.array(b, dtype=dtype).reshape(-1))
        for c, b in zip(coefs, intercepts, strict=True)
    ]
    return MLP.from_weights(spec, weights)


def with_coefs(model: MLP, coefs: list[Any], intercepts: list[Any]) -> MLP:
    """A copy of ``model`` with new coefs_ and intercepts_ (see :func:`from_coefs`); batch norm's
    γ, β and running statistics are kept."""
    arrays = {name: np.array(value) for name, value in model.named_arrays().items()}
    for l, linear in enumerate(from_coefs(model.spec, coefs, intercepts, model.dtype).linears, 1):
        arrays[f"W{l}"], arrays[f"b{l}"] = linear.W, linear.b
    return MLP.from_arrays(model.spec, arrays)


def snapshot(model: MLP) -> dict[str, Any]:
    """Copies of every array of the network: W, b, and batch norm's γ, β and running statistics
    (restoring W, b, γ, β alone would pair the best weights with the last statistics)."""
    return {name: np.array(value, copy=True) for name, value in model.named_arrays().items()}


def restore(model: MLP, arrays: dict[str, Any]) -> None:
    """Put a :func:`snapshot` back into the network, in place."""
    current = model.named_arrays()
    for name, value in arrays.items():
        np.copyto(current[name], value)
