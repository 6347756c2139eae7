"""The CSV reader, side by side with pandas and with pyarrow's raw reader, in one run.

    python benchmarks/csv_reader.py            # 200,000 × 21 (20 features and a label), 7 rounds
    python benchmarks/csv_reader.py --rows 20000 --rounds 3   # a quick look

Contenders, interleaved round by round on the same file (median seconds of the rounds):

- ``nnmath load_dataset``: the whole path of ``nnmath train --data FILE.csv``: parse (pyarrow), check
  every cell is a finite number, encode the label column, build the Dataset;
- ``nnmath read_features``: the path of ``nnmath predict``: parse and check the model's columns;
- ``pyarrow read_csv``: pyarrow's parser alone, with nnmath's options (what nnmath cannot beat);
- ``pandas read_csv + to_numpy``: the reference the issue quotes (0.2 s where nnmath took 4.9 s).

Writes benchmarks/results/csv_reader.md. Timings on a shared machine swing: compare the ratios
within one run.
"""

from __future__ import annotations

import argparse
import csv
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow
import pyarrow.csv as pcsv

import nnmath
from nnmath.datasets import load_dataset, read_features

try:
    import pandas
except ImportError:  # pandas is in the bench extra only
    pandas = None

RESULTS = Path(__file__).parent / "results" / "csv_reader.md"


def write_csv(path: Path, rows: int, features: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    y = rng.integers(0, 10, size=rows)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([f"x{j}" for j in range(features)] + ["label"])
        for row, label in zip(X.tolist(), y.tolist(), strict=True):
            writer.writerow([repr(v) for v in row] + [label])


def contenders(path: Path, features: int) -> dict[str, Callable[[], object]]:
    names = [f"x{j}" for j in range(features)]
    options = pcsv.ConvertOptions(
        null_values=[""], strings_can_be_null=True, true_values=[], false_values=[]
    )
    parse = pcsv.ParseOptions(newlines_in_values=True)
    runs: dict[str, Callable[[], object]] = {
        "nnmath load_dataset": lambda: load_dataset(path),
        "nnmath read_features": lambda: read_features(path, names, features),
        "pyarrow read_csv": lambda: pcsv.read_csv(
            path, parse_options=parse, convert_options=options
        ),
    }
    if pandas is not None:
        runs["pandas read_csv + to_numpy"] = lambda: pandas.read_csv(path).to_numpy()
    return runs


def measure(runs: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():  # warm-up: imports, page cache
        run()
    for _ in range(rounds):
        for name, run in runs.items():
            began = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - began)
    return times


def report(times: dict[str, list[float]], rows: int, features: int, size: int) -> str:
    median = {name: statistics.median(values) for name, values in times.items()}
    lines = [
        "# CSV reader: nnmath against pyarrow and pandas",
        "",
        f"`python benchmarks/csv_reader.py --rows {rows}`, run of "
        f"{time.strftime('%Y-%m-%d %H:%M')}: {rows:,} rows × {features + 1} columns "
        f"({size / 2**20:.1f} MiB), {len(next(iter(times.values())))} interleaved rounds, median "
        f"seconds. nnmath {nnmath.__version__}, pyarrow {pyarrow.__version__}"
        + (f", pandas {pandas.__version__}" if pandas is not None else "")
        + f", NumPy {np.__version__}, Python {platform.python_version()}.",
        "",
        "| reader | median s | min s | nnmath load_dataset ÷ this |",
        "|---|---|---|---|",
    ]
    ours = median["nnmath load_dataset"]
    for name, values in times.items():
        lines.append(
            f"| {name} | {median[name]:.3f} | {min(values):.3f} | {ours / median[name]:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rows.csv"
        write_csv(path, args.rows, args.features)
        times = measure(contenders(path, args.features), args.rounds)
        text = report(times, args.rows, args.features, path.stat().st_size)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
