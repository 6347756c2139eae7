"""Elementwise activations: one record per function, h(z), h′(z, y) and its formula side by side.

An elementwise activation maps a batch Z ∈ ℝ^{S×n} to Y = h(Z) entry by entry, so its per-sample
Jacobian is diag(h′(z)) and its vector-Jacobian product is dZ = dY ⊙ h′(Z) (notes, 1d). The derivative
is given both z and y = h(z), so that it can use whichever is cheaper and exact: σ′ = y(1 − y),
tanh′ = 1 − y².

Formulas are LaTeX with two placeholders, ``<z>`` (the input entry) and ``<y>`` (the output entry),
so a derivation can substitute the symbols of its notation (``Z^{(2)}_{sj}``, ``a^{L}_j``, ...).

Kinks: ReLU′(0) = 0, leaky ReLU′(0) = slope and ELU′(0) = α, that is, at z = 0 every kinked
function takes its left-hand derivative, as PyTorch does.

Softmax is not elementwise (each output depends on the whole row); it lives in ``layers``.

Your own activation joins the same table: ``register_activation("swish", "z * sigmoid(z)")`` parses
the expression safely, lets SymPy derive h′, checks it numerically and compiles both (see
``nnmath.expressions``; needs the optional extra ``nnmath[symbolic]``). From then on the name works
wherever a built-in one does: specs, gradient checks, training, model files (which store the
expression and re-check it on load) and export.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nnmath.backend import namespace
from nnmath.errors import SpecError
from nnmath.initializers import INITIALIZERS

Array = Any
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


@dataclass(frozen=True)
class Activation:
    """An elementwise function h with its derivative and formulas.

    ``f(Z) -> Y``; ``df(Z, Y) -> h′(Z)``; ``tex`` and ``tex_derivative`` typeset y = h(z) and h′(z);
    ``kinked`` marks functions whose derivative jumps at z = 0 (gradient checks must avoid the kink);
    ``parameter`` is the one hyperparameter some functions take (leaky ReLU's slope, ELU's α);
    ``code`` and ``code_derivative`` state h(z) and h′(z, y) once more in the derivations' safe NumPy
    subset (placeholders ``<z>``, ``<y>``), so that a derivation evaluates the formula it prints.
    ``expression`` is the text a registered activation was given (empty for the built-in ones).
    """

    name: str
    f: Callable[[Array], Array]
    df: Callable[[Array, Array], Array]
    tex: str
    tex_derivative: str
    text: str
    kinked: bool = False
    parameter: float | None = None
    init: str = "glorot_uniform"
    aliases: tuple[str, ...] = field(default=())
    code: str = ""
    code_derivative: str = ""
    expression: str = ""

    @property
    def label(self) -> str:
        """The name as written in a spec string, with its parameter when it has one."""
        return self.name if self.parameter is None else f"{self.name}({self.parameter:g})"


def _ones_like(Z: Array) -> Array:
    return namespace(Z).ones_like(Z)


def _sigmoid(Z: Array) -> Array:
    """σ(z) = 1 / (1 + e^{−z}), computed from e^{−|z|} so that no exponential overflows."""
    xp = namespace(Z)
    E = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def _softplus(Z: Array) -> Array:
    """softplus(z) = ln(1 + e^z) = max(z, 0) + ln(1 + e^{−|z|}), stable for any z."""
    xp = namespace(Z)
    return xp.maximum(Z, 0.0) + xp.log1p(xp.exp(-xp.abs(Z)))


def _gelu(Z: Array) -> Array:
    xp = namespace(Z)
    return 0.5 * Z * (1.0 + xp.tanh(SQRT_2_OVER_PI * (Z + GELU_CUBIC * Z**3)))


def _gelu_derivative(Z: Array, Y: Array) -> Array:
    """d/dz ½z(1 + tanh u) with u = √(2/π)(z + 0.044715 z³)."""
    xp = namespace(Z)
    T = xp.tanh(SQRT_2_OVER_PI * (Z + GELU_CUBIC * Z**3))
    du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * Z**2)
    return 0.5 * (1.0 + T) + 0.5 * Z * (1.0 - T * T) * du


def _mask(Z: Array) -> Array:
    """𝟙[z > 0] in Z's dtype."""
    return namespace(Z).astype(Z > 0, Z.dtype)


