"""Spec strings: the grammar, round trips, and errors that list what is valid."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnmath.activations import ACTIVATIONS
from nnmath.errors import SpecError, WrongTypeError
from nnmath.layers import Elementwise, Softmax
from nnmath.network import MLP
from nnmath.spec import ACTIVATION_NAMES, LayerSpec, NetworkSpec, parse_spec


def test_the_notes_network():
    spec = parse_spec("3-10relu-6relu-3softmax")
    assert spec.n_in == 3 and spec.n_out == 3
    assert spec.sizes == (3, 10, 6, 3)
    assert [layer.activation for layer in spec.layers] == ["relu", "relu", "softmax"]
    assert spec.output == "softmax"
    assert str(spec) == "3-10relu-6relu-3softmax"


@pytest.mark.parametrize(
    ("text", "layers"),
    [
        ("4-8tanh-1", [LayerSpec(8, "tanh"), LayerSpec(1, "identity")]),
        (
            "2-16leaky_relu(0.1)-1sigmoid",
            [LayerSpec(16, "leaky_relu", 0.1), LayerSpec(1, "sigmoid")],
        ),
        ("2-3elu(1.5e-1)-1", [LayerSpec(3, "elu", 0.15), LayerSpec(1, "identity")]),
        ("3-4logistic-2linear", [LayerSpec(4, "sigmoid"), LayerSpec(2, "identity")]),
        (" 3-4ReLU-2SoftMax ", [LayerSpec(4, "relu"), LayerSpec(2, "softmax")]),
        ("5-7lrelu(0.2)-2", [LayerSpec(7, "leaky_relu", 0.2), LayerSpec(2, "identity")]),
        ("2-3leaky_relu(1e-05)-1", [LayerSpec(3, "leaky_relu", 1e-5), LayerSpec(1, "identity")]),
    ],
)
def test_grammar(text, layers):
    spec = parse_spec(text)
    assert list(spec.layers) == layers
    assert parse_spec(str(spec)) == spec


def test_every_registered_activation_is_a_spec_name():
    assert set(ACTIVATION_NAMES) == {*ACTIVATIONS, "softmax"}


@st.composite
def specs(draw):
    n_in = draw(st.integers(1, 50))
    layers = []
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(ACTIVATION_NAMES))
        parameter = None
        if name in ("leaky_relu", "elu") and draw(st.booleans()):
            parameter = draw(st.sampled_from([1e-05, 0.05, 0.1, 0.25, 0.5]))
        layers.append(LayerSpec(draw(st.integers(1, 50)), name, parameter))
    return NetworkSpec(n_in, tuple(layers))


@given(specs())
def test_round_trip_and_model_layers(spec):
    assert parse_spec(str(spec)) == spec
    model = MLP(spec)
    for layer, activation in zip(spec.layers, model.activations, strict=True):
        if layer.activation == "softmax":
            assert isinstance(activation, Softmax)
        else:
            assert isinstance(activation, Elementwise)
            assert activation.name == layer.activation
    assert model.parameter_count == sum(
        a * b + b for a, b in zip(spec.sizes[:-1], spec.sizes[1:], strict=True)
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "needs an input size and at least one layer"),
        ("3", "needs an input size and at least one layer"),
        ("x-3relu", "must start with the input size"),
        ("0-3relu", "must start with the input size"),
        ("3-4foo-2", "unknown activation 'foo'"),
        ("3-relu4-2", "is not SIZE[ACTIVATION]"),
        ("3-4tanh-", "is not SIZE[ACTIVATION]"),
        ("3--4", "is not SIZE[ACTIVATION]"),
        ("3-4relu(x)-2", "is not SIZE[ACTIVATION]"),
    ],
)
def test_bad_specs_list_the_valid_activations(text, fragment):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    message = str(info.value)
    assert fragment in message
    assert "valid activations" in message
    for name in ACTIVATION_NAMES:
        assert name in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("3-0relu-2", "has size 0"),
        ("3-4relu(0.1)-2", "relu takes no parameter"),
        ("3-4softmax(2)", "softmax takes no parameter"),
    ],
)
def test_other_spec_errors_say_what_is_wrong(text, fragment):
    with pytest.raises(SpecError, match=fragment.replace("(", r"\(")):
        parse_spec(text)


def test_out_of_range_parameters_are_refused_when_building():
    with pytest.raises(SpecError, match="slope must be in"):
        MLP("3-4leaky_relu(1.5)-2")
    with pytest.raises(SpecError, match="alpha must be positive"):
        MLP("3-4elu(0)-2")


# ---- modifiers: batch norm and dropout ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "layers"),
    [
        (
            "64-128relu+bn+dropout(0.3)-10softmax",
            [LayerSpec(128, "relu", None, True, 0.3), LayerSpec(10, "softmax")],
        ),
        (
            "4-8tanh+bn-2+bn",
            [LayerSpec(8, "tanh", None, True), LayerSpec(2, "identity", None, True)],
        ),
        ("4-8+dropout(0)-2", [LayerSpec(8, dropout=0.0), LayerSpec(2)]),
        ("4-8elu(0.5)+BN+Dropout(1e-05)-2", [LayerSpec(8, "elu", 0.5, True, 1e-5), LayerSpec(2)]),
        (
            "4-8relu+dropout(0.123456789)-2",
            [LayerSpec(8, "relu", dropout=0.123456789), LayerSpec(2)],
        ),
    ],
)
def test_modifiers(text, layers):
    spec = parse_spec(text)
    assert list(spec.layers) == layers
    assert parse_spec(str(spec)) == spec
    assert spec.mode_dependent


def test_the_canonical_string_is_the_one_written():
    text = "64-128relu+bn+dropout(0.3)-10softmax"
    assert str(parse_spec(text)) == text
    assert not parse_spec("3-4relu-2").mode_dependent


@st.composite
def specs_with_modifiers(draw):
    spec = draw(specs())
    layers = []
    for position, layer in enumerate(spec.layers, 1):
        dropout = None
        if position < len(spec.layers) and draw(st.booleans()):
            dropout = draw(st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.999, 1 / 3]))
        layers.append(
            LayerSpec(layer.size, layer.activation, layer.parameter, draw(st.booleans()), dropout)
        )
    return NetworkSpec(spec.n_in, tuple(layers))


@given(specs_with_modifiers())
def test_round_trip_with_modifiers_and_the_model_follows(spec):
    assert parse_spec(str(spec)) == spec
    model = MLP(spec)
    for layer, norm, dropout in zip(spec.layers, model.batch_norms, model.dropouts, strict=True):
        assert (norm is not None) == layer.batch_norm
        assert (dropout is None) == (layer.dropout is None)
        assert dropout is None or dropout.p == layer.dropout
    assert model.parameter_count == sum(
        a * b + b + (2 * b if layer.batch_norm else 0)
        for a, b, layer in zip(spec.sizes[:-1], spec.sizes[1:], spec.layers, strict=True)
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("3-4relu+bm-2", "modifier 'bm' is unknown; valid modifiers: bn, dropout(p)"),
        ("3-4relu+-2", "modifier '' is unknown; valid modifiers: bn, dropout(p)"),
        ("3-4relu+bn+bn-2", "appears twice"),
        ("3-4relu+dropout(0.1)+dropout(0.2)-2", "appears twice"),
        ("3-4relu+dropout(0.1)+bn-2", "in the order they act, '+bn' (before the activation)"),
        ("3-4relu+dropout-2", "dropout needs its probability"),
        ("3-4relu+bn(2)-2", "bn takes no parameter"),
        ("3-4relu+dropout(1)-2", "p = 1 would drop every unit"),
        ("3-4relu+dropout(1.5)-2", "must be in [0, 1)"),
        ("3-4relu-2softmax+dropout(0.5)", "output layer: dropout there would zero predictions"),
        ("3-4relu(x)+bn-2", "is not SIZE[ACTIVATION][+MODIFIER"),
    ],
)
def test_bad_modifiers_say_what_is_wrong(text, fragment):
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert fragment in str(info.value)


def test_an_unreadable_layer_lists_activations_and_modifiers():
    with pytest.raises(SpecError) as info:
        parse_spec("3-relu+bn-2")
    assert "valid modifiers: bn, dropout(p)" in str(info.value)
    assert "valid activations" in str(info.value)


# ---- ASCII, sizes and types -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("²-3", "'²' (SUPERSCRIPT TWO); a spec is plain ASCII"),
        ("٣-3", "ARABIC-INDIC DIGIT THREE"),
        ("3-1０relu-2", "FULLWIDTH DIGIT ZERO"),
        (
            "3−10relu−3",
            "joins its sizes with '−' (MINUS SIGN); use the ASCII hyphen '-': '3-10relu-3'",
        ),
        ("3–10relu–3", "EN DASH"),
        ("3-10relu-3ｓoftmax", "plain ASCII"),
        ("3-" + "9" * 31 + "relu-2", "a size of 31 digits"),
        ("3-" + "9" * 5000 + "relu-2", "a size of 5000 digits"),  # int() itself refuses 4300
    ],
)
def test_specs_are_ascii_and_sizes_are_text_of_sensible_length(text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_spec(text)
    assert fragment in str(caught.value)


def test_a_spec_is_a_string() -> None:
    with pytest.raises(WrongTypeError, match="a network spec is a string"):
        parse_spec(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):  # a TypeError, as scikit-learn conventions expect
        MLP(None)  # type: ignore[arg-type]


def test_the_parameter_count_is_known_before_anything_is_built() -> None:
    assert (
        parse_spec("3-10relu-6relu-3softmax").parameter_count
        == MLP("3-10relu-6relu-3softmax").parameter_count
    )
    assert parse_spec("4-8tanh+bn-2").parameter_count == MLP("4-8tanh+bn-2").parameter_count
    assert parse_spec("3-99999999999999999999relu-3").parameter_count == 7 * 10**20 - 4
