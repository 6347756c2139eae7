"""The estimators' hyperparameters: scikit-learn's, checked by scikit-learn's own constraints.

Every parameter of ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` keeps its name,
default and meaning. nnmath's extras widen three of them with values scikit-learn does not have,
and add one parameter:

- ``activation``: also nnmath's own activations, with a parameter where one is taken
  (``"gelu"``, ``"softplus"``, ``"leaky_relu(0.1)"``, ``"elu(0.5)"``; ``"sigmoid"`` = ``"logistic"``);
- ``solver``: also ``"rmsprop"`` and ``"adamw"`` (stochastic, stepping by ``learning_rate_init``);
- ``learning_rate``: also nnmath's schedules ``"cosine"``, ``"step"``, ``"exponential"`` over
  ``max_iter`` epochs, for any stochastic solver;
- ``dtype``: the precision of the network and of its training (:func:`network_dtype`,
  :func:`training_dtype`). None (the default, :data:`DEFAULT_DTYPE`): scikit-learn's rule for
  both, the network and its arithmetic in the input's floating dtype (float64 input:
  scikit-learn's model for the same ``random_state``, to round-off). ``"auto"``: the network in
  the input's floating dtype (float64, or float32 for float32 X, so ``coefs_`` and
  ``predict_proba`` have scikit-learn's dtypes), trained by the stochastic solvers in float32
  (``fit(dtype="auto")``, the fast path), by lbfgs in the network's dtype.
  ``"float64"``, ``"float32"``: the network and its arithmetic in that dtype;
- ``dropout``: None (the default) or p in [0, 1): inverted dropout after every hidden layer's
  activation, in training only (a stochastic solver; L-BFGS needs a deterministic cost);
- ``batch_norm``: False (the default) or True: batch normalization between every hidden layer's
  linear map and its activation (the batch's statistics in training, running ones in predict);
- ``class_weight`` (the classifier): None, "balanced" (n_samples / (n_classes · count of the
  class), scikit-learn's ``compute_sample_weight``) or {class: weight}; each row's weight
  multiplies its ``sample_weight``, so the cost is the weighted mean Σ w ℓ / Σ w.

A bad value raises :class:`ParameterError`, which is both scikit-learn's ``InvalidParameterError``
(so code written for scikit-learn catches it) and nnmath's ``SpecError``, with scikit-learn's
message.
"""

from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.neural_network import MLPRegressor as _ScikitLearnMLP
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from nnmath.activations import ACTIVATIONS
from nnmath.errors import SpecError
from nnmath.spec import LayerSpec, parse_spec

DEFAULT_DTYPE: str | None = None
"""The estimators' default ``dtype`` (one constant, so that it is chosen in one place): None,
scikit-learn's rule and arithmetic (the network and its training in the input's floating dtype),
so that scikit-learn's estimator checks all hold; ``dtype="auto"`` is the fast float32 training,
one option away."""

SCIKIT_LEARN_ACTIVATIONS = ("identity", "logistic", "tanh", "relu")
STOCHASTIC_SOLVERS = ("sgd", "adam", "rmsprop", "adamw")
SCIKIT_LEARN_SCHEDULES = ("constant", "invscaling", "adaptive")
NNMATH_SCHEDULES = ("cosine", "step", "exponential")
DTYPES = ("float64", "float32")
AUTO = "auto"

CONSTRAINTS: dict[str, list[Any]] = {
    **_ScikitLearnMLP._parameter_constraints,
    "activation": [str],  # checked by hidden_layers: scikit-learn's four and nnmath's own
    "solver": [StrOptions({"lbfgs", *STOCHASTIC_SOLVERS})],
    "learning_rate": [StrOptions({*SCIKIT_LEARN_SCHEDULES, *NNMATH_SCHEDULES})],
    "dtype": [StrOptions({AUTO, *DTYPES}), type, np.dtype, None],
    "dropout": [Interval(numbers.Real, 0, 1, closed="left"), None],
    "batch_norm": ["boolean"],
    "class_weight": [dict, list, StrOptions({"balanced"}), None],
}
"""scikit-learn's own constraints (read from its MLPRegressor, ``loss`` included), widened for
nnmath's extra values, plus ``dtype``."""


