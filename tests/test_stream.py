"""Tests of nnmath.datasets.stream: data read in pieces, split, dealt to ranks and shuffled.

The oracle for every statistic is NumPy on the whole array; ranks are simulated by giving a
stream a communicator that only claims to be rank r of N (the pieces a rank reads depend on
nothing else). Real MPI runs are in test_distributed_mpi.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnmath.datasets.preprocessing import Moments, Standardizer
from nnmath.datasets.stream import (
    TEST,
    TRAIN,
    VALIDATION,
    batch_share,
    deal,
    open_stream,
    rebatch,
    shuffle_buffer,
    split_parts,
)
from nnmath.errors import DataError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


class Rank:
    """A communicator that is rank ``rank`` of ``size`` for reading (collect: one process)."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size

    def collect(self, compute, what):  # noqa: ANN001, ANN201
        return [compute()]


def table_data(rng: np.random.Generator, rows: int = 3000, columns: int = 4):
    X = rng.normal(size=(rows, columns)) * rng.uniform(0.1, 20.0, columns) + 100.0
    X[:, 1] = 7.25  # a constant column
    y = rng.integers(0, 3, rows)
    return X, y


def write_parquet(path: Path, X: np.ndarray, labels: np.ndarray, row_group: int = 250) -> Path:
    columns = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    pq.write_table(pa.table({**columns, "label": labels}), path, row_group_size=row_group)
    return path


def training_rows(stream, n_rows: int) -> np.ndarray:
    """Mask of the training rows, from the seeded per-chunk split (the stream's own rule)."""
    parts = [
        split_parts(stream.seed, i, chunk.rows, *stream.fractions)
        for i, chunk in enumerate(stream.source.chunks)
    ]
    mask = np.concatenate(parts) == TRAIN
    assert len(mask) == n_rows
    return mask


# ---- the pieces --------------------------------------------------------------------------------


