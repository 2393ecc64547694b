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

from ._checks import check_flag, check_kernel, float_array, implementation, is_device_array, real_number, \
    resolve_device
from ._host_copy import to_numpy
from .parameter import Parameter


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _usual_param(p):
    """A writable float32/float64 NumPy array: what the CPU kernel updates as it is."""
    return type(p) is np.ndarray and (p.dtype == np.float32 or p.dtype == np.float64) and p.flags.writeable


def _usual_grad(p, g):
    """A C-contiguous writable NumPy array of p's dtype and shape: what the CPU kernel reads as it is."""
    return type(g) is np.ndarray and g.dtype == p.dtype and g.shape == p.shape and g.flags.c_contiguous \
        and g.flags.writeable


def _writable_param(device, i, p):
    """params[i] as the array the kernel updates in place: a writable float32/float64 array on ``device``."""
    if device == "cpu" and _usual_param(p):
        return p  # the usual case, as the checks below would return it
    name = f"params[{i}]"
    if device == "cuda":
        from .cuda.arrays import device_array

        if not is_device_array(p):
            raise TypeError(f"{name} must be a CUDA device array like params[0], got {type(p).__name__}")
        return device_array(p, name)
    if is_device_array(p):
        raise TypeError(f"{name} is a CUDA device array but params[0] is not: pass them all on one device")
    if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
        what = f"dtype {p.dtype}" if isinstance(p, np.ndarray) else type(p).__name__
        raise TypeError(f"{name} must be a floating NumPy array, got {what} (float32 or float64, updated in place)")
    if not p.flags.writeable:
        raise ValueError(f"{name} is read-only: sgd updates the parameters in place")
    return p


def _buffer(device, i, p, b):
    """momentum_buffers[i] checked against params[i] (None: no history yet). A buffer is written in place, so it
    must be a writable array of the parameter's shape and dtype, on its device: PyTorch would refuse another
    dtype too. A NumPy buffer for a CUDA parameter is copied to the device once (and replaces the list entry)."""
    name = f"momentum_buffers[{i}]"
    if b is None:
        return None
    on_device = is_device_array(b)
    if device == "cpu" and on_device:
        raise TypeError(f"{name} is a CUDA device array but params[{i}] is a NumPy array")
    if not on_device and not isinstance(b, np.ndarray):
        raise TypeError(f"{name} must be None or an array like params[{i}], got {type(b).__name__}")
    if np.dtype(b.dtype) != np.dtype(p.dtype):
        raise TypeError(f"{name} has dtype {np.dtype(b.dtype)} but params[{i}] has {np.dtype(p.dtype)}")
    if tuple(b.shape) != tuple(p.shape):
        raise ValueError(f"{name} has shape {tuple(b.shape)} but params[{i}] has shape {tuple(p.shape)}")
    if not on_device and not b.flags.writeable:
        raise ValueError(f"{name} is read-only: sgd updates the momentum buffers in place")
    if not on_device and np.may_share_memory(b, p):
        raise ValueError(f"{name} shares memory with params[{i}]: a buffer must be an array of its own")
    if device == "cuda":
        from .cuda.arrays import to_device

        b = to_device(b)
        if not b.is_c_contiguous():
            raise ValueError(f"{name} must be C-contiguous on the device, got strides {tuple(b.strides)}")
    return b


def _gradient(device, i, p, g):
    """grads[i] converted to params[i]'s dtype on its device (real numbers only: complex is refused)."""
    if device == "cpu" and _usual_grad(p, g):
        return g  # the usual case, as the general checks below would return it (a step's cost is mostly checks)
    name = f"grads[{i}]"
    if device == "cuda":
        from .cuda.arrays import device_float

        g = device_float(g, name, None, np.dtype(p.dtype))
    else:
        g = float_array("cpu", g, name, None, p.dtype)
    if tuple(g.shape) != tuple(p.shape):
        raise ValueError(f"{name} has shape {tuple(g.shape)} but params[{i}] has shape {tuple(p.shape)}")
    return g


