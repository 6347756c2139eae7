"""Data-parallel training over MPI: the single-process step plus one reduction.

Every step, the global mini-batch of B rows is split across the N ranks; rank r holds S_r of them
(Σ_r S_r = B) and computes, with the engine's own backward pass, its rows' cost C_r and gradient
g_r = ∂C_r/∂θ (means over its S_r rows). One ``Allreduce`` (sum) of one contiguous buffer

    u_r = [S_r g_r(W⁽¹⁾), S_r g_r(b⁽¹⁾), …, S_r g_r(b⁽ᴷ⁾), S_r C_r, S_r, failed_r]

gives every rank u = Σ_r u_r, and the division by B = Σ_r S_r gives the gradient of the global
batch, g = (1/B) Σ_r S_r g_r = (1/B) Σ_{s ∈ batch} ∂ℓ_s/∂θ, and its cost C likewise: the numbers a
single process computes on the same B rows (up to the order of the sums). Every rank then applies
the same optimizer update, so weights and optimizer state stay identical on all ranks.

The buffer's last slot is a fault flag: a rank whose step raised sends zeros and failed_r = 1, so
every rank learns of the failure in the same reduction, and each raises :class:`DistributedError`
naming the rank and its cause (gathered from the failed rank). The same agreement runs once per
epoch (:meth:`Communicator.collect`): the validation metrics' sums (:class:`Totals`), combined in
rank order so that early stopping and schedules decide identically everywhere, and, with
``check_replicas``, a hash of each rank's weights, compared. Only an error outside these points (a
bug between two collective calls) is left to :func:`stop_all_on_error`, which calls ``MPI_Abort``.

With no communicator, or one of a single rank, everything here is the identity: ordinary training.
See docs/distributed.md for the semantics, the cost model and the measurements.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from nnmath.datasets.preprocessing import Moments
from nnmath.errors import NNMathError, SpecError

Array = Any
GradientFn = Callable[[Array, Array], tuple[float, list[Array]]]

MPI_EXTRA = "pip install 'nnmath[mpi]'"


class DistributedError(NNMathError, RuntimeError):
    """A rank failed (or the ranks' weights parted): names the rank and the cause; all ranks stop."""


def import_mpi() -> ModuleType:
    """mpi4py's MPI module, or a SpecError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise SpecError(
            f"distributed training needs mpi4py and an MPI library ({err}); install them with "
            f"{MPI_EXTRA} (or Debian's openmpi-bin and pip install mpi4py), then start the ranks "
            "with mpiexec -n N"
        ) from err
    return MPI


def _describe(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


class Communicator:
    """The ranks of a run: ``rank`` r of ``size`` N, around an mpi4py communicator (or none).

    ``Communicator()`` (or one over a single rank) is one process, and every operation is then the
    identity. ``check_replicas`` compares a hash of the weights across ranks after every epoch.
    """

    def __init__(self, comm: Any = None, *, check_replicas: bool = False) -> None:
        self.comm = comm
        self.rank = 0 if comm is None else int(comm.Get_rank())
        self.size = 1 if comm is None else int(comm.Get_size())
        self.check_replicas = check_replicas

    @classmethod
    def world(cls, *, check_replicas: bool = False) -> Communicator:
        """Every rank mpiexec started (``MPI.COMM_WORLD``)."""
        return cls(import_mpi().COMM_WORLD, check_replicas=check_replicas)

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that writes files and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def share(self, n_rows: int) -> slice:
        """Rows [⌊r n / N⌋, ⌊(r + 1) n / N⌋) of a batch of n rows: this rank's part."""
        return slice(self.rank * n_rows // self.size, (self.rank + 1) * n_rows // self.size)

    def allreduce(self, buffer: np.ndarray) -> None:
        """buffer ← Σ_r buffer_r, in place, on every rank (one MPI Allreduce)."""
        if self.distributed:
            self.comm.Allreduce(import_mpi().IN_PLACE, buffer)

    def collect(self, compute: Callable[[], Any], what: str) -> list[Any]:
        """[compute() on rank 0, on rank 1, …], on every rank (one allgather).

        If compute raises on any rank, every rank raises a DistributedError naming each failed
        rank, ``what`` it was doing and the cause.
        """
        try:
            result, error = compute(), None
        except Exception as err:  # noqa: BLE001 - any failure must reach the other ranks
            result, error = None, err
        if not self.distributed:
            if error is not None:
                raise error
            return [result]
        replies = self.comm.allgather((result, _describe(error)))
        self.raise_failures([message for _, message in replies], what, error)
        return [value for value, _ in replies]

    def raise_failures(
        self, messages: Sequence[str | None], what: str, cause: BaseException | None = None
    ) -> None:
        """Raise a DistributedError if any rank's message (its error) is not None."""
        failed = [(rank, text) for rank, text in enumerate(messages) if text is not None]
        if failed:
            causes = "; ".join(f"rank {rank} failed in {what}: {text}" for rank, text in failed)
            raise DistributedError(f"{causes} (every rank has stopped)") from cause

    def gather_failures(self, error: BaseException | None, what: str) -> None:
        """After a reduction has shown that some rank failed: gather the causes and raise."""
        messages = self.comm.allgather(_describe(error)) if self.distributed else [_describe(error)]
        self.raise_failures(messages, what, error)
        raise DistributedError(f"a rank failed in {what}, but sent no cause")

    def compare_replicas(self, params: Sequence[np.ndarray], epoch: int) -> None:
        """The debug check: a BLAKE2 hash of the weights, the same on every rank, or an error."""
        if not (self.distributed and self.check_replicas):
            return
        digest = weights_digest(params)
        digests = self.comm.allgather(digest)
        differ = [rank for rank, other in enumerate(digests) if other != digests[0]]
        if differ:
            raise DistributedError(
                f"after epoch {epoch} the weights of rank(s) {differ} differ from rank 0's "
                "(hashes compared): the ranks no longer train one model; report this as a bug"
            )


def weights_digest(params: Sequence[np.ndarray]) -> str:
    """BLAKE2b of the parameters' bytes, in order: equal exactly when the weights are equal."""
    digest = hashlib.blake2b(digest_size=16)
    for p in params:
        digest.update(np.ascontiguousarray(p).tobytes())
    return digest.hexdigest()


def as_communicator(comm: Any) -> Communicator:
    """None → one process; a Communicator → itself; an mpi4py communicator → wrapped."""
    if comm is None or isinstance(comm, Communicator):
        return comm or Communicator()
    if not (hasattr(comm, "Get_rank") and hasattr(comm, "Allreduce")):
        raise SpecError(
            f"comm must be an mpi4py communicator (e.g. MPI.COMM_WORLD) or a "
            f"nnmath.distributed.Communicator, got {type(comm).__name__}"
        )
    return Communicator(comm)


# ---- the step: one Allreduce -------------------------------------------------------------------


class GradientReduction:
    """The contiguous buffer [S_r vec(∂C_r/∂θ) for every θ, S_r C_r, S_r, failed_r] and its views.

    ``gradients`` (after the reduction) are views of the buffer in the shapes of ``params``, so
    the optimizer reads the reduced gradients where MPI wrote them: no copy.
    """

    def __init__(self, params: Sequence[np.ndarray]) -> None:
        sizes = [p.size for p in params]
        self.n_params = sum(sizes)
        self.buffer = np.zeros(self.n_params + 3, dtype=params[0].dtype)
        bounds = np.cumsum([0, *sizes])
        self.gradients = [
            self.buffer[start:stop].reshape(p.shape)
            for p, start, stop in zip(params, bounds[:-1], bounds[1:], strict=True)
        ]

    def pack(self, rows: int, cost: float, grads: Sequence[np.ndarray]) -> None:
        """u_r = [S_r g_r, S_r C_r, S_r, 0]: sums of the rows' gradients, not means."""
        for view, g in zip(self.gradients, grads, strict=True):
            np.multiply(g, rows, out=view)
        self.buffer[self.n_params :] = (rows * cost, rows, 0.0)

    def pack_nothing(self, failed: bool) -> None:
        """u_r = 0 (a rank with no rows this step), with the fault flag when it failed."""
        self.buffer.fill(0.0)
        self.buffer[-1] = float(failed)

    def unpack(self) -> tuple[float, int, bool]:
        """(C, B, failed) of the reduced buffer, the gradients divided by B in place."""
        total_cost, rows, failed = (float(v) for v in self.buffer[self.n_params :])
        if rows > 0:
            self.buffer[: self.n_params] /= rows
        return total_cost / max(rows, 1.0), int(round(rows)), failed > 0


def reduced_gradients(
    comm: Communicator, gradients: GradientFn, params: Sequence[np.ndarray], *, split: bool = True
) -> GradientFn:
    """The step of ``gradients`` plus one Allreduce: (X_b, T_b) -> (C, g) of the global batch.

    With ``split`` every rank is given the whole global batch and computes on its part
    (:meth:`Communicator.share`); without, each rank is given only its own rows (a stream).
    """
    reduction = GradientReduction(params)
    steps = 0

    def global_gradients(X: Array, T: Array) -> tuple[float, list[Array]]:
        nonlocal steps
        steps += 1
        if split:
            rows = comm.share(len(X))
            X, T = X[rows], T[rows]
        error = None
        try:
            if len(X):
                cost, grads = gradients(X, T)
                reduction.pack(len(X), cost, grads)
            else:
                reduction.pack_nothing(failed=False)
        except Exception as err:  # noqa: BLE001 - reported to every rank below
            error = err
            reduction.pack_nothing(failed=True)
        comm.allreduce(reduction.buffer)
        cost, _, failed = reduction.unpack()
        if failed:
            comm.gather_failures(error, f"training step {steps}")
        return cost, reduction.gradients

    return global_gradients


# ---- metrics from sums: evaluation in pieces and over ranks ------------------------------------


@dataclass
class Totals:
    """Sums from which the epoch's metrics follow, for any set of rows split into parts.

    rows S; loss Σ_s ℓ_s = S C; correct Σ_s [ŷ_s = y_s]; per target column j: squared
    Σ_s (t_sj − ŷ_sj)², absolute Σ_s |t_sj − ŷ_sj|, and the targets' Moments (for R²'s
    Σ_s (t_sj − t̄_j)² = M2_j). Sums add; moments combine by Chan et al.'s formula.
    """

    rows: int
    loss: float
    correct: float = 0.0
    squared: np.ndarray | None = None
    absolute: np.ndarray | None = None
    targets: Moments | None = None

    @classmethod
    def of(cls, cost: float, A: Array, T: Array, labels: Array | None) -> Totals:
        """The sums of one part: its cost C, outputs A and targets T (labels for classes)."""
        rows = len(A)
        if labels is not None:
            A = np.asarray(A)
            predicted = np.argmax(A, axis=1) if A.shape[1] > 1 else (A[:, 0] > 0.5).astype(int)
            return cls(rows, rows * float(cost), float(np.sum(predicted == labels)))
        T = np.asarray(T, dtype=np.float64).reshape(rows, -1)
        error = T - np.asarray(A, dtype=np.float64).reshape(rows, -1)
        squared, absolute = (error**2).sum(axis=0), np.abs(error).sum(axis=0)
        return cls(rows, rows * float(cost), 0.0, squared, absolute, Moments.of(T))

    def combine(self, other: Totals) -> Totals:
        if self.squared is None or other.squared is None:
            return Totals(
                self.rows + other.rows, self.loss + other.loss, self.correct + other.correct
            )
        assert self.absolute is not None and other.absolute is not None
        assert self.targets is not None and other.targets is not None
        return Totals(
            self.rows + other.rows,
            self.loss + other.loss,
            0.0,
            self.squared + other.squared,
            self.absolute + other.absolute,
            self.targets.combine(other.targets),
        )

    def logs(self) -> dict[str, float]:
        """loss = Σℓ/S, and accuracy = correct/S, or mse, mae and R² (as ``metrics`` defines them)."""
        rows = max(self.rows, 1)
        logs = {"loss": self.loss / rows}
        if self.squared is None:
            return {**logs, "accuracy": self.correct / rows}
        assert self.absolute is not None and self.targets is not None
        columns = len(self.squared)
        total = self.targets.M2
        scores = np.where(self.squared == 0, 1.0, 0.0)
        varying = total > 0
        scores[varying] = 1.0 - self.squared[varying] / total[varying]
        return {
            **logs,
            "mse": float(self.squared.sum() / (rows * columns)),
            "mae": float(self.absolute.sum() / (rows * columns)),
            "r2": float(np.mean(scores)),
        }


def combined(parts: Sequence[Totals | None]) -> Totals | None:
    """The totals of all parts (None: a part with no rows), combined in order: in rank order, the
    same numbers on every rank."""
    total: Totals | None = None
    for part in parts:
        if part is not None:
            total = part if total is None else total.combine(part)
    return total


def totals_in_pieces(
    pieces: Iterator[tuple[Array, Array]],
    outputs: Callable[[Array, Array], tuple[float, Array, Array]],
    classification: bool,
) -> Totals | None:
    """The totals of rows given in pieces: ``outputs(X, y) -> (C, A, T)`` for each piece."""
    total: Totals | None = None
    for X, y in pieces:
        cost, A, T = outputs(X, y)
        part = Totals.of(cost, A, T, y if classification else None)
        total = part if total is None else total.combine(part)
    return total


# ---- the last resort ---------------------------------------------------------------------------


@contextmanager
def stop_all_on_error(comm: Communicator) -> Iterator[None]:
    """Run a distributed program: an error that the ranks have not agreed on (one rank alone,
    between collective calls, where the others would wait forever) prints the rank and the cause
    and stops every rank with MPI_Abort. Agreed errors (DistributedError) pass through."""
    try:
        yield
    except DistributedError:
        raise
    except BaseException as error:
        if comm.distributed:
            print(
                f"nnmath: rank {comm.rank} of {comm.size} failed: {_describe(error)}; stopping "
                "every rank (MPI_Abort); no model was written",
                file=sys.__stderr__,
                flush=True,
            )
            comm.comm.Abort(2)
        raise
