"""Data-parallel training over MPI: the single-process step plus one reduction.

Every step, the global mini-batch of B rows is split across the N ranks; rank r holds the rows
b_r, of weight W_r = Σ_{s∈b_r} w_s (its row count S_r without sample weights), and computes with
the engine's own backward pass its rows' cost C_r and gradient g_r = ∂C_r/∂θ (weighted means over
its rows). One ``Allreduce`` (sum) of one contiguous buffer

    u_r = [W_r g_r(W⁽¹⁾), W_r g_r(b⁽¹⁾), …, W_r g_r(b⁽ᴷ⁾), W_r C_r, W_r, failed_r]

gives every rank u = Σ_r u_r, and the division by W = Σ_r W_r gives the gradient of the global
batch, g = (1/W) Σ_r W_r g_r = (1/W) Σ_{s ∈ batch} w_s ∂ℓ_s/∂θ, and its cost C likewise: the
numbers a single process computes on the same rows (up to the order of the sums). A penalty is
added after the reduction, with the global W. Every rank then applies the same optimizer update,
so weights and optimizer state stay identical on all ranks.

The buffer's last slot is a fault flag: a rank whose step raised sends zeros and failed_r = 1, so
every rank learns of the failure in the same reduction, and each raises :class:`DistributedError`
naming the rank and its cause (gathered from the failed rank). The same agreement runs once per
epoch (:meth:`Communicator.collect`): the validation metrics' sums (:class:`Totals`), combined in
rank order so that early stopping and schedules decide identically everywhere, and, with
``check_replicas``, a hash of each rank's weights, compared. Before training, the command line
agrees on the setup (:class:`SetupAgreement`); only an error outside these points (a bug between
two collective calls) is left to :func:`stop_all_on_error`, which calls ``MPI_Abort``.

In ``fit`` this is a few lines: ``reduction(comm, penalty)`` hands ``steps`` the reduction to put
between the gradient and the update, ``ReducedEvaluator`` replaces the evaluation, ``on_root``
the checkpoint writer, and ``ReplicaCheck`` joins the callbacks. With no communicator, or one of a
single rank, none of it is used: ordinary training. See docs/distributed.md.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from nnmath.datasets.preprocessing import Moments
from nnmath.errors import NNMathError, SpecError
from nnmath.evaluation import EVALUATION_ROWS
from nnmath.fast import FastStep
from nnmath.losses import Loss
from nnmath.network import MLP
from nnmath.penalties import Penalty, penalty_scale

Array = Any
GradientFn = Callable[..., tuple[float, list[Array]]]
Logs = dict[str, float]

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
        """True when more than one rank takes part."""
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
    """The contiguous buffer [W_r vec(∂C_r/∂θ) for every θ, W_r C_r, W_r, failed_r] and its views.

    W_r is the rank's weight in the batch: its row count S_r, or Σ_s w_s with sample weights.
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

    def pack(self, weight: float, cost: float, grads: Sequence[np.ndarray]) -> None:
        """u_r = [W_r g_r, W_r C_r, W_r, 0]: sums over the rank's rows, not means."""
        for view, g in zip(self.gradients, grads, strict=True):
            np.multiply(g, weight, out=view)
        self.buffer[self.n_params :] = (weight * cost, weight, 0.0)

    def pack_nothing(self, failed: bool) -> None:
        """u_r = 0 (a rank with no rows this step), with the fault flag when it failed."""
        self.buffer.fill(0.0)
        self.buffer[-1] = float(failed)

    def unpack(self, into: Sequence[np.ndarray]) -> tuple[float, float, bool]:
        """(C, W, failed) of the reduced buffer; g = u_g / W written into ``into``."""
        total_cost, weight, failed = (float(v) for v in self.buffer[self.n_params :])
        for view, g in zip(self.gradients, into, strict=True):
            np.divide(view, max(weight, np.finfo(self.buffer.dtype).tiny), out=g)
        return total_cost / weight if weight > 0 else 0.0, weight, failed > 0


