"""Your own activation: the expression parsed safely, h′ derived by SymPy and checked before it is
accepted, then usable everywhere a built-in one is (specs, the backward pass, gradcheck, training,
model files, PyTorch and ONNX export); refused with its report when it is not differentiable or not
finite; and no string can make it run code.
"""

from __future__ import annotations

import importlib
import io
import json
import time
import zipfile

import numpy as np
import pytest
import sympy
import torch
from numpy.testing import assert_allclose, assert_array_equal
from oracles import tensor, torch_gradients

from nnmath import expressions
from nnmath.activations import (
    ACTIVATIONS,
    get_activation,
    register_activation,
    registered_expressions,
    unregister_activation,
)
from nnmath.backend import convert
from nnmath.derivation.evaluate import evaluate as evaluate_formula
from nnmath.errors import ModelFileError, SpecError
from nnmath.expressions import ExpressionError, check_derivative
from nnmath.gradcheck import check_gradients
from nnmath.layers import render
from nnmath.losses import get_loss
from nnmath.modelfile import HEADER_KEY, TrainedModel, load_model, save_model
from nnmath.network import MLP
from nnmath.spec import activation_names, parse_spec

# expression → the same function written with torch operations (the oracle for h and h′)
EXPRESSIONS = {
    "z * sigmoid(z)": lambda z: z * torch.sigmoid(z),
    "z * tanh(log(1 + exp(z)))": lambda z: z * torch.tanh(torch.log(1 + torch.exp(z))),
    "sin(z) + z / 2": lambda z: torch.sin(z) + z / 2,
    "sqrt(z**2 + 1) - 1": lambda z: torch.sqrt(z**2 + 1) - 1,
    "2**z - cos(pi * z) / (1 + z**2)": lambda z: 2**z - torch.cos(torch.pi * z) / (1 + z**2),
    "-z**3 / 3 + 0.25 * exp(-z**2)": lambda z: -(z**3) / 3 + 0.25 * torch.exp(-(z**2)),
}
NAMES = [f"mine_{chr(ord('a') + i)}" for i in range(len(EXPRESSIONS))]


@pytest.fixture
def registered():
    """Register names as the test asks; unregister them afterwards, so no other test sees them."""
    names: list[str] = []

    def register(name: str, expression: str, **options):
        activation = register_activation(name, expression, **options)
        names.append(name)
        return activation

    yield register
    for name in set(names):
        if name in ACTIVATIONS:
            unregister_activation(name)


@pytest.fixture
def swish(registered):
    return registered("swish", "z * sigmoid(z)")


