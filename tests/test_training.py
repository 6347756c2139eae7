"""The training loop: determinism, divergence, resume, early stopping, callbacks, clipping."""

from __future__ import annotations

import importlib.util
import io
import math

import numpy as np
import pytest

from nnmath.callbacks import Callback, ProgressBar, StopWhen
from nnmath.errors import DataError, DivergenceError, ShapeError, SpecError
from nnmath.losses import get_loss
from nnmath.modelfile import TrainedModel, load_checkpoint, save_checkpoint
from nnmath.network import MLP
from nnmath.optimizers import SGD, Adam, make_optimizer
from nnmath.penalties import L1, L2
from nnmath.recipe import complete_spec
from nnmath.schedules import make_schedule
from nnmath.training import (
    TrainingState,
    backprop,
    evaluate_arrays,
    fit,
)


def blobs(seed: int = 0, n: int = 90, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping Gaussian clouds in 4-D: learnable, but not in one step."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    centers = rng.normal(0, 1.5, size=(classes, 4))
    return centers[y] + rng.normal(0, 1.0, size=(n, 4)), y.astype(np.int64)


def regression(seed: int = 0, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = np.sin(X[:, :1]) + 0.5 * X[:, 1:2] ** 2 + 0.1 * rng.normal(size=(n, 1))
    return X, y


def weights(model: MLP) -> list[np.ndarray]:
    return [p.copy() for p in model.parameters()]


def same_bits(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(
        x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(a, b, strict=True)
    )


# ---- determinism ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_same_seed_gives_bit_identical_weights(dtype: type) -> None:
    X, y = blobs()
    runs = []
    for _ in range(2):
        model = MLP("4-8relu-3softmax", seed=1, dtype=dtype)
        fit(model, X, y, epochs=3, batch_size=16, seed=7, validation_fraction=0.2)
        runs.append(weights(model))
    assert runs[0][0].dtype == dtype
    assert same_bits(runs[0], runs[1])


def test_another_seed_shuffles_differently() -> None:
    X, y = blobs()
    a, b = MLP("4-8relu-3softmax", seed=1), MLP("4-8relu-3softmax", seed=1)
    fit(a, X, y, epochs=2, batch_size=16, seed=7)
    fit(b, X, y, epochs=2, batch_size=16, seed=8)
    assert not same_bits(weights(a), weights(b))


def test_training_reduces_the_loss_and_history_has_the_task_metrics() -> None:
    X, y = blobs()
    model = MLP("4-16relu-3softmax", seed=0)
    history = fit(
        model, X, y, epochs=15, batch_size=16, learning_rate=0.01, validation_fraction=0.2
    )
    assert history.epochs == 15
    assert set(history.metrics) == {
        "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"
    }  # fmt: skip
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] > 0.8
    assert history["epoch"] == [float(e) for e in range(1, 16)]

    Xr, yr = regression()
    model = MLP("3-16tanh-1", seed=0)
    history = fit(model, Xr, yr, epochs=5, batch_size=16, learning_rate=0.01, dtype="float64")
    assert {"loss", "mse", "mae", "r2"} <= set(history.metrics)
    # with the mse loss, the logged loss is the mean squared error of the same predictions
    assert history["loss"][-1] == pytest.approx(history["mse"][-1], rel=1e-12)


def test_float_labels_for_a_softmax_network_are_classes() -> None:
    X, y = blobs()
    a, b = MLP("4-8relu-3softmax", seed=0), MLP("4-8relu-3softmax", seed=0)
    history = fit(a, X, y.astype(np.float64), epochs=2)
    fit(b, X, y, epochs=2)
    assert "accuracy" in history and same_bits(weights(a), weights(b))
    with pytest.raises(DataError, match="whole numbers"):
        fit(a, X, y + 0.5, epochs=1)


def test_epoch_metrics_are_the_models_values_at_the_end_of_the_epoch() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax", seed=0)
    history = fit(model, X, y, epochs=2, batch_size=32, dtype="float64", train_metrics="exact")
    loss = get_loss("cross-entropy")
    assert history["loss"][-1] == pytest.approx(model.cost(X, y, loss), rel=1e-12)
    predicted = model.predict(X).argmax(axis=1)
    assert history["accuracy"][-1] == pytest.approx(np.mean(predicted == y))


# ---- divergence -------------------------------------------------------------------------------


def test_divergence_stops_at_once_with_a_remedy() -> None:
    X, y = regression()
    model = MLP("3-32relu-32relu-1", seed=0)
    with pytest.raises(DivergenceError) as caught:
        fit(model, X * 100, y * 1e3, optimizer=SGD(1e6), epochs=50, batch_size=8)
    message = str(caught.value)
    assert "epoch 1, batch" in message
    assert "learning rate" in message and "clip" in message and "standardise" in message
    assert "nan" in message or "inf" in message
    # the error is raised on the batch that diverged, long before 50 epochs of NaN
    batch = int(message.split("batch ")[1].split(" ")[0])
    assert batch <= 10


def test_divergence_is_a_floating_point_error_for_python_callers() -> None:
    X, y = blobs()
    with pytest.raises(FloatingPointError):
        fit(MLP("4-8relu-3softmax"), X * 1e3, y, optimizer=SGD(1e12), epochs=5, batch_size=8)


# ---- checkpoints and resume -------------------------------------------------------------------


def test_resume_from_a_checkpoint_ends_bit_identical(tmp_path) -> None:
    X, y = blobs()
    settings = dict(
        loss="cross-entropy",
        epochs=6,
        batch_size=16,
        validation_fraction=0.2,
        patience=50,  # early stopping state travels in the checkpoint, without stopping
        schedule="cosine",
        clip_norm=5.0,
    )
    states: list[TrainingState] = []
    full = MLP("4-8relu-3softmax", seed=3)
    history_full = fit(
        full, X, y, optimizer=Adam(0.01), seed=11, checkpoint=states.append, **settings
    )
    assert [s.epoch for s in states] == [1, 2, 3, 4, 5, 6]

    # Round trip the epoch-3 checkpoint through a file, then continue in a fresh model.
    path = tmp_path / "run.ckpt"
    save_checkpoint(
        path, TrainedModel(full, get_loss("cross-entropy"), "classification"), states[2]
    )
    checkpoint = load_checkpoint(path)
    fresh = MLP("4-8relu-3softmax", seed=999)  # other weights: they must come from the checkpoint
    history_resumed = fit(fresh, X, y, seed=12345, resume=checkpoint.state, **settings)

    assert same_bits(weights(full), weights(fresh))
    assert history_resumed.metrics == history_full.metrics
    assert history_resumed.best_epoch == history_full.best_epoch


def test_checkpoint_path_writes_a_loadable_file(tmp_path) -> None:
    X, y = blobs()
    path = tmp_path / "ckpt.nnm"
    model = MLP("4-8relu-3softmax", seed=0)
    fit(model, X, y, epochs=2, batch_size=32, checkpoint=path, dtype="float64")
    checkpoint = load_checkpoint(path)
    assert checkpoint.state.epoch == 2
    assert same_bits(checkpoint.state.weights, weights(model))
    assert checkpoint.state.optimizer["name"] == "adam"


# ---- early stopping ---------------------------------------------------------------------------


def test_early_stopping_restores_the_best_weights() -> None:
    # A wide network on few noisy samples overfits: the validation loss turns up.
    X, y = blobs(seed=4, n=60)
    states: list[TrainingState] = []
    model = MLP("4-64relu-3softmax", seed=0)
    history = fit(
        model,
        X,
        y,
        learning_rate=0.05,
        epochs=200,
        batch_size=8,
        validation_fraction=0.5,
        patience=3,
        checkpoint=states.append,
        dtype="float64",
    )
    val_loss = history["val_loss"]
    best = int(np.argmin(val_loss)) + 1
    assert history.stopped_early
    assert history.epochs < 200
    assert history.best_epoch == best
    assert history.epochs == best + 3  # stopped after `patience` epochs without improvement
    assert same_bits(weights(model), states[best - 1].weights)
    assert not same_bits(weights(model), states[-1].weights)


def test_without_patience_the_last_weights_stay() -> None:
    X, y = blobs()
    states: list[TrainingState] = []
    model = MLP("4-8relu-3softmax", seed=0)
    history = fit(model, X, y, epochs=3, checkpoint=states.append, dtype="float64")
    assert history.best_epoch is None and not history.stopped_early
    assert same_bits(weights(model), states[-1].weights)


# ---- callbacks, schedule, clipping, the gradient hook -----------------------------------------


def test_callbacks_see_each_epoch_and_can_stop() -> None:
    X, y = blobs()
    seen: list[tuple[int, set[str]]] = []

    class Recorder:
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
            seen.append((epoch, set(logs)))
            return epoch == 3

        def on_train_end(self, history) -> None:
            seen.append((-1, set()))

    history = fit(MLP("4-8relu-3softmax"), X, y, epochs=10, callbacks=[Recorder()])
    assert [e for e, _ in seen] == [1, 2, 3, -1]
    assert {"loss", "accuracy", "learning_rate"} <= seen[0][1]
    assert history.epochs == 3


def test_stop_when_threshold_is_reached() -> None:
    X, y = blobs()
    history = fit(
        MLP("4-16relu-3softmax"), X, y, epochs=100, learning_rate=0.02,
        callbacks=[StopWhen("accuracy", 0.8)],
    )  # fmt: skip
    assert history["accuracy"][-1] >= 0.8
    assert all(a < 0.8 for a in history["accuracy"][:-1])
    with pytest.raises(SpecError, match="val_loss"):
        fit(MLP("4-8relu-3softmax"), X, y, epochs=1, callbacks=[StopWhen("val_loss", 0.1)])


def test_schedule_sets_the_learning_rate_of_each_epoch() -> None:
    X, y = blobs()
    schedule = make_schedule("step", 0.1, step_size=2, gamma=0.5)
    history = fit(MLP("4-8relu-3softmax"), X, y, optimizer=SGD(0.1), epochs=5, schedule=schedule)
    assert history["learning_rate"] == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_clip_norm_bounds_each_step() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax", seed=0)
    before = weights(model)
    # one full-batch SGD step: θ changes by η g with ‖g‖ clipped to 0.01
    fit(model, X, y, optimizer=SGD(0.5), epochs=1, batch_size=len(X), clip_norm=0.01)
    step = math.sqrt(
        sum(float(np.sum((a - b) ** 2)) for a, b in zip(weights(model), before, strict=True))
    )
    assert step == pytest.approx(0.5 * 0.01, rel=1e-4)


def test_the_gradient_function_is_one_swappable_call() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax", seed=0)
    reference = backprop(model, get_loss("cross-entropy"))
    calls = []

    def counting(Xb: np.ndarray, Tb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        calls.append(len(Xb))
        return reference(Xb, Tb)

    fit(model, X, y, epochs=2, batch_size=40, gradients=counting)
    assert calls == [40, 40, 10, 40, 40, 10]  # every batch of every epoch, the last one smaller


def test_fast_step_plugs_into_fit() -> None:
    fast = pytest.importorskip("nnmath.fast")
    X, y = blobs()
    loss = get_loss("cross-entropy")
    a, b = MLP("4-8relu-3softmax", seed=0), MLP("4-8relu-3softmax", seed=0)
    fit(a, X, y, epochs=3, batch_size=16, seed=1, dtype="float64")
    step = fast.FastStep(b, loss, 16)
    fit(b, X, y, epochs=3, batch_size=16, seed=1, gradients=step.loss_and_gradients)
    for p, q in zip(weights(a), weights(b), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "data", "optimizer"),
    [
        ("4-16relu-3softmax", blobs, lambda: SGD(0.1)),  # the fused SGD step
        ("4-16relu-3softmax", blobs, lambda: Adam(0.01)),  # the fast gradients and Adam
        ("3-16tanh-1", regression, lambda: SGD(0.05)),  # regression metrics, mse
    ],
)
def test_fast_fit_logs_what_the_engine_path_logs(spec, data, optimizer) -> None:
    # float32 trains through FastStep (gradients, fused SGD, per-epoch evaluation); the float64
    # copy of the same weights through the engine's backprop and evaluate_arrays.
    X, y = data(n=100)
    X, y, X_val, y_val = X[20:], y[20:], X[:20], y[:20]
    fast, engine = MLP(spec, seed=4, dtype=np.float32), MLP(spec, seed=4)
    assert same_bits(weights(fast), [w.astype(np.float32) for w in weights(engine)])
    loss = get_loss("cross-entropy" if fast.output == "softmax" else "mse")
    settings = dict(
        loss=loss, epochs=4, batch_size=16, seed=5, validation=(X_val, y_val), train_metrics="exact"
    )
    h_fast = fit(fast, X, y, optimizer=optimizer(), **settings)
    h_engine = fit(
        engine, X, y, optimizer=optimizer(), gradients=backprop(engine, loss), **settings
    )
    assert set(h_fast.metrics) == set(h_engine.metrics)
    for key, values in h_engine.metrics.items():
        if key.endswith("accuracy"):  # a float32 round-off may move one sample across the border
            n = len(y) if key == "accuracy" else len(y_val)
            np.testing.assert_allclose(h_fast[key], values, rtol=0, atol=1.01 / n, err_msg=key)
        else:
            np.testing.assert_allclose(h_fast[key], values, rtol=2e-4, atol=1e-6, err_msg=key)
    for p, q in zip(weights(fast), weights(engine), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5)


def test_fast_epoch_metrics_are_the_engines_on_the_same_weights() -> None:
    # After every epoch of a float32 run, the logged metrics equal evaluate_arrays (the engine's
    # forward pass) on the weights of that moment, training and validation set alike.
    X, y = blobs(n=350)  # more rows than one chunk of a FastStep with batch size 16
    X, y, X_val, y_val = X[50:], y[50:], X[:50], y[:50]
    model = MLP("4-16relu-8relu-3softmax", seed=0, dtype=np.float32)
    loss = get_loss("cross-entropy")
    T, T_val = np.eye(3, dtype=np.float32)[y], np.eye(3, dtype=np.float32)[y_val]
    X32, X_val32 = X.astype(np.float32), X_val.astype(np.float32)
    checked = []

    class Compare:
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
            train = evaluate_arrays(model, X32, T, loss, "classification", y)
            val = evaluate_arrays(model, X_val32, T_val, loss, "classification", y_val)
            assert logs["loss"] == pytest.approx(train["loss"], rel=1e-5)
            assert logs["accuracy"] == train["accuracy"]
            assert logs["val_loss"] == pytest.approx(val["loss"], rel=1e-5)
            assert logs["val_accuracy"] == val["accuracy"]
            checked.append(epoch)
            return False

    fit(model, X, y, loss=loss, optimizer=SGD(0.1), epochs=3, batch_size=16,
        validation=(X_val, y_val), callbacks=[Compare()], train_metrics="exact")  # fmt: skip
    assert checked == [1, 2, 3]


def test_fused_sgd_equals_the_optimizer_and_keeps_its_step_count(monkeypatch) -> None:
    from nnmath.fast import FastStep

    fused_steps = []
    sgd_step = FastStep.sgd_step
    monkeypatch.setattr(
        FastStep, "sgd_step", lambda self, *args: fused_steps.append(1) or sgd_step(self, *args)
    )
    X, y = blobs()
    loss = get_loss("cross-entropy")
    a, b = MLP("4-8relu-3softmax", seed=0, dtype=np.float32), MLP("4-8relu-3softmax", seed=0)
    b = b.astype(np.float32)
    sgd_a, sgd_b = SGD(0.1), SGD(0.1)
    fit(a, X, y, loss=loss, optimizer=sgd_a, epochs=3, batch_size=16)  # fused into FastStep
    fit(b, X, y, loss=loss, optimizer=sgd_b, epochs=3, batch_size=16, gradients=backprop(b, loss))
    assert sgd_a.t == sgd_b.t == len(fused_steps) == 3 * math.ceil(len(X) / 16)
    for p, q in zip(weights(a), weights(b), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    # and a float32 run resumed from a checkpoint ends bit-identical on this path too
    states: list[TrainingState] = []
    full = MLP("4-8relu-3softmax", seed=3, dtype=np.float32)
    settings = dict(loss=loss, epochs=4, batch_size=16, validation_fraction=0.2)
    fit(full, X, y, optimizer=SGD(0.1), checkpoint=states.append, **settings)
    fresh = MLP("4-8relu-3softmax", seed=9, dtype=np.float32)
    fit(fresh, X, y, resume=states[1], **settings)
    assert same_bits(weights(full), weights(fresh))


def test_fit_refuses_an_unknown_kernel() -> None:
    X, y = blobs()
    with pytest.raises(SpecError, match="kernel"):
        fit(MLP("4-8relu-3softmax"), X, y, kernel="fortran")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_running_loss_is_the_batch_size_weighted_mean_of_the_batch_costs(dtype) -> None:
    X, y = blobs(n=90)
    X, y, X_val, y_val = X[10:], y[10:], X[:10], y[:10]  # 80 rows: batches of 32, 32, 16
    model = MLP("4-8relu-3softmax", seed=0, dtype=dtype)
    loss = get_loss("cross-entropy")
    reference = backprop(model, loss)
    costs: list[tuple[int, float]] = []

    def recording(Xb: np.ndarray, Tb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        value, grads = reference(Xb, Tb)
        costs.append((len(Xb), value))
        return value, grads

    history = fit(model, X, y, loss=loss, optimizer=SGD(0.1), epochs=3, batch_size=32,
                  validation=(X_val, y_val), gradients=recording, train_metrics="running")  # fmt: skip
    assert [n for n, _ in costs] == [32, 32, 16] * 3
    for epoch in range(3):
        batch = costs[3 * epoch : 3 * epoch + 3]
        expected = sum(n * c for n, c in batch) / 80
        assert history["loss"][epoch] == pytest.approx(expected, rel=1e-12)
        assert history["loss"][epoch] != pytest.approx(batch[-1][1], rel=1e-6)  # not the last one
    # the training set is not evaluated again; validation stays exact, on the final weights
    assert set(history.metrics) == {"epoch", "loss", "val_loss", "val_accuracy", "learning_rate"}
    T_val = np.eye(3, dtype=dtype)[y_val]
    val = evaluate_arrays(model, X_val.astype(dtype), T_val, loss, "classification", y_val)
    assert history["val_loss"][-1] == pytest.approx(val["loss"], rel=1e-5)
    assert history["val_accuracy"][-1] == val["accuracy"]


def test_running_loss_on_the_fused_fast_step_and_same_weights_as_exact(monkeypatch) -> None:
    from nnmath.fast import FastStep

    costs: list[tuple[int, float]] = []
    sgd_step = FastStep.sgd_step

    def recording(self: FastStep, Xb: np.ndarray, Tb: np.ndarray, learning_rate: float) -> float:
        value = sgd_step(self, Xb, Tb, learning_rate)
        costs.append((len(Xb), value))
        return value

    monkeypatch.setattr(FastStep, "sgd_step", recording)
    X, y = blobs(n=100)
    settings = dict(optimizer="sgd", learning_rate=0.1, epochs=2, batch_size=16, seed=2)
    a = MLP("4-8relu-3softmax", seed=0, dtype=np.float32)
    b = MLP("4-8relu-3softmax", seed=0, dtype=np.float32)
    running = fit(a, X, y, train_metrics="running", **settings)
    n_batches = math.ceil(len(X) / 16)
    assert len(costs) == 2 * n_batches
    for epoch in range(2):
        batch = costs[n_batches * epoch : n_batches * (epoch + 1)]
        expected = sum(n * c for n, c in batch) / len(X)
        assert running["loss"][epoch] == pytest.approx(expected, rel=1e-12)
    exact = fit(b, X, y, train_metrics="exact", **settings)  # on the end-of-epoch weights
    assert set(exact.metrics) == set(running.metrics)  # the same names, other values
    assert same_bits(weights(a), weights(b))  # only the logging differs
    assert running["loss"] != exact["loss"]


def test_running_accuracy_counts_each_batch_before_its_step() -> None:
    # The fast path's running accuracy: each batch scored on the weights before its own step.
    X, y = blobs(n=100)
    loss = get_loss("cross-entropy")
    model = MLP("4-8relu-3softmax", seed=0, dtype=np.float32)
    mirror = model.copy()
    scores: list[tuple[int, int]] = []

    def scoring(Xb: np.ndarray, Tb: np.ndarray) -> tuple[float, list[np.ndarray]]:
        right = int(np.sum(mirror.predict(Xb).argmax(axis=1) == Tb.argmax(axis=1)))
        scores.append((right, len(Xb)))
        value, grads = mirror.loss_and_gradients(Xb, Tb, loss)
        SGD(0.1).step(mirror.parameters(), grads.flat())
        return value, [np.zeros_like(g) for g in grads.flat()]

    history = fit(model, X, y, loss=loss, optimizer=SGD(0.1), epochs=2, batch_size=16, seed=4)
    fit(mirror.copy(), X, y, loss=loss, optimizer=SGD(0.1), epochs=2, batch_size=16, seed=4,
        gradients=scoring)  # the same batches, scored by hand on a mirror run  # fmt: skip
    n = math.ceil(len(X) / 16)
    for epoch in range(2):
        right = sum(r for r, _ in scores[epoch * n : (epoch + 1) * n])
        assert history["accuracy"][epoch] == pytest.approx(right / len(X), abs=1.01 / len(X))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_loss_only_metrics_log_the_running_loss_without_scoring(optimizer, monkeypatch) -> None:
    """train_metrics="loss": the running loss of "running", bit for bit, the same weights, and no
    per-batch score (the step's argmax is not run)."""
    from nnmath.fast import FastStep

    X, y = blobs(n=100)
    settings = dict(optimizer=optimizer, learning_rate=0.05, epochs=3, batch_size=16, seed=1)
    a, b = MLP("4-8relu-3softmax", seed=0), MLP("4-8relu-3softmax", seed=0)
    running = fit(a, X, y, train_metrics="running", validation=(X[:20], y[:20]), **settings)

    def refuse(*args: object) -> None:
        raise AssertionError("scored a batch")

    monkeypatch.setattr(FastStep, "_score", refuse)
    loss_only = fit(b, X, y, train_metrics="loss", validation=(X[:20], y[:20]), **settings)
    assert "accuracy" in running.metrics and "accuracy" not in loss_only.metrics
    assert loss_only["loss"] == running["loss"]
    assert loss_only["val_accuracy"] == running["val_accuracy"]
    assert same_bits(weights(a), weights(b))


def test_fit_refuses_an_unknown_train_metrics_option() -> None:
    X, y = blobs()
    with pytest.raises(SpecError, match="train_metrics must be 'exact'.*'running'.*'mean'"):
        fit(MLP("4-8relu-3softmax"), X, y, train_metrics="mean")


# ---- input validation, once -------------------------------------------------------------------


def test_bad_inputs_are_refused_before_training() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax")
    bad = X.copy()
    bad[5, 2] = np.nan
    with pytest.raises(DataError, match="row 5"):
        fit(model, bad, y, epochs=1)
    with pytest.raises(DataError, match="label 3"):
        fit(model, X, np.where(y == 2, 3, y), epochs=1)
    with pytest.raises(ShapeError, match="rows"):
        fit(model, X, y[:-1], epochs=1)
    with pytest.raises(ShapeError, match="expects inputs of shape"):
        fit(model, X[:, :3], y, epochs=1)
    with pytest.raises(SpecError, match="batch_size"):
        fit(model, X, y, batch_size=0)
    with pytest.raises(SpecError, match="validation_fraction"):
        fit(model, X, y, validation_fraction=1.5)
    with pytest.raises(SpecError, match="not both"):
        fit(model, X, y, validation=(X, y), validation_fraction=0.2)


def test_evaluate_arrays_matches_the_engine() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax", seed=2)
    loss = get_loss("cross-entropy")
    T = np.eye(3)[y]
    logs = evaluate_arrays(model, X, T, loss, "classification", y)
    assert logs["loss"] == pytest.approx(model.cost(X, y, loss), rel=1e-13)


# ---- specs for data ---------------------------------------------------------------------------


def test_complete_spec_fills_input_and_output_from_the_data() -> None:
    assert str(complete_spec("128relu", 64, 10, "classification")) == "64-128relu-10softmax"
    assert str(complete_spec("8tanh-4tanh", 3, 2, "regression")) == "3-8tanh-4tanh-2"
    assert str(complete_spec("4-8relu-3softmax", 4, 3, "classification")) == "4-8relu-3softmax"
    assert str(complete_spec("2-8tanh-1sigmoid", 2, 2, "classification")) == "2-8tanh-1sigmoid"
    assert str(complete_spec(None, 5, 1, "regression", hidden="16relu")) == "5-16relu-1"
    assert str(complete_spec("16relu-3softmax", 4, 3, "classification")) == "4-16relu-3softmax"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("5-8relu-3softmax", "starts with 5 inputs but the data has 4 features"),
        ("4-8relu-2softmax", "must be '3softmax'"),
        ("4-8relu-3", "must be '3softmax'"),
        ("4-8relu-3sigmoid", "must be '3softmax'"),
        ("8relu-x", "not SIZE"),
    ],
)
def test_complete_spec_names_a_mismatch(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        complete_spec(spec, 4, 3, "classification")


def test_regression_spec_refuses_softmax() -> None:
    with pytest.raises(SpecError, match="identity output"):
        complete_spec("3-8relu-1softmax", 3, 1, "regression")


# ---- the progress bar -------------------------------------------------------------------------


def test_progress_bar_is_off_when_the_stream_is_not_a_terminal() -> None:
    assert not ProgressBar(3, stream=io.StringIO()).enabled


def test_progress_bar_shows_loss_and_metrics() -> None:
    stream = io.StringIO()
    bar = ProgressBar(2, enabled=True, stream=stream)
    bar.on_epoch_end(1, {"loss": 0.5, "accuracy": 0.75, "learning_rate": 0.1})
    bar.on_train_end(None)
    text = stream.getvalue()
    assert "loss=0.5" in text and "accuracy=0.75" in text and "1/2" in text


# ---- sample weights and penalties -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rows_of_weight_zero_do_not_change_training(dtype) -> None:
    # Weights travel with their rows: whatever a weight-0 row holds, the run ends bit-identical.
    X, y = blobs(n=90)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(X))
    w[::7] = 0.0
    other_X = X.copy()
    other_X[::7] = 123.0  # (the labels stay: the validation split is stratified by them)
    runs = []
    for data in ((X, y), (other_X, y)):
        model = MLP("4-8relu-3softmax", seed=1, dtype=dtype)
        fit(model, *data, epochs=3, batch_size=16, sample_weight=w, validation_fraction=0.2,
            penalty=L2(0.01))  # fmt: skip
        runs.append(weights(model))
    assert same_bits(runs[0], runs[1])


def test_a_weighted_penalised_full_batch_step_is_the_engines() -> None:
    X, y = blobs(n=40)
    w = np.random.default_rng(2).uniform(0.1, 2.0, len(X))
    loss = get_loss("cross-entropy")
    for penalty in (L2(0.2), L1(0.1), L2(0.2, per_sample=True)):
        model, reference = MLP("4-8relu-3softmax", seed=5), MLP("4-8relu-3softmax", seed=5)
        fit(model, X, y, loss=loss, optimizer=SGD(0.5), epochs=1, batch_size=len(X),
            sample_weight=w, penalty=penalty, dtype="float64")  # fmt: skip
        _, grads = reference.loss_and_gradients(X, y, loss, sample_weight=w, penalty=penalty)
        SGD(0.5).step(reference.parameters(), grads.flat())
        for a, b in zip(weights(model), weights(reference), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_weighted_metrics_are_logged_on_weighted_rows(dtype) -> None:
    X, y = blobs(n=120)
    rng = np.random.default_rng(3)
    w, w_val = rng.uniform(0.1, 3.0, 100), rng.uniform(0.1, 3.0, 20)
    loss = get_loss("cross-entropy")
    penalty = L2(0.05, per_sample=True)
    model = MLP("4-8relu-3softmax", seed=0, dtype=dtype)
    checked = []

    class Compare:
        def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool:
            for prefix, rows, weight in (("", slice(20, None), w), ("val_", slice(0, 20), w_val)):
                Xr, yr = X[rows].astype(dtype), y[rows]
                expected = evaluate_arrays(
                    model, Xr, np.eye(3, dtype=dtype)[yr], loss, "classification", yr, weight,
                    penalty,
                )  # fmt: skip
                assert logs[prefix + "loss"] == pytest.approx(expected["loss"], rel=1e-5)
                assert logs[prefix + "accuracy"] == pytest.approx(expected["accuracy"], rel=1e-6)
                right = model.predict(Xr).argmax(axis=1) == yr
                by_hand = np.sum(weight * right) / np.sum(weight)
                assert expected["accuracy"] == pytest.approx(by_hand, rel=1e-6)
            checked.append(epoch)
            return False

    fit(model, X[20:], y[20:], loss=loss, epochs=2, batch_size=16, sample_weight=w,
        validation=(X[:20], y[:20], w_val), penalty=penalty, callbacks=[Compare()],
        train_metrics="exact")  # fmt: skip
    assert checked == [1, 2]


def test_validation_fraction_splits_the_weights_with_their_rows() -> None:
    X, y = blobs(n=100)
    w = np.random.default_rng(4).uniform(0.1, 3.0, len(X))
    states: list[TrainingState] = []
    model = MLP("4-8relu-3softmax", seed=0)
    history = fit(model, X, y, epochs=1, sample_weight=w, validation_fraction=0.3, dtype="float64",
                  checkpoint=states.append)  # fmt: skip
    rows = states[0].validation_rows
    loss = get_loss("cross-entropy")
    assert history["val_loss"][0] == pytest.approx(
        model.cost(X[rows], y[rows], loss, sample_weight=w[rows]), rel=1e-12
    )
    assert history["val_loss"][0] != pytest.approx(model.cost(X[rows], y[rows], loss), rel=1e-6)


def test_a_penalty_adds_to_a_gradient_hook_and_to_the_logged_loss() -> None:
    X, y = blobs()
    loss = get_loss("cross-entropy")
    a, b = MLP("4-8relu-3softmax", seed=0), MLP("4-8relu-3softmax", seed=0)
    history = fit(a, X, y, loss=loss, optimizer=SGD(0.1), epochs=2, penalty=L1(0.01),
                  dtype="float64", train_metrics="exact")  # fmt: skip
    fit(b, X, y, loss=loss, optimizer=SGD(0.1), epochs=2, penalty=L1(0.01),
        gradients=backprop(b, loss))  # fmt: skip
    for p, q in zip(weights(a), weights(b), strict=True):  # the fast path and the engine's
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    assert history["loss"][-1] == pytest.approx(
        a.cost(X, y, loss) + L1(0.01).value([L.W for L in a.linears]), rel=1e-12
    )


def test_the_scikit_learn_call_works() -> None:
    # what the estimators run: weights and scikit-learn's per-sample L2 through fit
    X, y = blobs(n=60)
    w = np.linspace(0.5, 1.5, len(X))
    model = MLP("4-16relu-3softmax", seed=0, dtype=np.float32)
    history = fit(model, X, y, sample_weight=w, penalty=L2(1e-4, per_sample=True), epochs=5,
                  batch_size=16, learning_rate=0.01)  # fmt: skip
    assert history.epochs == 5 and history["loss"][-1] < history["loss"][0]


def test_bad_weights_and_penalties_are_refused() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax")
    with pytest.raises(DataError, match="one weight per row"):
        fit(model, X, y, sample_weight=np.ones(3))
    with pytest.raises(DataError, match="negative"):
        fit(model, X, y, sample_weight=-np.ones(len(X)))
    with pytest.raises(SpecError, match="penalty"):
        fit(model, X, y, penalty=0.01)
    with pytest.raises(SpecError, match="w_val"):
        fit(model, X, y, validation=(X,))


# ---- the fast path: every optimizer, the training dtype -----------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(0.05, momentum=0.9),
        lambda: SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda: make_optimizer("rmsprop", learning_rate=0.005, momentum=0.5),
        lambda: Adam(0.01, weight_decay=0.01),
        lambda: make_optimizer("adamw", learning_rate=0.01),
    ],
    ids=["momentum", "nesterov", "rmsprop", "adam", "adamw"],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fast_path_trains_like_the_engine_and_the_optimizer(make, dtype) -> None:
    # The fused path (flat vector, FastStep, the optimizer's rule once over the vector) against
    # the engine's backprop and optimizer.step array by array, with clipping, weights, penalty.
    X, y = blobs(n=100)
    w = np.random.default_rng(6).uniform(0.5, 2.0, len(X))
    loss = get_loss("cross-entropy")
    settings = dict(loss=loss, epochs=3, batch_size=16, seed=3, clip_norm=2.0, sample_weight=w,
                    penalty=L2(0.01), validation_fraction=0.2)  # fmt: skip
    fast = MLP("4-16relu-8tanh-3softmax", seed=2, dtype=dtype)
    engine = fast.copy()
    h_fast = fit(fast, X, y, optimizer=make(), dtype=np.dtype(dtype).name, **settings)
    h_engine = fit(engine, X, y, optimizer=make(), gradients=backprop(engine, loss), **settings)
    tolerance = 1e-11 if dtype == np.float64 else 2e-4
    for p, q in zip(weights(fast), weights(engine), strict=True):
        np.testing.assert_allclose(p, q, rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(h_fast["val_loss"], h_engine["val_loss"], rtol=tolerance)


def test_a_float64_model_trains_in_float32_by_default_and_keeps_its_dtype() -> None:
    X, y = blobs()
    model = MLP("4-8relu-3softmax", seed=0)
    same32 = model.astype(np.float32)
    seen = []

    class Watch(Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(model.predict(X[:5].astype(np.float64)).dtype)

    fit(model, X, y, epochs=3, callbacks=[Watch()])
    fit(same32, X, y, epochs=3)
    assert model.dtype == np.float64 and seen == [np.float64] * 3  # synced after every epoch
    for p, q in zip(weights(model), weights(same32), strict=True):
        assert np.array_equal(p, q.astype(np.float64))  # the float32 run's values, exactly
    with pytest.raises(SpecError, match="own float64 arrays"):
        fit(model, X, y, gradients=backprop(model, get_loss("cross-entropy")), dtype="float32")


def test_modelfile_does_not_import_training() -> None:
    import subprocess
    import sys

    code = "import sys, nnmath.modelfile; print('nnmath.training' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# ---- Keras's conventions: callbacks and History ---------------------------------------------------


def test_callbacks_are_called_as_keras_calls_them() -> None:
    X, y = blobs()
    calls: list[tuple] = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            calls.append(("train_begin", dict(logs)))

        def on_epoch_begin(self, epoch, logs=None):
            calls.append(("epoch_begin", epoch))

        def on_epoch_end(self, epoch, logs=None):
            calls.append(("epoch_end", epoch, logs["loss"]))
            if epoch == 2:
                self.stop_training = True  # Keras's flag instead of returning True

        def on_train_end(self, logs=None):
            calls.append(("train_end", logs["epoch"]))

    history = fit(MLP("4-8relu-3softmax"), X, y, epochs=5, callbacks=[Recorder()])
    assert [c[0] for c in calls] == [
        "train_begin", "epoch_begin", "epoch_end", "epoch_begin", "epoch_end", "train_end"
    ]  # fmt: skip
    assert calls[0][1] == {} and calls[-1] == ("train_end", 2.0)
    assert history.epoch == [1, 2] and history.epochs == 2
    assert history.history["loss"] == [c[2] for c in calls if c[0] == "epoch_end"]
    assert "epoch" not in history.history and history["loss"] is history.history["loss"]
    assert set(history.history) == {"loss", "accuracy", "learning_rate"}


# ---- divergence and no progress -----------------------------------------------------------------


def test_a_loss_that_explodes_stops_the_run_before_it_is_nan() -> None:
    X, y = blobs()
    states: list[TrainingState] = []
    with pytest.raises(DivergenceError) as caught:
        fit(MLP("4-32relu-3softmax", seed=0), X, y, optimizer=SGD(50.0), epochs=20,
            batch_size=8, checkpoint=states.append)  # fmt: skip
    message = str(caught.value)
    assert "times its starting value" in message and "try 5" in message
    value = float(message.split("the loss is ")[1].split(",")[0])
    assert math.isfinite(value) and value > 100  # stopped on a finite, exploded loss
    assert not states  # no epoch ended: nothing saved as if it were fine


def test_the_explosion_rule() -> None:
    from nnmath.divergence import explodes

    assert explodes(float("nan"), 2.3) and explodes(float("inf"), None)
    assert explodes(2301.0, 2.3) and not explodes(2299.0, 2.3)  # 1000 × C₀
    assert not explodes(99.0, 0.001) and explodes(101.0, 0.001)  # and at least 100
    assert not explodes(1e9, None)  # no starting value yet: only NaN and Inf


def test_a_run_that_never_improves_says_so() -> None:
    X, y = blobs()
    tiny = fit(MLP("4-8relu-3softmax", seed=0), X, y, optimizer=SGD(1e-9), epochs=2)
    assert tiny.no_progress and tiny.initial_loss == pytest.approx(tiny["loss"][0], rel=1e-6)
    normal = fit(MLP("4-8relu-3softmax", seed=0), X, y, optimizer=SGD(0.1), epochs=2)
    assert not normal.no_progress and normal["loss"][-1] < normal.initial_loss


# ---- settings, refused before any work ----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning_rate": float("inf")}, "learning rate must be finite and > 0"),
        ({"learning_rate": 0.0}, "learning rate must be finite and > 0"),
        ({"learning_rate": -0.1}, "learning rate must be finite and > 0"),
        ({"learning_rate": float("nan")}, "learning rate must be finite and > 0"),
        ({"optimizer": SGD(0.0)}, "learning rate must be finite and > 0"),
        ({"epochs": 0}, "epochs must be a whole number from 1 to 1,000,000"),
        ({"epochs": 10**20}, "epochs must be a whole number from 1 to 1,000,000"),
        ({"epochs": 2.5}, "epochs must be a whole number"),
        ({"seed": -1}, "seed must be a whole number ≥ 0"),
        ({"seed": "abc"}, "seed must be a whole number ≥ 0"),
        ({"clip_norm": float("inf")}, "clip_norm must be finite"),
        ({"dtype": "float16"}, "dtype must be"),
    ],
)
def test_bad_settings_are_refused_with_a_spec_error(settings, message) -> None:
    X, y = blobs()
    with pytest.raises(SpecError, match=message):
        fit(MLP("4-8relu-3softmax"), X, y, **settings)


def test_string_labels_are_a_data_error() -> None:
    X, y = blobs()
    with pytest.raises(DataError, match="whole numbers"):
        fit(MLP("4-8relu-3softmax"), X, np.array(["a", "b", "c"])[y])


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize(
    ("spec", "data"), [("3-16tanh-2", regression), ("4-8relu-3softmax", blobs)]
)
def test_running_metrics_equal_exact_ones_when_the_weights_stand_still(
    spec, data, weighted
) -> None:
    # With a negligible learning rate every batch is scored on (almost) the end-of-epoch weights,
    # so the running means must equal the exact metrics: loss, accuracy or mse, mae, r2.
    X, y = data(n=90)
    if spec.endswith("-2"):  # two regression targets
        y = np.c_[y[:, 0], 2 * y[:, 0] + 1]
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(X)) if weighted else None
    settings = dict(optimizer=SGD(1e-12), epochs=1, batch_size=16, sample_weight=w,
                    dtype="float64")  # fmt: skip
    a, b = MLP(spec, seed=3), MLP(spec, seed=3)
    running = fit(a, X, y, **settings)
    exact = fit(b, X, y, train_metrics="exact", **settings)
    assert set(running.history) == set(exact.history)
    for key in running.history:
        assert running[key][0] == pytest.approx(exact[key][0], rel=1e-9, abs=1e-12), key


def test_auto_kernel_takes_numba_only_where_it_pays(monkeypatch) -> None:
    import nnmath.fast
    from nnmath.training import NUMBA_PAYS_OFF_STEPS, choose_kernel

    assert choose_kernel("numpy", 10**9) == "numpy" and choose_kernel("numba", 1) == "numba"
    monkeypatch.setattr(nnmath.fast, "_KERNELS", {})  # numba not loaded in this process
    assert choose_kernel("auto", NUMBA_PAYS_OFF_STEPS - 1) == "numpy"
    installed = importlib.util.find_spec("numba") is not None
    assert choose_kernel("auto", NUMBA_PAYS_OFF_STEPS) == ("auto" if installed else "numpy")
    monkeypatch.setattr(nnmath.fast, "_KERNELS", {1: object()})  # loaded: its cost is paid
    assert choose_kernel("auto", 1) == "auto"


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "nesterov"])
def test_the_numba_kernel_trains_like_the_numpy_kernel(optimizer) -> None:
    pytest.importorskip("numba")
    X, y = blobs(n=100)
    w = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    settings = dict(optimizer=optimizer, learning_rate=0.01, epochs=3, batch_size=16, seed=1,
                    sample_weight=w, penalty=L2(0.01), clip_norm=5.0)  # fmt: skip
    a, b = MLP("4-16relu-8relu-3softmax", seed=2), MLP("4-16relu-8relu-3softmax", seed=2)
    h_numpy = fit(a, X, y, kernel="numpy", **settings)
    h_numba = fit(b, X, y, kernel="numba", **settings)
    for p, q in zip(weights(a), weights(b), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(h_numpy["loss"], h_numba["loss"], rtol=1e-5)
    assert h_numpy["accuracy"] == h_numba["accuracy"]
