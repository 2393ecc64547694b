"""Activation layers (numbacnn.nn.activations): ``ReLU``, ``Sigmoid``, ``Tanh``, elementwise ops of
``numbacnn.functional`` run on the layer's device."""
from __future__ import annotations

from .. import functional as F
from .module import Module, saved_for_backward


class _Activation(Module):
    """forward(x) = op(x); backward = op_backward(grad_y, x), or, with ``from_output``, from the saved
    output y (sigmoid: grad_y * (1 - y) * y, tanh: grad_y * (1 - y**2)), as PyTorch does: no exp."""

    op = staticmethod(None)
    op_backward = staticmethod(None)
    from_output = False

    def forward(self, x):
        y = self.op(x, device=self.device)
        self._saved = (x, y) if self.from_output else x
        return y

    def backward(self, grad_y):
        if self.from_output:
            x, y = saved_for_backward(self)
            return self.op_backward(grad_y, x, y=y, device=self.device)
        return self.op_backward(grad_y, saved_for_backward(self), device=self.device)


class ReLU(_Activation):
    """max(x, 0)."""

    op, op_backward = staticmethod(F.relu), staticmethod(F.relu_backward)

    def keep_output(self, y):
        """Take y = relu(x), computed elsewhere (``Conv2d.forward_activation``), as this layer's forward: the backward
        from y has the same bits as from x (y <= 0 exactly where x <= 0, and a NaN stays NaN)."""
        self._saved = y


class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""

    op, op_backward = staticmethod(F.sigmoid), staticmethod(F.sigmoid_backward)
    from_output = True

    def keep_output(self, y):
        """Take y = sigmoid(x), computed elsewhere (``Conv2d.forward_activation``), as this layer's forward: its
        backward needs only y."""
        self._saved = (None, y)

    def output(self):
        """y of the last forward, which the backward works from (``Sequential`` hands it to the pooling after)."""
        return saved_for_backward(self, "output")[1]


class Tanh(_Activation):
    """tanh(x)."""

    op, op_backward = staticmethod(F.tanh), staticmethod(F.tanh_backward)
    from_output = True
