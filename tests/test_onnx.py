"""ONNX export: the graph passes onnx.checker, runs in onnxruntime and gives nnmath's outputs on the
same inputs, with standardization baked in; the file is written atomically.

Parametrised over the activation registry, so a new activation needs an ONNX operator here.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from oracles import ACTIVATION_CASES, ActivationCase, case_params

from nnmath.cli import main
from nnmath.datasets import Standardizer
from nnmath.errors import ShapeError, SpecError
from nnmath.interop import export_onnx
from nnmath.interop.onnx_export import DEFAULT_OPSET, GELU_OPSET, to_onnx
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel, load_model
from nnmath.network import MLP

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# onnxruntime's CPU kernels for these operators exist in float32 only.
FLOAT32_ONLY_IN_ORT = {"leaky_relu", "elu", "softplus"}


def run(onnx_model: object, X: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(["Y"], {"X": X})[0]


def data(n_in: int, rng: np.random.Generator, S: int = 11) -> np.ndarray:
    """Raw features on different scales and offsets, so that standardization matters."""
    return rng.normal(size=(S, n_in)) * rng.uniform(0.5, 20.0, n_in) + rng.uniform(-50, 50, n_in)


@pytest.mark.parametrize("opset", [DEFAULT_OPSET, GELU_OPSET])
@pytest.mark.parametrize("case", case_params(ACTIVATION_CASES))
def test_onnxruntime_matches_nnmath(case: ActivationCase, opset: int) -> None:
    rng = np.random.default_rng(0)
    model = MLP(f"4-7{case.id}-5{case.id}-3{case.id}", seed=1)
    X = data(4, rng)
    standardizer = Standardizer.fit(X)
    expected = model.predict(standardizer.transform(X))

    onnx_model = to_onnx(model, standardizer=standardizer, opset=opset)
    got = run(onnx_model, X.astype(np.float32))  # raw features in, standardization inside
    assert got.dtype == np.float32
    assert_allclose(got, expected, rtol=1e-4, atol=1e-5)

    if case.name not in FLOAT32_ONLY_IN_ORT and not (case.name == "gelu" and opset >= GELU_OPSET):
        got64 = run(to_onnx(model, standardizer=standardizer, opset=opset, dtype=np.float64), X)
        assert_allclose(got64, expected, rtol=1e-12, atol=1e-12)


def test_graph_structure_and_metadata() -> None:
    model = MLP("3-4leaky_relu(0.2)-2softmax")
    onnx_model = to_onnx(model, standardizer=Standardizer.fit(np.eye(3) * [1.0, 2.0, 3.0]))
    ops = [node.op_type for node in onnx_model.graph.node]
    assert ops == ["Sub", "Div", "Gemm", "LeakyRelu", "Gemm", "Softmax"]
    gemm = onnx_model.graph.node[2]
    assert {a.name: a.i for a in gemm.attribute} == {"transB": 1}
    assert onnx_model.opset_import[0].version == DEFAULT_OPSET
    props = {p.key: p.value for p in onnx_model.metadata_props}
    assert props == {"spec": "3-4leaky_relu(0.2)-2softmax", "standardized_input": "true"}
    assert [o.name for o in onnx_model.graph.output] == ["Y"]
    batch = onnx_model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N"  # any batch size


def test_gelu_below_opset_20_is_built_from_primitive_ops() -> None:
    ops = {node.op_type for node in to_onnx(MLP("2-3gelu-1"), opset=17).graph.node}
    assert "Gelu" not in ops and {"Tanh", "Mul", "Add"} <= ops
    ops20 = {node.op_type for node in to_onnx(MLP("2-3gelu-1"), opset=20).graph.node}
    assert "Gelu" in ops20


def test_export_writes_a_checked_file_atomically(tmp_path) -> None:
    model = MLP("3-5tanh-2sigmoid", seed=2)
    path = tmp_path / "model.onnx"
    returned = export_onnx(model, path, metadata={"class_names": "no,yes"})
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded == returned
    assert {p.key: p.value for p in loaded.metadata_props}["class_names"] == "no,yes"
    X = np.random.default_rng(3).normal(size=(4, 3))
    assert_allclose(run(loaded, X.astype(np.float32)), model.predict(X), rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temporary left


def test_failed_export_leaves_an_existing_file_untouched(tmp_path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous")
    with pytest.raises(SpecError, match="opset"):
        export_onnx(MLP("2-2"), path, opset=5)
    assert path.read_bytes() == b"previous"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"opset": 5}, SpecError, "choose 13"),
        ({"dtype": np.float16}, SpecError, "float32 or float64"),
        ({"standardizer": Standardizer(np.zeros(2), np.ones(2))}, ShapeError, "3 input columns"),
    ],
)
def test_bad_options_are_named(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        to_onnx(MLP("3-2"), **kwargs)


def test_export_creates_missing_folders(tmp_path) -> None:
    path = tmp_path / "new" / "model.onnx"
    export_onnx(MLP("3-2"), path)
    onnx.checker.check_model(str(path))


# ---- model files and the command line -----------------------------------------------------------


def trained_model(kind: str, rng: np.random.Generator) -> tuple[TrainedModel, np.ndarray]:
    """A model file's contents (random weights) and raw inputs for it."""
    X = data(5, rng, S=13)
    if kind == "multiclass":
        network, loss, names = MLP("5-8tanh-3softmax", seed=4), "cross-entropy", ["a", "b", "c"]
        model = TrainedModel(network, get_loss(loss), "classification", class_names=names)
    elif kind == "binary":
        network, loss = MLP("5-8relu-1sigmoid", seed=5), "binary-cross-entropy"
        model = TrainedModel(network, get_loss(loss), "classification", class_names=["no", "yes"])
    else:
        network = MLP("5-8tanh-2", seed=6)
        targets = Standardizer(mean=np.array([100.0, -3.0]), scale=np.array([15.0, 0.5]))
        model = TrainedModel(
            network, get_loss("mse"), "regression", target_name="y", target_standardizer=targets
        )
    model.standardizer = Standardizer.fit(X)
    return model, X


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_command_exports_a_model_file(kind: str, tmp_path, capsys) -> None:
    model, X = trained_model(kind, np.random.default_rng(7))
    model.save(tmp_path / "model.nnm")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "model.nnm"), str(out), "--float64"]) == 0
    assert "wrote" in capsys.readouterr().out

    loaded = load_model(tmp_path / "model.nnm")
    got = run(onnx.load(str(out)), X)  # raw features in
    if kind == "regression":
        expected = loaded.predict(X)  # in the data's units
    else:
        expected = loaded.predict_proba(X)  # one column per class, also for one sigmoid unit
        assert got.shape == (len(X), len(loaded.class_names))
    assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert props["task"] == model.task and props["standardized_input"] == "true"


