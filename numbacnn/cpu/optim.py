"""SGD on the CPU (numbacnn.cpu.optim): kernel 1, the fused per-element update, and its launcher.

Siblings: the public ``numbacnn.optim.sgd`` (checks the arguments, calls ``sgd`` here) and the ``SGD`` class,
``numbacnn.reference.optim.sgd`` (plain NumPy, line by line), ``numbacnn.cuda.optim`` (the same update on the GPU).

KERNELS: sgd 1 = sgd_update_kernel1, one pass over each parameter doing every line of the algorithm per element.
"""
from __future__ import annotations

import numpy as np
from numba import njit

KERNELS = {"sgd": (1,)}


@njit(cache=True)
def sgd_update_kernel1(p, g, buf, first, lr, momentum, keep, weight_decay, nesterov, maximize):
    """One fused pass over a parameter, PyTorch's order per element: maximize -> weight decay -> momentum buffer
    (the first step copies) -> Nesterov -> update.

    Scalars arrive in the parameter's dtype so float32 arithmetic matches PyTorch's;
    ``keep`` is 1 - dampening. ``buf`` is ignored when momentum == 0; ``first`` says it holds no history yet.
    """
    for i in range(p.size):
        d = -g.flat[i] if maximize else g.flat[i]
        if weight_decay != 0:
            d = d + weight_decay * p.flat[i]
        if momentum != 0:
            if first:
                b = d
            else:
                b = momentum * buf.flat[i] + keep * d
            buf.flat[i] = b
            d = d + momentum * b if nesterov else b
        p.flat[i] = p.flat[i] - lr * d


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False, kernel=None):
    """Update the NumPy arrays in ``params`` in place (grads: contiguous, of each parameter's dtype and shape);
    a None in ``momentum_buffers`` becomes a new buffer on the first step with momentum."""
    for i, (p, g) in enumerate(zip(params, grads)):
        first = momentum_buffers[i] is None
        if momentum != 0 and first:
            momentum_buffers[i] = np.empty_like(p)
        buf = momentum_buffers[i] if momentum != 0 else p  # p stands in, unused, when there is no momentum
        t = p.dtype.type
        # flat views (contiguous arrays): one compiled kernel per dtype, whatever the parameter's shape
        sgd_update_kernel1(p.reshape(-1), g.reshape(-1), buf.reshape(-1), first, t(lr), t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov),
                           bool(maximize))
