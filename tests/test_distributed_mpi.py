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
