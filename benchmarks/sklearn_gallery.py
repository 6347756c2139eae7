"""nnmath.sklearn as a drop-in: scikit-learn's gallery settings with only the import swapped, and
held-out accuracy on digits, side by side with scikit-learn.

1. Each script in docs/examples/sklearn/ (the settings of scikit-learn's gallery examples
   ``plot_mlp_alpha``, ``plot_mlp_training_curves`` and ``plot_mnist_filters``, on bundled or
   generated data) runs three times in a fresh process: as written; with its one line
   ``from sklearn.neural_network import MLPClassifier`` replaced by
   ``from nnmath.sklearn import MLPClassifier`` (nnmath's defaults: ``dtype=None``,
   scikit-learn's arithmetic); and with that class bound to ``dtype="auto"`` (float32 training).
   Their printed results go side by side.
2. Digits (1797 images, 8×8), standardised, 5 stratified 75/25 splits: held-out accuracy of
   MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=seed) for each solver,
   scikit-learn against nnmath with its default ``dtype=None`` (scikit-learn's arithmetic) and
   with dtype="auto" (float32 training for sgd and adam, float64 for lbfgs), mean ± standard deviation, and the mean fit
   time, all with BLAS on one thread (on a shared 2-core machine a second OpenBLAS thread makes
   these small products several times slower, for the transposed product X Wᵀ most of all; see
   docs/sklearn.md).

Run: ``python benchmarks/sklearn_gallery.py`` (about 3 minutes on a 2-core machine); writes
benchmarks/results/sklearn_gallery.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples" / "sklearn"
SCRIPTS = ("mlp_alpha.py", "mlp_training_curves.py", "digits_filters.py")
SCIKIT_LEARN_IMPORT = "from sklearn.neural_network import MLPClassifier"
NNMATH_IMPORT = "from nnmath.sklearn import MLPClassifier"
NNMATH_AUTO_IMPORT = (
    "import functools; from nnmath.sklearn import MLPClassifier as _MLP; "
    "MLPClassifier = functools.partial(_MLP, dtype='auto')"
)


def swapped(source: str, replacement: str = NNMATH_IMPORT) -> str:
    """The script with its one scikit-learn MLP import replaced by nnmath's."""
    if source.count(SCIKIT_LEARN_IMPORT) != 1:
        raise SystemExit(f"expected exactly one line {SCIKIT_LEARN_IMPORT!r}")
    return source.replace(SCIKIT_LEARN_IMPORT, replacement)


def run_script(source: str) -> tuple[list[str], float]:
    """(printed lines, wall seconds) of a script run in a fresh interpreter."""
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", source],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return done.stdout.splitlines(), time.perf_counter() - began


def gallery_section(name: str) -> list[str]:
    source = (EXAMPLES / name).read_text()
    theirs, their_time = run_script(source)
    ours, our_time = run_script(swapped(source))
    fast, auto_time = run_script(swapped(source, NNMATH_AUTO_IMPORT))
    same = sum(a == b for a, b in zip(theirs, ours, strict=False))
    same_auto = sum(a == b for a, b in zip(theirs, fast, strict=False))
    lines = [
        f"### {name}",
        "",
        f"{same} of {len(theirs)} printed lines identical with nnmath's defaults, "
        f"{same_auto} with dtype='auto'; wall time {their_time:.1f} s (scikit-learn), "
        f"{our_time:.1f} s and {auto_time:.1f} s (nnmath), each in a fresh process.",
        "",
        "| scikit-learn | nnmath.sklearn | nnmath.sklearn, dtype='auto' |",
        "|---|---|---|",
    ]
    for a, b, c in zip(theirs, ours, fast, strict=False):
        cells = ["same" if a == other else f"`{other.strip()}`" for other in (b, c)]
        lines.append(f"| `{a.strip()}` | {cells[0]} | {cells[1]} |")
    return [*lines, ""]


def digits_section(seeds: int) -> list[str]:
    """Held-out accuracy and fit time on digits, per solver and library."""
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as ScikitLearn
    from sklearn.preprocessing import StandardScaler

    from nnmath.sklearn import MLPClassifier as Nnmath

    X, y = load_digits(return_X_y=True)
    contenders = {
        "scikit-learn": lambda **p: ScikitLearn(**p),
        "nnmath (default)": lambda **p: Nnmath(**p),
        "nnmath (dtype='auto')": lambda **p: Nnmath(dtype="auto", **p),
    }
    rows = ["| solver | library | test accuracy (mean ± sd) | fit time (s) |", "|---|---|---|---|"]
    limits = threadpool_limits(1, user_api="blas")
    for solver in ("adam", "sgd", "lbfgs"):
        for library, make in contenders.items():
            scores, seconds = [], []
            for seed in range(seeds):
                X_train, X_test, y_train, y_test = train_test_split(
                    X, y, test_size=0.25, stratify=y, random_state=seed
                )
                scaler = StandardScaler().fit(X_train)
                model = make(hidden_layer_sizes=(64,), solver=solver, random_state=seed)
                began = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(scaler.transform(X_train), y_train)
                seconds.append(time.perf_counter() - began)
                scores.append(model.score(scaler.transform(X_test), y_test))
            spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
            rows.append(
                f"| {solver} | {library} | {np.mean(scores):.4f} ± {spread:.4f} | "
                f"{np.mean(seconds):.2f} |"
            )
    limits.restore_original_limits()
    return [
        "## Held-out accuracy on digits",
        "",
        f"MLPClassifier(hidden_layer_sizes=(64,), solver=…, random_state=seed), max_iter 200, "
        f"{seeds} stratified 75/25 splits (seed = split = random_state), inputs standardised; "
        "BLAS on one thread for every library.",
        "",
        *rows,
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/sklearn_gallery.md"
    )
    args = parser.parse_args()
    import sklearn

    lines = [
        "# nnmath.sklearn next to scikit-learn",
        "",
        f"Written by `python benchmarks/sklearn_gallery.py`: scikit-learn {sklearn.__version__}, "
        f"NumPy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs "
        f"(shared).",
        "",
        "## Gallery examples, the import swapped",
        "",
    ]
    for name in SCRIPTS:
        lines += gallery_section(name)
        print(f"ran {name}", flush=True)
    lines += digits_section(args.seeds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