def test_moments_combined_in_pieces_equal_numpy_on_the_whole(rng: np.random.Generator) -> None:
    X = rng.normal(size=(1000, 3)) * [1e-2, 1.0, 1e4] + [3.0, -5.0, 0.0]
    cuts = np.sort(rng.choice(np.arange(1, 1000), 12, replace=False))
    moments = Moments.empty(3)
    for piece in np.split(X, cuts):
        moments = moments.combine(Moments.of(piece))
    assert moments.count == 1000
    np.testing.assert_allclose(moments.mean, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(moments.M2 / 1000, X.var(axis=0), rtol=1e-12)
    fitted, streamed = Standardizer.fit(X), moments.standardizer()
    np.testing.assert_allclose(streamed.mean, fitted.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.scale, fitted.scale, rtol=1e-12)


def test_moments_of_a_constant_column_map_it_to_zero() -> None:
    X = np.full((5, 1), 0.1)
    standardizer = Moments.of(X[:2]).combine(Moments.of(X[2:])).standardizer()
    assert standardizer.transform(X).tolist() == [[0.0]] * 5


def test_split_parts_are_seeded_and_in_proportion() -> None:
    parts = split_parts(3, 7, 20_000, 0.2, 0.1)
    assert np.array_equal(parts, split_parts(3, 7, 20_000, 0.2, 0.1))
    assert not np.array_equal(parts, split_parts(3, 8, 20_000, 0.2, 0.1))
    shares = np.bincount(parts, minlength=3) / 20_000
    np.testing.assert_allclose(shares[[TRAIN, VALIDATION, TEST]], [0.7, 0.1, 0.2], atol=0.015)


def test_deal_balances_rows_and_gives_every_chunk_once() -> None:
    weights = [100, 90, 10, 50, 50, 30, 70, 100]
    shares = deal(weights, 3, np.random.default_rng(0))
    assert sorted(i for share in shares for i in share) == list(range(8))
    loads = [sum(weights[i] for i in share) for share in shares]
    assert max(loads) - min(loads) <= max(weights)


def test_shuffle_buffer_keeps_every_row_once_and_holds_a_bounded_number() -> None:
    rng = np.random.default_rng(1)
    pieces = [
        (np.arange(k, k + 10, dtype=float)[:, None], np.arange(k, k + 10))
        for k in range(0, 200, 10)
    ]
    out = list(shuffle_buffer(iter(pieces), 25, rng))
    rows = np.concatenate([y for _, y in out])
    assert sorted(rows.tolist()) == list(range(200))
    assert rows.tolist() != list(range(200))
    assert all(np.array_equal(X[:, 0], y) for X, y in out)  # features stay with their targets
    assert max(len(y) for y in [p[1] for p in out[:-1]]) <= 10  # a piece in, a piece out
    assert len(out[-1][1]) == 25  # the buffer, emptied at the end


def test_rebatch_cuts_exact_batches_and_a_short_last() -> None:
    pieces = [(np.zeros((n, 1)), np.arange(n)) for n in (3, 7, 1, 10)]
    assert [len(y) for _, y in rebatch(iter(pieces), 4)] == [4, 4, 4, 4, 4, 1]


def test_batch_share_splits_the_global_batch() -> None:
    assert [batch_share(10, 4, r) for r in range(4)] == [3, 3, 2, 2]
    assert sum(batch_share(7, 3, r) for r in range(3)) == 7


# ---- a stream over a Parquet file --------------------------------------------------------------


@pytest.fixture
def parquet(tmp_path: Path, rng: np.random.Generator):
    X, y = table_data(rng)
    labels = np.array(["cat", "dog", "emu"])[y]
    labels[-1] = "yak"  # a class in one row of the last row group only
    return write_parquet(tmp_path / "data.parquet", X, labels), X, labels


def test_statistics_pass_equals_numpy_on_the_training_rows(parquet) -> None:
    path, X, labels = parquet
    stream = open_stream(path, test_fraction=0.2, validation_fraction=0.1, read_rows=64)
    summary = stream.summary
    train = training_rows(stream, len(X))
    assert summary.rows == {
        "train": int(train.sum()),
        "validation": int((~train).sum()) - summary.rows["test"],
        "test": summary.rows["test"],
    }
    fitted, streamed = Standardizer.fit(X[train]), summary.standardizer()
    np.testing.assert_allclose(streamed.mean, fitted.mean, rtol=1e-12)
    np.testing.assert_allclose(streamed.scale, fitted.scale, rtol=1e-12)
    assert summary.task == "classification"
    assert summary.class_names == ["cat", "dog", "emu", "yak"]  # the union, sorted
    assert summary.feature_names == ["f0", "f1", "f2", "f3"] and summary.target_name == "label"


def test_an_epoch_shared_by_ranks_gives_every_training_row_once(parquet) -> None:
    path, X, labels = parquet
    stream = open_stream(path, test_fraction=0.2, read_rows=100, buffer_rows=300)
    train = training_rows(stream, len(X))
    classes = np.asarray(stream.summary.class_names)
    for size in (1, 2, 3):
        seen, steps = [], set()
        for rank in range(size):
            stream.comm = Rank(rank, size)
            batches = list(stream.batches(epoch=1, batch_size=32))
            steps.add(len(batches))
            b = batch_share(32, size, rank)
            assert all(len(Xb) <= b for Xb, _ in batches)
            seen += [(Xb, yb) for Xb, yb in batches if len(Xb)]
        assert len(steps) == 1  # the same number of steps on every rank
        X_seen = np.concatenate([Xb for Xb, _ in seen])
        y_seen = np.concatenate([yb for _, yb in seen])
        order = np.lexsort(X_seen.T[::-1])
        expected = np.lexsort(X[train].T[::-1])
        np.testing.assert_array_equal(X_seen[order], X[train][expected])
        assert classes[y_seen[order]].tolist() == labels[train][expected].tolist()


def test_epochs_are_reshuffled_and_reproducible(parquet) -> None:
    path, _, _ = parquet
    stream = open_stream(path, seed=5)
    first = np.concatenate([X for X, _ in stream.batches(1, 50)])
    again = np.concatenate([X for X, _ in stream.batches(1, 50)])
    second = np.concatenate([X for X, _ in stream.batches(2, 50)])
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)


