"""Argument checks shared by every op: clear errors that name the argument and its value."""
from __future__ import annotations

import numbers

import numpy as np

TARGETS = ("cpu", "cuda")


def is_device_array(x) -> bool:
    """True for arrays on a CUDA device: Numba device arrays (the simulator's too, which mark
    themselves with ``__cuda_ndarray__``) and anything with ``__cuda_array_interface__``."""
    if isinstance(x, np.ndarray):
        return False
    return bool(getattr(x, "__cuda_ndarray__", False)) or hasattr(x, "__cuda_array_interface__")


def as_float(x, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x`` as a floating NumPy array (float32/float64 kept; ints and bools become float32).

    Raises TypeError for complex, object or string data and ValueError for a wrong
    number of dimensions; both name ``name``.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"{name} must be an array of real numbers, got {type(x).__name__}") from exc
    kind = arr.dtype.kind
    if kind == "f":
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float32)
    elif kind in "iub":
        arr = arr.astype(np.float32)
    else:
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got {arr.ndim} (shape {arr.shape})")
    return np.ascontiguousarray(arr)


def common_dtype(*arrays) -> np.dtype:
    """float64 if any array is float64, else float32."""
    return np.dtype(np.float64) if any(a is not None and a.dtype == np.float64 for a in arrays) else np.dtype(np.float32)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def pair(v, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints as a pair, each at least ``minimum``."""
    if _is_int(v):
        out = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(e) for e in v):
        out = (int(v[0]), int(v[1]))
    else:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(out) < minimum:
        what = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {what}, got {v!r}")
    return out


def check_target(target) -> str:
    """Normalise ``target``; ``"cudasim"`` means ``"cuda"`` run under Numba's simulator."""
    if target == "cudasim":
        import os

        if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
            raise ValueError(
                "target='cudasim' needs NUMBA_ENABLE_CUDASIM=1 set before numba is imported "
                "(e.g. `NUMBA_ENABLE_CUDASIM=1 python script.py`); the numbacnn CLI does this for you"
            )
        return "cuda"
    if target not in TARGETS:
        raise ValueError(f"target must be 'cpu', 'cuda' or 'cudasim', got {target!r}")
    return target


def cuda_module():
    """The CUDA implementation (``numbacnn.cuda``), or a clear error when there is no GPU."""
    from . import cuda  # imported lazily: pulls in numba.cuda

    cuda.require_gpu()
    return cuda