def _as_list(v, name):
    if not isinstance(v, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {type(v).__name__}")
    return v


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False, kernel=None, device=None):
    """Update the arrays in ``params`` in place; fill ``momentum_buffers`` (a list, None before the first step).

    Mirrors ``torch.optim._functional.sgd``. Arrays may be NumPy arrays or CUDA device arrays, all of one kind:
    ``device=None`` follows ``params[0]`` (CUDA arrays are updated on the GPU by one fused kernel per parameter).
    Every array is checked before any is written: params writable float arrays, grads real and of each
    parameter's shape, buffers None or of each parameter's shape and dtype.
    ``kernel``: None or 1 (``numbacnn.cpu.optim.sgd_update_kernel1`` / ``numbacnn.cuda.optim.sgd_update_kernel1``).
    """
    params, grads = _as_list(params, "params"), _as_list(grads, "grads")
    if not isinstance(momentum_buffers, list):
        raise TypeError(f"momentum_buffers must be a list (sgd fills it in), got {type(momentum_buffers).__name__}")
    if not (len(params) == len(grads) == len(momentum_buffers)):
        raise ValueError(f"params, grads and momentum_buffers must have the same length, got "
                         f"{len(params)}, {len(grads)} and {len(momentum_buffers)}")
    h = check_hyperparameters(lr, momentum, dampening, weight_decay, nesterov, maximize)
    device = resolve_device(device, None, *params[:1])
    impl = implementation(device, "optim")
    kernel = check_kernel(kernel, impl.KERNELS["sgd"], "sgd")
    if device == "cpu" and _taken_as_they_are(params, grads, momentum_buffers):
        _fit_dtypes(h, params)
        impl.sgd(params, grads, momentum_buffers, **h, kernel=kernel)
        return
    ps = [_writable_param(device, i, p) for i, p in enumerate(params)]
    _fit_dtypes(h, ps)
    gs = [_gradient(device, i, p, g) for i, (p, g) in enumerate(zip(ps, grads))]
    bufs = [_buffer(device, i, p, b) for i, (p, b) in enumerate(zip(ps, momentum_buffers))]
    for i, b in enumerate(bufs):
        if b is not None and momentum_buffers[i] is not b:
            momentum_buffers[i] = b  # a host buffer now lives on the device, where the kernel updates it
    impl.sgd(ps, gs, momentum_buffers, **h, kernel=kernel)


def _taken_as_they_are(params, grads, buffers):
    """True for the usual CPU call, which the checks below would pass unchanged: ``_usual_param`` params,
    ``_usual_grad`` grads and no momentum buffers yet. One loop instead of three calls per parameter (a plain SGD
    step's cost was mostly its checks)."""
    for p, g, b in zip(params, grads, buffers):
        if b is not None or not (_usual_param(p) and _usual_grad(p, g)):
            return False
    return True


def _fit_dtypes(h, params):
    """The kernels compute in each parameter's dtype: a hyperparameter that overflows it (lr=1e300 for float32
    params) would become inf there, so it is refused."""
    names = ("lr", "momentum", "dampening", "weight_decay")
    largest = max(abs(h[name]) for name in names)
    if largest <= _FLOAT32_MAX:  # fits every float dtype a parameter may have
        return
    tops = {}  # the largest float of each dtype met
    for i, p in enumerate(params):
        dt = np.dtype(p.dtype)
        if dt not in tops:
            tops[dt] = float(np.finfo(dt).max)
        top = tops[dt]
        if largest <= top:
            continue
        for name in names:
            if abs(h[name]) > top:
                raise ValueError(f"{name}={h[name]!r} does not fit params[{i}]'s dtype {np.dtype(p.dtype)} "
                                 f"(largest {top:.4g})")


