"""The cost of batch norm and dropout in training: the engine's step against the fast step.

The fast float32 step (``nnmath.fast.FastStep``) computes plain networks only; a network with
batch norm or dropout trains through the engine (``MLP.loss_and_gradients``, training mode, its
dropout masks from a generator) with the optimizer's update. This benchmark times one training
step (forward, backward, plain SGD update of every parameter) at two shapes, in float32, all in the
same process on the same data:

- ``fast``: FastStep.sgd_step on the plain network (what ``fit`` runs for it);
- ``engine``: the plain network through the engine (the fallback's own cost, with nothing added);
- ``engine +bn``, ``+dropout(0.2)``, ``+bn+dropout(0.2)``: the same network with the modifiers on
  every hidden layer.

Each time is the median over repeats of the mean over a run of steps; the ratio is to ``fast``.

    python benchmarks/speed_modes.py              # ~30 s
    python benchmarks/speed_modes.py --steps 50   # quicker, noisier
"""

from __future__ import annotations

import argparse
import os
import sys
import time

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from nnmath.fast import FastStep  # noqa: E402
from nnmath.losses import get_loss  # noqa: E402
from nnmath.network import MLP  # noqa: E402

SHAPES = {  # name: (hidden layers, inputs, classes, batch size) — nnmath's defaults for the data
    "MNIST-1D (40-256-256-10, batch 100)": ("256relu-256relu", 40, 10, 100),
    "digits (64-512-10, batch 32)": ("512relu", 64, 10, 32),
}
MODIFIERS = ("", "+bn", "+dropout(0.2)", "+bn+dropout(0.2)")
LEARNING_RATE = 0.01


def spec(hidden: str, n_in: int, n_out: int, modifier: str) -> str:
    layers = [layer + modifier for layer in hidden.split("-")]
    return "-".join([str(n_in), *layers, f"{n_out}softmax"])


def engine_step(model: MLP, loss, rng: np.random.Generator):
    def step(X: np.ndarray, y: np.ndarray) -> float:
        cost, grads = model.loss_and_gradients(X, y, loss, check=False, rng=rng)
        for parameter, grad in zip(model.parameters(), grads.flat(), strict=True):
            parameter -= LEARNING_RATE * grad
        return cost

    return step


def timed(step, X: np.ndarray, y: np.ndarray, batch: int, steps: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean seconds per step over ``steps`` batches."""
    starts = np.arange(0, len(X) - batch + 1, batch)
    for start in starts[:5]:  # warm up buffers and caches
        step(X[start : start + batch], y[start : start + batch])
    results = []
    for _ in range(repeats):
        began = time.perf_counter()
        for index in range(steps):
            start = starts[index % len(starts)]
            step(X[start : start + batch], y[start : start + batch])
        results.append((time.perf_counter() - began) / steps)
    return float(np.median(results))


def measure(name: str, steps: int, repeats: int) -> list[tuple[str, float]]:
    hidden, n_in, n_out, batch = SHAPES[name]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20 * batch, n_in)).astype(np.float32)
    y = rng.integers(0, n_out, size=len(X))
    loss = get_loss("cross-entropy")
    plain = MLP(spec(hidden, n_in, n_out, ""), seed=0, dtype=np.float32)
    fast = FastStep(plain.copy(), loss, batch)
    rows = [("fast", timed(lambda X_, y_: fast.sgd_step(X_, y_, LEARNING_RATE), X, y, batch,
                           steps, repeats))]  # fmt: skip
    for modifier in MODIFIERS:
        model = MLP(spec(hidden, n_in, n_out, modifier), seed=0, dtype=np.float32)
        step = engine_step(model, loss, np.random.default_rng(1))
        rows.append((f"engine {modifier or '(plain)'}", timed(step, X, y, batch, steps, repeats)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timing (200)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per row (5)")
    args = parser.parse_args(argv)
    lines = ["| shape | step | ms per step | × fast |", "|---|---|---:|---:|"]
    for name in SHAPES:
        rows = measure(name, args.steps, args.repeats)
        reference = rows[0][1]
        for label, seconds in rows:
            lines.append(f"| {name} | {label} | {1e3 * seconds:.3f} | {seconds / reference:.2f} |")
        print(f"  {name} done", file=sys.stderr, flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
