"""Parameter (numbacnn.parameter): an array and its gradient, the unit that layers expose and optimizers update."""
from __future__ import annotations

import numpy as np

from ._checks import as_float, is_device_array


class Parameter:
    """Holds ``data`` (a float array, NumPy or CUDA device) and ``grad`` (same shape, or None)."""

    def __init__(self, data, name: str | None = None):
        self.data = data if is_device_array(data) else as_float(data, "data").copy()
        self.grad = None
        self.name = name

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return np.dtype(self.data.dtype)

    def __repr__(self):
        where = "cuda" if is_device_array(self.data) else "cpu"
        label = f"{self.name}, " if self.name else ""
        return f"Parameter({label}shape={self.shape}, dtype={self.dtype}, device={where})"
