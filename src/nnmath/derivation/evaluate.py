"""A safe evaluator for formulas written in NumPy syntax: the derivations' equations and a user's own.

A formula is ``NAME = EXPRESSION`` (or an expression alone), for example ``dW3 = A2.T @ dZ3``. It is
parsed with :mod:`ast` and only a whitelist is accepted:

- names bound by the caller (the forward pass's values, targets, gradients, S and the widths n0 … nK)
  and number constants;
- the operators ``+ - * / @ **``, unary ``-``/``+`` and comparisons ``< <= > >=`` (which give 0/1
  arrays, so ``(Z2 > 0)`` is ReLU's mask);
- the attribute ``.T`` (transpose) and nothing else;
- calls of the functions in :data:`FUNCTIONS` by name, with the keywords ``axis=`` and
  ``keepdims=`` (constants) where a function takes them, and a constant subscript string as
  einsum's first argument.

Everything else (other attributes, subscripts, lambdas, comprehensions, strings, builtins, imports)
is refused with :class:`FormulaSyntaxError` before anything runs, so a user's string is never run as
Python. Shapes are checked before any arithmetic (no intermediate may exceed
:data:`MAX_ELEMENTS` entries), and a result holding NaN or Inf is an error, not a value.

Shapes can also be inferred with a symbolic batch size: dimensions are ints or the string ``"S"``,
so ``(S × 6)(3 × S)`` is refused even when S happens to equal 6, and :func:`shape_tex` writes a
formula with each operand's shape under it, the line that lets a reader check that products conform.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.errors import ShapeError, SpecError

Dim = int | str  # a concrete size, or "S" for the batch size in symbolic shapes
Shape = tuple[Dim, ...]

MAX_LENGTH = 2000
MAX_ELEMENTS = 10_000_000


class FormulaSyntaxError(SpecError):
    """A formula that is not in the allowed NumPy subset (or is not a formula at all)."""


class UnknownNameError(FormulaSyntaxError):
    """A formula that uses names the derivation does not define; ``unknown`` and ``known`` list them."""

    def __init__(self, unknown: list[str], known: list[str]) -> None:
        self.unknown = unknown
        self.known = known
        super().__init__(
            f"unknown name{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            f"the names that exist are: {', '.join(known)}"
        )


class FormulaShapeError(ShapeError):
    """A formula whose operands do not conform (a product, sum or function of mismatched shapes)."""


class FormulaValueError(ShapeError):
    """A formula whose value holds NaN or Inf (log of 0 or of a negative number, 0/0, overflow)."""


# ---- the functions a formula may call ---------------------------------------------------------


def _sigmoid(Z: np.ndarray) -> np.ndarray:
    """σ(z) = 1/(1 + e^{−z}) from e^{−|z|}: no overflow."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def _diag(V: np.ndarray) -> np.ndarray:
    """diag(v) for a vector; for a batch of rows (S × n) the S diagonal matrices (S × n × n)."""
    if V.ndim == 1:
        return np.diag(V)
    return np.eye(V.shape[-1])[None, :, :] * V[:, None, :]