def reduced_gradients(
    comm: Communicator,
    gradients: GradientFn,
    params: Sequence[np.ndarray],
    *,
    split: bool = True,
    penalty: Penalty | None = None,
    into: Sequence[np.ndarray] | None = None,
    on_step: Callable[[float], None] | None = None,
) -> GradientFn:
    """The step of ``gradients`` plus one Allreduce: (X_b, T_b[, w_b]) -> (C, g) of the global batch.

    With ``split`` every rank is given the whole global batch and computes on its part
    (:meth:`Communicator.share`); without, each rank is given only its own rows (a stream).
    ``gradients`` computes the data term only; ``penalty`` is added after the reduction,
    C += k P(W) and ∂C/∂W⁽ˡ⁾ += k ∂P/∂W⁽ˡ⁾, with k from the global batch's weight. The reduced
    gradients are written into ``into`` (the arrays a fast step's optimizer reads), else into
    views of the reduction buffer, and returned. ``on_step(W_r)`` hears this rank's weight in
    each step.
    """
    reduction = GradientReduction(params)
    out = reduction.gradients if into is None else list(into)
    Ws = list(params[0::2])
    steps = 0

    def global_gradients(X: Array, T: Array, *weights: Array) -> tuple[float, list[Array]]:
        nonlocal steps
        steps += 1
        if split:
            rows = comm.share(len(X))
            X, T, weights = X[rows], T[rows], tuple(w[rows] for w in weights)
        weight = float(len(X)) if not weights else float(np.sum(weights[0]))
        if on_step is not None:
            on_step(weight)
        error = _pack_local(reduction, gradients, X, T, weights, weight)
        comm.allreduce(reduction.buffer)
        cost, total, failed = reduction.unpack(out)
        if failed:
            comm.gather_failures(error, f"training step {steps}")
        if penalty is not None:
            k = penalty_scale(penalty, total)
            for index, W in enumerate(Ws):
                out[2 * index] += k * penalty.grad(W)
            cost += k * penalty.value(Ws)
        return cost, out

    return global_gradients


# ---- metrics from sums: evaluation in pieces and over ranks ------------------------------------


@dataclass
class Totals:
    """Sums from which the metrics follow, for any set of rows split into parts.

    With row weights w_s (1 without): weight W = Σ_s w_s; loss Σ_s w_s ℓ_s = W C; correct
    Σ_s w_s [ŷ_s = y_s]; per target column j: squared Σ_s w_s (t_sj − ŷ_sj)², absolute
    Σ_s w_s |t_sj − ŷ_sj|, and the targets' Moments (for R²'s Σ_s w_s (t_sj − t̄_j)² = M2_j).
    Sums add; moments combine by Chan et al.'s formula.
    """

    weight: float
    loss: float
    correct: float = 0.0
    squared: np.ndarray | None = None
    absolute: np.ndarray | None = None
    targets: Moments | None = None

    @classmethod
    def of(
        cls, cost: float, A: Array, T: Array, labels: Array | None, w: Array | None = None
    ) -> Totals:
        """The sums of one part: its cost C, outputs A, targets T (labels for classes), weights."""
        A = np.asarray(A, dtype=np.float64)
        rows = len(A)
        ws = np.ones(rows) if w is None else np.asarray(w, dtype=np.float64)
        weight = float(ws.sum())
        if labels is not None:
            predicted = np.argmax(A, axis=1) if A.shape[1] > 1 else (A[:, 0] > 0.5).astype(int)
            return cls(weight, weight * float(cost), float(ws @ (predicted == labels)))
        T = np.asarray(T, dtype=np.float64).reshape(rows, -1)
        error = T - A.reshape(rows, -1)
        targets = Moments.of(T, None if w is None else ws)
        return cls(weight, weight * float(cost), 0.0, ws @ error**2, ws @ np.abs(error), targets)

    def combine(self, other: Totals) -> Totals:
        """The totals of both parts: sums added, target moments combined."""
        if self.squared is None or other.squared is None:
            return Totals(
                self.weight + other.weight, self.loss + other.loss, self.correct + other.correct
            )
        assert self.absolute is not None and other.absolute is not None
        assert self.targets is not None and other.targets is not None
        return Totals(
            self.weight + other.weight,
            self.loss + other.loss,
            0.0,
            self.squared + other.squared,
            self.absolute + other.absolute,
            self.targets.combine(other.targets),
        )

    def logs(self) -> dict[str, float]:
        """loss = Σwℓ/W, and accuracy, or mse, mae and R² (as ``metrics`` defines them)."""
        weight = self.weight if self.weight > 0 else 1.0
        logs = {"loss": self.loss / weight}
        if self.squared is None:
            return {**logs, "accuracy": self.correct / weight}
        assert self.absolute is not None and self.targets is not None
        columns = len(self.squared)
        total = self.targets.M2
        scores = np.where(self.squared == 0, 1.0, 0.0)
        varying = total > 0
        scores[varying] = 1.0 - self.squared[varying] / total[varying]
        return {
            **logs,
            "mse": float(self.squared.sum() / (weight * columns)),
            "mae": float(self.absolute.sum() / (weight * columns)),
            "r2": float(np.mean(scores)),
        }