IDENTITY = Activation(
    name="identity",
    f=lambda Z: Z,
    df=lambda Z, Y: _ones_like(Z),
    tex=r"<z>",
    tex_derivative=r"1",
    text="y = z;  y′ = 1",
    code="<z>",
    code_derivative="ones_like(<z>)",
    aliases=("linear", ""),
)

SIGMOID = Activation(
    name="sigmoid",
    f=_sigmoid,
    df=lambda Z, Y: Y * (1.0 - Y),
    tex=r"\sigma(<z>) = \frac{1}{1 + e^{-<z>}}",
    tex_derivative=r"<y>\,(1 - <y>)",
    text="y = 1 / (1 + exp(−z));  y′ = y (1 − y)",
    code="1 / (1 + exp(-<z>))",
    code_derivative="<y> * (1 - <y>)",
    aliases=("logistic",),
)

TANH = Activation(
    name="tanh",
    f=lambda Z: namespace(Z).tanh(Z),
    df=lambda Z, Y: 1.0 - Y * Y,
    tex=r"\tanh(<z>) = \frac{e^{<z>} - e^{-<z>}}{e^{<z>} + e^{-<z>}}",
    tex_derivative=r"1 - <y>^{2}",
    text="y = tanh z;  y′ = 1 − y²",
    code="tanh(<z>)",
    code_derivative="1 - <y> ** 2",
)

RELU = Activation(
    name="relu",
    f=lambda Z: namespace(Z).maximum(Z, 0.0),
    df=lambda Z, Y: _mask(Z),
    tex=r"\max(0, <z>)",
    tex_derivative=r"\mathbb{1}[<z> > 0]",
    text="y = max(0, z);  y′ = 1 if z > 0 else 0",
    code="maximum(0, <z>)",
    code_derivative="<z> > 0",
    kinked=True,
    init="he_normal",
)

SOFTPLUS = Activation(
    name="softplus",
    f=_softplus,
    df=lambda Z, Y: _sigmoid(Z),
    tex=r"\ln\left(1 + e^{<z>}\right)",
    tex_derivative=r"\sigma(<z>) = \frac{1}{1 + e^{-<z>}}",
    text="y = ln(1 + exp z);  y′ = σ(z)",
    code="log(1 + exp(<z>))",
    code_derivative="1 / (1 + exp(-<z>))",
    init="he_normal",
)

GELU = Activation(
    name="gelu",
    f=_gelu,
    df=_gelu_derivative,
    tex=r"\tfrac{1}{2} <z> \left(1 + \tanh u\right),\; u = \sqrt{2/\pi}\,(<z> + 0.044715\,<z>^{3})",
    tex_derivative=(
        r"\tfrac{1}{2}(1 + \tanh u) + \tfrac{1}{2} <z> (1 - \tanh^{2} u)"
        r"\sqrt{2/\pi}\,(1 + 3 \cdot 0.044715\,<z>^{2})"
    ),
    text="y = ½ z (1 + tanh u), u = √(2/π)(z + 0.044715 z³);  y′ = ½(1 + tanh u) + ½ z sech²u u′",
    code=f"0.5 * <z> * (1 + tanh({SQRT_2_OVER_PI!r} * (<z> + {GELU_CUBIC!r} * <z> ** 3)))",
    code_derivative=(
        f"0.5 * (1 + tanh({SQRT_2_OVER_PI!r} * (<z> + {GELU_CUBIC!r} * <z> ** 3)))"
        f" + 0.5 * <z> * (1 - tanh({SQRT_2_OVER_PI!r} * (<z> + {GELU_CUBIC!r} * <z> ** 3)) ** 2)"
        f" * {SQRT_2_OVER_PI!r} * (1 + 3 * {GELU_CUBIC!r} * <z> ** 2)"
    ),
    init="he_normal",
)


