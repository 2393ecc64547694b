"""SGD, the public optimizer (numbacnn.optim): ``sgd``, checked once and run by a target, and the ``SGD`` class.

Exactly as ``torch.optim.SGD`` computes it: a functional core and a thin class. Siblings: ``numbacnn.cpu.optim``
and ``numbacnn.cuda.optim`` (the fused update kernels) and ``numbacnn.reference.optim`` (plain NumPy).

For each parameter p with gradient g (PyTorch's order of operations)::

    g <- -g                       if maximize
    g <- g + weight_decay * p     if weight_decay != 0
    if momentum != 0:
        b <- g                    on the first step (a copy, no dampening)
        b <- momentum * b + (1 - dampening) * g   afterwards
        g <- g + momentum * b     if nesterov, else g <- b
    p <- p - lr * g

Unlike the textbook form (v <- mu v + lr g), the learning rate multiplies the buffer, not the gradient.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_kernel, implementation, is_device_array, resolve_device
from .parameter import Parameter


def _step_arrays(device, i, p, g):
    """(params[i], grads[i]) ready for ``device``'s kernel: the parameter is updated in place, so it must already
    be a float array there; the gradient is converted to the parameter's dtype (host data copied over)."""
    if device == "cuda":
        from .cuda.arrays import device_array, device_float

        if not is_device_array(p):
            raise TypeError(f"params[{i}] must be a CUDA device array like params[0], got {type(p).__name__}")
        p = device_array(p, f"params[{i}]")
        g = device_float(g, f"grads[{i}]", None, np.dtype(p.dtype))
    else:
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise TypeError(f"params[{i}] must be a floating NumPy array, got {type(p).__name__}")
        g = np.ascontiguousarray(g, dtype=p.dtype)
    if tuple(g.shape) != tuple(p.shape):
        raise ValueError(f"grads[{i}] has shape {tuple(g.shape)} but params[{i}] has shape {tuple(p.shape)}")
    return p, g


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False, kernel=None, device=None):
    """Update the arrays in ``params`` in place; fill ``momentum_buffers`` (a list, None before the first step).

    Mirrors ``torch.optim._functional.sgd``. Arrays may be NumPy arrays or CUDA device arrays, all of one kind:
    ``device=None`` follows ``params[0]`` (CUDA arrays are updated on the GPU by one fused kernel per parameter).
    ``kernel``: None or 1 (``numbacnn.cpu.optim.sgd_update_kernel1`` / ``numbacnn.cuda.optim.sgd_update_kernel1``).
    """
    if not (len(params) == len(grads) == len(momentum_buffers)):
        raise ValueError(f"params, grads and momentum_buffers must have the same length, got "
                         f"{len(params)}, {len(grads)} and {len(momentum_buffers)}")
    device = resolve_device(device, None, *params[:1])
    impl = implementation(device, "optim")
    kernel = check_kernel(kernel, impl.KERNELS["sgd"], "sgd")
    checked = [_step_arrays(device, i, p, g) for i, (p, g) in enumerate(zip(params, grads))]
    impl.sgd([p for p, _ in checked], [g for _, g in checked], momentum_buffers, lr=lr, momentum=momentum,
             dampening=dampening, weight_decay=weight_decay, nesterov=nesterov, maximize=maximize, kernel=kernel)


class _HookHandle:
    """What ``register_step_*_hook`` returns: ``remove()`` unsubscribes the hook (twice is harmless)."""

    _next = 0

    def __init__(self, hooks):
        self._hooks, self.id = hooks, _HookHandle._next
        _HookHandle._next += 1

    def remove(self):
        self._hooks.pop(self.id, None)


def _add_hook(hooks, hook):
    if not callable(hook):
        raise TypeError(f"hook must be callable as hook(optimizer, args, kwargs), got {type(hook).__name__}")
    handle = _HookHandle(hooks)
    hooks[handle.id] = hook
    return handle


def check_hyperparameters(lr, momentum, dampening, weight_decay, nesterov):
    """The same checks, in the same words, as torch.optim.SGD."""
    if lr is None or lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if momentum < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")


class SGD:
    """``torch.optim.SGD`` for numbacnn Parameters: ``step()``, ``zero_grad()``, ``state[p]["momentum_buffer"]``."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False):
        check_hyperparameters(lr, momentum, dampening, weight_decay, nesterov)
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a numbacnn.Parameter, got {type(p).__name__}")
        self.defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                             nesterov=nesterov, maximize=maximize)
        self.state = {p: {} for p in self.params}
        self._pre_hooks, self._post_hooks = {}, {}

    def __getattr__(self, name):
        defaults = self.__dict__.get("defaults", {})
        if name in defaults:
            return defaults[name]
        raise AttributeError(name)

    def zero_grad(self):
        """Forget the gradients (PyTorch's default set_to_none=True)."""
        for p in self.params:
            p.grad = None

    def register_step_pre_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` before every ``step()`` (PyTorch's signature); returns a handle
        whose ``remove()`` unsubscribes. Observers (``numbacnn.trace.Tracer``) read parameters and buffers here."""
        return _add_hook(self._pre_hooks, hook)

    def register_step_post_hook(self, hook):
        """Call ``hook(optimizer, args, kwargs)`` after every ``step()``; returns a handle with ``remove()``."""
        return _add_hook(self._post_hooks, hook)

    def step(self):
        """One SGD step over every parameter that has a gradient (the step hooks run before and after)."""
        for hook in list(self._pre_hooks.values()):
            hook(self, (), {})
        self._step()
        for hook in list(self._post_hooks.values()):
            hook(self, (), {})

    def _step(self):
        live = [p for p in self.params if p.grad is not None]
        bufs = [self.state[p].get("momentum_buffer") for p in live]
        sgd([p.data for p in live], [p.grad for p in live], bufs, **self.defaults)
        if self.defaults["momentum"] != 0:
            for p, b in zip(live, bufs):
                self.state[p]["momentum_buffer"] = b

    def state_dict(self):
        """Hyperparameters and momentum buffers (by parameter index), plain arrays and numbers only."""
        return {"defaults": dict(self.defaults),
                "momentum_buffers": [self.state[p].get("momentum_buffer") for p in self.params]}

    def load_state_dict(self, state):
        bufs = state["momentum_buffers"]
        if len(bufs) != len(self.params):
            raise ValueError(f"state has {len(bufs)} momentum buffers for {len(self.params)} parameters")
        self.defaults.update(state.get("defaults", {}))
        for p, b in zip(self.params, bufs):
            if b is None:
                self.state[p].pop("momentum_buffer", None)
            else:
                self.state[p]["momentum_buffer"] = b

    def __repr__(self):
        opts = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"SGD({len(self.params)} params, {opts})"
