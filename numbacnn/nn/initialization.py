"""Weight initialisers (numbacnn.nn.init): ``uniform_``, ``zeros_``, ``xavier_uniform_``, ``kaiming_uniform_``.

In the spirit of ``torch.nn.init``, with NumPy random numbers; the parameter's dtype and device are kept.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .._checks import is_device_array, real_number


def make_rng(rng, name="rng"):
    """A NumPy Generator from None (fresh entropy), a non-negative int seed, or a Generator; errors name ``name``."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng) if rng is None else rng
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, numbers.Integral):
        raise TypeError(f"{name} must be None, a non-negative int or a numpy.random.Generator, got {rng!r}")
    if rng < 0:
        raise ValueError(f"{name} must be a non-negative int, got {rng!r}")
    return np.random.default_rng(int(rng))


def fans(shape):
    """(fan_in, fan_out) of a weight of shape (O, I) or (O, I, KH, KW), as torch.nn.init computes them."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def assign_data(param, value):
    """param.data = value (a NumPy array), kept on the device the parameter lives on."""
    if is_device_array(param.data):
        from ..cuda import to_device
        value = to_device(value)
    param.data = value
    return param


class init:
    """In-place initialisers in the spirit of ``torch.nn.init`` (NumPy random numbers, float32 kept).

    ``rng`` is a ``numpy.random.Generator`` or an int seed; None draws fresh entropy.
    """

    @staticmethod
    def uniform_(param, a=0.0, b=1.0, rng=None):
        """Fill ``param`` with U(a, b)."""
        a, b = real_number(a, "a", finite=True), real_number(b, "b", finite=True)
        return assign_data(param, make_rng(rng).uniform(a, b, size=param.shape).astype(param.dtype))

    @staticmethod
    def zeros_(param):
        return assign_data(param, np.zeros(param.shape, dtype=param.dtype))

    @staticmethod
    def xavier_uniform_(param, gain=1.0, rng=None):
        """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio; the book's ``init_cnn``)."""
        fan_in, fan_out = fans(param.shape)
        gain = real_number(gain, "gain", finite=True)
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return init.uniform_(param, -a, a, rng)

    @staticmethod
    def kaiming_uniform_(param, a=0.0, rng=None):
        """U(-b, b) with b = sqrt(6 / ((1 + a^2) * fan_in)); PyTorch's layers use a = sqrt(5),
        i.e. b = 1/sqrt(fan_in)."""
        fan_in, _ = fans(param.shape)
        a = real_number(a, "a", finite=True)
        bound = math.sqrt(6.0 / ((1 + a * a) * fan_in))
        return init.uniform_(param, -bound, bound, rng)