def _outer(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """u vᵀ for vectors; for batches of rows (S × n, S × m) the S outer products (S × n × m)."""
    if U.ndim == 1:
        return np.outer(U, V)
    return U[:, :, None] * V[:, None, :]


def _vjp(G: np.ndarray, J: np.ndarray) -> np.ndarray:
    """Row s of the result is gₛ Jₛ: each sample's row vector times its own Jacobian (S × m)."""
    return np.einsum("si,sij->sj", G, J)


def _ones(*dims: Any) -> np.ndarray:
    return np.ones(tuple(int(d) for d in dims))


def _eye(n: Any) -> np.ndarray:
    return np.eye(int(n))


def _reduce(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def reduce(X: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        return np.asarray(function(X, axis=axis, keepdims=keepdims))

    return reduce


@dataclass(frozen=True)
class Function:
    """A function a formula may call: its NumPy code, LaTeX name and how it maps shapes."""

    call: Callable[..., np.ndarray]
    tex: str
    kind: str  # elementwise | broadcast | reduce | ones | eye | diag | outer | vjp | einsum
    arity: int | None = 1  # None: any number of arguments


FUNCTIONS: dict[str, Function] = {
    "exp": Function(np.exp, r"\exp", "elementwise"),
    "log": Function(np.log, r"\ln", "elementwise"),
    "ln": Function(np.log, r"\ln", "elementwise"),
    "log2": Function(np.log2, r"\log_2", "elementwise"),
    "log10": Function(np.log10, r"\log_{10}", "elementwise"),
    "sqrt": Function(np.sqrt, r"\sqrt", "elementwise"),
    "tanh": Function(np.tanh, r"\tanh", "elementwise"),
    "abs": Function(np.abs, r"\operatorname{abs}", "elementwise"),
    "sigmoid": Function(_sigmoid, r"\sigma", "elementwise"),
    "relu": Function(lambda Z: np.maximum(Z, 0.0), r"\operatorname{ReLU}", "elementwise"),
    "relu_grad": Function(lambda Z: (Z > 0).astype(np.float64), r"\mathbb{1}", "elementwise"),
    "ones_like": Function(np.ones_like, r"\operatorname{ones}", "elementwise"),
    "maximum": Function(np.maximum, r"\max", "broadcast", 2),
    "minimum": Function(np.minimum, r"\min", "broadcast", 2),
    "where": Function(np.where, r"\operatorname{where}", "broadcast", 3),
    "sum": Function(_reduce(np.sum), r"\textstyle\sum", "reduce"),
    "mean": Function(_reduce(np.mean), r"\operatorname{mean}", "reduce"),
    "ones": Function(_ones, r"\mathbf{1}", "ones", None),
    "eye": Function(_eye, "I", "eye"),
    "diag": Function(_diag, r"\operatorname{diag}", "diag"),
    "outer": Function(_outer, r"\operatorname{outer}", "outer", 2),
    "vjp": Function(_vjp, r"\operatorname{vjp}", "vjp", 2),
    "einsum": Function(np.einsum, r"\operatorname{einsum}", "einsum", None),
}

_BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.MatMult: np.matmul,
    ast.Pow: np.power,
}
_COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal}
_EINSUM = re.compile(r"^[a-z]+(,[a-z]+)*->[a-z]*$")
_OPERATOR_NAMES = {
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Not: "not",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


# ---- parsing and validation --------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A validated formula: the name it defines (or None) and its right-hand side."""

    target: str | None
    expression: ast.expr
    source: str

    @property
    def names(self) -> list[str]:
        """The names the right-hand side uses, in order of first appearance (functions excluded)."""
        seen: dict[str, None] = {}
        for node in ast.walk(self.expression):
            if isinstance(node, ast.Name) and not _is_function_position(node, self.expression):
                seen.setdefault(node.id, None)
        return list(seen)


def _is_function_position(name: ast.Name, root: ast.expr) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(root))


def parse(text: str, *, require_target: bool = False) -> Parsed:
    """Parse and validate ``NAME = EXPRESSION`` (or an expression alone, unless a target is required)."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaSyntaxError("the formula is empty; write e.g. 'dW3 = A2.T @ dZ3'")
    if len(text) > MAX_LENGTH:
        raise FormulaSyntaxError(
            f"the formula is {len(text)} characters long; at most {MAX_LENGTH}"
        )
    source = text.strip()
    try:
        module = ast.parse(source, mode="exec")
    except SyntaxError as error:
        raise FormulaSyntaxError(
            f"cannot read {source!r} as a formula ({error.msg}); write NAME = EXPRESSION in NumPy "
            "syntax, e.g. 'dW3 = A2.T @ dZ3'"
        ) from None
    except (ValueError, RecursionError, MemoryError):
        raise FormulaSyntaxError(f"cannot read {source[:60]!r} as a formula") from None
    if len(module.body) != 1:
        raise FormulaSyntaxError("write one formula, NAME = EXPRESSION, not several statements")
    statement = module.body[0]
    target: str | None = None
    if isinstance(statement, ast.Assign):
        if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
            raise FormulaSyntaxError("the left-hand side must be one name, e.g. 'dW3 = ...'")
        target = statement.targets[0].id
        expression = statement.value
    elif isinstance(statement, ast.Expr):
        expression = statement.value
    else:
        raise FormulaSyntaxError(
            f"a {type(statement).__name__} statement is not a formula; write NAME = EXPRESSION"
        )
    if require_target and target is None:
        raise FormulaSyntaxError(
            f"say which gradient the formula gives: write NAME = {source}, e.g. 'dW3 = {source}'"
        )
    try:
        _validate(expression)
    except RecursionError:
        raise FormulaSyntaxError("the formula is nested too deeply") from None
    return Parsed(target, expression, source)


def _refuse(what: str) -> FormulaSyntaxError:
    return FormulaSyntaxError(
        f"{what} is not allowed in a formula; use names, numbers, + - * / @ **, comparisons, "
        f".T and the functions {', '.join(FUNCTIONS)}"
    )


def _validate(node: ast.AST) -> None:
    """Raise FormulaSyntaxError unless every node is on the whitelist."""
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise _refuse(f"the name {node.id!r}")
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _refuse(f"the constant {node.value!r}")
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise _refuse(
                f"the operator {_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)}"
            )
        _validate(node.left)
        _validate(node.right)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise _refuse(
                f"the operator {_OPERATOR_NAMES.get(type(node.op), type(node.op).__name__)}"
            )
        _validate(node.operand)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise _refuse(f"the comparison {_OPERATOR_NAMES.get(type(op), type(op).__name__)}")
        for child in (node.left, *node.comparators):
            _validate(child)
        return
    if isinstance(node, ast.Attribute):
        if node.attr != "T":
            raise _refuse(f"the attribute .{node.attr} (only .T, the transpose, is)")
        _validate(node.value)
        return
    if isinstance(node, ast.Call):
        _validate_call(node)
        return
    raise _refuse(_describe(node))


def _validate_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        called = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        raise FormulaSyntaxError(
            f"calling {called!r} is not allowed; the functions a formula may call are: "
            f"{', '.join(FUNCTIONS)}"
        )
    name = node.func.id
    function = FUNCTIONS[name]
    args = list(node.args)
    if any(isinstance(a, ast.Starred) for a in args):
        raise _refuse("*arguments")
    if name == "einsum":
        if not args or not (isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)):
            raise FormulaSyntaxError(
                "einsum needs a subscript string first, e.g. einsum('sk,si->ki', A, B)"
            )
        if not _EINSUM.match(args[0].value) or len(args[0].value) > 40:
            raise FormulaSyntaxError(
                f"einsum subscripts {args[0].value!r} must look like 'sk,si->ki' (letters only)"
            )
        args = args[1:]
    if function.arity is not None and len(args) != function.arity:
        raise FormulaSyntaxError(f"{name} takes {function.arity} argument(s), got {len(args)}")
    for arg in args:
        _validate(arg)
    for keyword in node.keywords:
        if function.kind != "reduce" or keyword.arg not in ("axis", "keepdims"):
            raise FormulaSyntaxError(
                f"{name} takes no keyword {keyword.arg!r}"
                + ("; sum and mean take axis= and keepdims=" if keyword.arg else "")
            )
        value = keyword.value
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.USub):
            value = value.operand
        if not isinstance(value, ast.Constant) or not isinstance(value.value, (int, bool)):
            raise FormulaSyntaxError(
                f"{keyword.arg}= must be a constant (an integer or True/False)"
            )


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.Subscript: "indexing with [...]",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.IfExp: "an if-expression",
        ast.BoolOp: "and/or",
        ast.NamedExpr: "the := operator",
        ast.JoinedStr: "an f-string",
        ast.Await: "await",
        ast.Yield: "yield",
        ast.Starred: "*unpacking",
        ast.Slice: "a slice",
    }
    return names.get(type(node), f"the construct {type(node).__name__}")


# ---- shapes ------------------------------------------------------------------------------------


def shape_of(value: Any) -> Shape:
    return tuple(np.shape(value))


def format_shape(shape: Shape) -> str:
    """(S, 6) → 'S × 6'; () → 'scalar'."""
    return " × ".join(str(d) for d in shape) if shape else "scalar"


def tex_shape(shape: Shape) -> str:
    return r" \times ".join(str(d) for d in shape) if shape else r"\text{scalar}"


def _mismatch(text: str) -> FormulaShapeError:
    return FormulaShapeError(text)


def _broadcast(a: Shape, b: Shape, where: str) -> Shape:
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise _mismatch(
                f"{where}: shapes ({format_shape(a)}) and ({format_shape(b)}) do not match "
                "entry by entry"
            )
    return tuple(reversed(out))


def _dimension(node: ast.expr, dims: Mapping[str, Dim]) -> Dim:
    """A size argument of ones()/eye(): an integer constant or a bound size name (S, n0, …)."""
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.Name) and node.id in dims:
        return dims[node.id]
    raise FormulaSyntaxError(
        f"the sizes given to ones()/eye() must be whole numbers or size names "
        f"({', '.join(dims)}), not {ast.unparse(node)!r}"
    )


def infer_shape(node: ast.expr, shapes: Mapping[str, Shape], dims: Mapping[str, Dim]) -> Shape:
    """The shape of ``node`` given the shapes of the names, without computing anything.

    ``dims`` gives the size names (``S``, ``n0``, …): ints, or ``"S"`` for a symbolic batch size.
    """
    if isinstance(node, ast.Name):
        if node.id not in shapes:
            raise UnknownNameError([node.id], sorted(shapes))
        return shapes[node.id]
    if isinstance(node, ast.Constant):
        return ()
    if isinstance(node, ast.UnaryOp):
        return infer_shape(node.operand, shapes, dims)
    if isinstance(node, ast.Attribute):
        return tuple(reversed(infer_shape(node.value, shapes, dims)))
    if isinstance(node, ast.Compare):
        shape = infer_shape(node.left, shapes, dims)
        for comparator in node.comparators:
            shape = _broadcast(shape, infer_shape(comparator, shapes, dims), "comparison")
        return shape
    if isinstance(node, ast.BinOp):
        a = infer_shape(node.left, shapes, dims)
        b = infer_shape(node.right, shapes, dims)
        if isinstance(node.op, ast.MatMult):
            return _matmul_shape(a, b, node)
        return _broadcast(a, b, f"in {ast.unparse(node)!r}")
    if isinstance(node, ast.Call):
        return _call_shape(node, shapes, dims)
    raise _refuse(_describe(node))


def _matmul_shape(a: Shape, b: Shape, node: ast.BinOp) -> Shape:
    where = f"the product {ast.unparse(node)!r}"
    if not a or not b:
        raise _mismatch(f"{where} multiplies a scalar with @; use * for a scalar factor")
    if len(a) > 2 or len(b) > 2:
        raise _mismatch(
            f"{where} takes matrices or vectors, got ({format_shape(a)}) @ ({format_shape(b)})"
        )
    inner_a = a[-1]
    inner_b = b[0] if len(b) == 1 else b[-2]
    if inner_a != inner_b:
        raise _mismatch(
            f"{where} does not conform: ({format_shape(a)}) @ ({format_shape(b)}), "
            f"the inner sizes {inner_a} and {inner_b} differ"
        )
    return tuple(a[:-1]) + (tuple(b[-1:]) if len(b) == 2 else ())


def _call_shape(node: ast.Call, shapes: Mapping[str, Shape], dims: Mapping[str, Dim]) -> Shape:
    assert isinstance(node.func, ast.Name)
    name = node.func.id
    function = FUNCTIONS[name]
    kind = function.kind
    if kind == "ones":
        if not node.args:
            raise FormulaSyntaxError("ones() needs its sizes, e.g. ones(S, 1)")
        return tuple(_dimension(a, dims) for a in node.args)
    if kind == "eye":
        n = _dimension(node.args[0], dims)
        return (n, n)
    if kind == "einsum":
        return _einsum_shape(node, shapes, dims)
    args = [infer_shape(a, shapes, dims) for a in node.args]
    if kind == "elementwise":
        return args[0]
    if kind == "broadcast":
        shape = args[0]
        for other in args[1:]:
            shape = _broadcast(shape, other, f"in {name}()")
        return shape
    if kind == "reduce":
        keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
        axis, keepdims = keywords.get("axis"), bool(keywords.get("keepdims", False))
        shape = args[0]
        if axis is None:
            return tuple(1 for _ in shape) if keepdims else ()
        if not -len(shape) <= axis < len(shape):
            raise _mismatch(f"{name}(axis={axis}) on a value of shape ({format_shape(shape)})")
        axis %= len(shape)
        if keepdims:
            return tuple(1 if i == axis else d for i, d in enumerate(shape))
        return tuple(d for i, d in enumerate(shape) if i != axis)
    if kind == "diag":
        (v,) = args
        if len(v) not in (1, 2):
            raise _mismatch(f"diag takes a vector or a batch of rows, got ({format_shape(v)})")
        return (v[0], v[0]) if len(v) == 1 else (v[0], v[1], v[1])
    if kind == "outer":
        u, v = args
        if len(u) != len(v) or len(u) not in (1, 2) or (len(u) == 2 and u[0] != v[0]):
            raise _mismatch(
                f"outer takes two vectors or two batches of rows, got ({format_shape(u)}) and ({format_shape(v)})"
            )
        return (u[0], v[0]) if len(u) == 1 else (u[0], u[1], v[1])
    if kind == "vjp":
        g, J = args
        if len(g) != 2 or len(J) != 3 or g[0] != J[0] or g[1] != J[1]:
            raise _mismatch(
                f"vjp takes rows G (S × n) and Jacobians J (S × n × m), got ({format_shape(g)}) and ({format_shape(J)})"
            )
        return (g[0], J[2])
    raise _refuse(f"the function {name}")


def _einsum_shape(node: ast.Call, shapes: Mapping[str, Shape], dims: Mapping[str, Dim]) -> Shape:
    spec = node.args[0].value  # type: ignore[attr-defined]
    inputs, output = spec.split("->")
    operands = [infer_shape(a, shapes, dims) for a in node.args[1:]]
    letters = inputs.split(",")
    if len(letters) != len(operands):
        raise _mismatch(
            f"einsum {spec!r} names {len(letters)} operands but {len(operands)} are given"
        )
    sizes: dict[str, Dim] = {}
    for subscripts, shape in zip(letters, operands, strict=True):
        if len(subscripts) != len(shape):
            raise _mismatch(
                f"einsum {spec!r}: {subscripts!r} does not fit an operand of shape ({format_shape(shape)})"
            )
        for letter, size in zip(subscripts, shape, strict=True):
            if sizes.setdefault(letter, size) != size:
                raise _mismatch(
                    f"einsum {spec!r}: index {letter} has sizes {sizes[letter]} and {size}"
                )
    if any(letter not in sizes for letter in output):
        raise _mismatch(f"einsum {spec!r}: an output index is not in the inputs")
    return tuple(sizes[letter] for letter in output)


def _element_count(shape: Shape) -> int:
    return math.prod(int(d) for d in shape if isinstance(d, int))


def _check_sizes(node: ast.expr, shapes: Mapping[str, Shape], dims: Mapping[str, Dim]) -> None:
    for child in ast.walk(node):
        if isinstance(child, ast.expr) and not isinstance(child, (ast.Constant, ast.Name)):
            shape = infer_shape(child, shapes, dims)
            if _element_count(shape) > MAX_ELEMENTS:
                raise _mismatch(
                    f"{ast.unparse(child)!r} would hold {_element_count(shape)} numbers; "
                    f"at most {MAX_ELEMENTS}"
                )


# ---- evaluation --------------------------------------------------------------------------------


def evaluate(formula: Parsed | str, env: Mapping[str, Any]) -> np.ndarray:
    """The value of a formula with the names of ``env`` bound (arrays, or ints for S and widths).

    Raises UnknownNameError (listing the names that exist), FormulaShapeError before any
    arithmetic on operands that do not conform, and FormulaValueError if the value is not finite.
    """
    parsed = parse(formula) if isinstance(formula, str) else formula
    unknown = [name for name in parsed.names if name not in env]
    if unknown:
        raise UnknownNameError(unknown, sorted(env))
    shapes = {name: shape_of(value) for name, value in env.items()}
    dims = {name: int(value) for name, value in env.items() if _is_size(value)}
    _check_sizes(parsed.expression, shapes, dims)
    with np.errstate(all="ignore"):
        value = np.asarray(_eval(parsed.expression, env), dtype=np.float64)
    if not np.all(np.isfinite(value)):
        raise FormulaValueError(
            f"{parsed.source!r} gives NaN or Inf (a log of 0 or of a negative number, a division "
            "by 0 or an overflow)"
        )
    return value


def _is_size(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _eval(node: ast.expr, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Name):
        value = env[node.id]
        return np.float64(value) if _is_size(value) else value
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, env)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Attribute):
        return np.asarray(_eval(node.value, env)).T
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.Compare):
        result, left = None, _eval(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, env)
            step = np.asarray(_COMPARE[type(op)](left, right), dtype=np.float64)
            result = step if result is None else result * step
            left = right
        return result
    if isinstance(node, ast.Call):
        return _eval_call(node, env)
    raise _refuse(_describe(node))


def _eval_call(node: ast.Call, env: Mapping[str, Any]) -> Any:
    assert isinstance(node.func, ast.Name)
    function = FUNCTIONS[node.func.id]
    if function.kind in ("ones", "eye"):
        dims = {name: int(v) for name, v in env.items() if _is_size(v)}
        return function.call(*(_dimension(a, dims) for a in node.args))
    if function.kind == "einsum":
        spec = node.args[0].value  # type: ignore[attr-defined]
        return np.einsum(spec, *(np.asarray(_eval(a, env)) for a in node.args[1:]))
    args = [np.asarray(_eval(a, env)) for a in node.args]
    keywords = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    return function.call(*args, **keywords)


# ---- LaTeX with shapes -------------------------------------------------------------------------

_ENTRYWISE = (ast.Mult, ast.Div)
_PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.MatMult: 2, ast.Pow: 4}


def shape_tex(
    formula: Parsed | str,
    symbols: Mapping[str, str],
    shapes: Mapping[str, Shape],
    dims: Mapping[str, Dim],
) -> str:
    """The right-hand side as LaTeX with each operand's shape written under it (\\underbrace).

    ``symbols`` maps names to their LaTeX; operators print as the document writes them: @ as
    juxtaposition, * as ⊙ (or a plain product with a scalar), / as ⊘ (or a fraction bar).
    """
    parsed = parse(formula) if isinstance(formula, str) else formula

    def leaf(node: ast.expr, tex: str) -> str:
        return _brace(tex, infer_shape(node, shapes, dims))

    return to_tex(parsed, symbols, shapes, dims, leaf)


def to_tex(
    formula: Parsed | str,
    symbols: Mapping[str, str],
    shapes: Mapping[str, Shape],
    dims: Mapping[str, Dim],
    leaf: Callable[[ast.expr, str], str] | None = None,
) -> str:
    """The right-hand side as LaTeX; ``leaf(node, tex)`` may dress each operand (a name, a
    transposed name, ones() or eye()), e.g. with its shape or its numbers."""
    parsed = parse(formula) if isinstance(formula, str) else formula
    return _tex(parsed.expression, symbols, shapes, dims, leaf or (lambda node, tex: tex))


def _ones_tex(node: ast.Call) -> str:
    """ones(S, 1) is the column 1, ones(1, S) the row 1ᵀ, ones(n, n) the matrix 11ᵀ."""

    def unit(arg: ast.expr) -> bool:
        return isinstance(arg, ast.Constant) and arg.value == 1

    if len(node.args) == 2 and unit(node.args[0]) and not unit(node.args[1]):
        return r"\mathbf{1}^\top"
    if len(node.args) == 2 and not unit(node.args[0]) and not unit(node.args[1]):
        return r"\mathbf{1}\mathbf{1}^\top"
    return r"\mathbf{1}"


def _brace(body: str, shape: Shape) -> str:
    if not shape:
        return body
    return rf"\underbrace{{{body}}}_{{{tex_shape(shape)}}}"


def _tex(
    node: ast.expr,
    symbols: Mapping[str, str],
    shapes: Mapping[str, Shape],
    dims: Mapping[str, Dim],
    leaf: Callable[[ast.expr, str], str],
) -> str:
    def shape(n: ast.expr) -> Shape:
        return infer_shape(n, shapes, dims)

    def tex(n: ast.expr) -> str:
        return _tex(n, symbols, shapes, dims, leaf)

    def sub(n: ast.expr, parent: int, parent_op: ast.operator | None = None) -> str:
        text = tex(n)
        if isinstance(n, ast.BinOp) and _PRECEDENCE[type(n.op)] < parent:
            return rf"\left({text}\right)"
        mixed = (
            isinstance(n, ast.BinOp)
            and parent_op is not None
            and {type(n.op), type(parent_op)} & {ast.MatMult}
            and {type(n.op), type(parent_op)} & set(_ENTRYWISE)
        )
        if mixed:
            return rf"\left({text}\right)"  # (A ⊙ B) C: keep ⊙ and the matrix product apart
        if isinstance(n, ast.UnaryOp) and parent > 1:
            return rf"\left({text}\right)"
        return text

    if isinstance(node, ast.Name):
        return leaf(node, symbols.get(node.id, node.id))
    if isinstance(node, ast.Constant):
        return f"{node.value:g}" if isinstance(node.value, float) else str(node.value)
    if isinstance(node, ast.Attribute):
        inner = node.value
        if isinstance(inner, ast.Name):
            return leaf(node, rf"{{{symbols.get(inner.id, inner.id)}}}^\top")
        return rf"\left({tex(inner)}\right)^\top"
    if isinstance(node, ast.UnaryOp):
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        return sign + sub(node.operand, 3)
    if isinstance(node, ast.Compare):
        parts = [tex(node.left)]
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            parts.append({ast.Gt: ">", ast.GtE: r"\ge", ast.Lt: "<", ast.LtE: r"\le"}[type(op)])
            parts.append(tex(comparator))
        return r"\mathbb{1}\left[" + " ".join(parts) + r"\right]"
    if isinstance(node, ast.BinOp):
        level = _PRECEDENCE[type(node.op)]
        left = sub(node.left, level, node.op)
        tight = isinstance(node.op, (ast.Add, ast.Mult, ast.MatMult))
        right = sub(node.right, level + (0 if tight else 1), node.op)
        scalar = not shape(node.left) or not shape(node.right)
        if isinstance(node.op, ast.Add):
            return f"{left} + {right}"
        if isinstance(node.op, ast.Sub):
            return f"{left} - {right}"
        if isinstance(node.op, ast.MatMult):
            return rf"{left}\,{right}"
        if isinstance(node.op, ast.Mult):
            return rf"{left}\,{right}" if scalar else rf"{left} \odot {right}"
        if isinstance(node.op, ast.Div):
            return rf"{left} / {right}" if not shape(node.right) else rf"{left} \oslash {right}"
        return rf"{left}^{{{tex(node.right)}}}"
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        function = FUNCTIONS[node.func.id]
        if function.kind == "ones":
            return leaf(node, _ones_tex(node))
        if function.kind == "eye":
            return leaf(node, function.tex)
        args = node.args[1:] if function.kind == "einsum" else node.args
        inner = ", ".join(tex(a) for a in args)
        return rf"{function.tex}\left({inner}\right)"
    raise _refuse(_describe(node))
