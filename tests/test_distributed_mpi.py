"""Data-parallel training on real MPI ranks: ``mpiexec -n 2`` runs tests/distributed_programs.py.

Skipped, with the reason, where mpi4py or mpiexec is missing (``pip install 'nnmath[mpi]'``).
Each launch has a bounded timeout; the whole file takes well under a minute on two cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROGRAMS = Path(__file__).with_name("distributed_programs.py")
TIMEOUT_S = 60


def mpiexec() -> list[str]:
    """The mpiexec command line for this machine, or a skip saying what is missing."""
    pytest.importorskip("mpi4py", reason="MPI tests need mpi4py: pip install 'nnmath[mpi]'")
    found = shutil.which("mpiexec") or shutil.which(
        "mpiexec", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.skip(
            "MPI tests need mpiexec: pip install 'nnmath[mpi]' (or apt install openmpi-bin)"
        )
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30)
    open_mpi = "Open MPI" in version.stdout + version.stderr or "OpenRTE" in version.stdout
    # Open MPI refuses root without these, and more ranks than cores without --oversubscribe.
    return [found, "--oversubscribe"] if open_mpi else [found]


def run_ranks(n: int, *command: str, cwd: Path | None = None) -> str:
    """stdout of ``mpiexec -n n COMMAND``; fails the test with both streams on a non-zero exit."""
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"  # two ranks on two cores
    try:
        run = subprocess.run(
            [*mpiexec(), "-n", str(n), *command],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=env,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"mpiexec -n {n} {' '.join(command)} ran past {TIMEOUT_S} s: {expired.stdout}")
    assert run.returncode == 0, f"exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run.stdout


def run_checks(names: list[str], directory: Path, n: int = 2) -> list[str]:
    """Run the named checks in one mpiexec launch; each reports one line, from rank 0 alone."""
    out = run_ranks(n, sys.executable, str(PROGRAMS), ",".join(names), str(directory))
    lines = [line for line in out.splitlines() if line.startswith("ok ")]
    assert [line.split(":")[0] for line in lines] == [f"ok {name}" for name in names], out
    for line in lines:
        print(line)
    return lines


def test_streamed_statistics_and_faults_over_two_ranks(tmp_path: Path) -> None:
    """Each rank reads its share of a Parquet file and the statistics equal NumPy's on the whole
    (1e-12); a failure on rank 1 (in an agreement, in a training step inside fit) stops every
    rank with a message naming rank 1 and the cause; the weight-hash check sees parted ranks."""
    run_checks(["stream_statistics", "faults", "fit_faults"], tmp_path)


def test_two_ranks_train_as_one_process_and_resume_anywhere(tmp_path: Path) -> None:
    """fit(comm=) on 2 ranks for 18 steps equals one process on the same global batches
    (float64 to 1e-12, float32 to 2e-5 of the largest weight; with sample weights, a per-sample
    L2 penalty and clipping; regression's R² reduced); a checkpoint written by rank 0 resumes on
    2 ranks bit for bit and on 1 process to round-off."""
    run_checks(["equivalence", "resume_anywhere"], tmp_path)


def nnmath_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nnmath", "train", *args]


def test_digits_on_two_ranks_match_one_process_and_print_one_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Done means: ``mpiexec -n 2 nnmath train --data digits --distributed`` reaches the held-out
    accuracy of one process with the same global batch, and prints one summary."""
    from nnmath.cli import main

    mpiexec()  # skip here, before the one-process run, where MPI is missing
    # the same kernel in both runs ("auto" takes numba where a process has already loaded it)
    options = ["--data", "digits", "--epochs", "4", "--no-plots", "--quiet", "--kernel", "numpy"]
    assert main(["train", *options, "-o", str(tmp_path / "one.nnm")]) == 0
    one = capsys.readouterr()
    two = run_ranks(
        2, *nnmath_command(*options, "--distributed", "--check-replicas", "-o",
                           str(tmp_path / "two.nnm")),
    )  # fmt: skip
    headline = [line for line in one.out.splitlines() if line.startswith("held-out")]
    summaries = [line for line in two.splitlines() if line.startswith("held-out")]
    assert len(headline) == 1 and len(summaries) == 1, two
    assert summaries[0].split("[")[0] == headline[0].split("[")[0]  # same accuracy, same rows
    from nnmath.modelfile import load_model

    W1 = load_model(tmp_path / "one.nnm").network.parameters()
    W2 = load_model(tmp_path / "two.nnm").network.parameters()
    assert max(float(abs(a - b).max()) for a, b in zip(W1, W2, strict=True)) < 1e-4


def test_a_bad_row_on_one_rank_stops_both_and_writes_no_model(tmp_path: Path) -> None:
    """A streamed file whose bad value lies in a row group read by one rank: every rank stops,
    rank 0 prints one error naming that rank and the cell, and no model file is written."""
    import numpy as np

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from nnmath.datasets.stream import _PASS_KEY, deal

    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 3))
    X[650, 1] = np.nan  # in row group 6 (rows 600 … 699)
    path = tmp_path / "bad.parquet"
    table = {"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": rng.integers(0, 2, 800)}
    pq.write_table(pa.table(table), path, row_group_size=100)
    shares = deal([100] * 8, 2, np.random.default_rng([0, _PASS_KEY]))
    rank = next(r for r, share in enumerate(shares) if 6 in share)
    model = tmp_path / "model.nnm"
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    run = subprocess.run(
        [*mpiexec(), "-n", "2",
         *nnmath_command("--data", str(path), "--stream", "--distributed", "-o", str(model))],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("nnmath train: error")]
    assert errors == [
        f"nnmath train: error: rank {rank} failed in the statistics pass: DataError: bad.parquet: "
        "data row 651, column 'b': the value is missing (null or NaN); every feature value must "
        "be a finite number: fill it in or delete the row (every rank has stopped)"
    ], run.stderr
    assert not model.exists()


def test_a_streamed_run_on_two_ranks(tmp_path: Path) -> None:
    """``--stream --distributed``: each rank reads its row groups; one JSON report, the peak
    memory of both ranks, a held-out accuracy well above chance."""
    import json

    import numpy as np

    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6000, 4))
    y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(4)}, "y": y}), path,
                   row_group_size=500)  # fmt: skip
    out = run_ranks(
        2, *nnmath_command("--data", str(path), "--stream", "--distributed", "--spec", "16relu",
                           "--epochs", "3", "--batch-size", "32", "--learning-rate", "0.01",
                           "--validation-fraction", "0.1", "--json", "-o",
                           str(tmp_path / "m.nnm")),
    )  # fmt: skip
    report = json.loads(out)
    assert report["stream"]["ranks"] == 2 and len(report["stream"]["peak_rss_mb"]) == 2
    assert sum(report["stream"]["rows"].values()) == 6000
    assert report["test"]["accuracy"] > 0.85 and "val_accuracy" in report["final"]
