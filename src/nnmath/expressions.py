"""Expressions in z for your own activations: parsed safely, differentiated by SymPy, checked, compiled.

``compile_expression("z * sigmoid(z)")`` returns h and h′ as NumPy functions, both typeset in LaTeX
and written in the derivations' NumPy subset, after checking h′ numerically; ``nnmath.activations.
register_activation`` turns the result into an activation. This module needs SymPy, the optional extra
``nnmath[symbolic]``.

The language (a subset of Python's expression syntax, the same operators as ``nnmath check``):

- the variable ``z`` (a real number), numbers (``2``, ``0.5``, ``1e-3``) and the constant ``pi``;
- ``+ - * / **``, unary ``-`` and ``+``, parentheses;
- the smooth functions ``exp``, ``log`` (natural; also ``ln``), ``sqrt``, ``tanh``, ``sigmoid``
  (1/(1 + e^{−z}), evaluated without overflow), ``sin``, ``cos``, each with one argument: the smooth
  functions of ``nnmath check``'s language, which also evaluates the code printed from them.

Nothing else: no other names, attributes, indexing, keywords, lambdas, strings or comparisons, and
no ``abs``, ``max`` or ``min``, whose kinks have no derivative (the kinked activations ReLU, leaky ReLU
and ELU are built in, with their convention at 0 stated). The string is parsed with :mod:`ast` and
the SymPy expression is built node by node from this whitelist; nothing is passed to ``eval`` or
``sympify``, so a string can compute nothing but the formula. A constant is computed as it is read,
within bounds that keep it quick: an exponent without z is a number of magnitude at most 64, a power of
two numbers has a base of magnitude at most 10⁶, and a function of a constant is evaluated in floating
point (``sqrt(2)`` becomes 1.4142135623730951); the text is at most 500 characters.

Before an expression is accepted (:func:`check_derivative`, reported in a :class:`DerivativeCheck`):

1. h must depend on z, and neither h nor its derivative h′ may contain |·|, sign or a step (SymPy
   writes ``sqrt(z**2)`` as |z|, which has no derivative at 0);
2. a logarithm's or fractional power's argument must stay positive, and a denominator must not
   change sign, at the check points (1,201 points of [−30, 30] spaced 0.05, and ±1e-6, ±1e-3): so
   ``sqrt(z)``, ``log(z)``, ``1/(z - 0.0123)`` are refused;
3. h and h′ must be finite at the check points, and h′ must agree with the fourth-order central
   difference (8(h(z+δ) − h(z−δ)) − (h(z+2δ) − h(z−2δ)))/12δ, δ = 1e-4, within 1e-6·max(1, |h′|)
   plus the difference's round-off.

The checks sample points: a pole or an edge of the domain between them, without a sign change of a
denominator, could escape them.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from nnmath.backend import namespace
from nnmath.errors import SpecError

Array = Any
MAX_LENGTH = 500
MAX_EXPONENT = 64
MAX_BASE = 1e6
CHECK_POINTS = np.unique(
    np.concatenate([np.linspace(-30.0, 30.0, 1201), [-1e-3, -1e-6, 0.0, 1e-6, 1e-3]])
)
STEP = 1e-4
RTOL = 1e-6
z = sp.Symbol("z", real=True)


class ExpressionError(SpecError):
    """An expression outside the language, or one whose derivative failed its check (``report``)."""

    def __init__(self, message: str, report: DerivativeCheck | None = None) -> None:
        super().__init__(message)
        self.report = report


def _stable_sigmoid(Z: Array) -> Array:
    """σ(z) = 1/(1 + e^{−z}) from e^{−|z|}, in Z's own array library: no exponential overflows."""
    xp = namespace(Z)
    E = xp.exp(-xp.abs(Z))
    return xp.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


class sigmoid(sp.Function):  # noqa: N801 - the name users write
    """σ(z) = 1/(1 + e^{−z}), one function for SymPy, so that its derivative reads σ(z)(1 − σ(z))."""

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        """σ′(z) = σ(z)(1 − σ(z)), as SymPy asks of a function's derivative."""
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _latex(self, printer: Any, exp: Any = None) -> str:
        text = rf"\sigma\left({printer._print(self.args[0])}\right)"
        return text if exp is None else rf"{text}^{{{exp}}}"