def test_command_float32_default_and_opset(tmp_path) -> None:
    model, X = trained_model("multiclass", np.random.default_rng(8))
    model.save(tmp_path / "model.nnm")
    out = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "model.nnm"), str(out), "--opset", "20"]) == 0
    exported = onnx.load(str(out))
    assert exported.opset_import[0].version == 20
    got = run(exported, X.astype(np.float32))
    assert got.dtype == np.float32
    assert_allclose(got, model.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_command_errors_are_one_line(tmp_path, capsys) -> None:
    assert main(["export", str(tmp_path / "missing.nnm"), str(tmp_path / "m.onnx")]) == 3
    assert "nnmath export: error:" in capsys.readouterr().err
    model, _ = trained_model("binary", np.random.default_rng(9))
    model.save(tmp_path / "model.nnm")
    assert (
        main(["export", str(tmp_path / "model.nnm"), str(tmp_path / "m.onnx"), "--opset", "7"]) == 2
    )
    assert "choose 13" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


# ---- fitted scikit-learn MLP estimators: probabilities and labels ------------------------------


def fitted_estimator(library: str, kind: str) -> tuple[object, np.ndarray]:
    """A small fitted MLPClassifier/MLPRegressor (scikit-learn's or nnmath's) and raw inputs."""
    import warnings

    from sklearn import neural_network as reference
    from sklearn.exceptions import ConvergenceWarning

    from nnmath import sklearn as nnmath_sklearn

    rng = np.random.default_rng(11)
    X = rng.normal(size=(40, 3))
    score = X[:, 0] - X[:, 1]
    y = {
        "binary": np.where(score > 0, "up", "down"),
        "multiclass": np.digitize(score, [-0.5, 0.5]) * 10 + 5,  # integer labels 5, 15, 25
        "multilabel": np.column_stack([score > 0, X[:, 2] > 0]).astype(int),
        "regression": np.column_stack([score, X[:, 2]]),
    }[kind]
    module = reference if library == "sklearn" else nnmath_sklearn
    name = "MLPRegressor" if kind == "regression" else "MLPClassifier"
    settings = {"activation": "tanh", "solver": "lbfgs", "max_iter": 50}
    estimator = getattr(module, name)(hidden_layer_sizes=(6,), **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y), X


@pytest.mark.parametrize("library", ["sklearn", "nnmath"])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_estimator_exports_probabilities_and_labels(library: str, kind: str, tmp_path) -> None:
    estimator, X = fitted_estimator(library, kind)
    exported = export_onnx(estimator, tmp_path / "estimator.onnx", dtype=np.float64)
    session = ort.InferenceSession(
        str(tmp_path / "estimator.onnx"), providers=["CPUExecutionProvider"]
    )
    names = [output.name for output in exported.graph.output]
    got = session.run(None, {"X": X})
    if kind == "regression":
        assert names == ["Y"]
        assert_allclose(got[0], estimator.predict(X), rtol=1e-12, atol=1e-12)
        return
    assert names == ["Y", "label"]
    probabilities, labels = got
    assert_allclose(probabilities, estimator.predict_proba(X), rtol=1e-12, atol=1e-12)
    assert probabilities.shape[1] == (2 if kind == "binary" else len(estimator.classes_))
    np.testing.assert_array_equal(labels, estimator.predict(X))
    props = {p.key: p.value for p in exported.metadata_props}
    assert props["task"] == "classification"


def test_estimator_graph_in_float32(tmp_path) -> None:
    estimator, X = fitted_estimator("nnmath", "multiclass")
    onnx_model = to_onnx(estimator)  # float32 by default
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    probabilities, labels = session.run(["Y", "label"], {"X": X.astype(np.float32)})
    assert probabilities.dtype == np.float32 and labels.dtype == np.int64
    assert_allclose(probabilities, estimator.predict_proba(X), rtol=1e-4, atol=1e-5)


def test_model_file_classifier_graph_has_class_names_as_labels(tmp_path) -> None:
    model, X = trained_model("multiclass", np.random.default_rng(12))
    session = ort.InferenceSession(to_onnx(model, dtype=np.float64).SerializeToString())
    probabilities, labels = session.run(["Y", "label"], {"X": X})
    np.testing.assert_array_equal(labels, model.predict(X))  # names a, b, c
    assert_allclose(probabilities, model.predict_proba(X), rtol=1e-12)


def test_other_objects_are_refused() -> None:
    with pytest.raises(SpecError, match="fitted scikit-learn MLP estimator"):
        to_onnx(object())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_is_batchnormalization_and_dropout_vanishes(dtype) -> None:
    """The graph is evaluation mode: batch norm with the running statistics, dropout gone."""
    rng = np.random.default_rng(3)
    model = MLP("4-6relu+bn+dropout(0.3)-5tanh+bn-3softmax", seed=1)
    for norm in (n for n in model.batch_norms if n is not None):
        norm.gamma, norm.beta = rng.uniform(0.5, 1.5, norm.n), rng.normal(size=norm.n)
        norm.running_mean = rng.normal(size=norm.n)
        norm.running_var = rng.uniform(0.5, 2.0, norm.n)
    onnx_model = to_onnx(model, dtype=dtype)
    ops = [node.op_type for node in onnx_model.graph.node]
    assert ops == ["Gemm", "BatchNormalization", "Relu", "Gemm", "BatchNormalization", "Tanh",
                   "Gemm", "Softmax"]  # fmt: skip
    X = rng.normal(size=(9, 4))
    tolerance = 1e-6 if dtype == np.float32 else 1e-14
    assert_allclose(run(onnx_model, X.astype(dtype)), model.predict(X), rtol=0, atol=tolerance)