def test_rows_of_a_part_cover_it_across_ranks(parquet) -> None:
    path, X, _ = parquet
    stream = open_stream(path, test_fraction=0.25)
    test_mask = (
        np.concatenate(
            [split_parts(0, i, c.rows, 0.25, 0.0) for i, c in enumerate(stream.source.chunks)]
        )
        == TEST
    )
    got = []
    for rank in range(2):
        stream.comm = Rank(rank, 2)
        got += [Xp for Xp, _ in stream.rows("test")]
    assert sum(len(p) for p in got) == test_mask.sum()
    assert np.isclose(np.concatenate(got).sum(), X[test_mask].sum(), rtol=1e-12)


def test_regression_and_npy_give_the_same_stream(tmp_path: Path, rng: np.random.Generator) -> None:
    X = rng.normal(size=(2000, 3))
    t = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=2000)
    np.save(tmp_path / "data.npy", np.column_stack([X, t]))
    stream = open_stream(tmp_path / "data.npy", validation_fraction=0.1)
    assert stream.summary.task == "regression" and stream.summary.class_names is None
    train = training_rows(stream, 2000)
    target = stream.summary.target_standardizer()
    assert target is not None
    np.testing.assert_allclose(target.mean, [t[train].mean()], rtol=1e-12)
    np.testing.assert_allclose(target.scale, [t[train].std()], rtol=1e-12)
    batch = next(stream.batches(1, 16))
    assert batch[0].shape == (16, 3) and batch[1].shape == (16, 1)


