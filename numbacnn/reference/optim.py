"""SGD in plain NumPy (numbacnn.reference.optim): torch.optim.SGD's algorithm line by line, the oracle of the kernels.

Siblings: the public ``numbacnn.optim`` (``sgd`` and the ``SGD`` class), ``numbacnn.cpu.optim`` and
``numbacnn.cuda.optim`` (one fused kernel per parameter doing these lines per element).
"""
from __future__ import annotations


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False):
    """torch.optim.SGD's algorithm, line by line, on NumPy arrays (updated in place)."""
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            if momentum_buffers[i] is None:
                momentum_buffers[i] = g.copy()
            else:
                momentum_buffers[i][...] = momentum * momentum_buffers[i] + (1 - dampening) * g
            buf = momentum_buffers[i]
            g = g + momentum * buf if nesterov else buf
        p -= lr * g
