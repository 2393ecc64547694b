"""Copying arrays back to NumPy (numbacnn._host_copy): ``to_numpy`` for host and CUDA device arrays alike.

The layers (``state_dict``, ``.to("cpu")``), the training loop and the tracer read results back with it.
``numbacnn.cuda.to_host`` does the same for device arrays only (it passes NumPy arrays through, uncopied).
"""
from __future__ import annotations

import numpy as np

from ._checks import is_device_array


def to_numpy(a, rows=None) -> np.ndarray:
    """A NumPy copy of ``a`` (a NumPy array, a number, or a CUDA device array); only its first ``rows`` rows
    when given. Never shares memory with ``a``."""
    if rows is not None:
        a = a[:rows]
    if hasattr(a, "copy_to_host"):  # Numba device arrays, the simulator's included
        return np.asarray(a.copy_to_host())
    if is_device_array(a):  # CuPy arrays, PyTorch CUDA tensors, ...
        from .cuda.arrays import to_host

        return to_host(a)
    return np.array(a, copy=True)
