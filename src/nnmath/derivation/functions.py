"""The operators and functions a formula may use: one record each, with its NumPy code.

A :class:`Function` holds what every other part of the formula language needs of it: the NumPy
code the evaluator calls, the LaTeX name the typesetter prints, its ``kind`` (how shape inference
maps its arguments' shapes to its result's) and its ``arity`` (how many arguments the parser
accepts). :data:`BINARY` and :data:`COMPARE` map the allowed operators ``+ - * / @ **`` and
``< <= > >=`` to their NumPy ufuncs; an operator not in them is refused by the parser.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


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
    work: int = 1  # operations per entry of the result, for the budget (a transcendental: 10)


FUNCTIONS: dict[str, Function] = {
    "exp": Function(np.exp, r"\exp", "elementwise", work=10),
    "log": Function(np.log, r"\ln", "elementwise", work=10),
    "ln": Function(np.log, r"\ln", "elementwise", work=10),
    "log2": Function(np.log2, r"\log_2", "elementwise", work=10),
    "log10": Function(np.log10, r"\log_{10}", "elementwise", work=10),
    "sqrt": Function(np.sqrt, r"\sqrt", "elementwise"),
    "tanh": Function(np.tanh, r"\tanh", "elementwise", work=10),
    "sin": Function(np.sin, r"\sin", "elementwise", work=10),
    "cos": Function(np.cos, r"\cos", "elementwise", work=10),
    "abs": Function(np.abs, r"\operatorname{abs}", "elementwise"),
    "sign": Function(np.sign, r"\operatorname{sign}", "elementwise"),
    "sigmoid": Function(_sigmoid, r"\sigma", "elementwise", work=10),
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


POWER_WORK = 10  # operations per entry of x ** y, for the budget

BINARY = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.MatMult: np.matmul,
    ast.Pow: np.power,
}


COMPARE = {ast.Gt: np.greater, ast.GtE: np.greater_equal, ast.Lt: np.less, ast.LtE: np.less_equal}
