"""Layers that change the shape (numbacnn.nn.layers): ``Conv2d`` and ``Linear`` with parameters, ``Flatten``.

Each forward calls the public op (``numbacnn.conv2d``, ``numbacnn.linear``) on the layer's device and keeps
its input; each backward calls the op's backward and adds the parameter gradients into ``p.grad``.
No ``kernel=`` is passed: the op picks the fastest kernel, or the formula inside ``numbacnn.formula_kernels()``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import conv as _conv
from .. import functional as F
from .._checks import is_device_array, pair
from ..limits import check_array_size
from ..parameter import Parameter
from .initialization import fans, init, make_rng
from .module import Module, accumulate_grad, saved_for_backward


def _check_sizes(**sizes):
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")


def _zeros(shape, dtype, layer, sizes):
    """A zero parameter array, refused first when above the size limit (``numbacnn.limits``) or not float."""
    dtype = np.dtype(dtype) if isinstance(dtype, (type, str, np.dtype)) else dtype
    if not isinstance(dtype, np.dtype) or dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    check_array_size(shape, dtype, f"{layer}'s weight for {sizes}")
    return np.zeros(shape, dtype)


class _WeightAndBias(Module):
    """Shared by Conv2d and Linear: a weight (O, fan_in...) and an optional bias (O,), PyTorch's default
    initialisation, and their gradients added into ``.grad``."""

    def _own_parameters(self):
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def _bias_data(self):
        return None if self.bias is None else self.bias.data

    def reset_parameters(self, rng=None):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias."""
        rng = make_rng(rng)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if self.bias is not None:
            bound = 1 / math.sqrt(fans(self.weight.shape)[0])
            init.uniform_(self.bias, -bound, bound, rng)

    def _accumulate_grads(self, grad_weight, grad_bias):
        accumulate_grad(self.weight, grad_weight)
        if self.bias is not None:
            accumulate_grad(self.bias, grad_bias)


class Conv2d(_WeightAndBias):
    """x (N, C, H, W) -> (N, O, HO, WO) with weight (O, C/groups, KH, KW) and bias (O,).

    Initialised as PyTorch does: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/groups*KH*KW.
    """

    can_skip_grad_x = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 *, rng=None, dtype=np.float32):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size")
        _check_sizes(in_channels=in_channels, out_channels=out_channels, groups=groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.dilation, self.groups = dilation, int(groups)
        rng = make_rng(rng)
        shape = (int(out_channels), int(in_channels) // int(groups), kh, kw)
        self.weight = Parameter(_zeros(shape, dtype, "nn.Conv2d", f"in_channels={in_channels}, out_channels="
                                       f"{out_channels}, kernel_size={kernel_size!r}, groups={groups}"), name="weight")
        self.bias = Parameter(np.zeros(out_channels, dtype), name="bias") if bias else None
        self.reset_parameters(rng)

    def _options(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def forward(self, x):
        self._saved = x
        return _conv.conv2d(x, self.weight.data, self._bias_data(), **self._options(), device=self.device)

    def forward_activation(self, x, activation):
        """relu(self.forward(x)) ("relu") or sigmoid(...) ("sigmoid") with the same bits, the activation inside
        the convolution where it can be (numbacnn.conv.conv2d_activation). ``Sequential`` uses it for a Conv2d
        followed by a ReLU or a Sigmoid when unobserved."""
        self._saved = x
        return _conv.conv2d_activation(x, self.weight.data, self._bias_data(), **self._options(),
                                       activation=activation, device=self.device)

    def backward(self, grad_y, *, need_grad_x=True):
        """Add the weight and bias gradients into ``.grad``; return grad_x (None if ``need_grad_x=False``)."""
        x = saved_for_backward(self)
        grad_x, grad_weight, grad_bias = _conv.conv2d_backward(grad_y, x, self.weight.data, self._bias_data(),
                                                               **self._options(), need_grad_x=need_grad_x,
                                                               device=self.device)
        self._accumulate_grads(grad_weight, grad_bias)
        return grad_x

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != 0:
            s += f", padding={self.padding}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Linear(_WeightAndBias):
    """x (N, I) -> (N, O) with weight (O, I) and bias (O,); PyTorch's default initialisation."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        _check_sizes(in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(_zeros((self.out_features, self.in_features), dtype, "nn.Linear",
                                       f"in_features={in_features}, out_features={out_features}"), name="weight")
        self.bias = Parameter(np.zeros(out_features, dtype), name="bias") if bias else None
        self.reset_parameters(rng)

    def forward(self, x):
        self._saved = x
        return F.linear(x, self.weight.data, self._bias_data(), device=self.device)

    def backward(self, grad_y):
        grad_x, grad_weight, grad_bias = F.linear_backward(grad_y, saved_for_backward(self), self.weight.data,
                                                           self._bias_data(), device=self.device)
        self._accumulate_grads(grad_weight, grad_bias)
        return grad_x

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


def _flat_shape(shape, start_dim):
    """``shape`` with the dimensions from ``start_dim`` on merged into one (0-size dimensions included)."""
    start = start_dim % len(shape)
    return tuple(shape[:start]) + (math.prod(shape[start:]),)


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W) (dimensions from ``start_dim`` on are merged, as torch.nn.Flatten)."""

    def __init__(self, start_dim=1):
        super().__init__()
        if isinstance(start_dim, bool) or not isinstance(start_dim, (int, np.integer)):
            raise TypeError(f"start_dim must be an int, got {start_dim!r}")
        self.start_dim = int(start_dim)

    def forward(self, x):
        if not (isinstance(x, np.ndarray) or is_device_array(x)):
            raise TypeError(f"x must be a NumPy or CUDA device array, got {type(x).__name__}")
        if not -x.ndim <= self.start_dim < x.ndim:
            raise ValueError(f"start_dim={self.start_dim} is out of range for x with {x.ndim} dimensions "
                             f"(shape {tuple(x.shape)})")
        self._saved = tuple(x.shape)
        shape = _flat_shape(self._saved, self.start_dim)
        return x.reshape(shape) if is_device_array(x) else np.ascontiguousarray(x).reshape(shape)

    def backward(self, grad_y):
        shape = saved_for_backward(self, "input shape")
        if not (isinstance(grad_y, np.ndarray) or is_device_array(grad_y)):
            raise TypeError(f"grad_y must be a NumPy or CUDA device array, got {type(grad_y).__name__}")
        expected = _flat_shape(shape, self.start_dim)
        if tuple(grad_y.shape) != expected:
            raise ValueError(f"grad_y must have the output's shape {expected}, got {tuple(grad_y.shape)}")
        return grad_y.reshape(shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}"
