"""Pooling layers (numbacnn.nn.pooling): ``MaxPool2d``, ``MinPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d``.

Each forward calls the public op of ``numbacnn.pool`` on the layer's device; each backward its ``_backward``.
"""
from __future__ import annotations

from .. import functional as F, pool as _pool
from .module import Module, saved_for_backward


class _Pool(Module):
    """Shared plumbing: forward(x) = op(x, **options); backward = op_backward(grad_y, x, **options).

    Max/min pooling (``keeps_indices``) keep the forward's winners and hand them to the backward
    (``indices=``), as PyTorch does, so the backward does not search the windows again.
    """

    op_name = ""
    keeps_indices = False

    def __init__(self, **options):
        super().__init__()
        self.opts = options

    def forward(self, x):
        op = getattr(_pool, self.op_name)
        if self.keeps_indices:
            y, indices = op(x, **self.opts, return_indices=True, device=self.device)
            self._saved = (x, indices, y)
            return y
        self._saved = x
        return op(x, **self.opts, device=self.device)

    def backward(self, grad_y):
        op_backward = getattr(_pool, self.op_name + "_backward")
        if self.keeps_indices:
            x, indices, _ = saved_for_backward(self)
            return op_backward(grad_y, x, **self.opts, indices=indices, device=self.device)
        return op_backward(grad_y, saved_for_backward(self), **self.opts, device=self.device)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.opts.items())


class _ExtremePool(_Pool):
    """Shared by MaxPool2d and MinPool2d: their options, and the winners kept for the backward."""

    keeps_indices = True

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                         ceil_mode=ceil_mode)


class MaxPool2d(_ExtremePool):
    """Maximum over each window (padding is -inf); stride defaults to kernel_size."""

    op_name = "max_pool2d"

    def backward_after_relu(self, grad_y):
        """ReLU.backward(self.backward(grad_y)) for a ReLU whose output this layer pooled, bit for bit, with the
        ReLU's mask taken on the pooled output y (a quarter of the values for 2x2 windows): a window's gradient
        reaches its winner only if the winner's value, y, is above 0 (or NaN), which is exactly when the ReLU's
        input there was. ``Sequential`` uses it when nothing observes the gradient in between."""
        y = saved_for_backward(self)[2]
        return self.backward(F.relu_backward(grad_y, y, device=self.device))


class MinPool2d(_ExtremePool):
    """Minimum over each window (padding is +inf); not in PyTorch, here for the book's pooling section."""

    op_name = "min_pool2d"


class AvgPool2d(_Pool):
    """Mean over each window; stride defaults to kernel_size."""

    op_name = "avg_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad, divisor_override=divisor_override)


    def backward_after_sigmoid(self, grad_y, y):
        """Sigmoid.backward(self.backward(grad_y)) for a Sigmoid whose output y this layer pooled, bit for bit
        (numbacnn.pool.avg_pool2d_backward_after_sigmoid: one pass for 2x2 windows on the CPU). ``Sequential``
        uses it when nothing observes the gradient in between."""
        return _pool.avg_pool2d_backward_after_sigmoid(grad_y, y, **self.opts, device=self.device)


class AdaptiveAvgPool2d(_Pool):
    """Mean over PyTorch's adaptive windows so the output is ``output_size``; 1 is global average pooling."""

    op_name = "adaptive_avg_pool2d"

    def __init__(self, output_size):
        super().__init__(output_size=output_size)
