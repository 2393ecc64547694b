"""CUDA target: Numba @cuda.jit kernels with the same API as the CPU ops.

``numbacnn.conv2d(..., target="cuda")`` and friends land here. Each op takes NumPy arrays (copied to the GPU)
or device arrays (Numba, CuPy, PyTorch CUDA: used in place) and returns Numba device arrays; ``to_host(a)``
copies a result back to a NumPy array, ``to_device(a)`` puts one on the GPU. ``cross_entropy`` returns the loss
as a 0-d device array, so a training loop only waits for the GPU when it reads it: ``float(to_host(loss))``.

Modules: ``conv`` (conv2d), ``functional`` (linear, activations, cross-entropy), ``optim`` (the fused SGD step),
``pool`` (pooling), ``arrays`` (host/device moves), ``config`` (threads per block, tile size, simple kernels).
The kernels import ``numba.cuda`` only when first used, so ``import numbacnn.cuda`` works without a GPU and
``require_gpu()`` can explain what to do instead.
"""
from __future__ import annotations

import importlib

from . import config

NO_GPU_MESSAGE = (
    "target='cuda' needs an NVIDIA GPU with a working CUDA driver, and none was found. "
    "Two ways on: use target='cpu' (Numba CPU kernels, same numbers), or run the GPU code in "
    "Numba's CUDA simulator (slow: tiny inputs only) with NUMBA_ENABLE_CUDASIM=1 set before Python "
    "starts, e.g. `NUMBA_ENABLE_CUDASIM=1 python script.py`, or `numbacnn ... --target cudasim`."
)


class NoGPUError(RuntimeError):
    """Raised for target='cuda' when neither a GPU nor the simulator is available."""


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


# Public names -> the submodule defining them (loaded on first use).
_EXPORTS = {
    "conv": ("conv2d", "conv2d_backward"),
    "functional": ("linear", "linear_backward", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "tanh",
                   "tanh_backward", "cross_entropy", "cross_entropy_backward"),
    "optim": ("sgd",),
    "pool": ("max_pool2d", "max_pool2d_backward", "min_pool2d", "min_pool2d_backward", "avg_pool2d",
             "avg_pool2d_backward", "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
             "adaptive_max_pool2d_backward"),
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