def leaky_relu(slope: float = 0.01) -> Activation:
    """Leaky ReLU max(slope·z, z) for 0 ≤ slope < 1; derivative 1 for z > 0, slope otherwise."""
    if not 0.0 <= slope < 1.0:
        raise SpecError(f"leaky_relu slope must be in [0, 1), got {slope}")
    return Activation(
        name="leaky_relu",
        f=lambda Z: namespace(Z).where(Z > 0, Z, slope * Z),
        df=lambda Z, Y: slope + (1.0 - slope) * _mask(Z),
        tex=rf"\max({slope:g}\,<z>, <z>)",
        tex_derivative=rf"\begin{{cases}} 1 & <z> > 0 \\ {slope:g} & <z> \le 0 \end{{cases}}",
        text=f"y = max({slope:g} z, z);  y′ = 1 if z > 0 else {slope:g}",
        code=f"maximum({slope!r} * <z>, <z>)",
        code_derivative=f"(<z> > 0) + {slope!r} * (<z> <= 0)",
        kinked=True,
        parameter=slope,
        init="he_normal",
        aliases=("leakyrelu", "lrelu"),
    )


def elu(alpha: float = 1.0) -> Activation:
    """ELU: z for z > 0, α(eᶻ − 1) otherwise; derivative 1 for z > 0, y + α otherwise."""
    if alpha <= 0:
        raise SpecError(f"elu alpha must be positive, got {alpha}")
    return Activation(
        name="elu",
        f=lambda Z: namespace(Z).where(Z > 0, Z, alpha * namespace(Z).expm1(_negative_part(Z))),
        df=lambda Z, Y: namespace(Z).where(Z > 0, _ones_like(Z), Y + alpha),
        tex=rf"\begin{{cases}} <z> & <z> > 0 \\ {alpha:g}\,(e^{{<z>}} - 1) & <z> \le 0 \end{{cases}}",
        tex_derivative=rf"\begin{{cases}} 1 & <z> > 0 \\ <y> + {alpha:g} & <z> \le 0 \end{{cases}}",
        text=f"y = z if z > 0 else {alpha:g}(exp z − 1);  y′ = 1 if z > 0 else y + {alpha:g}",
        code=f"where(<z> > 0, <z>, {alpha!r} * (exp(minimum(<z>, 0)) - 1))",
        code_derivative=f"where(<z> > 0, 1, <y> + {alpha!r})",
        kinked=alpha != 1.0,
        parameter=alpha,
        init="he_normal",
    )


def _negative_part(Z: Array) -> Array:
    """min(z, 0): keeps exp() from overflowing on the branch that where() discards."""
    return namespace(Z).minimum(Z, 0.0)


# name → factory taking the optional parameter; the one table that the layers, the spec parser,
# the command line and the derivations all read.
ACTIVATIONS: dict[str, Callable[..., Activation]] = {
    "identity": lambda: IDENTITY,
    "sigmoid": lambda: SIGMOID,
    "tanh": lambda: TANH,
    "relu": lambda: RELU,
    "leaky_relu": leaky_relu,
    "elu": elu,
    "softplus": lambda: SOFTPLUS,
    "gelu": lambda: GELU,
}

ALIASES: dict[str, str] = {
    "": "identity",
    "linear": "identity",
    "logistic": "sigmoid",
    "leakyrelu": "leaky_relu",
    "lrelu": "leaky_relu",
}


