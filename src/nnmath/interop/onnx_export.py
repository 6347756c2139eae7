"""ONNX export: a network, a whole model file with its preprocessing, or a fitted scikit-learn MLP
estimator, as an ONNX graph.

The graph is the forward pass written with ONNX operators, one Gemm per Linear layer and one
operator per activation:

    z = (x − mean) / scale                    Sub, Div      (when there is an input standardizer)
    Y = X Wᵀ + b                              Gemm(transB=1) with W of shape (out, in), as stored
    relu, sigmoid, tanh, softplus             Relu, Sigmoid, Tanh, Softplus
    leaky_relu(s), elu(α)                     LeakyRelu(alpha=s), Elu(alpha=α)
    softmax                                   Softmax(axis=1)
    gelu (tanh form)                          Gelu(approximate="tanh") from opset 20; below that
                                              ½ z (1 + tanh(√(2/π)(z + 0.044715 z³))) from
                                              Mul, Add and Tanh
    identity                                  nothing
    batch norm (evaluation mode)              BatchNormalization with γ, β, the running mean and
                                              the running variance + ε (epsilon=0: an attribute
                                              would round ε to float32)
    dropout                                   nothing (the identity at inference)
    a registered activation h(z)              its expression from Add, Mul, Pow, Exp, Log, Tanh,
                                              Sigmoid, Sin, Cos (a square root is a Pow)
    y = a · scale + mean                      Mul, Add      (regression with a target standardizer)
    P = [1 − p, p]                            Sub, Concat   (a classifier's single sigmoid unit)
    label = classes[argmax P]                 ArgMax, Gather (classifiers; multilabel: P > ½)

The input is ``X`` (N, n_in) with N free, the output ``Y`` (and ``label`` for a classifier: a
model file or a fitted scikit-learn MLP estimator). Standardization is baked in, so the
graph takes raw features. Two limits of ONNX and onnxruntime to know: operator attributes are
float32, so LeakyRelu's and Elu's α are rounded to float32 even in a float64 graph, and
onnxruntime's CPU kernels for LeakyRelu, Elu and Softplus exist in float32 only (float32 is the
default here).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.activations import GELU_CUBIC, SQRT_2_OVER_PI, registered_expressions
from nnmath.backend import dtype_name, to_numpy
from nnmath.errors import DataError, ShapeError, SpecError
from nnmath.interop import ONNX_DEFAULT_OPSET, ONNX_GELU_OPSET, ONNX_MIN_OPSET
from nnmath.modelfile import TrainedModel, atomic_write, nnmath_version
from nnmath.network import MLP

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError as error:  # pragma: no cover - onnx is an optional extra
    raise ImportError(
        "ONNX export needs the onnx package; install it with 'pip install nnmath[onnx]' "
        "(or 'pip install onnx onnxruntime')"
    ) from error

DEFAULT_OPSET = ONNX_DEFAULT_OPSET
GELU_OPSET = ONNX_GELU_OPSET
MIN_OPSET = ONNX_MIN_OPSET
ELEMENT_TYPES = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}

_SIMPLE_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus"}


class _Graph:
    """The nodes and constants of a graph under construction, with fresh names for tensors."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def constant(self, stem: str, value: Any) -> str:
        """An initializer holding ``value`` in the graph's dtype; returns its name."""
        name = self.name(stem)
        array = np.asarray(to_numpy(value), dtype=self.dtype)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str, **attributes: Any) -> str:
        """Append one node and return the name of its output."""
        output = self.name(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=output, **attributes))
        return output


def _gelu_from_parts(graph: _Graph, z: str) -> str:
    """½ z (1 + tanh(√(2/π)(z + 0.044715 z³))) from Mul, Add and Tanh (any opset)."""
    z3 = graph.op("Mul", [z, graph.op("Mul", [z, z], "z_squared")], "z_cubed")
    inner = graph.op(
        "Add", [z, graph.op("Mul", [z3, graph.constant("k", GELU_CUBIC)], "kz3")], "u0"
    )
    u = graph.op("Mul", [inner, graph.constant("c", SQRT_2_OVER_PI)], "u")
    one_plus = graph.op("Add", [graph.op("Tanh", [u], "tanh_u"), graph.constant("one", 1.0)], "1p")
    half_z = graph.op("Mul", [z, graph.constant("half", 0.5)], "half_z")
    return graph.op("Mul", [half_z, one_plus], "gelu")


