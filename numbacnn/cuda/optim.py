"""SGD on the GPU (numbacnn.cuda.optim): kernel 1, one fused elementwise update per parameter, and its launcher.

Siblings: the public ``numbacnn.optim.sgd`` (checks the arguments, calls ``sgd`` here), ``numbacnn.cpu.optim``
(the same lines as ``sgd_update_kernel1`` there) and ``numbacnn.reference.optim`` (plain NumPy).
Per element (PyTorch's order): maximize -> weight decay -> momentum buffer (the first step copies) -> Nesterov -> update.

KERNELS: sgd 1 = sgd_update_kernel1, one thread per element of the flat parameter.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import config
from .arrays import flat, to_device

KERNELS = {"sgd": (1,)}


@cuda.jit
def sgd_update_kernel1(p, g, buf, first, lr, momentum, keep, weight_decay, nesterov, maximize):
    """One thread per element of the flat parameter p; scalars arrive in p's dtype, ``keep`` = 1 - dampening."""
    i = cuda.grid(1)
    if i >= p.size:
        return
    d = -g[i] if maximize else g[i]
    if weight_decay != 0:
        d = d + weight_decay * p[i]
    if momentum != 0:
        if first:
            b = d
        else:
            b = momentum * buf[i] + keep * d
        buf[i] = b
        d = d + momentum * b if nesterov else b
    p[i] = p[i] - lr * d


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False, kernel=None):
    """Update the device arrays in ``params`` in place (grads: device arrays of each parameter's dtype and shape);
    a None in ``momentum_buffers`` becomes a new device array on the first step with momentum."""
    for i, (p, g) in enumerate(zip(params, grads)):
        dt = np.dtype(p.dtype)
        first = momentum_buffers[i] is None
        if momentum != 0 and first:
            momentum_buffers[i] = cuda.device_array(tuple(p.shape), dtype=dt)
        buf = to_device(momentum_buffers[i], dt) if momentum != 0 else p  # p stands in, unused, without momentum
        if p.size == 0:
            continue
        t = dt.type
        sgd_update_kernel1[config.launch_1d(p.size)](flat(p, f"params[{i}]"), flat(g, f"grads[{i}]"),
                                                     flat(buf, f"momentum_buffers[{i}]"), first, t(lr), t(momentum),
                                                     t(1 - dampening), t(weight_decay), bool(nesterov), bool(maximize))
