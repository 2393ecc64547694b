"""numbacnn: an educational CNN simulator whose Numba kernels compute exactly what PyTorch computes.

Arrays are NCHW NumPy arrays (float32 by default; float64 is kept). Every op takes
``target="cpu"`` (Numba @njit kernels) or ``target="cuda"`` (Numba @cuda.jit kernels).
"""
from . import _cache  # noqa: F401  (first: where Numba caches compiled kernels, before numba loads)
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("numbacnn")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.1.0"

from .conv import conv2d, conv2d_backward, corr2d
from .functional import (cross_entropy, cross_entropy_backward, linear, linear_backward, relu, relu_backward,
                         sigmoid, sigmoid_backward, tanh, tanh_backward)
from .parameter import Parameter
from .pool import (adaptive_avg_pool2d, adaptive_avg_pool2d_backward, adaptive_max_pool2d,
                   adaptive_max_pool2d_backward, avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward,
                   min_pool2d, min_pool2d_backward)
from . import optim

__all__ = [
    "__version__", "Parameter", "optim",
    "corr2d", "conv2d", "conv2d_backward",
    "max_pool2d", "max_pool2d_backward", "min_pool2d", "min_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "linear", "linear_backward", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "cross_entropy", "cross_entropy_backward",
]
