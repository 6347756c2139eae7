"""Optimizers against torch.optim, dtype preservation, checkpoint round trips, gradient clipping."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch

from nnmath.errors import ModelFileError, ShapeError, SpecError
from nnmath.optimizers import OPTIMIZERS, SGD, Adam, Optimizer, clip_grad_norm, make_optimizer

SHAPES = [(4, 3), (4,), (2, 4), (2,)]  # [W1, b1, W2, b2] of a 3-4-2 MLP
STEPS = 10

# (registry name, arguments): every registry name appears at least once.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.1, "weight_decay": 0.01}),
    ("momentum", {"learning_rate": 0.1}),
    ("momentum", {"learning_rate": 0.1, "momentum": 0.5, "weight_decay": 0.01}),
    ("nesterov", {"learning_rate": 0.1}),
    ("nesterov", {"learning_rate": 0.1, "weight_decay": 0.01}),
    ("rmsprop", {}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-3, "weight_decay": 0.01}),
    ("rmsprop", {"momentum": 0.9, "weight_decay": 0.01}),
    ("adam", {}),
    ("adam", {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.1}),
    ("adamw", {}),
    (
        "adamw",
        {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1},
    ),
]
CASE_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kwargs.items())}" for name, kwargs in CASES]


def torch_optimizer(optimizer: Optimizer, tensors: list[torch.Tensor]) -> torch.optim.Optimizer:
    """The torch.optim optimizer with the same hyperparameters as ``optimizer``."""
    hp = optimizer.hyperparameters()
    common = {"lr": hp["learning_rate"], "weight_decay": hp["weight_decay"], "foreach": False}
    if hp["name"] == "sgd":
        return torch.optim.SGD(tensors, momentum=hp["momentum"], nesterov=hp["nesterov"], **common)
    if hp["name"] == "rmsprop":
        return torch.optim.RMSprop(
            tensors, alpha=hp["alpha"], eps=hp["eps"], momentum=hp["momentum"], **common
        )
    betas = (hp["beta1"], hp["beta2"])
    if hp["name"] == "adam":
        return torch.optim.Adam(tensors, betas=betas, eps=hp["eps"], **common)
    if hp["name"] == "adamw":
        return torch.optim.AdamW(tensors, betas=betas, eps=hp["eps"], **common)
    raise AssertionError(f"no torch oracle for {hp['name']!r}: add one to torch_optimizer")


def random_arrays(rng: np.random.Generator, dtype: type = np.float64) -> list[np.ndarray]:
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def run_nnmath(
    optimizer: Optimizer, params: list[np.ndarray], grad_sequence: list[list[np.ndarray]]
) -> None:
    for grads in grad_sequence:
        optimizer.step(params, grads)


def test_every_registered_optimizer_has_a_torch_case():
    assert {name for name, _ in CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_matches_torch_float64(name: str, kwargs: dict[str, Any]):
    rng = np.random.default_rng(0)
    params = random_arrays(rng)
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = make_optimizer(name, **kwargs)
    reference = torch_optimizer(optimizer, tensors)
    for k in range(STEPS):
        # A schedule may change the learning rate between steps: vary it to check it is read live.
        learning_rate = optimizer.initial_learning_rate * (1.0 - 0.05 * k)
        optimizer.learning_rate = learning_rate
        reference.param_groups[0]["lr"] = learning_rate
        grads = random_arrays(rng)
        kept = [g.copy() for g in grads]
        optimizer.step(params, grads)
        for tensor, g in zip(tensors, grads, strict=True):
            tensor.grad = torch.tensor(g)
        reference.step()
        for g, g_kept in zip(grads, kept, strict=True):
            np.testing.assert_array_equal(g, g_kept)  # the gradients are left alone
    for p, tensor in zip(params, tensors, strict=True):
        np.testing.assert_allclose(p, tensor.detach().numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_stays_float32_and_matches_torch(name: str):
    rng = np.random.default_rng(1)
    params = random_arrays(rng, np.float32)
    tensors = [torch.tensor(p, requires_grad=True) for p in params]
    optimizer = make_optimizer(name, learning_rate=0.01)
    reference = torch_optimizer(optimizer, tensors)
    for _ in range(STEPS):
        grads = random_arrays(rng, np.float32)
        optimizer.step(params, grads)
        for tensor, g in zip(tensors, grads, strict=True):
            tensor.grad = torch.tensor(g)
        reference.step()
    assert all(p.dtype == np.float32 for p in params)
    for key, value in optimizer.state_dict().items():
        if isinstance(value, np.ndarray):
            assert value.dtype == np.float32, key
    for p, tensor in zip(params, tensors, strict=True):
        np.testing.assert_allclose(p, tensor.detach().numpy(), rtol=1e-5, atol=1e-6)


def npz_round_trip(state: dict[str, Any]) -> dict[str, Any]:
    """Write a state dict to an in-memory .npz checkpoint and read it back."""
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    buffer.seek(0)
    with np.load(buffer) as loaded:
        return {key: loaded[key] for key in loaded.files}


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_resume_from_checkpoint_is_bit_identical(name: str, kwargs: dict[str, Any], dtype: type):
    rng = np.random.default_rng(2)
    start = random_arrays(rng, dtype)
    grad_sequence = [random_arrays(rng, dtype) for _ in range(STEPS)]
    uninterrupted = [p.copy() for p in start]
    run_nnmath(make_optimizer(name, **kwargs), uninterrupted, grad_sequence)

    resumed = [p.copy() for p in start]
    first = make_optimizer(name, **kwargs)
    run_nnmath(first, resumed, grad_sequence[:5])
    checkpoint = npz_round_trip(first.state_dict())
    second = make_optimizer(name, **kwargs)
    second.load_state_dict(checkpoint)
    run_nnmath(second, resumed, grad_sequence[5:])

    for p, q in zip(resumed, uninterrupted, strict=True):
        assert p.dtype == dtype
        np.testing.assert_array_equal(p, q)


def test_state_is_lazy_and_keys_are_flat():
    optimizer = Adam()
    assert optimizer.state_dict() == {"t": 0, "learning_rate": 1e-3}
    params = random_arrays(np.random.default_rng(3))
    optimizer.step(params, [np.ones_like(p) for p in params])
    state = optimizer.state_dict()
    assert set(state) == {"t", "learning_rate"} | {f"{s}.{i}" for s in "mv" for i in range(4)}
    assert state["t"] == 1
    assert state["m.0"].shape == SHAPES[0]
    state["m.0"][...] = 7.0  # a copy: changing it leaves the optimizer alone
    assert not np.any(optimizer.state["m"][0] == 7.0)


def test_state_dict_before_first_step_round_trips():
    fresh = SGD(0.1, momentum=0.9)
    fresh.load_state_dict(npz_round_trip(SGD(0.1, momentum=0.9).state_dict()))
    params = [np.zeros(3)]
    fresh.step(params, [np.ones(3)])
    np.testing.assert_array_equal(params[0], -0.1 * np.ones(3))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_hyperparameters_rebuild_the_optimizer(name: str):
    optimizer = make_optimizer(name, learning_rate=0.05)
    optimizer.learning_rate = 0.001  # as a schedule would
    hp = optimizer.hyperparameters()
    assert hp["learning_rate"] == 0.05
    rebuilt = make_optimizer(**hp)
    assert type(rebuilt) is type(optimizer)
    assert rebuilt.hyperparameters() == hp
    assert repr(rebuilt).startswith(f"{type(optimizer).__name__}(learning_rate=0.05")


def test_make_optimizer_presets():
    assert make_optimizer("momentum", learning_rate=0.1).momentum == 0.9
    nesterov = make_optimizer("nesterov", learning_rate=0.1)
    assert nesterov.momentum == 0.9 and nesterov.nesterov


def test_unknown_optimizer_lists_the_names():
    with pytest.raises(SpecError) as error:
        make_optimizer("adamax", learning_rate=0.1)
    for name in OPTIMIZERS:
        assert name in str(error.value)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("sgd", {}),  # learning_rate is required
        ("sgd", {"learning_rate": 0.1, "beta1": 0.9}),
        ("sgd", {"learning_rate": -0.1}),
        ("sgd", {"learning_rate": 0.1, "nesterov": True}),  # needs momentum
        ("rmsprop", {"eps": -1.0}),
        ("adam", {"beta1": 1.0}),
        ("adamw", {"beta2": float("nan")}),
        ("adamw", {"weight_decay": -0.01}),
    ],
)
def test_bad_arguments_raise_spec_error(name: str, kwargs: dict[str, Any]):
    with pytest.raises(SpecError):
        make_optimizer(name, **kwargs)


def test_mismatched_arrays_raise_shape_error():
    optimizer = Adam()
    params = [np.zeros((2, 3)), np.zeros(2)]
    with pytest.raises(ShapeError):
        optimizer.step(params, [np.zeros((2, 3))])
    with pytest.raises(ShapeError):
        optimizer.step(params, [np.zeros((3, 2)), np.zeros(2)])
    optimizer.step(params, [np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(ShapeError):  # the state was made for other parameters
        optimizer.step([np.zeros(5)], [np.zeros(5)])


def test_incomplete_state_raises_model_file_error():
    optimizer = Adam()
    params = [np.zeros(2), np.zeros(3)]
    optimizer.step(params, [np.ones(2), np.ones(3)])
    state = optimizer.state_dict()
    del state["v.1"]
    with pytest.raises(ModelFileError, match="v.1|slot"):
        Adam().load_state_dict(state)
    with pytest.raises(ModelFileError):
        Adam().load_state_dict({"t": 3, "learning_rate": 0.1})
    with pytest.raises(ModelFileError):
        Adam().load_state_dict({**optimizer.state_dict(), "b.0": np.zeros(2)})


@pytest.mark.parametrize("max_norm", [0.5, 1.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm: float):
    rng = np.random.default_rng(4)
    grads = random_arrays(rng)
    tensors = [torch.tensor(g.copy(), requires_grad=True) for g in grads]
    for tensor, g in zip(tensors, grads, strict=True):
        tensor.grad = torch.tensor(g.copy())
    norm = clip_grad_norm(grads, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm, foreach=False)
    assert isinstance(norm, float)
    np.testing.assert_allclose(norm, expected.item(), rtol=1e-14)
    for g, tensor in zip(grads, tensors, strict=True):
        np.testing.assert_allclose(g, tensor.grad.numpy(), rtol=1e-14)


def test_clip_grad_norm_keeps_float32_and_small_gradients():
    grads = [np.full(4, 0.1, dtype=np.float32)]
    norm = clip_grad_norm(grads, 1.0)
    np.testing.assert_allclose(norm, 0.2, rtol=1e-6)
    np.testing.assert_array_equal(grads[0], np.full(4, 0.1, dtype=np.float32))
    grads = [np.full(4, 3.0, dtype=np.float32)]
    clip_grad_norm(grads, 1.0)
    assert grads[0].dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(grads[0]), 1.0, rtol=1e-5)


# ---- the flat update of the fast path ------------------------------------------------------------


def flat_views(vector: np.ndarray) -> list[np.ndarray]:
    """SHAPES as consecutive views of one vector (any layout does: the rules are elementwise)."""
    ends = np.cumsum([int(np.prod(shape)) for shape in SHAPES])
    starts = [0, *ends[:-1]]
    return [vector[a:b].reshape(shape) for a, b, shape in zip(starts, ends, SHAPES, strict=True)]


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_update_is_the_per_array_step_bit_for_bit(name, kwargs, dtype) -> None:
    """The fused step (the rule applied once to the vector of every parameter) gives each entry
    exactly what step(params, grads) gives it, and leaves the same state; resumable both ways."""
    from nnmath.optimizers import FlatUpdate

    rng = np.random.default_rng(3)
    start = random_arrays(rng, dtype)
    grad_sequence = [random_arrays(rng, dtype) for _ in range(STEPS)]
    per_array = [p.copy() for p in start]
    reference = make_optimizer(name, **kwargs)
    run_nnmath(reference, per_array, grad_sequence[:4])

    theta = np.concatenate([p.ravel() for p in start])
    grad = np.empty_like(theta)
    params, grads = flat_views(theta), flat_views(grad)
    fused = make_optimizer(name, **kwargs)
    flat = FlatUpdate(fused, theta, grad, flat_views)
    for step_grads in grad_sequence[:4]:
        for g, value in zip(grads, step_grads, strict=True):
            np.copyto(g, value)
        flat.step()
    for p, q in zip(params, per_array, strict=True):
        np.testing.assert_array_equal(p, q)
    assert fused.t == reference.t == 4
    ours, theirs = fused.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()  # per-parameter keys, as checkpoints store them
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
    # the optimizer's own step still works on the views, and a loaded state joins the vector
    run_nnmath(fused, params, grad_sequence[4:6])
    run_nnmath(reference, per_array, grad_sequence[4:6])
    resumed = make_optimizer(name, **kwargs)
    resumed.load_state_dict(npz_round_trip(fused.state_dict()))
    flat = FlatUpdate(resumed, theta, grad, flat_views)
    for step_grads in grad_sequence[6:]:
        for g, value in zip(grads, step_grads, strict=True):
            np.copyto(g, value)
        flat.step()
    run_nnmath(reference, per_array, grad_sequence[6:])
    for p, q in zip(params, per_array, strict=True):
        np.testing.assert_array_equal(p, q)
