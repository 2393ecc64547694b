"""numbacnn (the public API): an educational CNN simulator whose Numba kernels compute exactly what PyTorch does.

Arrays are NCHW NumPy arrays (float32 by default; float64 is kept). Every op takes ``device="cpu"`` (Numba @njit
kernels in ``numbacnn.cpu``) or ``device="cuda"`` (Numba @cuda.jit kernels in ``numbacnn.cuda``); the default
follows the arrays. ``kernel=1`` runs the formula kernel, one output element at a time; ``formula_kernels()``
does that for every op inside a ``with`` block. The plain NumPy versions are in ``numbacnn.reference``.
``set_limits(max_array_bytes=...)`` (``numbacnn.limits``) caps the arrays an op or layer may allocate (4 GiB).
"""
from . import _cache  # noqa: F401  (first: where Numba caches compiled kernels, before numba loads)
from importlib.metadata import PackageNotFoundError, version as _version

from ._lazy import lazy_attributes

try:
    __version__ = _version("numbacnn")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.1.0"

# The ops load on first use (module __getattr__), so `import numbacnn` and `numbacnn --help` stay quick:
# importing Numba and compiling/loading kernels happens only when a kernel is needed.
_LAZY = {
    "_checks": ("formula_kernels",),
    "conv": ("corr2d", "conv2d", "conv2d_backward"),
    "limits": ("get_limits", "set_limits"),
    "functional": ("cross_entropy", "cross_entropy_backward", "linear", "linear_backward", "relu", "relu_backward",
                   "sigmoid", "sigmoid_backward", "tanh", "tanh_backward"),
    "parameter": ("Parameter",),
    "pool": ("adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d",
             "adaptive_max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "max_pool2d", "max_pool2d_backward",
             "min_pool2d", "min_pool2d_backward"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}
_SUBMODULES = ("optim", "nn", "models", "train", "data", "trace", "reference", "cpu", "cuda", "scenarios", "viz")


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _WHERE, _SUBMODULES)

__all__ = [
    "__version__", "Parameter", "optim", "formula_kernels", "get_limits", "set_limits",
    "corr2d", "conv2d", "conv2d_backward",
    "max_pool2d", "max_pool2d_backward", "min_pool2d", "min_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "linear", "linear_backward", "relu", "relu_backward", "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "cross_entropy", "cross_entropy_backward",
]