# ---- h and h′ against torch autograd ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), list(zip(NAMES, EXPRESSIONS, strict=True)))
def test_h_and_its_derived_derivative_match_torch_autograd(registered, name, text):
    activation = registered(name, text)
    Z = np.linspace(-6.0, 6.0, 241).reshape(-1, 1) + np.array([[0.0, 0.013]])
    Z_t = tensor(Z, grad=True)
    Y_t = EXPRESSIONS[text](Z_t)
    Y_t.sum().backward()
    Y = activation.f(Z)
    assert Y.shape == Z.shape and Y.dtype == Z.dtype
    assert_allclose(Y, Y_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert_allclose(activation.df(Z, Y), Z_t.grad.numpy(), rtol=1e-11, atol=1e-12)
    float32 = activation.f(Z.astype(np.float32))
    assert float32.dtype == np.float32
    assert activation.df(Z.astype(np.float32), float32).dtype == np.float32


def test_the_formula_is_typeset_and_written_as_code_that_evaluates(swish):
    assert swish.tex == r"<z> \sigma\left(<z>\right)"
    assert swish.tex_derivative == (
        r"<z> \left(1 - \sigma\left(<z>\right)\right) \sigma\left(<z>\right) + \sigma\left(<z>\right)"
    )
    assert swish.text == "y = z*sigmoid(z);  y′ = z*(1 - sigmoid(z))*sigmoid(z) + sigmoid(z)"
    assert swish.expression == "z * sigmoid(z)" and not swish.kinked
    Z = np.random.default_rng(0).normal(size=(5, 3))
    # the derivations evaluate the code they print: the same numbers as the compiled functions
    assert_allclose(evaluate_formula(render(swish.code, z="Z"), {"Z": Z}), swish.f(Z), rtol=1e-15)
    assert_allclose(
        evaluate_formula(render(swish.code_derivative, z="Z"), {"Z": Z}),
        swish.df(Z, swish.f(Z)),
        rtol=1e-14,
    )


def test_a_power_of_z_is_braced_for_any_symbol():
    compiled = expressions.compile_expression("z**2 / 2")
    assert compiled.tex == r"\frac{{<z>}^{2}}{2}"
    assert render(compiled.tex, z="Z^{(1)}_{si}") == r"\frac{{Z^{(1)}_{si}}^{2}}{2}"


# ---- refused, with the report ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sqrt(z**2)", "is not differentiable everywhere"),  # SymPy: |z|, h′ = sign(z)
        ("exp(exp(z))", "h is not finite at z = 6.6"),
        ("log(z)", "z must stay positive"),
        ("sqrt(z)", "z must stay positive"),
        ("z**(1/3)", "z must stay positive"),
        ("1/z", "the denominator z reaches 0"),
        ("sin(z) / z", "the denominator z reaches 0"),
        ("tanh(z) / (z - 0.0123)", "between z = 0.001 and 0.05"),
        ("z**z", "must stay positive"),
    ],
)
def test_not_differentiable_or_not_finite_is_refused_with_its_report(text, fragment):
    with pytest.raises(ExpressionError) as info:
        register_activation("refused", text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    report = info.value.report
    assert report is not None and not report.passed
    assert any(fragment in problem for problem in report.problems)
    assert "refused:" in report.format()
    assert "refused" not in ACTIVATIONS


def test_a_wrong_derivative_is_caught_by_the_numerical_check(monkeypatch):
    """SymPy is trusted with nothing: hand the check a wrong h′ and it refuses it."""
    z = expressions.z
    monkeypatch.setattr(expressions, "derivative", lambda h: sympy.cos(z) * (1 + 1e-4))
    with pytest.raises(ExpressionError, match="disagrees with the central difference") as info:
        register_activation("wrong", "sin(z)")
    assert info.value.report.max_error > 1e-5
    # and the numerical check alone, on functions
    error, problems = check_derivative(np.sin, lambda x: np.cos(x) + 1e-3 * (x > 2))
    assert problems and "z = 2.05" in problems[0]
    error, problems = check_derivative(np.sin, np.cos)
    assert not problems and error < 1e-9


def test_an_accepted_expression_carries_its_report(swish):
    report = expressions.compile_expression("z * sigmoid(z)").report
    assert report.passed and report.points == expressions.CHECK_POINTS.size > 1000
    assert report.max_error < 1e-8
    assert "accepted" in report.format()


# ---- no string can run code ----------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('touch /tmp/nnmath-pwned')",
    "z.__class__",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: 0",
    "[z for z in ()]",
    "'a' * 10",
    "open('/etc/passwd')",
    "exec('1')",
    "eval('1')",
    "getattr(z, 'x')",
    "sympify('z')",
    "Symbol('z')",
    "z if z else 1",
    "z == 1",
    "z @ z",
    "z // 2",
    "Z",
    "E",
    "sin(z, 2)",
    "sin(x=z)",
    "sin(*z)",
    "9**9**9**9",
    "10**10**10",
    "z**(10**100)",
    "(10**6)**64**64",
    "2**2**2**2**2**2 * z",
    "exp(exp(exp(exp(exp(100))))) * z",
    "1e400 * z",
    "z / 0",
    "log(0) + z",
    "(" * 300 + "z" + ")" * 300,
    "z+" * 300 + "z",
    "3",
    "",
    "1j * z",
    "True * z",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_anything_outside_the_language_is_refused_quickly(text, monkeypatch, tmp_path):
    module = importlib.import_module("sympy.core.sympify")
    original = module.sympify

    def no_strings(a, *args, **kwargs):  # the language never hands a string to sympify
        if isinstance(a, str):
            raise AssertionError(f"sympify was given the string {a!r}")
        return original(a, *args, **kwargs)

    monkeypatch.setattr(module, "sympify", no_strings)
    monkeypatch.setattr(sympy, "sympify", no_strings)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        register_activation("hostile", text.replace("/tmp/nnmath-pwned", "pwned"))
    assert not (tmp_path / "pwned").exists()
    assert time.perf_counter() - start < 1.0
    assert str(info.value) and "\n" not in str(info.value)
    assert "hostile" not in ACTIVATIONS


def test_a_string_is_never_given_to_sympify_or_eval(registered, monkeypatch):
    import builtins

    module = importlib.import_module("sympy.core.sympify")
    original_sympify, original_eval = module.sympify, builtins.eval
    seen: list[str] = []

    def watch_sympify(a, *args, **kwargs):
        if isinstance(a, str):
            seen.append(a)
        return original_sympify(a, *args, **kwargs)

    def watch_eval(source, *args, **kwargs):
        seen.append(source if isinstance(source, str) else "<code>")
        return original_eval(source, *args, **kwargs)

    monkeypatch.setattr(module, "sympify", watch_sympify)
    monkeypatch.setattr(sympy, "sympify", watch_sympify)
    monkeypatch.setattr(builtins, "eval", watch_eval)
    registered("watched", "z * tanh(log(1 + exp(z))) + sin(z)")
    assert not [s for s in seen if "tanh" in s or "sin(" in s], seen


# ---- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["relu", "softmax", "bn", "dropout", "linear", "Swish", "swish2", "", "a" * 33]
)
def test_names_that_a_spec_cannot_hold_or_that_exist_are_refused(name):
    with pytest.raises(SpecError):
        register_activation(name, "z * sigmoid(z)")


