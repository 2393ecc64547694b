"""CUDA target (numbacnn.cuda): Numba @cuda.jit kernels, one module per op family, the same names as numbacnn.cpu.

``numbacnn.conv2d(..., device="cuda")`` and every other public op land here after their arguments are checked
(``numbacnn/_checks.py``): the launchers in ``conv``, ``pool``, ``functional`` and ``optim`` take checked device
arrays and a geometry, exactly like their siblings in ``numbacnn.cpu``. Ops take NumPy arrays (copied to the GPU)
or device arrays (Numba, CuPy, PyTorch CUDA: used in place) and return Numba device arrays; ``to_host(a)`` copies
a result back to a NumPy array, ``to_device(a)`` puts one on the GPU. ``cross_entropy`` returns the loss as a
0-d device array, so a training loop only waits for the GPU when it reads it: ``float(to_host(loss))``.

Modules: ``conv``, ``pool``, ``functional`` (linear, activations, cross-entropy), ``optim`` (the fused SGD
step), ``arrays`` (host/device moves), ``config`` (threads per block, tile size, simple kernels), ``reduce``.
The kernels import ``numba.cuda`` only when first used, so ``import numbacnn.cuda`` works without a GPU and
``require_gpu()`` can explain what to do instead.
"""
from __future__ import annotations

import importlib

from . import config

NO_GPU_MESSAGE = (
    "device='cuda' needs an NVIDIA GPU with a working CUDA driver, and none was found. "
    "Two ways on: use device='cpu' (Numba CPU kernels, same numbers), or run the GPU code in "
    "Numba's CUDA simulator (slow: tiny inputs only) with NUMBA_ENABLE_CUDASIM=1 set before Python "
    "starts, e.g. `NUMBA_ENABLE_CUDASIM=1 python script.py`, or `numbacnn ... --device cudasim`."
)


class NoGPUError(RuntimeError):
    """Raised for device='cuda' when neither a GPU nor the simulator is available."""


_gpu_found = False


def require_gpu():
    """Raise NoGPUError with the two ways on when there is no usable GPU (the simulator counts as one)."""
    global _gpu_found
    if _gpu_found:  # checked once per process: every op call passes through here
        return
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda broken or missing
        raise NoGPUError(f"{NO_GPU_MESSAGE} (numba.cuda failed to import: {exc})") from exc
    if not cuda.is_available():
        raise NoGPUError(NO_GPU_MESSAGE)
    _gpu_found = True


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator stands in for the GPU (NUMBA_ENABLE_CUDASIM=1 before numba loaded)."""
    from numba import config as numba_config

    return bool(numba_config.ENABLE_CUDASIM)


# Public names -> the submodule defining them (loaded on first use). The ops themselves are called through the
# public layer (``numbacnn.conv2d(..., device="cuda")``), which checks their arguments; the launchers in the
# submodules take checked arrays only.
_EXPORTS = {
    "arrays": ("to_host", "to_device", "is_device"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = ["NO_GPU_MESSAGE", "NoGPUError", "require_gpu", "simulator_enabled", "config", *_WHERE]


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
