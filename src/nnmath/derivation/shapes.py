"""Shape inference for formulas, with a symbolic batch size, before anything is computed.

Dimensions are ints or the string ``"S"``, so ``(S × 6)(3 × S)`` is refused even when S happens to
equal 6. :func:`infer_shape` walks a parsed formula and raises :class:`FormulaShapeError`, naming
the operands and their shapes, where a product, sum or function call does not conform.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnmath.derivation.functions import FUNCTIONS
from nnmath.derivation.syntax import FormulaSyntaxError, UnknownNameError, describe, refuse
from nnmath.errors import ShapeError

Dim = int | str  # a concrete size, or "S" for the batch size in symbolic shapes
Shape = tuple[Dim, ...]
Cache = dict[int, Shape] | None  # id(node) -> shape, see infer_shape


class FormulaShapeError(ShapeError):
    """A formula whose operands do not conform (a product, sum or function of mismatched shapes)."""


def shape_of(value: Any) -> Shape:
    """The shape of a value as a tuple (() for a number)."""
    return tuple(np.shape(value))


def format_shape(shape: Shape) -> str:
    """(S, 6) → 'S × 6'; () → 'scalar'."""
    return " × ".join(str(d) for d in shape) if shape else "scalar"


def _mismatch(text: str) -> FormulaShapeError:
    return FormulaShapeError(text)


def _broadcast(a: Shape, b: Shape, where: str | ast.AST) -> Shape:
    """The shape of an entry-by-entry operation; ``where`` (text, or the node, unparsed only for
    a message) names it."""
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            place = f"in {ast.unparse(where)!r}" if isinstance(where, ast.AST) else where
            raise _mismatch(
                f"{place}: shapes ({format_shape(a)}) and ({format_shape(b)}) do not match "
                "entry by entry"
            )
    return tuple(reversed(out))


def dimension(node: ast.expr, dims: Mapping[str, Dim]) -> Dim:
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


def _matmul_shape(a: Shape, b: Shape, node: ast.BinOp) -> Shape:
    if (not a or not b) or len(a) > 2 or len(b) > 2 or a[-1] != (b[0] if len(b) == 1 else b[-2]):
        return _matmul_refused(a, b, node)
    return tuple(a[:-1]) + (tuple(b[-1:]) if len(b) == 2 else ())


def _matmul_refused(a: Shape, b: Shape, node: ast.BinOp) -> Shape:
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


def _einsum_shape(
    node: ast.Call, shapes: Mapping[str, Shape], dims: Mapping[str, Dim], cache: Cache
) -> Shape:
    spec = node.args[0].value  # type: ignore[attr-defined]
    inputs, output = spec.split("->")
    operands = [infer_shape(a, shapes, dims, cache) for a in node.args[1:]]
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
    if len(set(output)) != len(output):
        raise _mismatch(f"einsum {spec!r}: an output index appears twice; each may appear once")
    return tuple(sizes[letter] for letter in output)


def _call_shape(
    node: ast.Call, shapes: Mapping[str, Shape], dims: Mapping[str, Dim], cache: Cache
) -> Shape:
    assert isinstance(node.func, ast.Name)
    name = node.func.id
    function = FUNCTIONS[name]
    kind = function.kind
    if kind == "ones":
        if not node.args:
            raise FormulaSyntaxError("ones() needs its sizes, e.g. ones(S, 1)")
        return tuple(dimension(a, dims) for a in node.args)
    if kind == "eye":
        n = dimension(node.args[0], dims)
        return (n, n)
    if kind == "einsum":
        return _einsum_shape(node, shapes, dims, cache)
    args = [infer_shape(a, shapes, dims, cache) for a in node.args]
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
    raise refuse(f"the function {name}")


def infer_shape(
    node: ast.expr,
    shapes: Mapping[str, Shape],
    dims: Mapping[str, Dim],
    cache: Cache = None,
) -> Shape:
    """The shape of ``node`` given the shapes of the names, without computing anything.

    ``dims`` gives the size names (``S``, ``n0``, …): ints, or ``"S"`` for a symbolic batch size.
    ``cache`` (a dict) keeps each sub-expression's shape, so that asking for every node's shape
    in turn costs one walk, not one per node.
    """
    if cache is None:
        return _infer(node, shapes, dims, None)
    key = id(node)
    if key not in cache:
        cache[key] = _infer(node, shapes, dims, cache)
    return cache[key]


def _infer(
    node: ast.expr, shapes: Mapping[str, Shape], dims: Mapping[str, Dim], cache: Cache
) -> Shape:
    if isinstance(node, ast.Name):
        if node.id not in shapes:
            raise UnknownNameError([node.id], sorted(shapes))
        return shapes[node.id]
    if isinstance(node, ast.Constant):
        return ()
    if isinstance(node, ast.UnaryOp):
        return infer_shape(node.operand, shapes, dims, cache)
    if isinstance(node, ast.Attribute):
        return tuple(reversed(infer_shape(node.value, shapes, dims, cache)))
    if isinstance(node, ast.Compare):
        shape = infer_shape(node.left, shapes, dims, cache)
        for comparator in node.comparators:
            other = infer_shape(comparator, shapes, dims, cache)
            shape = _broadcast(shape, other, "comparison")
        return shape
    if isinstance(node, ast.BinOp):
        a = infer_shape(node.left, shapes, dims, cache)
        b = infer_shape(node.right, shapes, dims, cache)
        if isinstance(node.op, ast.MatMult):
            return _matmul_shape(a, b, node)
        return _broadcast(a, b, node)
    if isinstance(node, ast.Call):
        return _call_shape(node, shapes, dims, cache)
    raise refuse(describe(node))
