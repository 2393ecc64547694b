"""CUDA target: Numba @cuda.jit kernels with the same API as the CPU ops."""
from __future__ import annotations

NO_GPU_MESSAGE = (
    "target='cuda' needs an NVIDIA GPU with a working CUDA driver, and none was found. "
    "Two ways on: use target='cpu' (Numba CPU kernels, same numbers), or run the GPU code in "
    "Numba's CUDA simulator (slow: tiny inputs only) with NUMBA_ENABLE_CUDASIM=1 set before Python "
    "starts, e.g. `NUMBA_ENABLE_CUDASIM=1 python script.py`, or `numbacnn ... --target cudasim`."
)


class NoGPUError(RuntimeError):
    """Raised for target='cuda' when neither a GPU nor the simulator is available."""


def require_gpu():
    """Raise NoGPUError with the two ways on when there is no usable GPU (the simulator counts as one)."""
    try:
        from numba import cuda
    except Exception as exc:  # numba-cuda broken or missing
        raise NoGPUError(f"{NO_GPU_MESSAGE} (numba.cuda failed to import: {exc})") from exc
    if not cuda.is_available():
        raise NoGPUError(NO_GPU_MESSAGE)
