"""The two notations of the derivations: symbol tables, and the map between them and the engine.

- **row** (the default, as in the 3-10-6-3 request of the notes): one sample per row,
  Z_l = A_{l-1} W_l + 1 b_l with W_l of shape n_{l-1} × n_l and b_l a row 1 × n_l. The engine stores
  W as n_l × n_{l-1}, so the row notation's W_l is the engine's Wᵀ.
- **column** (the notes' algorithm, z = W a + b per sample): one sample per column,
  Z^{(l)} = W^{(l)} A^{(l-1)} + b^{(l)} 1ᵀ with W^{(l)} of shape n_l × n_{l-1} (the engine's W), b^{(l)} a
  column n_l × 1, and every batch matrix the transpose of the engine's (n_l × S).

A :class:`Symbol` carries a quantity's name in code (what ``nnmath check`` binds), its LaTeX for the
whole matrix, for one entry and for one sample's vector, its meaning and its shape with S symbolic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnmath.derivation.shapes import Shape
from nnmath.errors import SpecError

NOTATIONS = ("row", "column")


@dataclass(frozen=True)
class Symbol:
    """One quantity of a derivation: code name, LaTeX (matrix, entry, one sample), meaning, shape."""

    code: str
    tex: str
    entry: str  # LaTeX of one entry, with {index} for the indices
    vector: str  # LaTeX of one sample's vector (or the matrix itself for parameters)
    meaning: str
    shape: Shape

    def at(self, index: str) -> str:
        """The LaTeX of one entry, e.g. Z_{3,sj}."""
        return self.entry.replace("{index}", index)


@dataclass(frozen=True)
class Notation:
    """A notation: how batches are laid out and how layer l's symbols are written."""

    name: str
    title: str
    description: str
    samples_are_rows: bool

    # ---- indices and layout ----------------------------------------------------------------

    def index(self, pair: str) -> str:
        """An entry's index pair, sample first in the row notation: 'si' → 'si' or 'is'."""
        return pair if self.samples_are_rows else pair[::-1]

    def batch(self, n: int) -> Shape:
        """The shape of a batch of S vectors of width n."""
        return ("S", n) if self.samples_are_rows else (n, "S")

    def rows(self, code: str) -> str:
        """Code for the batch as rows (one sample per row), as the batched functions take it."""
        return code if self.samples_are_rows else f"{code}.T"

    def from_engine(self, kind: str, value: np.ndarray) -> np.ndarray:
        """An engine array in this notation: kind is 'batch', 'W' or 'b'."""
        value = np.asarray(value, dtype=np.float64)
        if kind == "W":
            return value.T.copy() if self.samples_are_rows else value.copy()
        if kind == "b":
            return value[None, :].copy() if self.samples_are_rows else value[:, None].copy()
        return value.copy() if self.samples_are_rows else value.T.copy()

    def to_engine(self, kind: str, value: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`from_engine`."""
        if kind == "W":
            return value.T if self.samples_are_rows else value
        if kind == "b":
            return value.reshape(-1)
        return value if self.samples_are_rows else value.T

    # ---- symbols ---------------------------------------------------------------------------

    def layer(self, letter: str, layer: int) -> tuple[str, str, str]:
        """(matrix, entry template, sample vector) LaTeX for a layer quantity such as W_2 or Z^{(2)}."""
        small = letter.lower()
        if self.samples_are_rows:
            return (
                f"{letter}_{{{layer}}}",
                f"{letter}_{{{layer},{{index}}}}",
                f"{small}_{{{layer},s}}",
            )
        return (
            f"{{{letter}^{{({layer})}}}}",
            f"{letter}^{{({layer})}}_{{{{index}}}}",
            f"{small}^{{({layer})}}_s",
        )

    def symbols(self, sizes: tuple[int, ...]) -> dict[str, Symbol]:
        """Every symbol of a network with layer widths ``sizes`` = (n0, n1, …, nK), by code name."""
        K = len(sizes) - 1
        table: dict[str, Symbol] = {}

        def add(code: str, tex: str, entry: str, vector: str, meaning: str, shape: Shape) -> None:
            table[code] = Symbol(code, tex, entry, vector, meaning, shape)

        add("S", "S", "S", "S", "the number of samples in the batch", ())
        for layer, n in enumerate(sizes):
            add(f"n{layer}", f"n_{{{layer}}}", "", "", f"width of layer {layer} (= {n})", ())
        add(
            "X",
            "X",
            "X_{{index}}",
            "x_s",
            "the inputs, one sample per " + ("row" if self.samples_are_rows else "column"),
            self.batch(sizes[0]),
        )
        for layer in range(1, K + 1):
            n_in, n_out = sizes[layer - 1], sizes[layer]
            W = self.layer("W", layer)
            b = self.layer("b", layer)
            w_shape = (n_in, n_out) if self.samples_are_rows else (n_out, n_in)
            b_shape = (1, n_out) if self.samples_are_rows else (n_out, 1)
            add(f"W{layer}", W[0], W[1], W[0], f"weights of layer {layer}", w_shape)
            add(f"b{layer}", b[0], b[1], b[0], f"biases of layer {layer}", b_shape)
            Z = self.layer("Z", layer)
            add(f"Z{layer}", *Z, f"pre-activations of layer {layer}", self.batch(n_out))
            if layer < K:
                A = self.layer("A", layer)
                add(f"A{layer}", *A, f"activations of layer {layer}", self.batch(n_out))
        add(
            "Yhat",
            r"\hat{Y}",
            r"\hat{Y}_{{index}}",
            r"\hat{y}_s",
            f"the predictions, the activations of layer {K}",
            self.batch(sizes[-1]),
        )
        add("Y", "Y", "Y_{{index}}", "y_s", "the targets", self.batch(sizes[-1]))
        add("C", "C", "", "", r"the cost, $C = \frac{1}{S} \sum_s \ell_s$", ())
        return table

    def gradient(self, symbol: Symbol, objective: str = "C") -> Symbol:
        """The symbol of ∂objective/∂symbol: code dW2 (or dl_dZ3 for ℓ), same shape."""
        if objective == "C":
            code = "dX" if symbol.code == "X" else f"d{symbol.code}"
            if self.samples_are_rows or symbol.code in ("X", "Yhat"):
                tex = f"d{symbol.tex}" if not symbol.tex.startswith("\\") else rf"d{{{symbol.tex}}}"
            else:
                tex = f"{{d{symbol.tex[1:-1]}}}"  # {W^{(2)}} → {dW^{(2)}}
            meaning = rf"$\partial C / \partial {symbol.tex}$, the cost's gradient"
        else:
            code = f"dl_d{symbol.code}"
            tex = rf"\frac{{\partial \ell}}{{\partial {symbol.tex}}}"
            meaning = rf"$\partial \ell / \partial {symbol.tex}$: row $s$ is $\partial \ell_s / \partial {symbol.vector}$"
            if not self.samples_are_rows:
                meaning = meaning.replace("row $s$", "column $s$")
        return Symbol(code, tex, "", "", meaning, symbol.shape)


ROW = Notation(
    name="row",
    title="row notation",
    description=(
        "One sample per row, as in the request: $Z_l = A_{l-1} W_l + \\mathbf{1} b_l$, with $W_l$ of "
        "shape $n_{l-1} \\times n_l$ and $b_l$ a row vector ($1 \\times n_l$); $\\mathbf{1}$ is a column "
        "of $S$ ones, so $\\mathbf{1} b_l$ repeats $b_l$ on every row. (nnmath's engine stores each "
        "weight matrix as $n_l \\times n_{l-1}$: the $W_l$ here is the engine's $W^\\top$.)"
    ),
    samples_are_rows=True,
)

COLUMN = Notation(
    name="column",
    title="column notation",
    description=(
        "One sample per column, as in the notes' algorithm ($z = W a + b$ for one sample): "
        "$Z^{(l)} = W^{(l)} A^{(l-1)} + b^{(l)} \\mathbf{1}^\\top$, with $W^{(l)}$ of shape "
        "$n_l \\times n_{l-1}$ (nnmath's own $W$), $b^{(l)}$ a column vector ($n_l \\times 1$) and "
        "$\\mathbf{1}$ a column of $S$ ones; column $s$ of every batch matrix is sample $s$."
    ),
    samples_are_rows=False,
)


def get_notation(name: str) -> Notation:
    """The notation called ``name`` ('row' or 'column')."""
    notations = {"row": ROW, "column": COLUMN, "rows": ROW, "columns": COLUMN}
    if name not in notations:
        raise SpecError(
            f"unknown notation {name!r}; choose 'row' (Z = A W + 1b) or 'column' (Z = W A + b1ᵀ)"
        )
    return notations[name]


def shapes_and_dims(
    table: dict[str, Symbol], sizes: tuple[int, ...], S: Any = "S"
) -> tuple[dict[str, Shape], dict[str, Any]]:
    """The symbols' shapes and the size names (S, n0 … nK), with batch size ``S`` ('S': symbolic)."""
    dims: dict[str, Any] = {"S": S, **{f"n{layer}": n for layer, n in enumerate(sizes)}}
    shapes = {
        code: tuple(S if d == "S" else d for d in symbol.shape) for code, symbol in table.items()
    }
    return shapes, dims
