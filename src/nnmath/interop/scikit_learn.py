"""scikit-learn round trip: a fitted MLP estimator as an nnmath network or model file, and back.

scikit-learn's ``coefs_[l]`` (n_in, n_out) is nnmath's W⁽ˡ⁺¹⁾ᵀ and ``intercepts_[l]`` its b⁽ˡ⁺¹⁾
(see :mod:`nnmath.sklearn.layout`), so the weights copy across transposed; ``logistic`` is
nnmath's ``sigmoid``. Both directions accept scikit-learn's own ``MLPClassifier`` /
``MLPRegressor`` and nnmath's drop-in twins (:mod:`nnmath.sklearn`).

- :func:`from_sklearn` (fitted estimator → :class:`~nnmath.network.MLP`): the network, so that
  ``nnmath derive``, the worked example and the gradient checks can explain it;
- :func:`estimator_model` / :func:`save_estimator` (→ ``TrainedModel`` / a ``.nnm`` file): with the
  class labels (as text), the feature names and the loss the estimator minimised, for
  ``nnmath predict``;
- :func:`to_sklearn` (``MLP`` or a loaded model file → a fitted scikit-learn estimator). A model
  file's standardization is folded into the weights, so the estimator takes raw features:
  (x − m)/s feeding W, b is x feeding W diag(1/s), b − W (m/s); and a regressor's output
  y = a s_y + m_y is the last layer diag(s_y) W, s_y ⊙ b + m_y. A two-unit softmax becomes
  scikit-learn's one logistic unit: softmax(z)₁ = σ(z₁ − z₀), so W = W₁ − W₀, b = b₁ − b₀.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from nnmath.errors import SpecError
from nnmath.losses import BinaryCrossEntropy, CrossEntropy, SquaredError
from nnmath.modelfile import TrainedModel, save_model
from nnmath.network import MLP
from nnmath.spec import LayerSpec, NetworkSpec

try:
    from sklearn.base import is_classifier
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils.validation import check_is_fitted
except ImportError as error:  # pragma: no cover - scikit-learn is in the data extra
    raise ImportError(
        "the scikit-learn bridge needs scikit-learn; install it with 'pip install nnmath[data]'"
    ) from error

from nnmath.sklearn import layout
from nnmath.sklearn.parameters import hidden_layers

SCIKIT_LEARN_HIDDEN = {
    "identity": "identity",
    "sigmoid": "logistic",
    "tanh": "tanh",
    "relu": "relu",
}
OUTPUTS = ("softmax", "sigmoid", "identity")

# ---- scikit-learn → nnmath ------------------------------------------------------------------------


def from_sklearn(estimator: Any) -> MLP:
    """The network of a fitted MLP estimator: W⁽ˡ⁺¹⁾ = coefs_[l]ᵀ, b⁽ˡ⁺¹⁾ = intercepts_[l] (copies);
    an nnmath estimator's own network (``model_``, batch norm and dropout included), copied."""
    check_is_fitted(estimator)
    own = getattr(estimator, "model_", None)
    if isinstance(own, MLP) and own.mode_dependent:
        return own.copy()
    coefs, intercepts = estimator.coefs_, estimator.intercepts_
    out = {"logistic": "sigmoid"}.get(estimator.out_activation_, estimator.out_activation_)
    if out not in OUTPUTS:
        raise SpecError(
            f"the estimator's output activation {estimator.out_activation_!r} has no nnmath "
            f"layer; nnmath reads {', '.join(OUTPUTS)} outputs (logistic is sigmoid)"
        )
    sizes = [c.shape[1] for c in coefs[:-1]]
    hidden = hidden_layers(sizes, estimator.activation) if sizes else ()
    spec = NetworkSpec(coefs[0].shape[0], (*hidden, LayerSpec(coefs[-1].shape[1], out)))
    return layout.from_coefs(spec, coefs, intercepts, np.asarray(coefs[0]).dtype)


def _is_multilabel(estimator: Any) -> bool:
    logistic = getattr(estimator, "out_activation_", None) == "logistic"
    return is_classifier(estimator) and logistic and estimator.n_outputs_ > 1


def estimator_model(estimator: Any) -> TrainedModel:
    """A model file's contents for a fitted estimator: network, loss, task, class and feature names.

    Classes are stored as text (``str(label)``), in the order of ``classes_``. Multilabel
    classifiers have no model-file form (a model file's classes are mutually exclusive).
    """
    network = from_sklearn(estimator)
    if _is_multilabel(estimator):
        raise SpecError(
            "a model file holds one label per sample; this estimator was fitted on multilabel "
            "targets (independent sigmoid outputs). Keep it as an estimator, or export it with "
            "export_onnx"
        )
    names = getattr(estimator, "feature_names_in_", None)
    common = {
        "feature_names": None if names is None else [str(n) for n in names],
        "metadata": {"estimator": f"{type(estimator).__module__}.{type(estimator).__name__}"},
    }
    if not is_classifier(estimator):
        return TrainedModel(network, SquaredError(), "regression", **common)
    loss = CrossEntropy() if network.output == "softmax" else BinaryCrossEntropy()
    classes = [str(c) for c in estimator.classes_]
    return TrainedModel(network, loss, "classification", class_names=classes, **common)


