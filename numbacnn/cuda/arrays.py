"""Device arrays (numbacnn.cuda.arrays): moving them to and from the host, checking them as the CPU checks host arrays.

The public ops (``numbacnn.functional`` etc., through ``numbacnn._checks.float_arrays``) use these to hand the
CUDA launchers checked Numba device arrays. Inputs to the CUDA ops may be NumPy arrays (copied to the device) or objects already on the device:
Numba device arrays, or anything with ``__cuda_array_interface__`` (CuPy arrays, PyTorch CUDA tensors),
which are used in place, without a copy. Outputs are Numba device arrays; ``to_host`` reads them back.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .._checks import as_float, check_ndim, common_dtype
from .._checks import is_device_array as is_device  # noqa: F401  (one definition, shared with the CPU side)

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def to_device(a, dtype=None):
    """A Numba device array for ``a``: device objects are wrapped without a copy, host data is copied.

    ``dtype`` converts host data on the way; a device array of another dtype is a TypeError.
    """
    if is_device(a):
        if not getattr(a, "__cuda_ndarray__", False):
            a = cuda.as_cuda_array(a)  # CuPy / PyTorch / ...: a view of the same memory
        if dtype is not None and np.dtype(a.dtype) != np.dtype(dtype):
            raise TypeError(f"device array has dtype {np.dtype(a.dtype)}, expected {np.dtype(dtype)}")
        return a
    return cuda.to_device(np.asarray(a, dtype=dtype, order="C"))


def to_host(a):
    """A NumPy copy of a device array (waits for the GPU); NumPy arrays and numbers pass through.

    The loss of ``cross_entropy`` is a 0-d device array: ``float(to_host(loss))`` reads it.
    """
    if is_device(a):
        return to_device(a).copy_to_host()
    return np.asarray(a)


def _check_device(a, name, ndim):
    dt = np.dtype(a.dtype)
    if dt not in FLOATS:
        raise TypeError(f"{name} must hold float32 or float64 on the device, got dtype {dt}")
    check_ndim(a, name, ndim)
    return a


def device_array(a, name, ndim=None):
    """A device object as a Numba device array (no copy), refused unless it holds float32 or float64 and has
    ``ndim`` dimensions (None: any); errors name ``name``."""
    return _check_device(to_device(a), name, ndim)


def device_floats(*specs):
    """Check ``(array, name, ndim)`` specs and return them as device arrays of one float dtype.

    Host arrays are checked with the CPU side's ``as_float`` (same errors). The dtype is that of the device
    arrays among them (which must agree), else float64 if any host array is float64, else float32 -- the
    CPU rule. ``None`` entries (an absent bias) stay None. Returns ``(dtype, [device arrays])``.
    """
    checked = []
    for a, name, ndim in specs:
        if a is None:
            checked.append(None)
        elif is_device(a):
            checked.append(_check_device(to_device(a), name, ndim))
        else:
            checked.append(as_float(a, name, ndim))
    on_device = [(a, spec[1]) for a, spec in zip(checked, specs) if a is not None and is_device(a)]
    if on_device:
        dt = np.dtype(on_device[0][0].dtype)
        for a, name in on_device[1:]:
            if np.dtype(a.dtype) != dt:
                raise TypeError(f"{name} has dtype {np.dtype(a.dtype)} but {on_device[0][1]} has {dt}: "
                                f"device arrays of one op must share a dtype")
    else:
        dt = common_dtype(*checked)
    return dt, [None if a is None else to_device(a, dt) for a in checked]


def flat(a, name="x"):
    """A 1-D view of a C-contiguous device array (elementwise kernels index it with one number)."""
    if not a.is_c_contiguous():
        raise ValueError(f"{name} must be C-contiguous on the device for this elementwise op, got strides "
                         f"{tuple(a.strides)} for shape {tuple(a.shape)}")
    return a.reshape(a.size)


def device_float(a, name, ndim, dtype):
    """One more input of an op whose dtype is already fixed: host data is converted, device data must match."""
    if is_device(a):
        a = _check_device(to_device(a), name, ndim)
        if np.dtype(a.dtype) != dtype:
            raise TypeError(f"{name} has dtype {np.dtype(a.dtype)} on the device, expected {np.dtype(dtype)}")
        return a
    return to_device(as_float(a, name, ndim), dtype)


def device_scalar(a, name, dtype):
    """A 1-element device array for a number (copied over in ``dtype``) or a 1-element float device array (used in
    place: a loss's gradient kept on the GPU)."""
    if is_device(a):
        a = device_array(a, name)
        if a.size != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(a.shape)}")
        return a.reshape(1)
    return cuda.to_device(np.array([float(a)], dtype=dtype))
