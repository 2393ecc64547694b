"""SGD on the GPU: one fused elementwise kernel per parameter, the same lines as ``numbacnn.optim.sgd_update_cpu``.

Per element (PyTorch's order): maximize -> weight decay -> momentum buffer (the first step copies) -> Nesterov -> update.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from . import config
from .arrays import _check_device, device_float, flat, is_device, to_device


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
        maximize=False):
    """Update the device arrays in ``params`` in place; new momentum buffers are device arrays.

    Gradients may be device arrays of the parameter's dtype or host arrays (copied over).
    """
    if not (len(params) == len(grads) == len(momentum_buffers)):
        raise ValueError(f"params, grads and momentum_buffers must have the same length, got "
                         f"{len(params)}, {len(grads)} and {len(momentum_buffers)}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if not is_device(p):
            raise TypeError(f"params[{i}] must be a CUDA device array like params[0], got {type(p).__name__}")
        p = _check_device(to_device(p), f"params[{i}]", None)
        dt = np.dtype(p.dtype)
        g = device_float(g, f"grads[{i}]", None, dt)
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"grads[{i}] has shape {tuple(g.shape)} but params[{i}] has shape {tuple(p.shape)}")
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