_EXPRESSION_OPS = {
    "exp": "Exp",
    "log": "Log",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "sin": "Sin",
    "cos": "Cos",
}


def _expression(graph: _Graph, name: str, expression: str, z: str) -> str:
    """A registered activation's expression h(z) as ONNX nodes; SpecError where one has no operator."""
    from nnmath.expressions import ExpressionError, fold, parse

    ops: dict[str, Any] = {
        f: (lambda a, op=op: graph.op(op, [a], name)) for f, op in _EXPRESSION_OPS.items()
    }
    ops.update(
        number=lambda value: graph.constant("c", value),
        add=lambda a, b: graph.op("Add", [a, b], name),
        mul=lambda a, b: graph.op("Mul", [a, b], name),
        pow=lambda a, b: graph.op("Pow", [a, b], name),
    )
    try:
        return fold(parse(expression), z, ops)
    except ExpressionError as error:
        raise SpecError(f"activation {name!r} = {expression!r} has no ONNX form: {error}") from None


def _activation(graph: _Graph, name: str, parameter: float | None, z: str, opset: int) -> str:
    """The node(s) for one activation applied to tensor ``z``; returns the output's name."""
    registered = registered_expressions([name])
    if registered:
        return _expression(graph, name, registered[name], z)
    if name == "identity":
        return z
    if name in _SIMPLE_OPS:
        return graph.op(_SIMPLE_OPS[name], [z], name)
    if name == "leaky_relu":
        return graph.op("LeakyRelu", [z], name, alpha=0.01 if parameter is None else parameter)
    if name == "elu":
        return graph.op("Elu", [z], name, alpha=1.0 if parameter is None else parameter)
    if name == "softmax":
        return graph.op("Softmax", [z], name, axis=1)
    if name == "gelu":
        if opset >= GELU_OPSET:
            return graph.op("Gelu", [z], name, approximate="tanh")
        return _gelu_from_parts(graph, z)
    raise SpecError(f"activation {name!r} has no ONNX export")


def _moments(standardizer: Any, size: int, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, scale) of a standardizer (anything with 1-D ``mean`` and ``scale``), checked."""
    if standardizer is None:
        return None
    mean = np.asarray(to_numpy(standardizer.mean), dtype=np.float64).reshape(-1)
    scale = np.asarray(to_numpy(standardizer.scale), dtype=np.float64).reshape(-1)
    if mean.shape != (size,) or scale.shape != (size,):
        raise ShapeError(
            f"the {what} standardizer has {mean.size} means and {scale.size} scales, but the "
            f"network has {size} {what} columns; export the standardizer fitted for this model"
        )
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise DataError(f"the {what} standardizer needs finite means and finite, positive scales")
    return mean, scale


def _check_options(dtype: Any, opset: int) -> str:
    """The dtype's name, after checking it and the opset."""
    name = dtype_name(dtype)
    if name not in ELEMENT_TYPES:
        raise SpecError(f"ONNX export writes float32 or float64, got dtype {name}")
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise SpecError(
            f"opset {opset!r} is outside what this exporter writes with onnx {onnx.__version__}: "
            f"choose {MIN_OPSET} … {newest}"
        )
    return name


@dataclass
class _Source:
    """What a graph computes: the network, the transforms around it and the classes it names."""

    network: MLP
    standardizer: Any = None
    target_standardizer: Any = None
    two_columns: bool = False  # one sigmoid unit p, written as the columns [1 − p, p]
    labels: np.ndarray | None = None  # a classifier's labels, for the 'label' output
    multilabel: bool = False  # independent sigmoid units: the label output is Y > ½
    metadata: dict[str, str] = field(default_factory=dict)


def _model_file_source(model: TrainedModel) -> _Source:
    """A model file: its standardizers, and its class names (or 0 … C − 1) as labels."""
    metadata = {"task": model.task}
    for key in ("class_names", "feature_names", "target_name"):
        value = getattr(model, key)
        if value is not None:
            metadata[key] = json.dumps(value)
    if model.task != "classification":
        std_in, std_out = model.standardizer, model.target_standardizer
        return _Source(model.network, std_in, std_out, metadata=metadata)
    names = model.class_names
    labels = np.arange(model.n_classes) if names is None else np.asarray(names, dtype=object)
    two_columns = model.network.n_out == 1
    return _Source(model.network, model.standardizer, None, two_columns, labels, False, metadata)


