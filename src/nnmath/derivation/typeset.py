"""Typesetting formulas: a parsed formula as LaTeX, optionally with each operand's shape under it.

Operators print as the derivation documents write them: @ as juxtaposition, * as ⊙ (or a plain
product with a scalar), / as ⊘ (or a fraction bar), a comparison as an indicator 𝟙[…].
:func:`shape_tex` writes a formula with each operand's shape under it, the line that lets a reader
check that products conform.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nnmath.derivation.functions import FUNCTIONS
from nnmath.derivation.shapes import Dim, Shape, infer_shape
from nnmath.derivation.syntax import Parsed, describe, parse, refuse

_ENTRYWISE = (ast.Mult, ast.Div)
_PRECEDENCE = {ast.Add: 1, ast.Sub: 1, ast.Mult: 2, ast.Div: 2, ast.MatMult: 2, ast.Pow: 4}


def tex_shape(shape: Shape) -> str:
    r"""(S, 6) → ``S \times 6`` in LaTeX; () → ``\text{scalar}``."""
    return r" \times ".join(str(d) for d in shape) if shape else r"\text{scalar}"


def _brace(body: str, shape: Shape) -> str:
    if not shape:
        return body
    return rf"\underbrace{{{body}}}_{{{tex_shape(shape)}}}"


def _ones_tex(node: ast.Call) -> str:
    """ones(S, 1) is the column 1, ones(1, S) the row 1ᵀ, ones(n, n) the matrix 11ᵀ."""

    def unit(arg: ast.expr) -> bool:
        return isinstance(arg, ast.Constant) and arg.value == 1

    if len(node.args) == 2 and unit(node.args[0]) and not unit(node.args[1]):
        return r"\mathbf{1}^\top"
    if len(node.args) == 2 and not unit(node.args[0]) and not unit(node.args[1]):
        return r"\mathbf{1}\mathbf{1}^\top"
    return r"\mathbf{1}"


@dataclass(frozen=True)
class _Typesetter:
    """Writes a parsed formula as LaTeX, node by node; ``leaf(node, tex)`` dresses each operand."""

    symbols: Mapping[str, str]
    shapes: Mapping[str, Shape]
    dims: Mapping[str, Dim]
    leaf: Callable[[ast.expr, str], str]

    def tex(self, node: ast.expr) -> str:
        """The LaTeX of ``node``: a name, a number, a transpose, a sign, an indicator, an operator
        or a function call."""
        if isinstance(node, ast.Name):
            return self.leaf(node, self.symbols.get(node.id, node.id))
        if isinstance(node, ast.Constant):
            return f"{node.value:g}" if isinstance(node.value, float) else str(node.value)
        if isinstance(node, ast.Attribute):
            return self.transpose(node)
        if isinstance(node, ast.UnaryOp):
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            return sign + self.operand(node.operand, 3)
        if isinstance(node, ast.Compare):
            return self.indicator(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise refuse(describe(node))

    def shape(self, node: ast.expr) -> Shape:
        """The shape of ``node``'s value (() for a scalar)."""
        return infer_shape(node, self.shapes, self.dims)

    def operand(self, node: ast.expr, parent: int, parent_op: ast.operator | None = None) -> str:
        """An operand of an operator of precedence ``parent``, in parentheses where it binds less
        tightly, mixes ⊙ or ⊘ with a matrix product, or is a sign inside a product."""
        text = self.tex(node)
        if isinstance(node, ast.BinOp) and _PRECEDENCE[type(node.op)] < parent:
            return rf"\left({text}\right)"
        mixed = (
            isinstance(node, ast.BinOp)
            and parent_op is not None
            and {type(node.op), type(parent_op)} & {ast.MatMult}
            and {type(node.op), type(parent_op)} & set(_ENTRYWISE)
        )
        if mixed:
            return rf"\left({text}\right)"  # (A ⊙ B) C: keep ⊙ and the matrix product apart
        if isinstance(node, ast.UnaryOp) and parent > 1:
            return rf"\left({text}\right)"
        return text

    def transpose(self, node: ast.Attribute) -> str:
        """X.T as Xᵀ (a name's transpose is one operand for ``leaf``)."""
        inner = node.value
        if isinstance(inner, ast.Name):
            return self.leaf(node, rf"{{{self.symbols.get(inner.id, inner.id)}}}^\top")
        return rf"\left({self.tex(inner)}\right)^\top"

    def indicator(self, node: ast.Compare) -> str:
        """a > b as 𝟙[a > b]."""
        parts = [self.tex(node.left)]
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            parts.append({ast.Gt: ">", ast.GtE: r"\ge", ast.Lt: "<", ast.LtE: r"\le"}[type(op)])
            parts.append(self.tex(comparator))
        return r"\mathbb{1}\left[" + " ".join(parts) + r"\right]"

    def binary(self, node: ast.BinOp) -> str:
        """+ and −; @ as juxtaposition; * as ⊙ (a plain product with a scalar); / as ⊘ (a slash
        for a scalar divisor); ** as a power."""
        level = _PRECEDENCE[type(node.op)]
        left = self.operand(node.left, level, node.op)
        tight = isinstance(node.op, (ast.Add, ast.Mult, ast.MatMult))
        right = self.operand(node.right, level + (0 if tight else 1), node.op)
        scalar = not self.shape(node.left) or not self.shape(node.right)
        if isinstance(node.op, ast.Add):
            return f"{left} + {right}"
        if isinstance(node.op, ast.Sub):
            return f"{left} - {right}"
        if isinstance(node.op, ast.MatMult):
            return rf"{left}\,{right}"
        if isinstance(node.op, ast.Mult):
            return rf"{left}\,{right}" if scalar else rf"{left} \odot {right}"
        if isinstance(node.op, ast.Div):
            divisor_is_scalar = not self.shape(node.right)
            return rf"{left} / {right}" if divisor_is_scalar else rf"{left} \oslash {right}"
        return rf"{left}^{{{self.tex(node.right)}}}"

    def call(self, node: ast.Call) -> str:
        """ones() as 1, 1ᵀ or 11ᵀ, eye() as I, any other function by its LaTeX name."""
        assert isinstance(node.func, ast.Name)
        function = FUNCTIONS[node.func.id]
        if function.kind == "ones":
            return self.leaf(node, _ones_tex(node))
        if function.kind == "eye":
            return self.leaf(node, function.tex)
        args = node.args[1:] if function.kind == "einsum" else node.args
        inner = ", ".join(self.tex(a) for a in args)
        return rf"{function.tex}\left({inner}\right)"


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
    typesetter = _Typesetter(symbols, shapes, dims, leaf or (lambda node, tex: tex))
    return typesetter.tex(parsed.expression)


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