# name → (SymPy function, the same in floating point for a constant argument)
FUNCTIONS: dict[str, tuple[Any, Callable[[float], float]]] = {
    "exp": (sp.exp, math.exp),
    "log": (sp.log, math.log),
    "ln": (sp.log, math.log),
    "sqrt": (sp.sqrt, math.sqrt),
    "tanh": (sp.tanh, math.tanh),
    "sigmoid": (
        sigmoid,
        lambda x: 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x)),
    ),
    "sin": (sp.sin, math.sin),
    "cos": (sp.cos, math.cos),
}
# the function heads an expression holds once SymPy has built it (sqrt(u) is the power u**(1/2))
HEADS = ("exp", "log", "tanh", "sigmoid", "sin", "cos")
CONSTANTS = {"z": z, "pi": sp.pi}
_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
_NOT_SMOOTH = (sp.Abs, sp.sign, sp.Heaviside, sp.DiracDelta, sp.Piecewise, sp.Min, sp.Max)
_NAMES = {
    ast.Attribute: "attribute access (x.y)",
    ast.Subscript: "indexing with [...]",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "a conditional (x if c else y)",
}


def _describe(node: ast.AST) -> str:
    return _NAMES.get(type(node), f"{type(node).__name__} ({ast.unparse(node)[:40]!r})")


# ---- parsing: Python syntax → SymPy, node by node, from the whitelist -----------------------------


def _number(node: ast.Constant) -> sp.Expr:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"{value!r} is not a number; the language has real numbers only")
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value)


def _power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """base ** exponent, refused where a constant would take long to compute."""
    if not exponent.has(z):
        value = float(exponent)
        if not math.isfinite(value) or abs(value) > MAX_EXPONENT:
            raise ExpressionError(
                f"the exponent {exponent} is too large: an exponent without z must be a number "
                f"of magnitude at most {MAX_EXPONENT}"
            )
        if not base.has(z) and not abs(float(base)) <= MAX_BASE:
            raise ExpressionError(
                f"the power {base}**{exponent} is too large: a power of two numbers needs a base "
                f"of magnitude at most {MAX_BASE:g}"
            )
    return base**exponent


def _call(node: ast.Call) -> sp.Expr:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in FUNCTIONS:
        called = name if name is not None else ast.unparse(node.func)
        raise ExpressionError(
            f"{called!r} is not a function of the language; the functions are "
            f"{', '.join(FUNCTIONS)}"
        )
    if node.keywords or len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
        raise ExpressionError(f"{name} takes exactly one argument, e.g. {name}(z)")
    symbolic, numeric = FUNCTIONS[name]
    argument = _build(node.args[0])
    if argument.has(z):
        return symbolic(argument)
    try:  # a function of a constant: computed now, in floating point
        value = numeric(float(argument))
    except (ValueError, OverflowError, ZeroDivisionError):
        value = math.nan
    if not math.isfinite(value):
        raise ExpressionError(f"{name}({argument}) is not a finite real number")
    return sp.Float(value)


def _build(node: ast.AST) -> sp.Expr:
    """The SymPy expression of one whitelisted node; anything else raises ExpressionError."""
    if isinstance(node, ast.Constant):
        return _number(node)
    if isinstance(node, ast.Name):
        if node.id not in CONSTANTS:
            raise ExpressionError(
                f"unknown name {node.id!r}: an expression may use z, numbers, pi and the "
                f"functions {', '.join(FUNCTIONS)}"
            )
        return CONSTANTS[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _build(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_build(node.left), _build(node.right))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _power(_build(node.left), _build(node.right))
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.BinOp):
        raise ExpressionError(f"the operator in {ast.unparse(node)!r} is not one of + - * / **")
    raise ExpressionError(f"{_describe(node)} is not allowed in an expression")


def parse(text: str) -> sp.Expr:
    """The SymPy expression h(z) of ``text``, built from the whitelist (never ``eval``/``sympify``)."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is a string such as 'z * sigmoid(z)', got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression has {len(text)} characters; at most {MAX_LENGTH}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        reason = getattr(error, "msg", None) or str(error) or type(error).__name__
        raise ExpressionError(f"{text!r} is not an expression: {reason}") from None
    try:
        expression = _build(tree.body)
    except RecursionError:
        raise ExpressionError(f"{text!r} is nested too deeply") from None
    if expression.has(sp.zoo, sp.oo, -sp.oo, sp.nan, sp.I):
        raise ExpressionError(
            f"{text!r} is not a finite real number everywhere: it is {expression}"
        )
    if not expression.has(z):
        raise ExpressionError(f"{text!r} does not depend on z; an activation is a function of z")
    return expression


# ---- one walk over the tree, for every target: NumPy-like arrays, code, torch, ONNX ---------------


def fold(expression: sp.Expr, leaf: Any, ops: Mapping[str, Callable[..., Any]]) -> Any:
    """Evaluate ``expression`` bottom-up: ``leaf`` for z, ``ops["number"](float)`` for a constant,
    ``ops["add"]``/``ops["mul"]`` (two arguments), ``ops["pow"]`` and ``ops[name]`` for a function."""
    if not expression.has(z):
        return ops["number"](float(expression))
    if expression == z:
        return leaf
    args = [fold(arg, leaf, ops) for arg in expression.args]
    if isinstance(expression, sp.Add | sp.Mul):
        combine = ops["add" if isinstance(expression, sp.Add) else "mul"]
        result = args[0]
        for arg in args[1:]:
            result = combine(result, arg)
        return result
    if isinstance(expression, sp.Pow):
        return ops["pow"](*args)
    name = getattr(expression.func, "__name__", str(expression.func))
    if name not in ops:
        raise ExpressionError(f"{expression} uses {name}, which has no counterpart here")
    return ops[name](args[0])


def array_ops(xp: Any) -> dict[str, Callable[..., Any]]:
    """The operations of ``fold`` on arrays of the namespace ``xp`` (NumPy, torch, …)."""
    ops: dict[str, Callable[..., Any]] = {
        name: getattr(xp, name) for name in HEADS if name != "sigmoid"
    }
    ops.update(
        sigmoid=_stable_sigmoid,
        number=lambda value: value,
        add=lambda a, b: a + b,
        mul=lambda a, b: a * b,
        pow=lambda a, b: a**b,
    )
    return ops


def evaluate(expression: sp.Expr, Z: Array) -> Array:
    """h(Z) entry by entry, in Z's own array library (autograd flows through torch tensors)."""
    value = fold(expression, Z, array_ops(namespace(Z)))
    return value if hasattr(value, "shape") and value.shape == Z.shape else Z * 0 + value


