"""Tests of nnmath.distributed in one process: the reduction buffer, metric totals, the wrapper.

One process is ordinary training, so these compare the distributed pieces with the plain ones;
runs on real MPI ranks are in test_distributed_mpi.py.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nnmath.distributed import (
    Communicator,
    DistributedError,
    GradientReduction,
    Totals,
    as_communicator,
    combined,
    import_mpi,
    reduced_gradients,
    weights_digest,
)
from nnmath.errors import SpecError
from nnmath.losses import get_loss
from nnmath.metrics import classification_metrics, regression_metrics
from nnmath.network import MLP


def test_one_process_is_the_identity() -> None:
    comm = Communicator()
    assert (comm.rank, comm.size, comm.is_root, comm.distributed) == (0, 1, True, False)
    assert comm.share(10) == slice(0, 10)
    buffer = np.arange(4.0)
    comm.allreduce(buffer)
    assert buffer.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert comm.collect(lambda: 7, "a sum") == [7]
    with pytest.raises(ZeroDivisionError):  # one process: the error itself, not a wrapper
        comm.collect(lambda: 1 / 0, "a division")


def test_as_communicator_takes_none_a_communicator_or_an_mpi_comm() -> None:
    assert as_communicator(None).size == 1
    comm = Communicator()
    assert as_communicator(comm) is comm
    with pytest.raises(SpecError, match="mpi4py communicator"):
        as_communicator("world")


def test_missing_mpi_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(SpecError, match=r"pip install 'nnmath\[mpi\]'"):
        import_mpi()


def test_failures_name_every_failed_rank_and_the_cause() -> None:
    with pytest.raises(DistributedError) as caught:
        Communicator().raise_failures([None, "DataError: row 3 is NaN"], "the statistics pass")
    assert str(caught.value) == (
        "rank 1 failed in the statistics pass: DataError: row 3 is NaN (every rank has stopped)"
    )
    Communicator().raise_failures([None, None], "nothing")  # no failure: no error


def test_reduction_buffer_holds_sums_and_gives_means_back() -> None:
    params = [np.zeros((2, 3)), np.zeros(2)]
    reduction = GradientReduction(params)
    grads = [np.full((2, 3), 0.5), np.array([1.0, -1.0])]
    reduction.pack(4, 2.5, grads)
    assert reduction.buffer.tolist() == [2.0] * 6 + [4.0, -4.0] + [10.0, 4.0, 0.0]
    reduction.buffer += reduction.buffer  # what an Allreduce of two equal ranks gives
    into = [np.empty((2, 3)), np.empty(2)]
    cost, weight, failed = reduction.unpack(into)
    assert (cost, weight, failed) == (2.5, 8.0, False)
    assert [g.tolist() for g in into] == [[[0.5] * 3] * 2, [1.0, -1.0]]
    reduction.pack_nothing(failed=True)
    assert reduction.unpack(into)[2] is True


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reduced_gradients_on_one_rank_equal_the_engine(dtype: type) -> None:
    model = MLP("5-7tanh-3softmax", seed=1, dtype=dtype)
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(9, 5)).astype(dtype), rng.integers(0, 3, 9)
    loss = get_loss("cross-entropy")
    plain_cost, plain = model.loss_and_gradients(X, y, loss)

    def gradients(Xb, yb):  # noqa: ANN001, ANN202
        cost, grads = model.loss_and_gradients(Xb, yb, loss)
        return cost, grads.flat()

    cost, grads = reduced_gradients(Communicator(), gradients, model.parameters())(X, y)
    tolerance = 1e-15 if dtype == np.float64 else 1e-6
    assert cost == pytest.approx(plain_cost, rel=tolerance)
    for g, expected in zip(grads, plain.flat(), strict=True):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, expected, rtol=tolerance, atol=tolerance)


def test_a_failing_step_on_one_process_raises_its_own_error() -> None:
    def broken(X, T):  # noqa: ANN001, ANN202
        raise FloatingPointError("overflow in layer 2")

    step = reduced_gradients(Communicator(), broken, [np.zeros(3)])
    with pytest.raises(DistributedError, match=r"rank 0 failed in training step 1: Float"):
        step(np.zeros((2, 1)), np.zeros(2))


def test_totals_in_parts_give_the_metrics_of_the_whole(rng: np.random.Generator) -> None:
    A = rng.dirichlet(np.ones(4), size=50)
    labels = rng.integers(0, 4, 50)
    parts = [Totals.of(0.3 * k, A[k::3], None, labels[k::3]) for k in range(3)]
    logs = combined(parts).logs()
    assert logs["accuracy"] == pytest.approx(
        classification_metrics(labels, A)["accuracy"], abs=1e-15
    )
    expected_loss = sum(0.3 * k * len(A[k::3]) for k in range(3)) / 50
    assert logs["loss"] == pytest.approx(expected_loss, rel=1e-15)

    T, Y = rng.normal(size=(60, 2)) + [0.0, 9.0], rng.normal(size=(60, 2))
    T[:, 1] = 4.0  # a constant target column: R²'s special case
    Y[:, 1] = 4.0
    parts = [Totals.of(1.0, Y[k::4], T[k::4], None) for k in range(4)] + [None]
    logs = combined(parts).logs()
    expected = regression_metrics(T, Y)
    for key in ("mse", "mae", "r2"):
        assert logs[key] == pytest.approx(expected[key], rel=1e-12)


def test_sigmoid_output_totals_count_a_above_one_half_as_class_one() -> None:
    A = np.array([[0.2], [0.7], [0.5], [0.9]])
    labels = np.array([0, 1, 1, 0])
    assert (
        Totals.of(0.0, A, None, labels).correct == classification_metrics(labels, A)["accuracy"] * 4
    )


def test_weights_digest_sees_one_ulp() -> None:
    params = [np.ones((3, 2)), np.zeros(3)]
    before = weights_digest(params)
    params[0][1, 1] = np.nextafter(1.0, 2.0)
    assert weights_digest(params) != before
