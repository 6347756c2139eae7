"""Shared test settings: one fixed Hypothesis profile, so that CI runs are fast and reproducible.

``derandomize=True`` makes Hypothesis draw the same examples on every run (no example database);
``deadline=None`` because the first call of a test pays for imports and torch's warm-up. Set
``HYPOTHESIS_PROFILE=thorough`` for a longer local search.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings
from threadpoolctl import threadpool_limits

settings.register_profile(
    "nnmath",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("nnmath"), max_examples=500, derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "nnmath"))

# The tests multiply small matrices; on a shared 2-core machine a second BLAS or torch thread only
# adds contention (measured: a 200×64 @ 64×100 product went from 0.1 ms to 12 ms). One thread each.
threadpool_limits(1)
torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, passed explicitly (no global seeding)."""
    return np.random.default_rng(20240601)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """A fresh empty folder as the working directory (what a command writes lands there)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