def _estimator_source(estimator: Any) -> _Source:
    """A fitted scikit-learn MLP (scikit-learn's or nnmath's): its network and ``classes_``."""
    from nnmath.interop.scikit_learn import from_sklearn

    network = from_sklearn(estimator)
    classes = getattr(estimator, "classes_", None)
    metadata = {"task": "regression" if classes is None else "classification"}
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        metadata["feature_names"] = json.dumps([str(n) for n in names])
    if classes is None:
        return _Source(network, metadata=metadata)
    metadata["class_names"] = json.dumps([str(c) for c in classes])
    multilabel = network.output == "sigmoid" and network.n_out > 1
    labels = np.asarray(classes)
    if labels.dtype.kind not in "iub":  # text (or other objects): a string tensor
        labels = labels.astype(str).astype(object)
    return _Source(network, None, None, network.n_out == 1, labels, multilabel, metadata)


def _source(model: Any, standardizer: Any, target_standardizer: Any) -> _Source:
    if isinstance(model, TrainedModel):
        source = _model_file_source(model)
    elif isinstance(model, MLP):
        source = _Source(model)
    elif hasattr(model, "coefs_") or hasattr(model, "get_params"):
        source = _estimator_source(model)
    else:
        raise SpecError(
            f"to_onnx takes an nnmath MLP, a TrainedModel (a loaded model file) or a fitted "
            f"scikit-learn MLP estimator, not {type(model).__name__}"
        )
    if standardizer is not None:
        source.standardizer = standardizer
    if target_standardizer is not None:
        source.target_standardizer = target_standardizer
    return source


def _forward_nodes(graph: _Graph, source: _Source, opset: int) -> int:
    """The nodes from 'X' to 'Y' (standardize, layers, unstandardize, two columns); Y's width."""
    network, current = source.network, "X"
    moments = _moments(source.standardizer, network.n_in, "input")
    if moments is not None:
        mean, scale = moments
        current = graph.op("Sub", [current, graph.constant("mean", mean)], "centered")
        current = graph.op("Div", [current, graph.constant("scale", scale)], "standardized")
    groups = zip(network.linears, network.batch_norms, network.spec.layers, strict=True)
    for index, (linear, norm, layer) in enumerate(groups, 1):
        W = graph.constant(f"W{index}", linear.W)
        b = graph.constant(f"b{index}", linear.b)
        current = graph.op("Gemm", [current, W, b], f"z{index}", transB=1)
        if norm is not None:  # evaluation mode: the running statistics
            current = _batch_norm(graph, norm, index, current)
        current = _activation(graph, layer.activation, layer.parameter, current, opset)
        # dropout is the identity at inference: no node
    target_moments = _moments(source.target_standardizer, network.n_out, "target")
    if target_moments is not None:
        mean, scale = target_moments
        current = graph.op("Mul", [current, graph.constant("target_scale", scale)], "scaled")
        current = graph.op("Add", [current, graph.constant("target_mean", mean)], "targets")
    n_out = network.n_out
    if source.two_columns:  # P = [1 − p, p] for one sigmoid unit
        complement = graph.op("Sub", [graph.constant("one", np.ones(1)), current], "complement")
        current = graph.op("Concat", [complement, current], "probabilities", axis=1)
        n_out = 2
    graph.nodes[-1].output[0] = "Y"  # the last node writes the graph's output directly
    return n_out


def _batch_norm(graph: _Graph, norm: Any, index: int, z: str) -> str:
    """BatchNormalization (inference) with γ, β, the running mean, and the running variance with ε
    already added (epsilon=0): ONNX attributes are float32, and ε = 1e-5 rounded to float32 would
    move a float64 graph's outputs by ~1e-13."""
    inputs = [
        graph.constant(f"gamma{index}", norm.gamma),
        graph.constant(f"beta{index}", norm.beta),
        graph.constant(f"running_mean{index}", norm.running_mean),
        graph.constant(f"running_var_plus_eps{index}", to_numpy(norm.running_var) + norm.eps),
    ]
    return graph.op("BatchNormalization", [z, *inputs], f"bn{index}", epsilon=0.0)


