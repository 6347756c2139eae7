"""What the page draws on each frame, computed by the library from a session snapshot.

- the *boundary*: one vectorised prediction of the network over a GRID × GRID lattice of the input
  plane (two-feature data only), sent as bytes: the most probable class and its probability
  (classification) or the prediction scaled to 0 … 255 (regression);
- each neuron's *response* over the same lattice (every other point), from the same forward
  pass: a⁽ˡ⁾_j(x) scaled by its largest |a| on the plane, as bytes;
- the weights W⁽ˡ⁾ (engine layout, n_l × n_{l−1}) and biases, and the gradient of the current
  batch's cost (with the L2 penalty) at the current weights, for the diagram's edges and tooltips;
- the cost and accuracy (or R²) on the train and test splits, and the history of both.

Nothing here is mathematics of its own: the forward pass is the layers' ``forward``, the gradient
the engine's backward pass, the probabilities :func:`nnmath.metrics.class_probabilities`.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from nnmath.metrics import class_probabilities
from nnmath.network import MLP
from nnmath.playground.session import Snapshot, penalty, split_metrics

GRID = 64  # boundary lattice: GRID × GRID points
NEURON_STRIDE = 2  # neuron images take every other lattice point (32 × 32)


def plane(extent: tuple[float, float, float, float], n: int = GRID) -> np.ndarray:
    """The lattice as (n², 2) points, row by row from the top (largest x1) to the bottom."""
    x0_min, x0_max, x1_min, x1_max = extent
    x0 = np.linspace(x0_min, x0_max, n)
    x1 = np.linspace(x1_max, x1_min, n)
    U, V = np.meshgrid(x0, x1)
    return np.column_stack([U.ravel(), V.ravel()])


def layer_outputs(model: MLP, X: np.ndarray) -> list[np.ndarray]:
    """[a⁽¹⁾, …, a⁽ᴷ⁾]: each activation layer's output, from one forward pass."""
    outputs = []
    for layer in model.layers:
        X = layer.forward(X)[0]
        outputs.append(X)
    return outputs[1::2]


def _bytes(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=np.uint8).tobytes()).decode("ascii")


def boundary(A: np.ndarray, task: str) -> dict[str, Any]:
    """The output over the lattice: class and probability bytes, or the scaled prediction."""
    if task == "classification":
        P = class_probabilities(A)
        label = np.argmax(P, axis=1)
        confidence = np.max(P, axis=1)
        return {
            "kind": "classes",
            "classes": int(P.shape[1]),
            "label": _bytes(label),
            "confidence": _bytes(np.round(255 * confidence)),
        }
    value = A[:, 0]
    low, high = float(value.min()), float(value.max())
    scaled = (value - low) / (high - low) if high > low else np.zeros_like(value)
    return {"kind": "value", "low": low, "high": high, "value": _bytes(np.round(255 * scaled))}


def neuron_images(outputs: list[np.ndarray], n: int = GRID) -> list[list[str]]:
    """Each neuron's response on every NEURON_STRIDE-th lattice point, a / max|a| mapped
    from [−1, 1] to 0 … 255 (128 is zero)."""
    images = []
    for A in outputs:
        grid = A.reshape(n, n, -1)[::NEURON_STRIDE, ::NEURON_STRIDE]
        scale = np.maximum(np.max(np.abs(grid), axis=(0, 1)), 1e-12)
        scaled = np.round(127.5 * (grid / scale + 1.0))
        images.append([_bytes(scaled[:, :, j]) for j in range(grid.shape[2])])
    return images


def gradients(snapshot: Snapshot) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """The current batch's cost C + P and its gradients dW⁽ˡ⁾ (penalty included), db⁽ˡ⁾."""
    model, X, T = snapshot.model, snapshot.X, snapshot.T
    with np.errstate(all="ignore"):  # a diverged network's gradient is shown as None
        value, grads = model.loss_and_gradients(
            X, T, snapshot.loss, check=False, penalty=penalty(snapshot.config)
        )
    return value, grads.W, grads.b


def _rounded(values: np.ndarray) -> list[Any]:
    """Nested lists of floats with 7 significant digits (enough to read, small to send); None
    where a diverged value is not finite (JSON has no NaN)."""
    rounded = np.vectorize(lambda x: float(f"{x:.7g}"), otypes=[float])(values)
    return np.where(np.isfinite(rounded), rounded, None).tolist()


def network(snapshot: Snapshot) -> dict[str, Any]:
    """Sizes, activations, weights, biases and the current batch's gradients of every layer."""
    model = snapshot.model
    batch_cost, dW, db = gradients(snapshot)
    return {
        "sizes": list(model.spec.sizes),
        "activations": [layer.activation for layer in model.spec.layers],
        "W": [_rounded(linear.W) for linear in model.linears],
        "b": [_rounded(linear.b) for linear in model.linears],
        "dW": [_rounded(g) for g in dW],
        "db": [_rounded(g) for g in db],
        "batch_cost": batch_cost if math.isfinite(batch_cost) else None,
    }


def frame(snapshot: Snapshot, playing: bool) -> dict[str, Any]:
    """Everything one frame of the page shows."""
    data = snapshot.data
    out: dict[str, Any] = {
        "type": "frame",
        "version": snapshot.version,
        "step": snapshot.step,
        "epoch": snapshot.epoch,
        "playing": playing,
        "message": snapshot.message,
        "stage": snapshot.stage,
        "metrics": split_metrics(snapshot.model, snapshot.loss, data),
        "history": snapshot.history,
        "batch": snapshot.rows.tolist(),
        "network": network(snapshot),
        "boundary": None,
        "neurons": None,
    }
    if data.extent is not None:
        with np.errstate(all="ignore"):  # a diverged network draws blank, it does not warn
            outputs = [np.nan_to_num(A) for A in layer_outputs(snapshot.model, plane(data.extent))]
        out["boundary"] = {"grid": GRID, **boundary(outputs[-1], data.task)}
        out["neurons"] = {"grid": GRID // NEURON_STRIDE, "images": neuron_images(outputs)}
    return out
