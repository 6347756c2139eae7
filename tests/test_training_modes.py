"""fit with batch norm and dropout: training mode in the steps, evaluation mode in the logs, the
masks' generator in the checkpoint (a resumed run is bit-identical), early stopping restoring the
weights together with their running statistics, and a last batch of one row left out."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from nnmath.errors import SpecError
from nnmath.network import MLP
from nnmath.training import fit

SPEC = "2-16relu+bn+dropout(0.2)-8tanh+bn-2softmax"


def data(rows: int = 203, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, badly scaled inputs (what batch norm is for)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2)) * [3.0, 0.3] + [5.0, -2.0]
    y = ((X[:, 0] - 5.0) / 3.0 + (X[:, 1] + 2.0) / 0.3 > 0).astype(int)
    return X, y


def arrays(model: MLP) -> dict[str, np.ndarray]:
    return {name: np.array(value) for name, value in model.named_arrays().items()}


def test_fit_trains_batch_norm_and_dropout_and_predicts_in_evaluation_mode():
    X, y = data()
    model = MLP(SPEC, seed=0)
    history = fit(model, X, y, epochs=20, batch_size=16, learning_rate=0.01, seed=0,
                  validation_fraction=0.2)  # fmt: skip
    assert history["val_accuracy"][-1] > 0.9
    norm = model.batch_norms[0]
    assert np.abs(norm.running_mean).max() > 0.1  # the statistics the steps collected
    P = model.predict(X)  # evaluation mode: deterministic, no generator needed
    assert_array_equal(P, model.predict(X))
    assert np.mean(P.argmax(axis=1) == y) > 0.9


def test_the_same_seed_gives_the_same_weights_and_masks():
    X, y = data()
    runs = []
    for _ in range(2):
        model = MLP(SPEC, seed=1)
        fit(model, X, y, epochs=3, batch_size=16, seed=7)
        runs.append(arrays(model))
    for name in runs[0]:
        assert_array_equal(runs[0][name], runs[1][name], err_msg=name)
    other = MLP(SPEC, seed=1)
    fit(other, X, y, epochs=3, batch_size=16, seed=8)
    assert not np.array_equal(arrays(other)["W1"], runs[0]["W1"])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_resumed_run_is_bit_identical(dtype):
    """The checkpoint keeps the running statistics and the masks' generator state."""
    X, y = data()
    states = {}
    whole = MLP(SPEC, seed=2)
    fit(whole, X, y, epochs=6, batch_size=16, seed=3, dtype=dtype,
        checkpoint=lambda state: states.setdefault(state.epoch, state))  # fmt: skip
    assert states[3].masks_state is not None
    assert len(states[3].weights) == len(whole.parameters()) + 4  # two batch norms' statistics
    resumed = MLP(SPEC, seed=2)
    fit(resumed, X, y, epochs=6, batch_size=16, seed=3, dtype=dtype, resume=states[3])
    for name, value in arrays(whole).items():
        assert_array_equal(arrays(resumed)[name], value, err_msg=name)


def test_early_stopping_restores_the_weights_with_their_running_statistics():
    """The best epoch's W, b, γ, β *and* running mean and variance: a snapshot of the parameters
    alone would pair the best weights with the last epoch's statistics."""
    X, y = data(rows=300)
    X_val, y_val = data(rows=100, seed=1)
    seen: dict[int, dict[str, np.ndarray]] = {}

    class Snapshots:
        def on_epoch_end(self, epoch, logs):
            seen[epoch] = arrays(model)

    model = MLP(SPEC, seed=0)
    history = fit(model, X, y, epochs=25, batch_size=16, learning_rate=0.05, seed=0,
                  validation=(X_val, y_val), patience=3, callbacks=[Snapshots()])  # fmt: skip
    best = history.best_epoch
    assert best is not None and best < history.epochs  # it did stop after a better epoch
    for name, value in seen[best].items():
        assert_array_equal(arrays(model)[name], value, err_msg=name)
    assert not np.array_equal(seen[best]["running_mean1"], seen[history.epochs]["running_mean1"])


def test_a_last_batch_of_one_row_is_left_out_and_said_so():
    X, y = data(rows=33)  # 2 batches of 16, then one row
    model = MLP("2-8relu+bn-2softmax", seed=0)
    with pytest.warns(UserWarning, match="last batch of one row"):
        fit(model, X, y, epochs=2, batch_size=16, seed=0)
    with pytest.raises(SpecError, match="batch_size 2 or more"):
        fit(MLP("2-8relu+bn-2softmax"), X, y, epochs=1, batch_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropout alone normalizes nothing: no warning
        fit(MLP("2-8relu+dropout(0.5)-2softmax"), X, y, epochs=1, batch_size=16)


def test_a_float64_model_receives_the_float32_training_values():
    X, y = data()
    model = MLP(SPEC, seed=0)
    fit(model, X, y, epochs=2, batch_size=16, seed=0)  # dtype "auto": float32 arithmetic
    assert all(a.dtype == np.float64 for a in model.named_arrays().values())
    assert np.abs(model.batch_norms[1].running_var - 1.0).max() > 1e-3