def combined(parts: Iterable[Totals | None]) -> Totals | None:
    """The totals of all parts (None: a part with no rows), combined in order: in rank order, the
    same numbers on every rank."""
    total: Totals | None = None
    for part in parts:
        if part is not None:
            total = part if total is None else total.combine(part)
    return total


Piece = tuple[Array, Array, Array | None, Array | None]
"""(X, T, labels, w): rows of a part, as the network takes them."""


class ReducedEvaluator:
    """The epoch's logs when the rows are spread over ranks (``fit``'s ``evaluate``).

    ``evaluator(X, T, labels[, w])``: every rank holds all rows and evaluates its share
    (:meth:`Communicator.share`); ``evaluator.pieces(pieces)``: every rank evaluates the pieces it
    holds (a stream). Each rank's :class:`Totals` (through a FastStep's buffers, on the weights
    being trained) are gathered and combined in rank order, and the penalty is added with the
    global weight: the logs are the same on every rank, and equal one process's.
    """

    def __init__(
        self,
        comm: Communicator,
        model: MLP,
        params: Sequence[np.ndarray],
        loss: Loss,
        penalty: Penalty | None,
        rows: int,
    ) -> None:
        self.comm, self.penalty = comm, penalty
        weights = list(zip(params[0::2], params[1::2], strict=True))
        self.model = MLP.from_weights(model.spec, weights)  # shares the arrays being trained
        self.step = FastStep(self.model, loss, max(1, min(rows, EVALUATION_ROWS)))

    def totals(self, X: Array, T: Array, labels: Array | None, w: Array | None) -> Totals | None:
        """The :class:`Totals` of the rows X (None for no rows), on the weights being trained."""
        if len(X) == 0:
            return None
        cost, A = self.step.evaluate(X, T if labels is None else labels, w)
        return Totals.of(cost, A, T, labels, w)

    def __call__(self, X: Array, T: Array, labels: Array | None, w: Array | None = None) -> Logs:
        rows = self.comm.share(len(X))

        def part() -> Totals | None:
            return self.totals(
                X[rows], T[rows], None if labels is None else labels[rows],
                None if w is None else w[rows],
            )  # fmt: skip

        return self.logs(self.comm.collect(part, "the evaluation"))

    def pieces(self, pieces: Iterable[Piece]) -> Logs:
        """The logs of this rank's pieces (a stream) combined with every other rank's."""
        parts = self.comm.collect(
            lambda: combined(self.totals(*piece) for piece in pieces), "the evaluation"
        )
        return self.logs(parts)

    def logs(self, parts: Sequence[Totals | None]) -> Logs:
        """The logs of the combined parts, the penalty added with the global weight ({"loss": nan}
        for no rows at all)."""
        total = combined(parts)
        if total is None:
            return {"loss": float("nan")}
        logs = total.logs()
        if self.penalty is not None:
            Ws = [linear.W for linear in self.model.linears]
            k = penalty_scale(self.penalty, total.weight)
            logs["loss"] += k * self.penalty.value(Ws)
        return logs


def _pack_local(
    reduction: GradientReduction,
    gradients: GradientFn,
    X: Array,
    T: Array,
    weights: tuple,
    weight: float,
) -> Exception | None:
    """This rank's part of the buffer (zeros without rows); the error its step raised, if any."""
    try:
        if weight > 0:
            cost, grads = gradients(X, T, *weights)
            reduction.pack(weight, cost, grads)
        else:
            reduction.pack_nothing(failed=False)
    except Exception as error:  # noqa: BLE001 - reported to every rank by the reduction
        reduction.pack_nothing(failed=True)
        return error
    return None


class Reduction:
    """``steps.Reduce`` for a communicator: (gradients, params, into) -> :func:`reduced_gradients`.

    ``local_weight`` is this rank's weight in the last step (0: it had no rows of that batch).
    """

    def __init__(self, comm: Communicator, penalty: Penalty | None, split: bool) -> None:
        self.comm, self.penalty, self.split = comm, penalty, split
        self.local_weight = 0.0

    def __call__(
        self, gradients: GradientFn, params: Sequence[np.ndarray], into: Any
    ) -> GradientFn:
        return reduced_gradients(
            self.comm, gradients, params, split=self.split, penalty=self.penalty, into=into,
            on_step=self.record,
        )  # fmt: skip

    def record(self, local_weight: float) -> None:
        """Remember this rank's weight in the step just taken (the step's ``on_step`` hook)."""
        self.local_weight = local_weight