def _label_nodes(graph: _Graph, source: _Source) -> onnx.ValueInfoProto:
    """'label' from 'Y': labels[argmax_c Y] (one per row), or [Y > ½] as 0/1 (multilabel)."""
    if source.multilabel:
        half = graph.constant("half", 0.5)
        above = graph.op("Greater", ["Y", half], "above_half")
        graph.nodes.append(helper.make_node("Cast", [above], ["label"], to=TensorProto.INT64))
        return helper.make_tensor_value_info(
            "label", TensorProto.INT64, ["N", source.network.n_out]
        )
    index = graph.op("ArgMax", ["Y"], "class_index", axis=1, keepdims=0)
    labels = source.labels
    text = labels.dtype == object
    if not text:
        labels = labels.astype(np.int64)
    name = graph.name("labels")
    graph.initializers.append(numpy_helper.from_array(labels, name))
    graph.nodes.append(helper.make_node("Gather", [name, index], ["label"], axis=0))
    element = TensorProto.STRING if text else TensorProto.INT64
    return helper.make_tensor_value_info("label", element, ["N"])


def to_onnx(
    model: MLP | TrainedModel | Any,
    *,
    standardizer: Any = None,
    target_standardizer: Any = None,
    opset: int = DEFAULT_OPSET,
    dtype: Any = np.float32,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """The ONNX model of a network's forward pass, checked with ``onnx.checker``.

    - An :class:`~nnmath.network.MLP`: the graph computes ``MLP.predict``, after (x − mean)/scale
      when ``standardizer`` (anything with 1-D ``mean`` and ``scale``) is given, and followed by
      a · scale + mean when ``target_standardizer`` is given.
    - A :class:`~nnmath.modelfile.TrainedModel` (a loaded ``.nnm`` file): its own standardizers are
      baked in and the graph computes the file's ``predict_proba`` (classification: one column per
      class, so a single sigmoid unit p becomes [1 − p, p]) or ``predict`` (regression, in the
      data's units), from raw features. Class, feature and target names go into the metadata.
    - A fitted scikit-learn ``MLPClassifier`` / ``MLPRegressor`` (scikit-learn's or
      :mod:`nnmath.sklearn`'s): ``Y`` is its ``predict_proba`` (two columns for two classes) or
      ``predict`` (as (N, n_outputs)).

    A classifier's graph has a second output, ``label``: its ``predict``, the class label of the
    largest probability (int64 for integer labels, else strings), or for a multilabel classifier
    the (N, k) 0/1 matrix [Y > ½]. ``dtype`` is float32 (what every runtime runs) or float64;
    ``metadata`` adds string key/value pairs (``spec`` and ``standardized_input`` are always
    written).
    """
    name = _check_options(dtype, opset)
    source = _source(model, standardizer, target_standardizer)
    graph = _Graph(np.dtype(name))
    n_out = _forward_nodes(graph, source, opset)
    element = ELEMENT_TYPES[name]
    outputs = [helper.make_tensor_value_info("Y", element, ["N", n_out])]
    if source.labels is not None or source.multilabel:
        outputs.append(_label_nodes(graph, source))
    network = source.network
    onnx_graph = helper.make_graph(
        graph.nodes,
        "nnmath_mlp",
        [helper.make_tensor_value_info("X", element, ["N", network.n_in])],
        outputs,
        initializer=graph.initializers,
        doc_string=f"nnmath MLP {network.spec}",
    )
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(
        onnx_graph,
        opset_imports=opsets,
        producer_name="nnmath",
        producer_version=nnmath_version(),
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    standardized = _moments(source.standardizer, network.n_in, "input") is not None
    properties = {"spec": str(network.spec), "standardized_input": str(standardized).lower()}
    properties.update(source.metadata)
    properties.update(metadata or {})
    helper.set_model_props(onnx_model, properties)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export_onnx(
    model: MLP | TrainedModel | Any,
    path: str | os.PathLike[str],
    *,
    standardizer: Any = None,
    target_standardizer: Any = None,
    opset: int = DEFAULT_OPSET,
    dtype: Any = np.float32,
    metadata: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """Write ``model`` (an MLP, a TrainedModel or a fitted MLP estimator) as an ONNX file at
    ``path`` and return the ONNX model.

    See :func:`to_onnx` for the options and the outputs. The file is written only after
    ``onnx.checker`` passed, atomically (a temporary sibling renamed over ``path``), so a failed
    export leaves any existing file untouched.
    """
    onnx_model = to_onnx(
        model,
        standardizer=standardizer,
        target_standardizer=target_standardizer,
        opset=opset,
        dtype=dtype,
        metadata=metadata,
    )
    data = onnx_model.SerializeToString()
    atomic_write(path, lambda file: file.write(data))
    return onnx_model


__all__ = ["DEFAULT_OPSET", "export_onnx", "to_onnx"]