def test_registering_again_and_replacing(registered, swish):
    assert registered("swish", "z*sigmoid(z)") is swish  # the same expression: nothing changes
    with pytest.raises(SpecError, match="already registered as 'z \\* sigmoid\\(z\\)'"):
        registered("swish", "z * tanh(z)")
    replaced = registered("swish", "z * tanh(z)", replace=True)
    assert get_activation("swish") is replaced and replaced.expression == "z * tanh(z)"
    with pytest.raises(SpecError, match="not a registered activation"):
        unregister_activation("relu")


# ---- everywhere a built-in activation works ------------------------------------------------------


def test_specs_networks_and_gradients(swish):
    assert "swish" in activation_names()
    spec = parse_spec("3-5swish+bn-4Swish-2softmax")
    assert str(spec) == "3-5swish+bn-4swish-2softmax"
    model = MLP("3-5swish-4swish-2", seed=0)
    X = np.random.default_rng(1).normal(size=(6, 3))
    T = np.random.default_rng(2).normal(size=(6, 2))
    loss = get_loss("mse")
    report = check_gradients(model, X, T, loss)
    assert report.passed, report.format()
    _, ours = model.loss_and_gradients(X, T, loss)
    # torch autograd through the same expression (the torch module of interop)
    from oracles import TORCH_ACTIVATIONS

    from nnmath.interop.pytorch import ExpressionActivation

    TORCH_ACTIVATIONS["swish"] = lambda p: ExpressionActivation("swish", "z * sigmoid(z)")
    try:
        theirs = torch_gradients(model, X, T, loss)
    finally:
        del TORCH_ACTIVATIONS["swish"]
    for a, b in zip([*ours.W, *ours.b, ours.X], [*theirs.W, *theirs.b, theirs.X], strict=True):
        assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    # and in another array library (the expression evaluated with its functions)
    _, moved = convert(model, torch).loss_and_gradients(torch.asarray(X), torch.asarray(T), loss)
    for a, b in zip(ours.flat(), moved.flat(), strict=True):
        assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-14)


def test_training_with_a_registered_activation(swish):
    from nnmath.training import fit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    model = MLP("2-16swish-2softmax", seed=0)
    history = fit(model, X, y, epochs=40, batch_size=20, learning_rate=0.02)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert np.mean(model.predict(X).argmax(axis=1) == y) > 0.9


