"""scikit-learn's MLP estimators on the nnmath engine: ``MLPClassifier`` and ``MLPRegressor``.

A drop-in replacement for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``: swap the
import and a script runs unchanged. Every constructor parameter has scikit-learn's name, default
and meaning (``learning_rate`` is the schedule's name, ``learning_rate_init`` the step size,
``alpha`` the L2 strength divided by each batch's total sample weight), and so does every fitted
attribute (``coefs_``, ``intercepts_``, ``loss_``, ``loss_curve_``, ``best_loss_``,
``validation_scores_``, ``t_``, …), ``sample_weight``, ``partial_fit``, ``warm_start``, early
stopping, multilabel targets and the ``ConvergenceWarning``. The same ``random_state`` draws
scikit-learn's initial weights, row order and validation split.

The training is nnmath's: the stochastic solvers run ``nnmath.training.fit`` (its fast float32
step with ``dtype="auto"``), and ``solver='lbfgs'`` runs scipy's L-BFGS-B on the engine's cost
and gradient.

nnmath's extras: ``dtype`` (default :data:`DEFAULT_DTYPE`, None: scikit-learn's dtypes and
arithmetic, its model for the same ``random_state`` to round-off; ``"auto"``: the same dtypes,
trained in float32 by the stochastic solvers, faster), more
``activation`` values (``gelu``, ``softplus``, ``leaky_relu(s)``, ``elu(α)``), more ``solver``
values (``rmsprop``, ``adamw``), more ``learning_rate`` schedules (``cosine``, ``step``,
``exponential``), and the fitted network itself, ``model_`` (an :class:`nnmath.network.MLP`, for
``nnmath derive``, gradient checks and the model file). docs/sklearn.md maps every parameter and
attribute.
"""

from __future__ import annotations

try:
    import sklearn  # noqa: F401
except ImportError as error:  # pragma: no cover - scikit-learn is in the data extra
    raise ImportError(
        "nnmath.sklearn needs scikit-learn ≥ 1.6; install it with 'pip install nnmath[data]'"
    ) from error

from nnmath.sklearn.classifier import MLPClassifier
from nnmath.sklearn.parameters import DEFAULT_DTYPE, ParameterError
from nnmath.sklearn.regressor import MLPRegressor

__all__ = ["DEFAULT_DTYPE", "MLPClassifier", "MLPRegressor", "ParameterError"]
