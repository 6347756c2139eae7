"""Programs that test_distributed_mpi.py runs on real MPI ranks: ``mpiexec -n N python THIS
CHECK[,CHECK…] DIR``.

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


def relative_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """max |a − b| / max |b| over all parameters."""
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True)) / max(
        float(np.max(np.abs(y))) for y in b
    )


def train_both(comm: Communicator, X: np.ndarray, y: np.ndarray, spec: str, **settings):
    """(model, history) of one process and of every rank together, from the same start."""
    from nnmath.network import MLP
    from nnmath.training import fit

    out = []
    for c in (None, comm):
        model = MLP(spec, seed=3)
        history = fit(model, X, y, seed=4, comm=c, **settings)
        out.append((model.parameters(), history))
    return out


@check
def equivalence(comm: Communicator, directory: Path) -> str:
    """N ranks for k steps = one process on the same global batches (float64 1e-12, float32)."""
    from nnmath.penalties import L2

    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(203, 6)), rng.integers(0, 3, 203)  # batches of 32 and a last of 10
    w = rng.uniform(0.5, 2.0, 203)
    T = np.column_stack([X[:, 0] - X[:, 1], np.tanh(X[:, 2])])
    cases = {
        "float64 adam": ("6-16tanh-8relu-3softmax", y, {"optimizer": "adam", "dtype": "float64"}),
        "float64 sgd, weights, L2/S, clip": (
            "6-16tanh-8relu-3softmax", y,
            {"optimizer": "sgd", "dtype": "float64", "sample_weight": w, "clip_norm": 1.0,
             "penalty": L2(1e-2, per_sample=True)},
        ),
        "float64 regression": ("6-12tanh-2", T, {"optimizer": "adam", "dtype": "float64"}),
        "float32 adam": ("6-16tanh-8relu-3softmax", y, {"optimizer": "adam", "dtype": "float32"}),
        "float32 sgd": ("6-16tanh-8relu-3softmax", y, {"optimizer": "sgd", "dtype": "float32"}),
        # 161 training rows: a last batch of one row, which leaves rank 1 without rows
        "float64 adam, a last batch of 1": (
            "6-16tanh-8relu-3softmax", y, {"optimizer": "adam", "dtype": "float64", "rows": 201},
        ),
    }  # fmt: skip
    report = []
    for name, (spec, targets, settings) in cases.items():
        settings = dict(settings)
        n = settings.pop("rows", len(X))
        (one, h1), (many, hn) = train_both(
            comm, X[:n], targets[:n], spec, epochs=3, batch_size=32, learning_rate=0.05,
            validation_fraction=0.2, **settings,
        )  # fmt: skip
        assert set(hn.metrics) == set(h1.metrics), (name, hn.metrics.keys(), h1.metrics.keys())
        tolerance = 1e-12 if "float64" in name else 2e-5
        weights = relative_difference(many, one)
        logs = max(
            abs(a - b) / max(abs(b), 1e-300)
            for key in h1.metrics
            for a, b in zip(hn[key], h1[key], strict=True)
        )
        assert weights < tolerance and logs < max(tolerance, 1e-10), (name, weights, logs)
        report.append(f"{name}: weights {weights:.1e}, logs {logs:.1e}")
    return "; ".join(report)


@check
def resume_anywhere(comm: Communicator, directory: Path) -> str:
    """A checkpoint written by rank 0 after epoch 2 resumes on 2 ranks (bit for bit) and on one
    process (to round-off), to the end of the uninterrupted 2-rank run."""
    from nnmath.modelfile import load_checkpoint
    from nnmath.network import MLP
    from nnmath.training import fit

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(150, 5)), rng.integers(0, 3, 150)
    settings = {"optimizer": "adam", "dtype": "float64", "batch_size": 16, "seed": 5,
                "validation_fraction": 0.2, "learning_rate": 0.01}  # fmt: skip
    path = directory / "run.ckpt"
    whole = MLP("5-12tanh-3softmax", seed=1)
    fit(whole, X, y, epochs=4, comm=comm, **settings)
    fit(MLP("5-12tanh-3softmax", seed=1), X, y, epochs=2, comm=comm, checkpoint=path, **settings)
    comm.comm.Barrier()
    state = load_checkpoint(path).state
    assert state.epoch == 2
    resumed = {}
    for name, c in (("2 ranks", comm), ("1 process", None)):
        model = MLP("5-12tanh-3softmax", seed=9)  # other weights: the checkpoint's must win
        history = fit(model, X, y, epochs=4, comm=c, resume=state, **settings)
        assert history.epochs == 4
        resumed[name] = relative_difference(model.parameters(), whole.parameters())
    assert resumed["2 ranks"] == 0.0 and resumed["1 process"] < 1e-12, resumed
    return (
        f"resumed on 2 ranks: difference {resumed['2 ranks']:.1e}; on 1: {resumed['1 process']:.1e}"
    )


@check
def fit_faults(comm: Communicator, directory: Path) -> str:
    """In fit: a step failing on rank 1, then weights that part (the debug hash check)."""
    from nnmath.distributed import Communicator as Ranks
    from nnmath.losses import get_loss
    from nnmath.network import MLP
    from nnmath.training import backprop, fit

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
    model = MLP("4-6tanh-2softmax", seed=1, dtype=np.float64)
    engine, calls = backprop(model, get_loss("cross-entropy")), 0

    def gradients(Xb: np.ndarray, Tb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        nonlocal calls
        calls += 1
        if comm.rank == 1 and calls == 7:
            raise MemoryError("cannot allocate 8 GiB")
        return engine(Xb, Tb)

    path = directory / "faults.ckpt"
    message = expect_failure(
        lambda: fit(
            model, X, y, epochs=3, batch_size=16, gradients=gradients, comm=comm, checkpoint=path
        ),  # fmt: skip
        "rank 1 failed in training step 7: MemoryError: cannot allocate 8 GiB",
    )
    from nnmath.modelfile import load_checkpoint

    assert load_checkpoint(path).state.epoch == 1  # written after epoch 1, never after a failure

    class Perturb:  # a bug that changes one rank's weights
        def on_epoch_end(self, epoch: int, logs: dict) -> bool:
            if comm.rank == 1 and epoch == 2:
                model.linears[0].W[0, 0] += 1e-9
            return False

    checked = Ranks(comm.comm, check_replicas=True)
    expect_failure(
        lambda: fit(
            model,
            X,
            y,
            epochs=3,
            batch_size=16,
            gradients=engine,
            comm=checked,
            callbacks=[Perturb()],
        ),  # fmt: skip
        "after epoch 2 the weights of rank(s) [1] differ from rank 0's",
    )
    return message


def main() -> int:
    names, directory = sys.argv[1].split(","), Path(sys.argv[2])
    comm = Communicator.world()
    for name in names:
        result = CHECKS[name](comm, directory)
        if comm.is_root:
            print(f"ok {name}: {result}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