def _rewrite_header(path, change) -> None:
    """Change the JSON header of a model file in place (the checksum covers the arrays only)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(bytes(arrays[HEADER_KEY]).decode())
    change(header)
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    assert zipfile.is_zipfile(path)


def test_a_model_file_stores_the_expression_and_checks_it_again(registered, tmp_path):
    registered("swish", "z * sigmoid(z)")
    model = MLP("3-5swish-2softmax", seed=0)
    X = np.random.default_rng(1).normal(size=(4, 3))
    path = save_model(
        TrainedModel(network=model, loss=get_loss("cross-entropy")), tmp_path / "m.nnm"
    )
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(bytes(archive[HEADER_KEY]).decode())
    assert header["activations"] == {"swish": "z * sigmoid(z)"}
    unregister_activation("swish")
    loaded = load_model(path)  # registers swish again, after checking it
    assert registered_expressions(["swish"]) == {"swish": "z * sigmoid(z)"}
    assert_array_equal(loaded.network.predict(X), model.predict(X))
    # a name registered as something else is not silently replaced
    registered("swish", "z * tanh(z)", replace=True)
    with pytest.raises(ModelFileError, match="already registered"):
        load_model(path)
    unregister_activation("swish")
    # an expression that fails its check (here: edited in the file) is refused, naming the file
    _rewrite_header(path, lambda h: h["activations"].update(swish="sqrt(z)"))
    with pytest.raises(ModelFileError, match="m.nnm.*must stay positive"):
        load_model(path)
    assert "swish" not in ACTIVATIONS
    _rewrite_header(path, lambda h: h["activations"].update(swish="__import__('os')"))
    with pytest.raises(ModelFileError, match="not a function of the language"):
        load_model(path)


def test_torch_export_and_back(registered):
    from nnmath.interop import from_torch, to_torch
    from nnmath.interop.pytorch import ExpressionActivation

    registered("swish", "z * sigmoid(z)")
    model = MLP("3-5swish-2swish", seed=0)
    module = to_torch(model)
    assert isinstance(module[1], ExpressionActivation) and "z * sigmoid(z)" in repr(module)
    X = np.random.default_rng(0).normal(size=(7, 3))
    assert_allclose(module(tensor(X)).detach().numpy(), model.predict(X), rtol=1e-13, atol=1e-15)
    unregister_activation("swish")
    back = from_torch(module)  # registers it again from the module
    assert str(back.spec) == "3-5swish-2swish" and "swish" in ACTIVATIONS
    assert_allclose(back.predict(X), model.predict(X), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_onnx_export_computes_the_expression(registered, dtype):
    import onnxruntime

    from nnmath.interop.onnx_export import to_onnx

    registered("mine", "z * sigmoid(z) + 0.1 * sin(3 * z) - sqrt(z**2 + 1) / (1 + exp(-z))")
    model = MLP("3-6mine-2", seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3))
    graph = to_onnx(model, dtype=dtype)
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (Y,) = session.run(None, {"X": X.astype(dtype)})
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(Y, model.predict(X), rtol=tolerance, atol=tolerance)
    ops = {node.op_type for node in graph.graph.node}
    assert {"Sigmoid", "Sin", "Exp", "Pow"} <= ops  # sqrt(u) is SymPy's u ** (1/2)


def test_the_initialisation_a_registered_activation_asks_for(registered):
    registered("smooth_relu", "log(1 + exp(z))", init="he_normal")
    W = MLP("400-300smooth_relu-2", seed=0).linears[0].W
    assert W.std() == pytest.approx(np.sqrt(2 / 400), rel=0.03)
    with pytest.raises(SpecError, match="unknown initialisation 'xavier'"):
        register_activation("other", "z", init="xavier")


@pytest.mark.parametrize(
    ("text", "spec", "loss"),
    [
        ("z * sigmoid(z)", "3-4mine-2", "mse"),
        ("z + sin(z)**2", "3-4mine-3softmax", "cross-entropy"),
    ],
)
def test_derivations_derive_and_verify_a_registered_activation(registered, text, spec, loss):
    from nnmath.derivation import derive, make_problem, to_markdown, verify

    registered("mine", text)
    derivation = derive(spec, get_loss(loss))
    assert verify(derivation, make_problem(derivation))
    results = [eq.result for section in derivation.sections for eq in section.equations]
    assert results and all(result is None or result.passed for result in results)
    # the document typesets h′ as SymPy derived it
    assert {"z * sigmoid(z)": r"\sigma\left(", "z + sin(z)**2": r"\sin{"}[text] in to_markdown(
        derivation
    )


def test_an_expression_without_onnx_operators_is_a_clear_error(registered, monkeypatch):
    from nnmath.interop import onnx_export

    registered("wave", "z + sin(z)")
    monkeypatch.delitem(onnx_export._EXPRESSION_OPS, "sin")  # as if ONNX had no Sin
    with pytest.raises(SpecError, match="activation 'wave' = 'z \\+ sin\\(z\\)' has no ONNX form"):
        onnx_export.to_onnx(MLP("2-3wave-1", seed=0))