def _number_code(value: float) -> str:
    text = str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return text if value >= 0 else f"({text})"


def code(expression: sp.Expr, placeholder: str = "<z>") -> str:
    """The expression in the derivations' NumPy subset, with ``placeholder`` for z."""
    ops: dict[str, Callable[..., str]] = {name: (lambda a, n=name: f"{n}({a})") for name in HEADS}
    ops.update(
        number=_number_code,
        add=lambda a, b: f"({a} + {b})",
        mul=lambda a, b: f"({a} * {b})",
        pow=lambda a, b: f"({a} ** {b})",
    )
    return fold(expression, placeholder, ops)


def latex(expression: sp.Expr) -> str:
    """The expression typeset, with the placeholder ``<z>`` for z (braced where a power needs it)."""
    return sp.latex(expression, symbol_names={z: "<z>"}).replace("<z>^", "{<z>}^")


def numpy_function(expression: sp.Expr) -> Callable[[Array], Array]:
    """h compiled by ``sympy.lambdify`` for NumPy arrays (the code printed from the whitelisted tree),
    and :func:`evaluate` for arrays of any other library; the result has Z's shape and dtype."""
    compiled = sp.lambdify(z, expression, modules=[{"sigmoid": _stable_sigmoid}, "numpy"], cse=True)

    def function(Z: Array) -> Array:
        if not isinstance(Z, np.ndarray):
            return evaluate(expression, Z)
        return np.broadcast_to(np.asarray(compiled(Z), dtype=Z.dtype), Z.shape).copy()

    return function


# ---- the check before acceptance ------------------------------------------------------------------


@dataclass(frozen=True)
class DerivativeCheck:
    """The check of h′ = SymPy's derivative of h: at how many points, the largest disagreement with
    the central difference (relative to max(1, |h′|)), and every problem found (none: accepted)."""

    expression: str
    derivative: str
    points: int
    max_error: float
    problems: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        """True when the check found no problem."""
        return not self.problems

    def format(self) -> str:
        """The check as lines of text: h, h′, the largest error, and each problem or "accepted"."""
        lines = [
            f"h(z) = {self.expression}",
            f"h'(z) = {self.derivative}",
            f"checked at {self.points} points of [-30, 30]: largest error of h' against the "
            f"central difference {self.max_error:.2e} (tolerance {RTOL:g})",
        ]
        lines += [f"refused: {problem}" for problem in self.problems] or ["accepted"]
        return "\n".join(lines)


def derivative(expression: sp.Expr) -> sp.Expr:
    """h′(z), by SymPy (a function of its own so that a test can hand the check a wrong one)."""
    return sp.diff(expression, z)


def _where(points: np.ndarray, bad: np.ndarray, limit: int = 3) -> str:
    shown = ", ".join(f"{p:g}" for p in points[bad][:limit])
    more = int(bad.sum()) - limit
    return f"z = {shown}" + (f" and {more} more points" if more > 0 else "")


