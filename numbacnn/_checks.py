"""Argument checks and target choice (numbacnn._checks), shared by every public op: errors name argument and value.

The public functions (``numbacnn.conv``, ``pool``, ``functional``, ``optim``) call these once, then hand
checked arrays to the chosen target's implementation (``numbacnn.cpu.<op>`` or ``numbacnn.cuda.<op>``).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import math
import numbers
import warnings

import numpy as np

from .limits import check_array_size

DEVICES = ("cpu", "cuda")


def is_device_array(x) -> bool:
    """True for arrays on a CUDA device: Numba device arrays (the simulator's too, which mark
    themselves with ``__cuda_ndarray__``) and anything with ``__cuda_array_interface__``."""
    if isinstance(x, np.ndarray):
        return False
    return bool(getattr(x, "__cuda_ndarray__", False)) or hasattr(x, "__cuda_array_interface__")


def as_float(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a C-contiguous floating NumPy array (float32/float64 kept; ints, bools and float16 become float32).

    Raises TypeError for complex, object or string data and ValueError for a wrong number of dimensions or
    a conversion larger than ``numbacnn.limits``' size limit; all name ``name``. A 0-d input stays 0-d.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception:
            raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__} that NumPy cannot "
                            f"turn into one (ragged or mixed)") from None
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype in (np.float32, np.float64):
        dt = arr.dtype
    elif kind in "fiub":
        dt = np.dtype(np.float32)
    elif kind == "O" and not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}")
    else:
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    check_ndim(arr, name, ndim)
    return contiguous(arr, dt, name)


def contiguous(arr: np.ndarray, dtype, name: str) -> np.ndarray:
    """``arr`` as a writable C-contiguous array of ``dtype`` (itself when it already is one; 0-d stays 0-d); a
    copy above the size limit (``numbacnn.limits``) is refused first, naming ``name``. Read-only arrays (a
    memory map, np.load's) are copied: Numba would compile every kernel again for a read-only array type."""
    dtype = np.dtype(dtype)
    if arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.writeable:
        return arr
    check_array_size(arr.shape, dtype, f"{name} (shape {tuple(arr.shape)}, dtype {arr.dtype}) as a contiguous "
                                       f"{dtype} copy")
    if not arr.flags.writeable:
        return np.array(arr, dtype=dtype, order="C", copy=True)
    return np.asarray(arr, dtype=dtype, order="C")


def check_ndim(arr, name: str, ndim) -> None:
    """Raise ValueError naming ``name`` unless ``arr`` (NumPy or device array) has ``ndim`` dimensions
    (an int, a tuple of allowed ints, or None for any)."""
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got {arr.ndim} (shape {tuple(arr.shape)})")


def common_dtype(*arrays) -> np.dtype:
    """float64 if any array is float64, else float32."""
    return np.dtype(np.float64) if any(a is not None and a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


MAX_OPTION = 2**31 - 1  # the largest kernel_size, stride, padding or dilation: kernels index with 64-bit ints


def pair(v, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints as a pair, each at least ``minimum`` and at most ``MAX_OPTION``."""
    if _is_int(v):
        out = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(e) for e in v):
        out = (int(v[0]), int(v[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(out) < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {what}, got {v!r}")
    if max(out) > MAX_OPTION:
        raise ValueError(f"{name} must be at most {MAX_OPTION}, got {v!r}")
    return out


def real_number(v, name: str, *, finite: bool = False, minimum=None) -> float:
    """``v`` (a Python or NumPy real number, not a bool) as a float; TypeError for anything else (strings, None,
    complex), ValueError for NaN or inf when ``finite`` and for values below ``minimum``; both name ``name``."""
    if type(v) is not float and (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)):  # a float
        raise TypeError(f"{name} must be a real number, got {v!r} ({type(v).__name__})")  # skips the ABC check
    f = float(v)
    if finite and not math.isfinite(f):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if minimum is not None and f < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {v!r}")
    return f


def check_device(device, name: str = "device") -> str:
    """Normalise ``device``; ``"cudasim"`` means ``"cuda"`` run under Numba's simulator."""
    if device == "cudasim":
        import os

        if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
            raise ValueError(
                f"{name}='cudasim' needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported "
                "(e.g. `NUMBA_ENABLE_CUDASIM=1 python script.py`); the numbacnn CLI does this for you"
            )
        return "cuda"
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cudasim', got {device!r}")
    return device



def resolve_device(device=None, target=None, *arrays, stacklevel=3) -> str:
    """'cpu' or 'cuda' for one op call.

    ``device`` wins; ``None`` follows the arrays (any CUDA device array among them means 'cuda', as a PyTorch
    op runs where its tensors are), else 'cpu'. ``target=`` is the pre-0.2 name of ``device=``: still
    accepted, with a DeprecationWarning (``cross_entropy`` has no such alias: its ``target`` is the labels).
    """
    if target is not None:
        warnings.warn("target= is deprecated since numbacnn 0.2 and will be removed in 0.3: use device= "
                      "(same values: 'cpu', 'cuda', 'cudasim')", DeprecationWarning, stacklevel=stacklevel)
        if device is not None and check_device(device) != check_device(target, "target"):
            raise ValueError(f"device={device!r} and target={target!r} disagree: pass only device=")
        if device is None:
            return check_device(target, "target")
    if device is not None:
        return check_device(device)
    for a in arrays:  # a loop, not any(...): every op call passes here, and a generator costs 0.2 µs
        if type(a) is not np.ndarray and is_device_array(a):
            return "cuda"
    return "cpu"


@functools.lru_cache(maxsize=None)
def implementation(device: str, family: str):
    """The module that runs ``family`` ('conv', 'pool', 'functional', 'optim') on ``device``:
    ``numbacnn.cpu.<family>`` or ``numbacnn.cuda.<family>`` (the latter after checking for a GPU; a missing GPU
    raises, and raising is not remembered). Remembered per pair: every op call passes through here."""
    if device == "cuda":
        cuda_module()
    return importlib.import_module(f"numbacnn.{device}.{family}")


FORMULA_ONLY = contextvars.ContextVar("numbacnn_formula_kernels", default=False)  # True inside formula_kernels()


@contextlib.contextmanager
def formula_kernels():
    """Inside ``with numbacnn.formula_kernels():`` every op runs kernel 1, the formula, one output element at a
    time (on the CPU and on CUDA), unless a call names another ``kernel=``. For stepping through a whole
    network (``numbacnn.nn`` layers, ``train-lenet``) in the code that reads like the book."""
    token = FORMULA_ONLY.set(True)
    try:
        yield
    finally:
        FORMULA_ONLY.reset(token)


def check_kernel(kernel, available, op: str):
    """``kernel`` (None: the fastest that fits the options; or a number from ``available``) as None or an int.

    Under ``formula_kernels()`` a kernel of None means 1."""
    if kernel is None:
        return 1 if FORMULA_ONLY.get() else None
    if not _is_int(kernel) or int(kernel) not in available:
        have = ", ".join(str(k) for k in available)
        raise ValueError(f"kernel must be None (the fastest that fits) or one of {have} for {op}, got {kernel!r}")
    return int(kernel)


def check_flag(v, name: str) -> bool:
    """``v`` as a bool; anything but True/False (NumPy's included) is a TypeError naming ``name``."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def host_float(x, name: str, ndim=None) -> np.ndarray:
    """``as_float`` for an op running on the CPU: a CUDA device array is refused with a clear error."""
    if is_device_array(x):
        raise TypeError(f"{name} is a CUDA device array but the op runs on the CPU: pass device='cuda' "
                        f"(or copy it with numbacnn.cuda.to_host)")
    return as_float(x, name, ndim)


_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # `in` compares by identity first: quick


def ready_dtype(*arrays):
    """The dtype when every array is already what the CPU kernels take as it is: a NumPy float32 or float64 array,
    C-contiguous, writable, all of one dtype; else None (a None among them too). The ops check this first and
    skip the general conversions (``float_arrays``), which cost more than a small op's arithmetic."""
    dt = None
    for a in arrays:
        if type(a) is not np.ndarray:
            return None
        flags = a.flags  # a new object at each a.flags: read once
        if not (flags.c_contiguous and flags.writeable):
            return None
        if dt is None:
            dt = a.dtype
            if dt not in _KERNEL_DTYPES:
                return None
        elif a.dtype != dt:
            return None
    return dt


def float_arrays(device: str, *specs):
    """``(dtype, [arrays])`` for ``(array, name, ndim)`` specs, ready for ``device``'s kernels.

    CPU: contiguous NumPy arrays of one dtype (float64 if any is float64, else float32). CUDA: device arrays
    (``numbacnn.cuda.arrays.device_floats``: host data copied, device data used in place). ``None`` entries
    (an absent bias) stay None; None for any other input is a TypeError naming it. The checks and their messages
    are the same on both targets.
    """
    for a, name, _ in specs:
        if a is None and name != "bias":
            raise TypeError(f"{name} must be an array of real numbers, got None")
    if device == "cuda":
        from .cuda.arrays import device_floats

        return device_floats(*specs)
    checked = [None if a is None else host_float(a, name, ndim) for a, name, ndim in specs]
    dt = common_dtype(*checked)
    return dt, [None if a is None else contiguous(a, dt, spec[1]) for a, spec in zip(checked, specs)]


def float_array(device: str, a, name: str, ndim, dtype):
    """One more input of an op whose dtype is already fixed (a grad_out): converted on the CPU, checked on CUDA."""
    if a is None:
        raise TypeError(f"{name} must be an array of real numbers, got None")
    if device == "cuda":
        from .cuda.arrays import device_float

        return device_float(a, name, ndim, dtype)
    return contiguous(host_float(a, name, ndim), dtype, name)


def cuda_module():
    """The CUDA implementation (``numbacnn.cuda``), or a clear error when there is no GPU."""
    from . import cuda  # imported lazily: pulls in numba.cuda

    cuda.require_gpu()
    return cuda
