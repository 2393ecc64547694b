"""SGD on the CPU (numbacnn.cpu.optim): kernel 1, the fused per-element update, and its launcher.

Siblings: the public ``numbacnn.optim.sgd`` (checks the arguments, calls ``sgd`` here) and the ``SGD`` class,
``numbacnn.reference.optim.sgd`` (plain NumPy, line by line), ``numbacnn.cuda.optim`` (the same update on the GPU).

KERNELS: sgd 1 = sgd_update_kernel1, one pass over each parameter doing every line of the algorithm per element;
``sgd_update_many_kernel1`` runs it over a tuple of parameters in one call (PyTorch's "foreach" idea: a LeNet step
updates ten small parameters, and ten calls from Python cost more than their arithmetic).
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


MANY = 32  # at most this many parameters go to one sgd_update_many_kernel1 call (it compiles per tuple length)


@njit(cache=True)
def sgd_update_many_kernel1(ps, gs, bufs, first, lr, momentum, keep, weight_decay, nesterov, maximize):
    """sgd_update_kernel1 for each (ps[j], gs[j], bufs[j]): tuples of flat arrays."""
    for j in range(len(ps)):
        sgd_update_kernel1(ps[j], gs[j], bufs[j], first, lr, momentum, keep, weight_decay, nesterov, maximize)


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False, kernel=None):
    """Update the NumPy arrays in ``params`` in place (grads: of each parameter's dtype and shape); a None in
    ``momentum_buffers`` becomes a new buffer on the first step with momentum."""
    firsts = [b is None for b in momentum_buffers]
    if momentum != 0:
        for i, p in enumerate(params):
            if firsts[i]:
                momentum_buffers[i] = np.empty_like(p)
    # Flat arrays: one compiled kernel per dtype, whatever the parameters' shapes. A parameter or buffer that is
    # not C-contiguous may have no flat view (reshape would copy it): it is updated in a contiguous copy, then
    # written back.
    written_back = []

    def flat(a):
        if a.flags.c_contiguous:
            return a.reshape(-1)
        c = np.ascontiguousarray(a)
        written_back.append((a, c))
        return c.reshape(-1)

    ps = [flat(p) for p in params]
    gs = [(g if g.flags.c_contiguous else np.ascontiguousarray(g)).reshape(-1) for g in grads]  # read only
    bs = [flat(b) for b in momentum_buffers] if momentum != 0 else ps  # the params stand in, unused

    def scalars(dtype):  # in the parameter's dtype, so float32 arithmetic matches PyTorch's
        t = dtype.type
        return t(lr), t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov), bool(maximize)

    if 1 < len(ps) <= MANY and len(set(firsts)) == 1 and len({p.dtype for p in ps}) == 1:  # one call for all
        sgd_update_many_kernel1(tuple(ps), tuple(gs), tuple(bs), firsts[0], *scalars(ps[0].dtype))
    else:
        for p, g, b, first in zip(ps, gs, bs, firsts):
            sgd_update_kernel1(p, g, b, first, *scalars(p.dtype))
    for a, c in written_back:
        a[...] = c