def check_derivative(
    function: Callable[[Array], Array],
    derivative_function: Callable[[Array], Array],
    points: np.ndarray = CHECK_POINTS,
) -> tuple[float, list[str]]:
    """(largest error, problems): h and h′ finite at ``points``, h′ against the fourth-order central
    difference (8(h(z+δ) − h(z−δ)) − (h(z+2δ) − h(z−2δ)))/12δ within RTOL·max(1, |h′|) + round-off."""
    with np.errstate(all="ignore"):
        values, slopes = function(points), derivative_function(points)
        near = [function(points + k * STEP) for k in (1.0, -1.0, 2.0, -2.0)]
        difference = (8.0 * (near[0] - near[1]) - (near[2] - near[3])) / (12.0 * STEP)
        largest = np.max(np.abs(np.stack(near)), axis=0)
        roundoff = 64.0 * np.finfo(np.float64).eps * largest / STEP
        error = np.abs(slopes - difference)
    problems = []
    for name, array in (("h", values), ("h'", slopes), ("h near the points", largest)):
        bad = ~np.isfinite(array)
        if bad.any():
            problems.append(f"{name} is not finite at {_where(points, bad)}")
    if problems:
        return math.inf, problems
    scale = np.maximum(1.0, np.abs(slopes))
    wrong = error > RTOL * scale + roundoff
    if wrong.any():
        i = int(np.argmax(wrong))
        problems.append(
            f"h' disagrees with the central difference of h at {_where(points, wrong)} "
            f"(at z = {points[i]:g}: h' = {slopes[i]:.6g}, difference {difference[i]:.6g})"
        )
    return float(np.max(error / scale)), problems


def _domain_problems(expression: sp.Expr) -> list[str]:
    """Arguments of log and of fractional powers must stay positive, denominators keep their sign."""
    problems = []
    for node in sp.preorder_traversal(expression):
        if isinstance(node, sp.log):
            base, need = node.args[0], "positive"
        elif isinstance(node, sp.Pow) and node.base.has(z) and not node.exp.is_integer:
            base, need = node.base, "positive"
        elif isinstance(node, sp.Pow) and node.base.has(z) and node.exp.is_negative:
            base, need = node.base, "nonzero"
        else:
            continue
        with np.errstate(all="ignore"):
            values = numpy_function(base)(CHECK_POINTS)
        if need == "positive" and not np.all(values > 0):
            problems.append(
                f"{base} must stay positive (it is under a log or a fractional power) but is "
                f"not at {_where(CHECK_POINTS, ~(values > 0))}"
            )
        elif need == "nonzero":
            crossing = ~(np.sign(values[:-1]) * np.sign(values[1:]) > 0)
            if crossing.any():
                i = int(np.argmax(crossing))
                problems.append(
                    f"the denominator {base} reaches 0 (a pole) between z = "
                    f"{CHECK_POINTS[i]:g} and {CHECK_POINTS[i + 1]:g}"
                )
    return problems


def check_expression(function: sp.Expr, slope: sp.Expr) -> DerivativeCheck:
    """Every check of h and its derivative h′ (see the module docstring), as one report."""
    problems = []
    if function.has(*_NOT_SMOOTH) or slope.has(*_NOT_SMOOTH):
        problems.append(
            f"h = {function} is not differentiable everywhere: it or its derivative {slope} "
            "holds |.|, sign or a step (a kink); use a smooth expression"
        )
    if slope.has(sp.Derivative, sp.Subs):
        problems.append(f"SymPy could not differentiate {function}: it returned {slope}")
    if problems:
        return DerivativeCheck(str(function), str(slope), 0, math.inf, tuple(problems))
    problems = _domain_problems(function) + _domain_problems(slope)
    error, numeric = check_derivative(numpy_function(function), numpy_function(slope))
    return DerivativeCheck(
        str(function), str(slope), CHECK_POINTS.size, error, tuple(problems + numeric)
    )


# ---- the result: h and h′ compiled, typeset and written as code ------------------------------------


@dataclass(frozen=True)
class CompiledExpression:
    """An accepted expression: h and h′ as SymPy expressions and NumPy functions, and its check."""

    text: str
    function: sp.Expr
    slope: sp.Expr
    f: Callable[[Array], Array]
    df: Callable[[Array], Array]
    report: DerivativeCheck

    @property
    def tex(self) -> str:
        """h(z) in LaTeX."""
        return latex(self.function)

    @property
    def tex_derivative(self) -> str:
        """h′(z) in LaTeX."""
        return latex(self.slope)

    @property
    def code(self) -> str:
        """h(z) as NumPy code."""
        return code(self.function)

    @property
    def code_derivative(self) -> str:
        """h′(z) as NumPy code."""
        return code(self.slope)


def compile_expression(text: str) -> CompiledExpression:
    """Parse ``text``, differentiate it, check h′, and compile both; ExpressionError (with the
    check's ``report`` where there is one) when the expression is refused."""
    function = parse(text)
    slope = derivative(function)
    report = check_expression(function, slope)
    if not report.passed:
        more = len(report.problems) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ExpressionError(f"{text!r} refused: {report.problems[0]}{extra}", report)
    return CompiledExpression(
        text, function, slope, numpy_function(function), numpy_function(slope), report
    )