class ParameterError(SpecError, InvalidParameterError):
    """A hyperparameter scikit-learn would refuse (same message), or a bad value of an extra."""


def validate(estimator: Any) -> None:
    """Check every hyperparameter of ``estimator``, as scikit-learn does at the start of fit."""
    name = type(estimator).__name__
    params = estimator.get_params(deep=False)
    try:
        validate_parameter_constraints(CONSTRAINTS, params, caller_name=name)
    except InvalidParameterError as error:
        hint = ""
        if isinstance(params["learning_rate"], numbers.Real) and "'learning_rate'" in str(error):
            hint = " The step size is learning_rate_init; learning_rate names the schedule."
        raise ParameterError(str(error) + hint) from None
    hidden_layers(params["hidden_layer_sizes"], params["activation"], name)
    network_dtype(params["dtype"])
    if params["dropout"] and params["solver"] == "lbfgs":
        raise ParameterError(
            f"dropout={params['dropout']} needs a stochastic solver ('sgd', 'adam', 'rmsprop', "
            "'adamw'): lbfgs minimises one deterministic cost, and dropout draws new masks"
        )


def hidden_sizes(sizes: Any) -> list[int]:
    """hidden_layer_sizes as a list; scikit-learn's ValueError unless every size is > 0."""
    sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
    if any(not isinstance(s, numbers.Integral) or s <= 0 for s in sizes):
        raise ParameterError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


def hidden_layers(sizes: Any, activation: Any, caller: str = "MLP") -> tuple[LayerSpec, ...]:
    """The hidden LayerSpecs: one per size, each with the activation (nnmath's name for it)."""
    sizes = hidden_sizes(sizes)
    known = ", ".join(repr(a) for a in (*SCIKIT_LEARN_ACTIVATIONS, *ACTIVATIONS) if a != "sigmoid")
    message = (
        f"The 'activation' parameter of {caller} must be a str among {{{known}}} (with a "
        f"parameter where one is taken, as in 'leaky_relu(0.1)'). Got {activation!r} instead."
    )
    if not isinstance(activation, str) or activation.strip().lower().startswith("softmax"):
        raise ParameterError(message)
    try:
        layers = parse_spec("-".join(["1", *(f"{s}{activation.strip()}" for s in [1, *sizes])]))
    except SpecError:
        raise ParameterError(message) from None
    return layers.layers[1:]


def with_modifiers(
    hidden: tuple[LayerSpec, ...], batch_norm: bool, dropout: float | None
) -> tuple[LayerSpec, ...]:
    """The hidden layers with batch norm (before the activation) and dropout (after it)."""
    return tuple(replace(layer, batch_norm=bool(batch_norm), dropout=dropout) for layer in hidden)


def network_dtype(dtype: Any) -> np.dtype | None:
    """The network's dtype for the ``dtype`` parameter: float64 or float32, or None to follow the
    input's floating dtype ("auto" and None: scikit-learn's rule)."""
    if dtype is None or _is_auto(dtype):
        return None
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ParameterError(
            f"The 'dtype' parameter must be 'auto', 'float64', 'float32' or None (the input's "
            f"floating dtype, as scikit-learn does). Got {dtype!r} instead."
        )
    return resolved


def training_dtype(dtype: Any, network: np.dtype, solver: str) -> str:
    """The dtype a solver computes in: float32 for ``dtype="auto"`` with a stochastic solver
    (``fit``'s "auto", its fast float32 path); otherwise the network's own. lbfgs keeps the
    network's dtype under "auto": scipy's L-BFGS-B stops when the cost falls by less than
    2.2·10⁻⁹ of itself, finer than float32 resolves (6·10⁻⁸)."""
    if _is_auto(dtype) and solver in STOCHASTIC_SOLVERS:
        return "float32"
    return np.dtype(network).name


def _is_auto(dtype: Any) -> bool:
    """True for the string "auto" (a NumPy dtype is never compared with a string)."""
    return isinstance(dtype, str) and dtype == AUTO
