"""Programs that test_distributed_mpi.py runs on real MPI ranks: ``mpiexec -n N python THIS CHECK DIR``.

Each check runs on every rank and raises on a failure (mpiexec then exits non-zero); rank 0 prints
one line ``ok CHECK: numbers`` that the test reads. The single-process references are computed in
the same program, on every rank, so that each rank compares its own result with them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnmath.datasets.preprocessing import Standardizer
from nnmath.datasets.stream import TRAIN, open_stream, split_parts
from nnmath.distributed import Communicator, DistributedError, reduced_gradients

CHECKS: dict[str, Callable[[Communicator, Path], str]] = {}


def check(function: Callable[[Communicator, Path], str]) -> Callable[[Communicator, Path], str]:
    CHECKS[function.__name__] = function
    return function


def expect_failure(run: Callable[[], object], *fragments: str) -> str:
    """The message of the DistributedError that ``run`` raises; it must contain ``fragments``."""
    try:
        run()
    except DistributedError as error:
        message = str(error)
        missing = [f for f in fragments if f not in message]
        assert not missing, f"{missing} not in {message!r}"
        return message
    raise AssertionError("no DistributedError was raised")


@check
def stream_statistics(comm: Communicator, directory: Path) -> str:
    """Each rank reads its share; the combined statistics equal NumPy's on all training rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = directory / "stream.parquet"
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 5)) * [1.0, 10.0, 0.1, 3.0, 1e3] + [0.0, 5.0, -1.0, 2.0, 1e4]
    labels = rng.integers(0, 3, 6000)
    labels[-1] = 3  # a class in the last row group only: the class list is the union over ranks
    if comm.is_root:
        columns = {f"f{j}": X[:, j] for j in range(5)}
        pq.write_table(pa.table({**columns, "y": labels}), path, row_group_size=500)
    comm.comm.Barrier()
    stream = open_stream(path, comm=comm, test_fraction=0.2, validation_fraction=0.1)
    chunks = stream.source.chunks
    parts = np.concatenate([split_parts(0, i, c.rows, 0.2, 0.1) for i, c in enumerate(chunks)])
    train = parts == TRAIN
    fitted, streamed = Standardizer.fit(X[train]), stream.summary.standardizer()
    mean_error = np.max(np.abs(streamed.mean - fitted.mean) / np.abs(fitted.mean))
    scale_error = np.max(np.abs(streamed.scale - fitted.scale) / fitted.scale)
    assert mean_error < 1e-12 and scale_error < 1e-12, (mean_error, scale_error)
    assert stream.summary.class_names == ["0", "1", "2", "3"]
    assert stream.summary.rows["train"] == train.sum()
    mine = sum(len(Xb) for Xb, _ in stream.batches(1, 64))  # this rank's share of an epoch
    everyone = comm.comm.allreduce(mine)
    assert everyone == train.sum() and 0 < mine < everyone, (mine, everyone)
    return f"max relative error of mean {mean_error:.1e}, of scale {scale_error:.1e}; rows {mine}"


@check
def faults(comm: Communicator, directory: Path) -> str:
    """A failure on rank 1 stops every rank with a message naming rank 1 and the cause."""

    def fails_on_rank_1() -> int:
        if comm.rank == 1:
            raise OSError("disk full")
        return comm.rank

    expect_failure(
        lambda: comm.collect(fails_on_rank_1, "writing the checkpoint"),
        "rank 1 failed in writing the checkpoint: OSError: disk full",
    )
    calls = 0

    def gradients(X: np.ndarray, T: np.ndarray) -> tuple[float, list[np.ndarray]]:
        nonlocal calls
        calls += 1
        if comm.rank == 1 and calls == 3:
            raise FloatingPointError("overflow in layer 2")
        return 1.0, [np.ones(3)]

    step = reduced_gradients(comm, gradients, [np.zeros(3)])
    batch = (np.zeros((4, 1)), np.zeros(4))
    step(*batch)
    step(*batch)
    message = expect_failure(
        lambda: step(*batch), "rank 1 failed in training step 3: FloatingPointError: overflow"
    )
    return message


def main() -> int:
    name, directory = sys.argv[1], Path(sys.argv[2])
    comm = Communicator.world()
    result = CHECKS[name](comm, directory)
    if comm.is_root:
        print(f"ok {name}: {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