def reduction(comm: Communicator, penalty: Penalty | None, *, split: bool = True) -> Any:
    """The :class:`Reduction` that ``fit`` puts into its step; None for one process."""
    return Reduction(comm, penalty, split) if comm.distributed else None


class ReducedRunning:
    """``steps.RunningMetrics`` over ranks. The batch costs are global already (reduced in the
    step); the batch scores a fast step keeps (Σ w 𝟙[ŷ = y], Σ w (a − t)², Σ w |a − t|) are of
    this rank's rows, so they are summed over the ranks when the epoch's logs are taken. A step in
    which this rank had no rows adds its cost but no score."""

    def __init__(self, comm: Communicator, running: Any, reduce: Reduction) -> None:
        self.comm, self.running, self.reduce = comm, running, reduce

    def start(self) -> None:
        """Zero the sums at the start of an epoch."""
        self.running.start()

    def add(self, value: float, batch_weight: float) -> None:
        """Add one batch's global cost; its score only when this rank had rows of the batch."""
        step = self.running.step
        if self.reduce.local_weight == 0:
            self.running.step = None  # no rows here this step: its score is a stale one
        self.running.add(value, batch_weight)
        self.running.step = step

    def logs(self) -> Logs:
        """The epoch's running metrics, the scores summed over the ranks first."""
        running = self.running
        if running.step is not None:
            parts = self.comm.collect(
                lambda: (running.correct, running.squared, running.absolute), "the running metrics"
            )
            running.correct = sum(part[0] for part in parts)
            running.squared = sum(np.asarray(part[1], np.float64) for part in parts)
            running.absolute = sum(part[2] for part in parts)
        return running.logs()


# ---- what only rank 0 does, and the debug check --------------------------------------------------


def on_root(
    comm: Communicator, write: Callable[[Any], None] | None, what: str
) -> Callable[[Any], None] | None:
    """``write`` run by rank 0 alone; a failure there stops every rank (one allgather)."""
    if write is None or not comm.distributed:
        return write

    def written(value: Any) -> None:
        comm.collect(lambda: write(value) if comm.is_root else None, what)

    return written


class ReplicaCheck:
    """A callback: after each epoch, compare a hash of the weights across ranks (debug)."""

    def __init__(self, comm: Communicator, params: Sequence[np.ndarray]) -> None:
        self.comm, self.params = comm, params

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool:
        """Compare the weights' hash across ranks (DistributedError where they differ); never
        stops training."""
        self.comm.compare_replicas(self.params, epoch)
        return False


# ---- the command line: setup agreed, the last resort ------------------------------------------


class SetupAgreement:
    """Every rank reports once whether its setup (reading the data, building the network) worked.

    A rank whose setup worked calls ``reached()`` (the recipe's on_start hook); one whose setup
    raised calls ``failed(error)``. Both join the same allgather, so an early failure on one rank
    stops the others with its cause instead of leaving them waiting in the first collective step
    (if the others are already in an earlier collective, such as a stream's statistics pass, the
    allgathers still match: MPI pairs collective calls by order).
    """

    def __init__(self, comm: Communicator, what: str = "reading the data") -> None:
        self.comm, self.what, self.done = comm, what, False

    def reached(self) -> None:
        """Report that this rank's setup worked, and wait for the others' reports."""
        self.done = True
        self.comm.collect(lambda: None, self.what)

    def failed(self, error: BaseException) -> None:
        """Report a setup error to the others, unless it is one they already agreed on."""
        if not self.done and self.comm.distributed and not isinstance(error, DistributedError):
            self.done = True

            def fail() -> None:
                raise error

            self.comm.collect(fail, self.what)


@contextmanager
def stop_all_on_error(comm: Communicator) -> Iterator[None]:
    """Run a distributed program: an error that the ranks have not agreed on (one rank alone,
    between collective calls, where the others would wait forever) prints the rank and the cause
    and stops every rank with MPI_Abort. nnmath's own errors pass through: after the setup
    agreement they follow from reduced values and so are raised by every rank alike."""
    try:
        yield
    except NNMathError:
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


def run_on_ranks(comm: Communicator, main: Callable[[], int]) -> int:
    """``main()`` on every rank; an error they agree on is printed once, by rank 0 (the others
    exit with status 2, quietly); any other stops every rank (:func:`stop_all_on_error`)."""
    with stop_all_on_error(comm):
        try:
            return main()
        except NNMathError:
            if comm.is_root:
                raise
            return 2