def test_integer_targets_with_few_values_are_classes(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    X, y = table_data(rng, rows=400)
    stream = open_stream(write_parquet(tmp_path / "d.parquet", X, y + 1, row_group=50))
    assert stream.summary.task == "classification"
    assert stream.summary.class_names == ["1", "2", "3"]
    _, labels = next(stream.rows("train"))
    assert labels.dtype == np.int64 and set(labels.tolist()) <= {0, 1, 2}


# ---- errors ------------------------------------------------------------------------------------


def test_a_bad_feature_value_names_the_file_row_and_column(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    X, y = table_data(rng, rows=300)
    X[217, 2] = np.nan
    path = write_parquet(tmp_path / "bad.parquet", X, y, row_group=100)
    with pytest.raises(
        DataError, match=r"bad.parquet: data row 218, column 'f2': the value is missing"
    ):
        open_stream(path)  # row 18 of the third row group: row 218 of the file


def test_a_text_feature_and_a_missing_target_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({"a": ["x", "y"], "b": [1.0, 2.0]}), path)
    with pytest.raises(
        DataError, match=r"column 'a' holds string; feature columns must be numeric"
    ):
        open_stream(path)
    path = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": [1.0, None, 0.0]}), path)
    with pytest.raises(DataError, match=r"data row 2: the target is missing"):
        open_stream(path)


def test_stream_refuses_other_files_and_tiny_batches(tmp_path: Path, parquet) -> None:
    (tmp_path / "d.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="streaming reads .parquet"):
        open_stream(tmp_path / "d.csv")
    stream = open_stream(parquet[0])
    stream.comm = Rank(0, 4)
    with pytest.raises(DataError, match="batch of 3 rows cannot be shared by 4 ranks"):
        stream.steps(1, 3)


# ---- memory ------------------------------------------------------------------------------------

READ_ONE_EPOCH = """
import resource, sys
from nnmath.datasets.stream import open_stream
stream = open_stream(sys.argv[1], buffer_rows=4096, read_rows=2048)
rows = sum(len(X) for X, _ in stream.batches(1, 256))
print(rows, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_peak_memory_does_not_grow_with_the_rows_read(tmp_path: Path) -> None:
    """One epoch over files of 50,000 and 400,000 rows (each many times the 4,096-row buffer):
    peak RSS stays within a few MB although the larger file holds 53 MB more data (measured:
    106 and 109 MB; with a buffer that holds every row, 125 and 291 MB)."""
    rng = np.random.default_rng(0)
    peaks = {}
    for rows in (50_000, 400_000):
        path = tmp_path / f"rows{rows}.parquet"
        with pq.ParquetWriter(path, pa.schema([(f"f{j}", pa.float64()) for j in range(20)])) as w:
            for _ in range(rows // 10_000):
                block = rng.normal(size=(10_000, 20))
                w.write_table(pa.table({f"f{j}": block[:, j] for j in range(20)}))
        run = subprocess.run(
            [sys.executable, "-c", READ_ONE_EPOCH, str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        read, peaks[rows] = (int(v) for v in run.stdout.split())
        assert read == rows
    data_growth_mb = (400_000 - 50_000) * 20 * 8 / 2**20
    assert peaks[400_000] - peaks[50_000] < 0.25 * data_growth_mb, (peaks, data_growth_mb)


# ---- training on a stream ----------------------------------------------------------------------


def learnable_parquet(path: Path, rows: int = 3000) -> Path:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(rows, 4))
    y = (X[:, 0] - X[:, 1] * X[:, 2] > 0).astype(int)
    pq.write_table(pa.table({**{f"x{j}": X[:, j] for j in range(4)}, "y": y}), path,
                   row_group_size=400)  # fmt: skip
    return path


def test_a_streamed_run_resumes_bit_for_bit(tmp_path: Path) -> None:
    """fit on StreamRows: 2 epochs, a checkpoint, 2 more = 4 epochs straight, bit for bit."""
    from nnmath.checkpoint import TrainingState
    from nnmath.datasets.stream import StreamRows
    from nnmath.network import MLP
    from nnmath.training import fit

    stream = open_stream(learnable_parquet(tmp_path / "d.parquet"), validation_fraction=0.1)
    scale = stream.summary.standardizer()

    def rows(part: str) -> StreamRows:
        return StreamRows(stream, part, scale.transform, lambda y: y)

    def train(epochs: int, **options: object) -> tuple[MLP, object]:
        model = MLP("4-8tanh-2softmax", seed=2)
        history = fit(model, rows("train"), None, validation=rows("validation"), epochs=epochs,
                      batch_size=32, dtype="float64", train_metrics="running", **options)  # fmt: skip
        return model, history

    straight, history = train(4)
    states: list[TrainingState] = []
    train(2, checkpoint=states.append)
    resumed, again = train(4, resume=states[-1])
    for a, b in zip(resumed.parameters(), straight.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.metrics == history.metrics
    assert history["val_accuracy"][-1] > 0.7  # it learns (chance: about 0.5)


def test_nnmath_train_stream_on_one_process(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nnmath.cli import main
    from nnmath.modelfile import load_model

    path = learnable_parquet(tmp_path / "d.parquet")
    model = tmp_path / "m.nnm"
    code = main(["train", "--data", str(path), "--stream", "--spec", "16relu", "--epochs", "3",
                 "--learning-rate", "0.01", "--quiet", "-o", str(model)])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "held-out accuracy" in out.out and "plots skipped: a streamed run" in out.err
    saved = load_model(model)
    assert saved.metadata["streamed"] and saved.metadata["test"]["accuracy"] > 0.8
    assert saved.standardizer is not None and saved.class_names == ["0", "1"]
    assert main(["evaluate", str(model)]) == 3  # a data error (docs/errors.md)
    assert "trained with --stream" in capsys.readouterr().err
