"""Size limits (numbacnn.limits): the largest array an op or a layer may allocate, checked before it allocates.

A typo such as ``padding=30000`` or ``nn.Linear(40000, 40000)`` would otherwise ask NumPy or the GPU for
many gigabytes and fail late (a MemoryError, or a machine that swaps). Every public op estimates the arrays it
will make (outputs, padded copies, inputs converted to float) and every layer its parameters, and refuses one
above the limit with a ValueError naming the argument, the value and the size.

The limit, in bytes per array, comes from one place:
    1. ``numbacnn.set_limits(max_array_bytes=N)``: for the whole process, or only inside
       ``with numbacnn.set_limits(max_array_bytes=N): ...`` (the old value comes back on leaving the block);
    2. else the environment variable ``NUMBACNN_MAX_ARRAY_BYTES`` (read at each check);
    3. else ``DEFAULT_MAX_ARRAY_BYTES`` = 4 GiB.
``numbacnn.get_limits()`` says what is in force. ``max_array_bytes=None`` goes back to 2.-3.
"""
from __future__ import annotations

import math
import numbers
import os

import numpy as np

DEFAULT_MAX_ARRAY_BYTES = 4 * 2**30
ENV = "NUMBACNN_MAX_ARRAY_BYTES"

_set = {"max_array_bytes": None}  # what set_limits chose (None: the environment or the default)


def _check_bytes(v, name):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name} must be a positive int (bytes), got {v!r}")
    return int(v)


try:  # CPython's os.environ keeps the live environment in a dict: reading it directly costs 0.05 µs, not 0.7
    _ENV_DATA, _ENV_KEY, _decode = os.environ._data, os.environ.encodekey(ENV), os.environ.decodevalue
except AttributeError:  # another Python: the public way
    _ENV_DATA = None
_parsed = {}  # NUMBACNN_MAX_ARRAY_BYTES's last text -> its bytes (every op reads the limit)


def _env_text():
    if _ENV_DATA is None:
        return os.environ.get(ENV)
    raw = _ENV_DATA.get(_ENV_KEY)
    return None if raw is None else _decode(raw)


def _from_env() -> int:
    raw = _env_text()
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_ARRAY_BYTES
    if raw not in _parsed:
        try:
            value = _check_bytes(int(raw.strip()), ENV)
        except ValueError:
            raise ValueError(f"{ENV} must be a positive int (bytes), got {raw!r}") from None
        _parsed.clear()
        _parsed[raw] = value
    return _parsed[raw]


def max_array_bytes() -> int:
    """The largest array an op may allocate, in bytes (``get_limits()["max_array_bytes"]``, read faster)."""
    chosen = _set["max_array_bytes"]
    if chosen is not None:
        return chosen
    if _ENV_DATA is not None and _ENV_KEY not in _ENV_DATA:  # no NUMBACNN_MAX_ARRAY_BYTES: one call, not three
        return DEFAULT_MAX_ARRAY_BYTES
    return _from_env()


def get_limits() -> dict:
    """The limits in force: ``{"max_array_bytes": int}``."""
    return {"max_array_bytes": max_array_bytes()}


class set_limits:
    """Set the limits for the process; used in a ``with`` block, they are restored on leaving it.

    ``max_array_bytes``: the largest array (in bytes) an op or layer may allocate; None: back to
    ``NUMBACNN_MAX_ARRAY_BYTES`` or the 4 GiB default.
    """

    def __init__(self, *, max_array_bytes=None):
        new = None if max_array_bytes is None else _check_bytes(max_array_bytes, "max_array_bytes")
        self._previous = dict(_set)
        _set["max_array_bytes"] = new

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set.update(self._previous)
        return False

    def __repr__(self):
        return f"set_limits(max_array_bytes={get_limits()['max_array_bytes']})"


def _human(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _nbytes(shape, dtype) -> int:
    return math.prod(map(int, shape)) * np.dtype(dtype).itemsize  # int: NumPy integers would overflow


def fits(shape, dtype) -> bool:
    """Whether an array of ``shape`` and ``dtype`` is within the limit (``check_array_size`` raises where not)."""
    return _nbytes(shape, dtype) <= max_array_bytes()


def check_array_size(shape, dtype, what: str) -> None:
    """Raise ValueError unless an array of ``shape`` and ``dtype`` fits the limit; ``what`` says which array it
    is and which arguments made it so (e.g. "conv2d's output for padding=30000")."""
    nbytes = _nbytes(shape, dtype)
    limit = max_array_bytes()
    if nbytes > limit:
        raise ValueError(f"{what} would need an array of shape {tuple(int(s) for s in shape)} ({_human(nbytes)}), "
                         f"above the limit of {_human(limit)} per array (raise it with "
                         f"numbacnn.set_limits(max_array_bytes=...) or {ENV})")
