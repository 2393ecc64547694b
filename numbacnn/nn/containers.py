"""``Sequential`` (numbacnn.nn.containers): children "0", "1", ... in order, with observers of every layer.

It names its children as ``torch.nn.Sequential`` does, so ``state_dict()`` keys match PyTorch's
("0.weight", "0.bias", "3.weight", ...), and reports every layer's input and output to observers
(the tracing layer, ``numbacnn.trace.Tracer``) when any are attached.

When none are, some pairs of layers run in one step, with the same bits and without the full-size array in
between: ``Conv2d`` + ``ReLU`` or ``Sigmoid`` forward (``Conv2d.forward_activation``), and activation +
pooling backward: ``ReLU`` + ``MaxPool2d`` (modern LeNet, ``MaxPool2d.backward_after_relu``) and ``Sigmoid`` +
``AvgPool2d`` (d2l LeNet, ``AvgPool2d.backward_after_sigmoid``). ``NUMBACNN_SPEEDUPS=0`` runs every layer on its
own (numbacnn.speedups).
"""
from __future__ import annotations

from .. import speedups
from .activations import ReLU, Sigmoid
from .layers import Conv2d
from .module import Module
from .pooling import AvgPool2d, MaxPool2d


class Sequential(Module):
    """Children "0", "1", ... run in order; backward runs them in reverse.

    Observers (``add_observer``) get ``on_forward(i, name, layer, x, y)`` after each child's forward
    and ``on_backward(i, name, layer, grad_y, grad_x)`` after each child's backward.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"layers[{i}] must be a numbacnn.nn.Module, got {type(layer).__name__}")
        self.layers = list(layers)
        self._observers = []

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def add_observer(self, obs):
        self._observers.append(obs)
        return obs

    @property
    def observers(self):
        """The observers, in the order they were added (a copy: use add_observer / remove_observer to change it)."""
        return list(self._observers)

    def remove_observer(self, obs):
        self._observers.remove(obs)

    def forward(self, x):
        if not self._observers:
            pairs = speedups.enabled()
            i = 0
            while i < len(self.layers):
                layer = self.layers[i]
                after = type(self.layers[i + 1]) if pairs and i + 1 < len(self.layers) else None
                if type(layer) is Conv2d and after in (ReLU, Sigmoid):  # the activation's forward too
                    x = layer.forward_activation(x, "relu" if after is ReLU else "sigmoid")
                    self.layers[i + 1].keep_output(x)
                    i += 2
                else:
                    x = layer.forward(x)
                    i += 1
            return x
        for i, layer in enumerate(self.layers):
            y = layer.forward(x)
            for obs in list(self._observers):
                obs.on_forward(i, str(i), layer, x, y)
            x = y
        return x

    def backward(self, grad_y, *, need_grad_x=True):
        """Children's backward in reverse; returns the gradient w.r.t. the input.

        ``need_grad_x=False`` (the input needs no gradient, as for a batch of images): a first child that can
        skip its input gradient (``Conv2d``: ``can_skip_grad_x``) does and None is returned (observers then see
        grad_x None for it); any other first child computes it as usual.
        """
        skip_first = not need_grad_x and bool(self.layers) and self.layers[0].can_skip_grad_x

        def child_backward(i, grad_y):
            layer = self.layers[i]
            return layer.backward(grad_y, need_grad_x=False) if i == 0 and skip_first else layer.backward(grad_y)

        if not self._observers:
            pairs = speedups.enabled()
            i = len(self.layers) - 1
            while i >= 0:
                pair = (type(self.layers[i - 1]), type(self.layers[i])) if pairs and i > 0 else None
                if pair == (ReLU, MaxPool2d):
                    grad_y = self.layers[i].backward_after_relu(grad_y)  # the ReLU's backward too
                    i -= 2
                elif pair == (Sigmoid, AvgPool2d):  # the Sigmoid's backward too, from its output
                    grad_y = self.layers[i].backward_after_sigmoid(grad_y, self.layers[i - 1].output())
                    i -= 2
                else:
                    grad_y = child_backward(i, grad_y)
                    i -= 1
            return grad_y
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            grad_x = child_backward(i, grad_y)
            for obs in list(self._observers):
                obs.on_backward(i, str(i), layer, grad_y, grad_x)
            grad_y = grad_x
        return grad_y