def save_estimator(estimator: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator as a ``.nnm`` model file (atomically), for ``nnmath predict``."""
    return save_model(estimator_model(estimator), path)


# ---- nnmath → scikit-learn ------------------------------------------------------------------------


def _hidden_activation(spec: NetworkSpec) -> str:
    """scikit-learn's name for the one activation all hidden layers share."""
    names = {(layer.activation, layer.parameter) for layer in spec.layers[:-1]}
    if len(names) > 1 or any(n not in SCIKIT_LEARN_HIDDEN or p is not None for n, p in names):
        raise SpecError(
            f"scikit-learn's MLP has one activation for every hidden layer, among "
            f"{', '.join(SCIKIT_LEARN_HIDDEN)} (sigmoid is its logistic); spec {spec} has "
            f"{', '.join(sorted(str(layer) for layer in spec.layers[:-1]))}"
        )
    return SCIKIT_LEARN_HIDDEN[names.pop()[0]] if names else "relu"


def _folded_weights(model: MLP | TrainedModel) -> tuple[NetworkSpec, list[list[np.ndarray]]]:
    """(spec, [[W, b], …]) in float64, with a model file's standardizers folded into the layers."""
    network = model.network if isinstance(model, TrainedModel) else model
    weights = [[np.array(L.W, np.float64), np.array(L.b, np.float64)] for L in network.linears]
    if isinstance(model, TrainedModel) and model.standardizer is not None:
        mean, scale = model.standardizer.mean, model.standardizer.scale
        W, b = weights[0]
        weights[0] = [W / scale, b - W @ (mean / scale)]  # W (x − m)/s + b
    if isinstance(model, TrainedModel) and model.target_standardizer is not None:
        mean, scale = model.target_standardizer.mean, model.target_standardizer.scale
        W, b = weights[-1]
        weights[-1] = [scale[:, None] * W, scale * b + mean]  # (W a + b) s + m
    return network.spec, weights


def _estimator(spec: NetworkSpec, classes: Any) -> tuple[Any, Any]:
    """An unfitted scikit-learn estimator for the spec, and (classifiers) its label binarizer."""
    hidden = {
        "hidden_layer_sizes": tuple(layer.size for layer in spec.layers[:-1]),
        "activation": _hidden_activation(spec),
    }
    output, n_out = spec.output, spec.n_out
    if output == "identity":
        return MLPRegressor(**hidden), None
    if output not in ("softmax", "sigmoid"):
        raise SpecError(
            f"scikit-learn's MLPs end in softmax, logistic (sigmoid) or identity units; spec "
            f"{spec} ends in {output}"
        )
    binarizer = LabelBinarizer()
    if output == "sigmoid" and n_out > 1:  # multilabel: classes_ are the columns 0 … k − 1
        if classes is not None:
            raise SpecError("a multilabel network's classes are its output columns 0 … k − 1")
        return MLPClassifier(**hidden), binarizer.fit(np.eye(n_out, dtype=int))
    n_classes = 2 if n_out == 1 else n_out
    classes = np.arange(n_classes) if classes is None else np.asarray(classes)
    if len(classes) != n_classes or len(np.unique(classes)) != n_classes:
        raise SpecError(
            f"spec {spec} has {n_classes} classes, got the labels {list(classes)}: give one "
            "distinct label per class"
        )
    return MLPClassifier(**hidden), binarizer.fit(classes)


def _scikit_learn_output(
    spec: NetworkSpec, W: np.ndarray, b: np.ndarray, classes: Any
) -> tuple[np.ndarray, np.ndarray]:
    """The last layer in scikit-learn's form: output units in the sorted order of ``classes_``
    (a σ unit for the second of two unsorted labels flips sign: 1 − σ(z) = σ(−z)), and a
    two-unit softmax as one logistic unit, softmax(z)₁ = σ(z₁ − z₀)."""
    if classes is not None:
        order = np.argsort(np.asarray(classes), kind="stable")
        if spec.output == "softmax":
            W, b = W[order], b[order]
        elif order[0] == 1:
            W, b = -W, -b
    if spec.output == "softmax" and spec.n_out == 2:
        W, b = W[1:] - W[:1], b[1:] - b[:1]
    return W, b


def to_sklearn(model: MLP | TrainedModel, *, classes: Any = None) -> Any:
    """A fitted scikit-learn ``MLPClassifier`` (softmax or sigmoid output) or ``MLPRegressor``
    (identity output) computing the same function, in float64.

    ``classes`` labels the output units (default: a model file's class names, else 0 … C − 1;
    scikit-learn keeps them sorted, and the units are reordered to match); a model file's
    standardization is folded into the weights (see the module docstring).
    """
    spec, weights = _folded_weights(model)
    if isinstance(model, TrainedModel) and classes is None and model.task == "classification":
        classes = model.class_names
    estimator, binarizer = _estimator(spec, classes)
    if binarizer is not None and binarizer.y_type_ != "multilabel-indicator":
        weights[-1] = list(_scikit_learn_output(spec, *weights[-1], classes))
    estimator.coefs_ = [W.T.copy() for W, _ in weights]
    estimator.intercepts_ = [b for _, b in weights]
    estimator.n_features_in_ = spec.n_in
    estimator.n_layers_ = len(spec.layers) + 1
    estimator.n_outputs_ = weights[-1][1].size
    estimator.n_iter_, estimator.t_ = 0, 0
    estimator.out_activation_ = "identity"
    if binarizer is not None:
        multiclass = binarizer.y_type_ == "multiclass"
        estimator.out_activation_ = "softmax" if multiclass else "logistic"
        estimator._label_binarizer = binarizer
        estimator.classes_ = binarizer.classes_
    names = model.feature_names if isinstance(model, TrainedModel) else None
    if names is not None:
        estimator.feature_names_in_ = np.asarray(names, dtype=object)
    return estimator
