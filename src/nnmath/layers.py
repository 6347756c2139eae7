"""Layers: forward pass, vector-Jacobian product, full Jacobian and formula, side by side.

Conventions, stated once for the whole engine:

- A batch is the rows of X ∈ ℝ^{S×n}: one sample per row. dZ always means ∂L/∂Z, with Z's shape.
- Linear: y = W x + b with W of shape (n_out, n_in); for a batch Y = X Wᵀ + 1bᵀ, and
  dX = dY W, dW = dYᵀ X, db = 1ᵀ dY (notes, 1a–1c).
- Jacobians are per sample and in numerator layout: J = ∂y/∂x has shape (len(y), len(x)), so that
  vjp(g) = g J. A batch of Jacobians has shape (S, len(y), len(x)). A parameter's Jacobian flattens it
  row-major: for Linear ∂y/∂vec(W) = I ⊗ xᵀ.
- Layer VJPs sum over the batch; the 1/S of the cost belongs to the loss (see ``losses``).

Every layer has the same members: ``forward(X, mode) -> (Y, cache)``, ``vjp(cache, dY) -> (dX, grads)``,
``jacobian(cache)``, ``param_jacobians(cache)``, ``params`` and ``tex``. What backward needs travels in
the cache, explicitly; a layer holds only its parameters (and batch norm its running statistics).

The :class:`Mode` says whether a forward pass trains or evaluates. Only batch normalization
(``normalization``) and dropout (``dropout``) read it; Linear, the activations and softmax compute the
same function in both modes and take it only so that every layer is called alike.

Formulas are LaTeX templates with placeholders that a derivation replaces by its own symbols:
``<X>``, ``<Y>``, ``<W>``, ``<b>``, ``<dX>``, ``<dY>``, ``<dW>``, ``<db>`` for matrices and ``<x>``,
``<y>``, ``<z>`` for entries; element forms index samples by s and features by i, j, k.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.activations import Activation, get_activation
from nnmath.backend import namespace

Array = Any


@dataclass(frozen=True)
class Mode:
    """How a forward pass runs: training or evaluation.

    Training: batch norm normalizes with the batch's own mean and variance, and dropout draws a fresh
    mask from ``rng`` (the generator is passed in, never global). Evaluation: batch norm uses its
    running statistics and dropout is the identity. Every other layer ignores the mode.
    """

    training: bool = False
    rng: np.random.Generator | None = None

    def describe(self) -> str:
        """``"training"`` or ``"evaluation"``, for messages and summaries."""
        return "training" if self.training else "evaluation"


EVALUATION = Mode()


@dataclass(frozen=True)
class Rule:
    """One equation of a primitive in one notation of the derivations: LaTeX and NumPy side by side.

    ``tex`` is the right-hand side in matrix form and ``element`` the whole equation in element form
    (LaTeX templates); ``code`` is the right-hand side in the derivations' safe NumPy subset (names,
    ``+ - * / @ **``, ``.T`` and the functions of ``nnmath.derivation.functions``), so that the
    printed formula is the one evaluated. ``element_code`` (einsum, with the element form's indices)
    is given where the element form is not the matrix form entry by entry. An identity (a step of a
    simplification) also has its left-hand side, ``lhs`` and ``lhs_code``. Placeholders are those of
    Formula, plus ``<C>`` (the function differentiated), ``<n>`` (the layer's width), ``<x>``, ``<y>``
    (one sample's vectors) and ``<si>``-style index pairs, which a notation writes ``si`` or ``is``.
    """

    tex: str
    code: str
    element: str = ""
    element_code: str = ""
    lhs: str = ""
    lhs_code: str = ""


@dataclass(frozen=True)
class Formula:
    """A primitive's mathematics, typeset once: forward and backward, matrix and element form.

    ``notations`` holds the same mathematics for the derivation documents, one Rule per role
    (``forward``, ``dW``, ``db``, ``dX``, ``jacobian``, ``value``, ``grad``, ...) in each notation:
    ``row`` (one sample per row, Z = A W + 1b with W of shape in×out, so W = engine Wᵀ) and ``column``
    (one sample per column, Z = W A + b1ᵀ with the engine's W).
    """

    forward: str
    forward_element: str
    backward: str
    backward_element: str
    jacobian: str
    text: str
    notations: Mapping[str, Mapping[str, Rule]] = field(
        default_factory=dict, compare=False, repr=False
    )


def render(template: str, **symbols: str) -> str:
    """Replace each ``<name>`` placeholder of a formula template by ``symbols[name]``."""
    for name, symbol in symbols.items():
        template = template.replace(f"<{name}>", symbol)
    return template


def softmax(Z: Array) -> Array:
    """Row-wise softmax, y = exp(z − max z) / Σ exp(z − max z): no overflow for any finite z."""
    xp = namespace(Z)
    E = xp.exp(Z - xp.max(Z, axis=1, keepdims=True))
    return E / xp.sum(E, axis=1, keepdims=True)


def log_softmax(Z: Array) -> Array:
    """Row-wise log-softmax, z − max z − ln Σ exp(z − max z): finite wherever z is."""
    xp = namespace(Z)
    shifted = Z - xp.max(Z, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def diagonal_jacobians(D: Array) -> Array:
    """Batch of diagonal matrices diag(d_s) from the rows d_s of D: shape (S, n, n)."""
    xp = namespace(D)
    eye = xp.eye(D.shape[1], dtype=D.dtype)
    return eye[None, :, :] * D[:, None, :]


# Linear in the two notations of the derivations. Row: samples are rows, W is in×out (the engine's
# Wᵀ) and b a row; column: samples are columns, W is out×in (the engine's W) and b a column.
LINEAR_NOTATIONS: dict[str, dict[str, Rule]] = {
    "row": {
        "forward": Rule(
            tex=r"<X> <W> + \mathbf{1} <b>",
            code="<X> @ <W> + ones(S, 1) @ <b>",
            element=r"<Y>_{si} = \sum_{k} <X>_{sk} <W>_{ki} + <b>_{i}",
            element_code="einsum('sk,ki->si', <X>, <W>) + einsum('ti,s->si', <b>, ones(S))",
        ),
        "dW": Rule(
            tex=r"<X>^\top <dY>",
            code="<X>.T @ <dY>",
            element=r"\frac{\partial <C>}{\partial <W>_{ki}} = \sum_{s} <X>_{sk}"
            r" \frac{\partial <C>}{\partial <Y>_{si}}",
            element_code="einsum('sk,si->ki', <X>, <dY>)",
        ),
        "db": Rule(
            tex=r"\mathbf{1}^\top <dY>",
            code="ones(1, S) @ <dY>",
            element=r"\frac{\partial <C>}{\partial <b>_{i}} = \sum_{s} \frac{\partial <C>}{\partial <Y>_{si}}",
            element_code="einsum('si,t->ti', <dY>, ones(1))",
        ),
        "dX": Rule(
            tex=r"<dY> <W>^\top",
            code="<dY> @ <W>.T",
            element=r"\frac{\partial <C>}{\partial <X>_{sk}} = \sum_{i}"
            r" \frac{\partial <C>}{\partial <Y>_{si}} <W>_{ki}",
            element_code="einsum('si,ki->sk', <dY>, <W>)",
        ),
    },
    "column": {
        "forward": Rule(
            tex=r"<W> <X> + <b> \mathbf{1}^\top",
            code="<W> @ <X> + <b> @ ones(1, S)",
            element=r"<Y>_{is} = \sum_{k} <W>_{ik} <X>_{ks} + <b>_{i}",
            element_code="einsum('ik,ks->is', <W>, <X>) + einsum('it,s->is', <b>, ones(S))",
        ),
        "dW": Rule(
            tex=r"<dY> <X>^\top",
            code="<dY> @ <X>.T",
            element=r"\frac{\partial <C>}{\partial <W>_{ik}} = \sum_{s}"
            r" \frac{\partial <C>}{\partial <Y>_{is}} <X>_{ks}",
            element_code="einsum('is,ks->ik', <dY>, <X>)",
        ),
        "db": Rule(
            tex=r"<dY> \mathbf{1}",
            code="<dY> @ ones(S, 1)",
            element=r"\frac{\partial <C>}{\partial <b>_{i}} = \sum_{s} \frac{\partial <C>}{\partial <Y>_{is}}",
            element_code="einsum('is,t->it', <dY>, ones(1))",
        ),
        "dX": Rule(
            tex=r"<W>^\top <dY>",
            code="<W>.T @ <dY>",
            element=r"\frac{\partial <C>}{\partial <X>_{ks}} = \sum_{i} <W>_{ik}"
            r" \frac{\partial <C>}{\partial <Y>_{is}}",
            element_code="einsum('ik,is->ks', <W>, <dY>)",
        ),
    },
}

LINEAR_TEX = Formula(
    forward=r"<Y> = <X> <W>^\top + \mathbf{1} <b>^\top",
    forward_element=r"<Y>_{si} = \sum_{k} <X>_{sk} <W>_{ik} + <b>_{i}",
    backward=(r"<dW> = <dY>^\top <X>, \quad <db> = \mathbf{1}^\top <dY>, \quad <dX> = <dY> <W>"),
    backward_element=(
        r"\frac{\partial L}{\partial <W>_{ij}} = \sum_{s} \frac{\partial L}{\partial <Y>_{si}} <X>_{sj},"
        r"\quad \frac{\partial L}{\partial <b>_{i}} = \sum_{s} \frac{\partial L}{\partial <Y>_{si}},"
        r"\quad \frac{\partial L}{\partial <X>_{sj}} = \sum_{i} \frac{\partial L}{\partial <Y>_{si}} <W>_{ij}"
    ),
    jacobian=(
        r"\frac{\partial y}{\partial x} = <W>, \quad "
        r"\frac{\partial y}{\partial \operatorname{vec}(<W>)} = I \otimes x^\top, \quad "
        r"\frac{\partial y}{\partial b} = I"
    ),
    text="Y = X Wᵀ + 1bᵀ (W: out×in);  dW = dYᵀ X, db = 1ᵀ dY, dX = dY W",
    notations=LINEAR_NOTATIONS,
)


class Linear:
    """Affine map Y = X Wᵀ + 1bᵀ with W of shape (n_out, n_in) and b of shape (n_out,)."""

    tex = LINEAR_TEX

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b

    @property
    def n_in(self) -> int:
        """n_in, the width of the input: W's second dimension."""
        return int(self.W.shape[1])

    @property
    def n_out(self) -> int:
        """n_out, the width of the output: W's first dimension."""
        return int(self.W.shape[0])

    @property
    def params(self) -> dict[str, Array]:
        """{"W": W (n_out, n_in), "b": b (n_out,)}: the arrays an optimizer updates, by name."""
        return {"W": self.W, "b": self.b}

    def describe(self) -> str:
        """``"Linear n_in→n_out"``, for summaries."""
        return f"Linear {self.n_in}→{self.n_out}"

    def forward(self, X: Array, mode: Mode = EVALUATION) -> tuple[Array, Array]:
        """Y = X Wᵀ + 1bᵀ (in either mode); the cache is X (all that dW needs)."""
        return X @ self.W.T + self.b, X

    def vjp(self, cache: Array, dY: Array) -> tuple[Array, dict[str, Array]]:
        """dX = dY W, dW = dYᵀ X, db = 1ᵀ dY (summed over the batch)."""
        X = cache
        xp = namespace(dY)
        return dY @ self.W, {"W": dY.T @ X, "b": xp.sum(dY, axis=0)}

    def jacobian(self, cache: Array) -> Array:
        """∂y/∂x = W for every sample: shape (S, n_out, n_in)."""
        xp = namespace(self.W)
        S = cache.shape[0]
        return xp.broadcast_to(self.W[None, :, :], (S, self.n_out, self.n_in))

    def param_jacobians(self, cache: Array) -> dict[str, Array]:
        """∂y/∂vec(W) = I ⊗ xᵀ (S, out, out·in) and ∂y/∂b = I (S, out, out), W flattened row-major."""
        X = cache
        xp = namespace(X)
        S, n_out, n_in = X.shape[0], self.n_out, self.n_in
        eye = xp.eye(n_out, dtype=X.dtype)
        dW = xp.reshape(eye[None, :, :, None] * X[:, None, None, :], (S, n_out, n_out * n_in))
        db = xp.broadcast_to(eye[None, :, :], (S, n_out, n_out))
        return {"W": dW, "b": db}


def elementwise_notations(activation: Activation) -> dict[str, dict[str, Rule]]:
    """The Rules of Y = h(X) for the derivations, built from the activation's own templates.

    An elementwise map reads the same in both notations but for the order of an entry's indices.
    """
    h, dh = activation.code, activation.code_derivative
    tex_dh = render(activation.tex_derivative, z="z", y="y")
    rules = {
        "forward": Rule(
            tex=render(activation.tex, z="<X>", y="<Y>"),
            code=render(h, z="<X>"),
            element=r"<Y>_{<si>} = " + render(activation.tex, z="<X>_{<si>}", y="<Y>_{<si>}"),
        ),
        "dX": Rule(
            tex=r"<dY> \odot h'(<X>), \quad h'(z) = " + tex_dh,
            code=f"<dY> * ({render(dh, z='<X>', y='<Y>')})",
            element=r"\frac{\partial <C>}{\partial <X>_{<si>}} = \frac{\partial <C>}{\partial <Y>_{<si>}}"
            r"\, " + render(activation.tex_derivative, z="<X>_{<si>}", y="<Y>_{<si>}"),
        ),
        "jacobian": Rule(
            tex=r"\operatorname{diag}\left(h'(<x>)\right)",
            code=f"diag({render(dh, z='<x>', y='<y>')})",
            element=r"(J_s)_{jk} = \delta_{jk}\, "
            + render(activation.tex_derivative, z="<X>_{<sj>}", y="<Y>_{<sj>}"),
            element_code=f"einsum('sj,jk->sjk', {render(dh, z='<x>', y='<y>')}, eye(<n>))",
        ),
    }
    return {"row": rules, "column": rules}


class Elementwise:
    """Y = h(Z) entry by entry, for an activation h from the ``activations`` table."""

    params: dict[str, Array] = {}

    def __init__(self, activation: Activation) -> None:
        self.activation = activation
        self.tex = Formula(
            forward=r"<Y> = " + render(activation.tex, z="<X>", y="<Y>"),
            forward_element=r"<Y>_{si} = " + render(activation.tex, z="<X>_{si}", y="<Y>_{si}"),
            backward=r"<dX> = <dY> \odot h'(<X>), \quad h'(<X>) = "
            + render(activation.tex_derivative, z="<X>", y="<Y>"),
            backward_element=r"\frac{\partial L}{\partial <X>_{si}} = \frac{\partial L}{\partial <Y>_{si}}"
            r"\, h'(<X>_{si})",
            jacobian=r"\frac{\partial y}{\partial x} = \operatorname{diag}\left(h'(x)\right)",
            text=f"{activation.text};  dX = dY ⊙ h′(X), J = diag(h′(x))",
            notations=elementwise_notations(activation),
        )

    @property
    def name(self) -> str:
        """The activation's name (``relu``, ``tanh``, …)."""
        return self.activation.name

    def describe(self) -> str:
        """The activation's label, for summaries."""
        return self.activation.label

    def forward(self, X: Array, mode: Mode = EVALUATION) -> tuple[Array, tuple[Array, Array]]:
        """Y = h(X) (in either mode); the cache is (X, Y), since h′ may use either."""
        Y = self.activation.f(X)
        return Y, (X, Y)

    def derivative(self, cache: tuple[Array, Array]) -> Array:
        """h′(X) entry by entry."""
        X, Y = cache
        return self.activation.df(X, Y)

    def vjp(self, cache: tuple[Array, Array], dY: Array) -> tuple[Array, dict[str, Array]]:
        """dX = dY ⊙ h′(X)."""
        return dY * self.derivative(cache), {}

    def jacobian(self, cache: tuple[Array, Array]) -> Array:
        """diag(h′(x)) per sample: shape (S, n, n)."""
        return diagonal_jacobians(self.derivative(cache))

    def param_jacobians(self, cache: tuple[Array, Array]) -> dict[str, Array]:
        """{}: an elementwise map has no parameters."""
        return {}


# Softmax in the derivations' notations; ``<x>``, ``<y>`` are one sample's vectors (rows of the
# batch in the row notation, columns in the column notation), J_s its Jacobian in numerator layout.
SOFTMAX_NOTATIONS: dict[str, dict[str, Rule]] = {
    "row": {
        "forward": Rule(
            tex=r"\exp(<X>) \oslash \left(\exp(<X>)\,\mathbf{1}\mathbf{1}^\top\right)",
            code="exp(<X>) / (exp(<X>) @ ones(<n>, <n>))",
            element=r"<Y>_{si} = \frac{e^{<X>_{si}}}{\sum_{k} e^{<X>_{sk}}}",
            element_code="exp(<X>) / einsum('sk,i->si', exp(<X>), ones(<n>))",
        ),
        "dX": Rule(
            tex=r"<Y> \odot \left(<dY> - \left(<dY> \odot <Y>\right)\mathbf{1}\mathbf{1}^\top\right)",
            code="<Y> * (<dY> - (<dY> * <Y>) @ ones(<n>, <n>))",
            element=r"\frac{\partial <C>}{\partial <X>_{sj}} = <Y>_{sj}\left(\frac{\partial <C>}{\partial <Y>_{sj}}"
            r" - \sum_{k} \frac{\partial <C>}{\partial <Y>_{sk}} <Y>_{sk}\right)",
            element_code="<Y> * (<dY> - einsum('sk,sk,j->sj', <dY>, <Y>, ones(<n>)))",
        ),
        "jacobian": Rule(
            tex=r"\operatorname{diag}(<y>) - <y>^\top <y>",
            code="diag(<y>) - outer(<y>, <y>)",
            element=r"(J_s)_{jk} = <Y>_{sj}\left(\delta_{jk} - <Y>_{sk}\right)",
            element_code="einsum('sj,jk->sjk', <y>, eye(<n>)) - einsum('sj,sk->sjk', <y>, <y>)",
        ),
    },
    "column": {
        "forward": Rule(
            tex=r"\exp(<X>) \oslash \left(\mathbf{1}\mathbf{1}^\top \exp(<X>)\right)",
            code="exp(<X>) / (ones(<n>, <n>) @ exp(<X>))",
            element=r"<Y>_{is} = \frac{e^{<X>_{is}}}{\sum_{k} e^{<X>_{ks}}}",
            element_code="exp(<X>) / einsum('ks,i->is', exp(<X>), ones(<n>))",
        ),
        "dX": Rule(
            tex=r"<Y> \odot \left(<dY> - \mathbf{1}\mathbf{1}^\top\left(<dY> \odot <Y>\right)\right)",
            code="<Y> * (<dY> - ones(<n>, <n>) @ (<dY> * <Y>))",
            element=r"\frac{\partial <C>}{\partial <X>_{js}} = <Y>_{js}\left(\frac{\partial <C>}{\partial <Y>_{js}}"
            r" - \sum_{k} \frac{\partial <C>}{\partial <Y>_{ks}} <Y>_{ks}\right)",
            element_code="<Y> * (<dY> - einsum('ks,ks,j->js', <dY>, <Y>, ones(<n>)))",
        ),
        "jacobian": Rule(
            tex=r"\operatorname{diag}(<y>) - <y> <y>^\top",
            code="diag(<y>) - outer(<y>, <y>)",
            element=r"(J_s)_{jk} = <Y>_{js}\left(\delta_{jk} - <Y>_{ks}\right)",
            element_code="einsum('sj,jk->sjk', <y>, eye(<n>)) - einsum('sj,sk->sjk', <y>, <y>)",
        ),
    },
}

SOFTMAX_TEX = Formula(
    forward=r"<Y> = \exp(<X>) \oslash \left(\exp(<X>)\,\mathbf{1}\mathbf{1}^\top\right)",
    forward_element=r"<Y>_{si} = \frac{e^{<X>_{si}}}{\sum_{k} e^{<X>_{sk}}}",
    backward=(
        r"<dX> = <Y> \odot \left(<dY> - \left(<dY> \odot <Y>\right)\mathbf{1}\mathbf{1}^\top\right)"
    ),
    backward_element=(
        r"\frac{\partial L}{\partial <X>_{sj}} = <Y>_{sj}\left(\frac{\partial L}{\partial <Y>_{sj}}"
        r" - \sum_{k} \frac{\partial L}{\partial <Y>_{sk}} <Y>_{sk}\right)"
    ),
    jacobian=r"\frac{\partial y}{\partial x} = \operatorname{diag}(y) - y y^\top",
    text="Y = exp(X) / row sums;  dX = Y ⊙ (dY − (dY ⊙ Y) 1 1ᵀ), J = diag(y) − y yᵀ",
    notations=SOFTMAX_NOTATIONS,
)


class Softmax:
    """Row-wise softmax: each output depends on the whole row, so its Jacobian is not diagonal."""

    name = "softmax"
    params: dict[str, Array] = {}
    tex = SOFTMAX_TEX

    def describe(self) -> str:
        """``"softmax"``, for summaries."""
        return "softmax"

    def forward(self, X: Array, mode: Mode = EVALUATION) -> tuple[Array, Array]:
        """Y = softmax(X) row by row (in either mode); the cache is Y (the Jacobian needs only y)."""
        Y = softmax(X)
        return Y, Y

    def vjp(self, cache: Array, dY: Array) -> tuple[Array, dict[str, Array]]:
        """dX = Y ⊙ (dY − (dY ⊙ Y) 1 1ᵀ)  (notes, 1e)."""
        Y = cache
        xp = namespace(Y)
        return Y * (dY - xp.sum(dY * Y, axis=1, keepdims=True)), {}

    def jacobian(self, cache: Array) -> Array:
        """diag(y) − y yᵀ per sample: shape (S, n, n)."""
        Y = cache
        return diagonal_jacobians(Y) - Y[:, :, None] * Y[:, None, :]

    def param_jacobians(self, cache: Array) -> dict[str, Array]:
        """{}: softmax has no parameters."""
        return {}


def activation_layer(name: str, parameter: float | None = None) -> Elementwise | Softmax:
    """The layer for an activation name: Softmax for "softmax", else Elementwise(h)."""
    if name.lower() == "softmax":
        return Softmax()
    return Elementwise(get_activation(name, parameter))
