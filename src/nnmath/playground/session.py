"""One browser tab's experiment: its settings, data, network, optimizer and where training stands.

A training step is the library's own: the engine's forward pass and δ recursion with the L2
penalty (:func:`nnmath.steps.backprop` with :class:`nnmath.penalties.L2`), and the optimizer's
update through :func:`nnmath.steps.batch_update`. The *current batch* is the one the next step
will train on, drawn ahead by :func:`nnmath.datasets.batches` from the seeded order; the views and
the mathematics panel show the gradient of that batch at the current weights, so that "step"
applies exactly the gradient on screen.

A session is shared by the trainer thread and the server's requests: every method that reads or
changes it takes ``lock``; :meth:`Session.snapshot` copies what the views need, so they are
computed outside the lock.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnmath.datasets import Dataset, batches
from nnmath.evaluation import evaluate_arrays
from nnmath.losses import Loss, get_loss
from nnmath.network import MLP
from nnmath.optimizers import Optimizer, make_optimizer
from nnmath.penalties import L2
from nnmath.playground.config import DATA_FIELDS, LIVE_FIELDS, UPLOAD, Config, parse_config
from nnmath.playground.data import Data, build_data, check_output, output_width
from nnmath.steps import backprop, batch_update

MAX_HISTORY = 300  # curve points kept; past it, the history is thinned to every other point


def penalty(config: Config) -> L2 | None:
    """The L2 penalty P = (α/2) Σ_l ‖W⁽ˡ⁾‖²_F on the weights (not the biases), or None for α = 0."""
    return L2(config.l2) if config.l2 else None


def seeded(seed: int) -> list[np.random.Generator]:
    """Independent generators for the data, the weights and the batch order, from one seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)]


# ---- the stages of one training step, for step-through mode -------------------------------------


def stages(K: int) -> list[dict[str, Any]]:
    """Forward layer by layer, the cost, backward layer by layer, the update: one per click."""
    out = [
        {"kind": "forward", "layer": layer, "label": f"forward, layer {layer}"}
        for layer in range(1, K + 1)
    ]
    out.append({"kind": "cost", "layer": K, "label": "the cost"})
    out += [
        {"kind": "backward", "layer": layer, "label": f"backward, layer {layer}"}
        for layer in range(K, 0, -1)
    ]
    out.append({"kind": "update", "layer": 0, "label": "the update"})
    return out


# ---- what the views read ------------------------------------------------------------------------


@dataclass
class Snapshot:
    """A consistent copy of a session: the views and the mathematics are computed from it."""

    config: Config
    data: Data
    model: MLP
    loss: Loss
    optimizer: Optimizer
    rows: np.ndarray  # the current batch: rows of the training split
    step: int
    epoch: int
    version: int
    history: list[dict[str, float]]
    message: str | None
    stage: dict[str, Any] | None

    @property
    def X(self) -> np.ndarray:
        """The current batch's inputs, (S, n_features)."""
        return self.data.train.X[self.rows]

    @property
    def T(self) -> np.ndarray:
        """The current batch's targets T (S, n_out): one-hot classes (a 0/1 column for one sigmoid
        output), or the regression targets."""
        return _targets(self.data.train, self.model.n_out)[self.rows]

    @property
    def source(self) -> str:
        """Where the numbers come from, as the derivation's checks say it."""
        return f"the playground's network after {self.step} steps, on the current batch"


def _targets(dataset: Dataset, n_out: int) -> np.ndarray:
    """T (S, n_out): one-hot classes, a 0/1 column for one sigmoid output, or the targets."""
    if dataset.task == "regression":
        return dataset.y
    if n_out == 1:
        return dataset.y.astype(np.float64).reshape(-1, 1)
    return dataset.targets()


def split_metrics(model: MLP, loss: Loss, data: Data) -> dict[str, float | None]:
    """Cost and accuracy (or R²) on the whole train and test splits: ``train_loss``, … (None
    where the value is not finite)."""
    out: dict[str, float | None] = {}
    for part, dataset in (("train", data.train), ("test", data.test)):
        labels = dataset.y if dataset.task == "classification" else None
        T = _targets(dataset, model.n_out)
        with np.errstate(all="ignore"):  # a diverged network's metrics are None, not warnings
            logs = evaluate_arrays(model, dataset.X, T, loss, dataset.task, labels)
        for key in ("loss", "accuracy", "r2"):
            if key in logs:
                value = float(logs[key])
                out[f"{part}_{key}"] = value if math.isfinite(value) else None
    return out


