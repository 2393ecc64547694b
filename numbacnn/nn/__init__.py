"""Layers with an explicit backward pass (numbacnn.nn), named and initialised as in ``torch.nn``.

A ``Module`` computes ``forward(x) -> y`` with the public functional ops (``numbacnn.conv2d``,
``numbacnn.avg_pool2d``, ...) on its device (``"cpu"`` or ``"cuda"``), keeps what its backward needs
(the input), and ``backward(grad_y) -> grad_x`` adds the parameter gradients into ``p.grad``
(set when None, added otherwise, as PyTorch accumulates). Shapes are NCHW.

One idea per module:
    module.py          Module (parameters by name, state dicts, ``.to(device)``)
    containers.py      Sequential (PyTorch's "0", "1", ... names; observers of every layer)
    layers.py          Conv2d, Linear, Flatten
    pooling.py         MaxPool2d, MinPool2d, AvgPool2d, AdaptiveAvgPool2d
    activations.py     ReLU, Sigmoid, Tanh
    loss.py            CrossEntropyLoss
    initialization.py  init (``nn.init.xavier_uniform_`` ...)

Layers pass no ``kernel=`` to the ops: ``with numbacnn.formula_kernels():`` runs a whole network on
kernel 1, the formula.
"""
from .activations import ReLU, Sigmoid, Tanh
from .containers import Sequential
from .initialization import init
from .layers import Conv2d, Flatten, Linear
from .loss import CrossEntropyLoss
from .module import Module
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, MinPool2d

__all__ = ["Module", "Sequential", "Conv2d", "Linear", "MaxPool2d", "MinPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "ReLU", "Sigmoid", "Tanh", "Flatten", "CrossEntropyLoss", "init"]