def get_activation(name: str, parameter: float | None = None) -> Activation:
    """The activation called ``name`` (aliases allowed), with its parameter if it takes one."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ACTIVATIONS:
        raise SpecError(
            f"unknown activation {name!r}; valid names: {', '.join(ACTIVATIONS)}, softmax"
        )
    factory = ACTIVATIONS[key]
    if parameter is None:
        return factory()
    try:
        return factory(parameter)
    except TypeError:
        raise SpecError(f"activation {key!r} takes no parameter, got ({parameter:g})") from None


# ---- your own activations -------------------------------------------------------------------------

BUILT_IN = frozenset(ACTIVATIONS)
RESERVED = frozenset({"softmax", "bn", "dropout"})  # the other names a spec may hold
_NAME = re.compile(r"^[a-z][a-z_]{0,31}$")


def _check_new_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(
            "an activation's name is 1 to 32 lowercase letters and underscores, starting with a "
            f"letter, so that a spec can hold it (as in '64swish-10'); got {name!r}"
        )
    if name in BUILT_IN or name in ALIASES or name in RESERVED:
        raise SpecError(f"{name!r} is already a built-in name of nnmath; choose another name")


def register_activation(
    name: str, expression: str, *, init: str = "glorot_uniform", replace: bool = False
) -> Activation:
    """Add the activation h(z) = ``expression`` to the table under ``name``; return its record.

    The expression is in z, e.g. ``"z * sigmoid(z)"`` (the language: ``nnmath.expressions``). SymPy
    derives h′, which is checked against central differences before the activation is accepted; a
    refused one raises ``nnmath.expressions.ExpressionError`` (a SpecError) carrying the ``report``.
    ``init`` is the weight initialisation the layers before it get by default. Registering the same
    expression again is a no-op; another expression under a registered name needs ``replace=True``.
    """
    _check_new_name(name)
    if init not in INITIALIZERS:
        raise SpecError(f"unknown initialisation {init!r}; valid: {', '.join(INITIALIZERS)}")
    try:
        from nnmath.expressions import compile_expression, parse
    except ImportError as error:  # pragma: no cover - sympy is in the test extra
        raise SpecError(
            "registering an activation needs SymPy: pip install 'nnmath[symbolic]'"
        ) from error
    compiled = compile_expression(expression)
    if name in ACTIVATIONS:
        existing = ACTIVATIONS[name]()
        if parse(existing.expression) == compiled.function:
            return existing
        if not replace:
            raise SpecError(
                f"activation {name!r} is already registered as {existing.expression!r}; pass "
                f"replace=True to replace it with {expression!r}, or choose another name"
            )
    activation = Activation(
        name=name,
        f=compiled.f,
        df=lambda Z, Y: compiled.df(Z),
        tex=compiled.tex,
        tex_derivative=compiled.tex_derivative,
        text=f"y = {compiled.function};  y′ = {compiled.slope}",
        init=init,
        code=compiled.code,
        code_derivative=compiled.code_derivative,
        expression=expression,
    )
    ACTIVATIONS[name] = lambda: activation
    return activation


def unregister_activation(name: str) -> None:
    """Remove a registered activation from the table (the built-in ones stay)."""
    if name in BUILT_IN or name not in ACTIVATIONS:
        raise SpecError(
            f"{name!r} is not a registered activation; registered: {registered_names()}"
        )
    del ACTIVATIONS[name]


def registered_names() -> list[str]:
    """The names of the activations registered at run time (``register_activation``), in order; the
    built-in ones are not listed."""
    return [name for name in ACTIVATIONS if name not in BUILT_IN]


def registered_expressions(names: Iterable[str]) -> dict[str, str]:
    """{name: expression} for the registered activations among ``names`` (what a model file stores)."""
    return {
        name: ACTIVATIONS[name]().expression
        for name in dict.fromkeys(names)
        if name in ACTIVATIONS and name not in BUILT_IN
    }


def register_definition(text: str) -> Activation:
    """Register ``"NAME=EXPRESSION"`` (the command line's ``--activation``), e.g.
    ``"swish=z * sigmoid(z)"``: :func:`register_activation` of the two parts."""
    name, equals, expression = str(text).partition("=")
    if not equals or not name.strip() or not expression.strip():
        raise SpecError(
            f"activation {text!r} is not NAME=EXPRESSION; write e.g. 'swish=z * sigmoid(z)'"
        )
    return register_activation(name.strip(), expression.strip())


def ensure_registered(expressions: Mapping[str, str]) -> None:
    """Register each {name: expression} (checking it again), unless already registered as the same
    expression; a name registered as a different expression is refused, naming both."""
    for name, expression in expressions.items():
        register_activation(name, expression)