def _loaded_buffer(i, p, b):
    """A momentum buffer from a state dict as a new array of the parameter's shape and dtype, on its device."""
    name = f"state['momentum_buffers'][{i}]"
    try:
        host = to_numpy(b) if is_device_array(b) else np.asarray(b)
    except Exception:
        raise TypeError(f"{name} must be None or an array, got {type(b).__name__}") from None
    if host.dtype.kind != "f":
        raise TypeError(f"{name} must hold floats (the momentum of params[{i}]), got dtype {host.dtype}")
    if tuple(host.shape) != p.shape:
        raise ValueError(f"{name} has shape {tuple(host.shape)} but params[{i}] has shape {p.shape}")
    value = np.array(host, dtype=p.dtype, order="C", copy=True)
    if is_device_array(p.data):
        from .cuda.arrays import to_device

        value = to_device(value)
    return value


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


def check_hyperparameters(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False):
    """The hyperparameters as a dict of floats and bools, checked as torch.optim.SGD does (same words), and also
    refused when not a real number (TypeError) or NaN/inf (ValueError), naming the argument."""
    if lr is None:
        raise ValueError(f"Invalid learning rate: {lr}")
    values = {name: real_number(v, name, finite=True) for name, v in
              (("lr", lr), ("momentum", momentum), ("dampening", dampening), ("weight_decay", weight_decay))}
    flags = {name: check_flag(v, name) for name, v in (("nesterov", nesterov), ("maximize", maximize))}
    if values["lr"] < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if values["momentum"] < 0.0:
        raise ValueError(f"Invalid momentum value: {momentum}")
    if values["weight_decay"] < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if flags["nesterov"] and (values["momentum"] <= 0 or values["dampening"] != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    return {**values, **flags}


class SGD:
    """``torch.optim.SGD`` for numbacnn Parameters: ``step()``, ``zero_grad()``, ``state[p]["momentum_buffer"]``."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False):
        defaults = check_hyperparameters(lr, momentum, dampening, weight_decay, nesterov, maximize)
        if isinstance(params, (Parameter, str, bytes, np.ndarray)) or not hasattr(params, "__iter__"):
            raise TypeError(f"params must be an iterable of numbacnn.Parameter (e.g. model.parameters()), "
                            f"got {type(params).__name__}")
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}] must be a numbacnn.Parameter, got {type(p).__name__}")
        if len(set(map(id, self.params))) != len(self.params):
            raise ValueError("some parameters appear more than once in params")
        self.defaults = defaults
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
        """Take the hyperparameters and momentum buffers of ``state_dict()`` (or a checkpoint): everything is
        checked before anything changes; float buffers are copied in each parameter's dtype and onto its device."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict like SGD.state_dict() returns, got {type(state).__name__}")
        if "momentum_buffers" not in state:
            raise ValueError(f"state has no 'momentum_buffers' entry (keys: {sorted(map(str, state))})")
        bufs = state["momentum_buffers"]
        if not isinstance(bufs, (list, tuple)):
            raise TypeError(f"state['momentum_buffers'] must be a list, got {type(bufs).__name__}")
        if len(bufs) != len(self.params):
            raise ValueError(f"state has {len(bufs)} momentum buffers for {len(self.params)} parameters")
        given = state.get("defaults", {})
        if not isinstance(given, dict):
            raise TypeError(f"state['defaults'] must be a dict, got {type(given).__name__}")
        unknown = sorted(map(str, set(given) - set(self.defaults)))
        if unknown:
            raise ValueError(f"state['defaults'] has unknown hyperparameters {unknown}")
        defaults = check_hyperparameters(**{**self.defaults, **given})
        loaded = [None if b is None else _loaded_buffer(i, p, b) for i, (p, b) in enumerate(zip(self.params, bufs))]
        self.defaults = defaults
        for p, b in zip(self.params, loaded):
            if b is None:
                self.state[p].pop("momentum_buffer", None)
            else:
                self.state[p]["momentum_buffer"] = b

    def __repr__(self):
        opts = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"SGD({len(self.params)} params, {opts})"
