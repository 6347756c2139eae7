"""Layers: forward pass, vector-Jacobian product, full Jacobian and formula, side by side.

Conventions, stated once for the whole engine:

- A batch is the rows of X ∈ ℝ^{S×n}: one sample per row. dZ always means ∂L/∂Z, with Z's shape.
- Linear: y = W x + b with W of shape (n_out, n_in); for a batch Y = X Wᵀ + 1bᵀ, and
  dX = dY W, dW = dYᵀ X, db = 1ᵀ dY (notes, 1a–1c).
- Jacobians are per sample and in numerator layout: J = ∂y/∂x has shape (len(y), len(x)), so that
  vjp(g) = g J. A batch of Jacobians has shape (S, len(y), len(x)). A parameter's Jacobian flattens it
  row-major: for Linear ∂y/∂vec(W) = I ⊗ xᵀ.
- Layer VJPs sum over the batch; the 1/S of the cost belongs to the loss (see ``losses``).

Every layer has the same members: ``forward(X) -> (Y, cache)``, ``vjp(cache, dY) -> (dX, grads)``,
``jacobian(cache)``, ``param_jacobians(cache)``, ``params`` and ``tex``. What backward needs travels in
the cache, explicitly; a layer holds only its parameters.

Formulas are LaTeX templates with placeholders that a derivation replaces by its own symbols:
``<X>``, ``<Y>``, ``<W>``, ``<b>``, ``<dX>``, ``<dY>``, ``<dW>``, ``<db>`` for matrices and ``<x>``,
``<y>``, ``<z>`` for entries; element forms index samples by s and features by i, j, k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnmath.activations import Activation, get_activation
from nnmath.backend import namespace

Array = Any


@dataclass(frozen=True)
class Formula:
    """A primitive's mathematics, typeset once: forward and backward, matrix and element form."""

    forward: str
    forward_element: str
    backward: str
    backward_element: str
    jacobian: str
    text: str


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
)


class Linear:
    """Affine map Y = X Wᵀ + 1bᵀ with W of shape (n_out, n_in) and b of shape (n_out,)."""

    tex = LINEAR_TEX

    def __init__(self, W: Array, b: Array) -> None:
        self.W = W
        self.b = b

    @property
    def n_in(self) -> int:
        return int(self.W.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.W.shape[0])

    @property
    def params(self) -> dict[str, Array]:
        return {"W": self.W, "b": self.b}

    def describe(self) -> str:
        return f"Linear {self.n_in}→{self.n_out}"

    def forward(self, X: Array) -> tuple[Array, Array]:
        """Y = X Wᵀ + 1bᵀ; the cache is X (all that dW needs)."""
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
        )

    @property
    def name(self) -> str:
        return self.activation.name

    def describe(self) -> str:
        return self.activation.label

    def forward(self, X: Array) -> tuple[Array, tuple[Array, Array]]:
        """Y = h(X); the cache is (X, Y), since h′ may use either."""
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
        return {}


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
)


class Softmax:
    """Row-wise softmax: each output depends on the whole row, so its Jacobian is not diagonal."""

    name = "softmax"
    params: dict[str, Array] = {}
    tex = SOFTMAX_TEX

    def describe(self) -> str:
        return "softmax"

    def forward(self, X: Array) -> tuple[Array, Array]:
        """Y = softmax(X) row by row; the cache is Y (the Jacobian needs only y)."""
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
        return {}


def activation_layer(name: str, parameter: float | None = None) -> Elementwise | Softmax:
    """The layer for an activation name: Softmax for "softmax", else Elementwise(h)."""
    if name.lower() == "softmax":
        return Softmax()
    return Elementwise(get_activation(name, parameter))
