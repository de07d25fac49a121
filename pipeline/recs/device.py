"""Where ALS fits: the CPU, or a CUDA GPU through ``implicit``'s GPU build.

``implicit``'s Linux wheels carry CUDA kernels; they load only when a CUDA
driver, a GPU and ``rmm`` (the RAPIDS memory manager, ``pip install
rmm-cu13`` for the wheel's CUDA 13) are present. Nothing in privrec needs a
GPU: ``trainer.device = "auto"`` fits on the GPU when ``implicit`` reports
one and on the CPU otherwise; ``"gpu"`` refuses to start without one, so a
deployment that sized its retrain interval for a GPU does not silently fall
back to a fit many times slower. Only the fit moves: the fitted factors are
copied back to host memory, so fold-in, recommendation, explanations,
erasure and artefacts are the same code on either device.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Literal

from pipeline.errors import ConfigError

__all__ = ["Device", "gpu_available", "resolve_device"]

Device = Literal["cpu", "gpu"]


@cache
def gpu_available() -> bool:
    """Whether ``implicit`` loaded its CUDA extension and sees a GPU (checked once per process)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # implicit warns when the extension is built but rmm/CUDA is absent
        try:
            import implicit.gpu
        except ImportError:
            return False
    return bool(implicit.gpu.HAS_CUDA)


def resolve_device(requested: Literal["auto", "cpu", "gpu"]) -> Device:
    """The device a fit runs on for the ``trainer.device`` setting.

    Raises:
        ConfigError: ``"gpu"`` was asked for and ``implicit`` has no usable GPU.
    """
    if requested == "cpu":
        return "cpu"
    if gpu_available():
        return "gpu"
    if requested == "gpu":
        raise ConfigError(
            "trainer.device",
            "gpu asked for but implicit found no usable GPU (needs a CUDA driver, a GPU and rmm-cu13; "
            "use auto or cpu)",
        )
    return "cpu"
