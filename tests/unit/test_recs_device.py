"""trainer.device: where ALS fits (CPU here; the GPU branch runs where implicit finds CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from agents.bench.train import device_comparison
from pipeline.errors import ConfigError
from pipeline.recs.als import fit_factors
from pipeline.recs.device import gpu_available, resolve_device
from pipeline.settings import TrainerSettings

NO_GPU = not gpu_available()


def _clustered(users: int = 300, items: int = 60, seed: int = 3) -> sp.csr_matrix:
    """Taste clusters of 20 titles: user u watches 8 titles of cluster u mod (items / 20)."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for u in range(users):
        cluster = u % (items // 20)
        picks = rng.choice(20, size=8, replace=False) + cluster * 20
        rows += [u] * len(picks)
        cols += picks.tolist()
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(users, items))


def test_cpu_is_always_available() -> None:
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU: the no-GPU branches do not apply")
def test_without_a_gpu_auto_fits_on_the_cpu_and_gpu_is_refused_with_the_setting_named() -> None:
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError) as caught:
        resolve_device("gpu")
    assert caught.value.setting == "trainer.device"
    with pytest.raises(ConfigError):
        fit_factors(_clustered(), TrainerSettings(device="gpu", factors=8, iterations=3))


def test_fit_returns_host_float32_factors_of_the_right_shape() -> None:
    matrix = _clustered()
    users, items = fit_factors(matrix, TrainerSettings(device="cpu", factors=8, iterations=3))
    assert users.shape == (300, 8) and items.shape == (60, 8)
    assert users.dtype == np.float32 and items.flags["C_CONTIGUOUS"]


@pytest.mark.skipif(NO_GPU, reason="no GPU: implicit's CUDA build needs a driver, a GPU and rmm-cu13")
def test_gpu_fit_learns_as_much_as_the_cpu_fit() -> None:
    settings = TrainerSettings(factors=16, iterations=10, regularization=1.0)
    result = device_comparison(_clustered(2000, 200), settings)
    assert result["gpu"]["hit_rate_at_10"] >= 0.8 * result["cpu"]["hit_rate_at_10"]
    # a random top 10 of the ~190 unseen titles hits 5%; knowing the cluster (12 unseen) hits ~80%
    assert result["cpu"]["hit_rate_at_10"] > 0.5


def test_device_setting_is_validated() -> None:
    with pytest.raises(ValueError):
        TrainerSettings(device="tpu")  # type: ignore[arg-type]