@dataclass
class Session:
    """One experiment, trained a step at a time (by the trainer thread or the page's buttons)."""

    config: Config
    upload: Dataset | None = None
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    version: int = 0

    def __post_init__(self) -> None:
        self._build_data()
        self._build_network()

    # ---- building ------------------------------------------------------------------------------

    def _build_data(self) -> None:
        self.data = build_data(self.config, self.upload, seeded(self.config.seed)[0])
        check_output(self.config, self.data)

    def _build_network(self) -> None:
        config, data = self.config, self.data
        _, init_rng, batch_rng = seeded(config.seed)
        n_out = output_width(config, data)
        self.model = MLP(config.spec(data.n_features, n_out), rng=init_rng)
        self.loss = get_loss(config.loss_name)
        self.train_T = _targets(data.train, n_out)
        self.test_T = _targets(data.test, n_out)
        self.batch_rng = batch_rng
        self.optimizer = make_optimizer(config.optimizer, learning_rate=config.learning_rate)
        self.steps, self.epoch, self.history = 0, 0, []
        self.message: str | None = None
        self.stage: int | None = None
        self._batches: Iterator[np.ndarray] = iter(())
        self._make_update()
        self._next_batch()
        self._record()

    def _make_update(self) -> None:
        gradients = backprop(self.model, self.loss, penalty(self.config))
        self._update = batch_update(gradients, self.optimizer, self.model.parameters())

    # ---- changing the settings -----------------------------------------------------------------

    def configure(self, query: dict[str, Any]) -> set[str]:
        """Apply the page's settings; returns the fields that changed. Live fields (learning rate,
        batch size, L2, notation) keep training where it is; anything else starts again. A setting
        that is refused changes nothing."""
        with self.lock:
            config = parse_config(query, self.config)
            changed = config.changed(self.config)
            data = self.data
            if changed & DATA_FIELDS:
                data = build_data(config, self.upload, seeded(config.seed)[0])
            check_output(config, data)
            self.config, self.data = config, data
            if changed - LIVE_FIELDS:
                self._build_network()
            else:
                self._apply_live(changed)
            self.version += 1
            return changed

    def _apply_live(self, changed: set[str]) -> None:
        self.optimizer.learning_rate = self.config.learning_rate
        if "batch_size" in changed:
            self._batches = iter(())
            self._next_batch(new_epoch=False)
        if "l2" in changed:
            self._make_update()

    def use_upload(self, dataset: Dataset) -> None:
        """Train on the uploaded data set, with the output layer its task needs."""
        with self.lock:
            output = "softmax/cross-entropy" if dataset.task == "classification" else "identity/mse"
            config = parse_config({"data": UPLOAD, "output": output}, self.config)
            data = build_data(config, dataset, seeded(config.seed)[0])
            check_output(config, data)
            self.config, self.data, self.upload = config, data, dataset
            self._build_network()
            self.version += 1

    def reset(self) -> None:
        """Start again from the seed: the same data, fresh weights, the first batch."""
        with self.lock:
            self._build_network()
            self.version += 1

    # ---- training --------------------------------------------------------------------------------

    def _next_batch(self, *, new_epoch: bool = True) -> None:
        try:
            self.rows = next(self._batches)
        except StopIteration:
            if new_epoch and self.steps:
                self.epoch += 1
                self._record()
            self._batches = batches(len(self.train_T), self.config.batch_size, self.batch_rng)
            self.rows = next(self._batches)

    def step(self, n: int = 1) -> int:
        """Take up to n steps on the current batches; stops (and says why) if training diverges."""
        with self.lock:
            taken = 0
            while taken < n and self.message is None:
                self._step_once()
                taken += 1
            self.stage = None
            self.version += 1
            return taken

    def _step_once(self) -> None:
        X, T = self.data.train.X[self.rows], self.train_T[self.rows]
        with np.errstate(all="ignore"):  # a diverging step is reported below, not warned about
            value = self._update(X, T)
        if not math.isfinite(value):
            self.message = (
                f"training diverged at step {self.steps + 1}: the batch's cost is {value}; "
                "lower the learning rate and press reset"
            )
            return
        self.steps += 1
        self._next_batch()

    def advance_stage(self) -> dict[str, Any]:
        """Step-through mode: the next stage of the step; reaching the update takes the step."""
        with self.lock:
            plan = stages(len(self.model.linears))
            index = 0 if self.stage is None else (self.stage + 1) % len(plan)
            if plan[index]["kind"] == "update":
                self.step(1)
            self.stage = index
            self.version += 1
            return plan[index]

    def _record(self) -> None:
        """One point of the curves, at the end of each epoch (values to 5 digits, for drawing)."""
        metrics = split_metrics(self.model, self.loss, self.data)
        rounded = {k: None if v is None else float(f"{v:.5g}") for k, v in metrics.items()}
        point = {"step": self.steps, "epoch": self.epoch, **rounded}
        self.history.append(point)
        if len(self.history) > MAX_HISTORY:
            self.history = self.history[:-1:2] + self.history[-1:]

    # ---- reading -----------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """A consistent copy of the session's state (network, optimizer, batch, history), taken
        under the lock."""
        with self.lock:
            plan = stages(len(self.model.linears))
            return Snapshot(
                config=self.config,
                data=self.data,
                model=self.model.copy(),
                loss=self.loss,
                optimizer=copy.deepcopy(self.optimizer),
                rows=self.rows.copy(),
                step=self.steps,
                epoch=self.epoch,
                version=self.version,
                history=list(self.history),
                message=self.message,
                stage=None if self.stage is None else {"index": self.stage, **plan[self.stage]},
            )
