"""Layers with an explicit backward pass, named and initialised as in ``torch.nn``.

A ``Module`` computes ``forward(x) -> y`` with the public functional ops (``numbacnn.conv2d``,
``numbacnn.avg_pool2d``, ...) on its device (``"cpu"`` or ``"cuda"``), keeps what its backward needs
(the input), and ``backward(grad_y) -> grad_x`` adds the parameter gradients into ``p.grad``
(set when None, added otherwise, as PyTorch accumulates). Shapes are NCHW.

``Sequential`` names its children "0", "1", ... so ``state_dict()`` keys match PyTorch's
``nn.Sequential`` ("0.weight", "0.bias", "3.weight", ...), and it reports every layer's input and
output to observers (the tracing layer) when any are attached.
"""
from __future__ import annotations

import math

import numpy as np

from . import conv as _conv
from . import functional as F
from . import pool as _pool
from ._checks import check_target, is_device_array, pair
from .parameter import Parameter

__all__ = ["Module", "Sequential", "Conv2d", "Linear", "MaxPool2d", "MinPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "ReLU", "Sigmoid", "Tanh", "Flatten", "CrossEntropyLoss", "init"]


def _rng(rng):
    """A NumPy Generator from None (fresh entropy), an int seed, or a Generator."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _host(a):
    """A NumPy copy of a host or device array."""
    if is_device_array(a):
        from .cuda import to_host
        return np.asarray(to_host(a))
    return np.array(a, copy=True)


def _fans(shape):
    """(fan_in, fan_out) of a weight of shape (O, I) or (O, I, KH, KW), as torch.nn.init computes them."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _set(param, value):
    """param.data = value, kept on the device the parameter lives on."""
    if is_device_array(param.data):
        from .cuda import to_device
        value = to_device(value)
    param.data = value
    return param


class init:
    """In-place initialisers in the spirit of ``torch.nn.init`` (NumPy random numbers, float32 kept).

    ``rng`` is a ``numpy.random.Generator`` or an int seed; None draws fresh entropy.
    """

    @staticmethod
    def uniform_(param, a=0.0, b=1.0, rng=None):
        """Fill ``param`` with U(a, b)."""
        return _set(param, _rng(rng).uniform(a, b, size=param.shape).astype(param.dtype))

    @staticmethod
    def zeros_(param):
        return _set(param, np.zeros(param.shape, dtype=param.dtype))

    @staticmethod
    def xavier_uniform_(param, gain=1.0, rng=None):
        """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio; the book's ``init_cnn``)."""
        fan_in, fan_out = _fans(param.shape)
        a = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return init.uniform_(param, -a, a, rng)

    @staticmethod
    def kaiming_uniform_(param, a=0.0, rng=None):
        """U(-b, b) with b = sqrt(6 / ((1 + a^2) * fan_in)); PyTorch's layers use a = sqrt(5), i.e. b = 1/sqrt(fan_in)."""
        fan_in, _ = _fans(param.shape)
        bound = math.sqrt(6.0 / ((1 + a * a) * fan_in))
        return init.uniform_(param, -bound, bound, rng)


# ----------------------------------------------------------------------------------------------
# Module


class Module:
    """Base class: ``forward``, ``backward``, parameters by name, state dicts and ``.to(device)``."""

    def __init__(self):
        self.device = "cpu"  # "cpu" or "cuda" (the simulator counts as cuda)
        self.training = True

    # --- subclasses override these
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_y):
        raise NotImplementedError

    def _own_parameters(self):
        """[(name, Parameter)] held by this module itself (not its children)."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Parameter)]

    def children(self):
        """[(name, Module)] directly inside this module."""
        return [(k, v) for k, v in vars(self).items() if isinstance(v, Module)]

    # --- shared machinery
    def __call__(self, x):
        return self.forward(x)

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix=""):
        """Yield (name, Parameter) with PyTorch's dotted names, e.g. ("0.weight", p)."""
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._own_parameters():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def apply(self, fn):
        """Call ``fn(module)`` on every module, children first (as ``torch.nn.Module.apply``)."""
        for _, child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self):
        """{name: NumPy array copy} in PyTorch's key order ("0.weight", "0.bias", ...)."""
        return {name: _host(p.data) for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays (NumPy, or torch tensors via ``np.asarray``) into the parameters, on this module's device.

        Keys and shapes must match exactly; the error names every missing or unexpected key.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise ValueError(f"state_dict keys do not match the model: missing {missing}, unexpected {unexpected}")
        for name, p in params.items():
            value = np.asarray(_host(state[name]) if is_device_array(state[name]) else state[name])
            if tuple(value.shape) != p.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {tuple(value.shape)}, the model expects {p.shape}")
            value = np.array(value, dtype=p.dtype, order="C", copy=True)  # never share the caller's array
            if self.device == "cuda":
                from .cuda import to_device
                value = to_device(value)
            p.data = value
            p.grad = None
        return self

    def to(self, device):
        """Move every parameter to ``"cpu"`` or ``"cuda"`` (``"cudasim"`` under the simulator); compute follows.

        Gradients are dropped (like a fresh ``zero_grad``). Raises ``numbacnn.cuda.NoGPUError`` without a GPU.
        """
        device = check_target(device)
        if device == "cuda":
            from ._checks import cuda_module
            cuda = cuda_module()  # NoGPUError with the two ways on when there is no GPU
            move = cuda.to_device
        else:
            move = _host
        for p in self.parameters():
            if (device == "cuda") != is_device_array(p.data):
                p.data = move(p.data)
            p.grad = None
        for m in self.modules():
            m.device = device
            m._saved = None
        return self

    def extra_repr(self):
        return ""

    def __repr__(self):
        kids = self.children()
        if not kids:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in kids]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"


def _accumulate(p, g):
    """p.grad = g when None, else p.grad + g (PyTorch accumulates gradients until zero_grad)."""
    if p.grad is None:
        p.grad = g
    elif is_device_array(g):  # rare (training calls zero_grad every step): add on the host, copy back
        from . import cuda
        p.grad = cuda.to_device(cuda.to_host(p.grad) + cuda.to_host(g))
    else:
        p.grad += g


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

    def remove_observer(self, obs):
        self._observers.remove(obs)

    def forward(self, x):
        if not self._observers:
            for layer in self.layers:
                x = layer.forward(x)
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
        skip its input gradient (``Conv2d``) does and None is returned (observers then see grad_x None for it);
        any other first child computes it as usual.
        """
        skip_first = not need_grad_x and isinstance(self.layers[0] if self.layers else None, Conv2d)

        def child_backward(i, grad_y):
            layer = self.layers[i]
            return layer.backward(grad_y, need_grad_x=False) if i == 0 and skip_first else layer.backward(grad_y)

        if not self._observers:
            for i in range(len(self.layers) - 1, -1, -1):
                grad_y = child_backward(i, grad_y)
            return grad_y
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            grad_x = child_backward(i, grad_y)
            for obs in list(self._observers):
                obs.on_backward(i, str(i), layer, grad_y, grad_x)
            grad_y = grad_x
        return grad_y


def _saved(module, what="input"):
    x = getattr(module, "_saved", None)
    if x is None:
        raise RuntimeError(f"{type(module).__name__}.backward called before forward (no saved {what})")
    return x


# ----------------------------------------------------------------------------------------------
# Layers with parameters


class Conv2d(Module):
    """x (N, C, H, W) -> (N, O, HO, WO) with weight (O, C/groups, KH, KW) and bias (O,).

    Initialised as PyTorch does: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C/groups*KH*KW.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 *, rng=None, dtype=np.float32):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size")
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.dilation, self.groups = dilation, int(groups)
        rng = _rng(rng)
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, kh, kw), dtype), name="weight")
        self.bias = Parameter(np.zeros(out_channels, dtype), name="bias") if bias else None
        self.reset_parameters(rng)

    def _own_parameters(self):
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def reset_parameters(self, rng=None):
        """PyTorch's default: kaiming_uniform_(a=sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias."""
        rng = _rng(rng)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if self.bias is not None:
            bound = 1 / math.sqrt(_fans(self.weight.shape)[0])
            init.uniform_(self.bias, -bound, bound, rng)

    def _opts(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def forward(self, x):
        self._saved = x
        b = None if self.bias is None else self.bias.data
        return _conv.conv2d(x, self.weight.data, b, **self._opts(), target=self.device)

    def backward(self, grad_y, *, need_grad_x=True):
        """Add the weight and bias gradients into ``.grad``; return grad_x (None if ``need_grad_x=False``)."""
        x = _saved(self)
        b = None if self.bias is None else self.bias.data
        gx, gw, gb = _conv.conv2d_backward(grad_y, x, self.weight.data, b, **self._opts(), need_grad_x=need_grad_x,
                                           target=self.device)
        _accumulate(self.weight, gw)
        if self.bias is not None:
            _accumulate(self.bias, gb)
        return gx

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != 0:
            s += f", padding={self.padding}"
        if self.dilation != 1:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + ("" if self.bias is not None else ", bias=False")


class Linear(Module):
    """x (N, I) -> (N, O) with weight (O, I) and bias (O,); PyTorch's default initialisation."""

    def __init__(self, in_features, out_features, bias=True, *, rng=None, dtype=np.float32):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.zeros((out_features, in_features), dtype), name="weight")
        self.bias = Parameter(np.zeros(out_features, dtype), name="bias") if bias else None
        self.reset_parameters(rng)

    def _own_parameters(self):
        return [("weight", self.weight)] + ([("bias", self.bias)] if self.bias is not None else [])

    def reset_parameters(self, rng=None):
        rng = _rng(rng)
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), rng=rng)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound, rng)

    def forward(self, x):
        self._saved = x
        return F.linear(x, self.weight.data, None if self.bias is None else self.bias.data, target=self.device)

    def backward(self, grad_y):
        x = _saved(self)
        b = None if self.bias is None else self.bias.data
        gx, gw, gb = F.linear_backward(grad_y, x, self.weight.data, b, target=self.device)
        _accumulate(self.weight, gw)
        if self.bias is not None:
            _accumulate(self.bias, gb)
        return gx

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# ----------------------------------------------------------------------------------------------
# Layers without parameters


class _Pool(Module):
    """Shared plumbing: forward(x) = op(x, **opts); backward = op_backward(grad_y, x, **opts).

    Max/min pooling (``keeps_indices``) keep the forward's winners and hand them to the backward
    (``indices=``), as PyTorch does, so the backward does not search the windows again.
    """

    op_name = ""
    keeps_indices = False

    def __init__(self, **opts):
        super().__init__()
        self.opts = opts

    def forward(self, x):
        op = getattr(_pool, self.op_name)
        if self.keeps_indices:
            y, idx = op(x, **self.opts, return_indices=True, target=self.device)
            self._saved = (x, idx)
            return y
        self._saved = x
        return op(x, **self.opts, target=self.device)

    def backward(self, grad_y):
        op_backward = getattr(_pool, self.op_name + "_backward")
        if self.keeps_indices:
            x, idx = _saved(self)
            return op_backward(grad_y, x, **self.opts, indices=idx, target=self.device)
        return op_backward(grad_y, _saved(self), **self.opts, target=self.device)

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.opts.items())


class MaxPool2d(_Pool):
    """Maximum over each window (padding is -inf); stride defaults to kernel_size."""

    op_name = "max_pool2d"
    keeps_indices = True

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                         ceil_mode=ceil_mode)


class MinPool2d(_Pool):
    """Minimum over each window (padding is +inf); not in PyTorch, here for the book's pooling section."""

    op_name = "min_pool2d"
    keeps_indices = True

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
                         ceil_mode=ceil_mode)


class AvgPool2d(_Pool):
    """Mean over each window; stride defaults to kernel_size."""

    op_name = "avg_pool2d"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                         count_include_pad=count_include_pad, divisor_override=divisor_override)


class AdaptiveAvgPool2d(_Pool):
    """Mean over PyTorch's adaptive windows so the output is ``output_size``; 1 is global average pooling."""

    op_name = "adaptive_avg_pool2d"

    def __init__(self, output_size):
        super().__init__(output_size=output_size)


class _Activation(Module):
    """forward(x) = op(x); backward = op_backward(grad_y, x), or, with ``from_output``, from the saved
    output y (sigmoid: grad_y * (1 - y) * y, tanh: grad_y * (1 - y**2)), as PyTorch does: no exp."""

    op = staticmethod(None)
    op_backward = staticmethod(None)
    from_output = False

    def forward(self, x):
        y = self.op(x, target=self.device)
        self._saved = (x, y) if self.from_output else x
        return y

    def backward(self, grad_y):
        if self.from_output:
            x, y = _saved(self)
            return self.op_backward(grad_y, x, y=y, target=self.device)
        return self.op_backward(grad_y, _saved(self), target=self.device)


class ReLU(_Activation):
    """max(x, 0)."""

    op, op_backward = staticmethod(F.relu), staticmethod(F.relu_backward)


class Sigmoid(_Activation):
    """1 / (1 + exp(-x))."""

    op, op_backward = staticmethod(F.sigmoid), staticmethod(F.sigmoid_backward)
    from_output = True


class Tanh(_Activation):
    """tanh(x)."""

    op, op_backward = staticmethod(F.tanh), staticmethod(F.tanh_backward)
    from_output = True


class Flatten(Module):
    """(N, C, H, W) -> (N, C*H*W) (dimensions from ``start_dim`` on are merged, as torch.nn.Flatten)."""

    def __init__(self, start_dim=1):
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x):
        self._saved = tuple(x.shape)
        shape = tuple(x.shape[:self.start_dim]) + (-1,)
        return x.reshape(shape) if is_device_array(x) else np.ascontiguousarray(x).reshape(shape)

    def backward(self, grad_y):
        return grad_y.reshape(_saved(self, "input shape"))

    def extra_repr(self):
        return f"start_dim={self.start_dim}"


class CrossEntropyLoss(Module):
    """Mean cross-entropy of logits (N, K) against integer labels (N,): ``loss = crit(logits, y)``.

    ``backward(grad=1.0)`` returns the gradient of the logits. The loss is a 0-d value on the logits'
    device (a NumPy scalar on the CPU); ``float(loss)`` reads it back.
    """

    def forward(self, logits, target):
        self._saved = (logits, target)
        return F.cross_entropy(logits, target, device="cuda" if is_device_array(logits) else "cpu")

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def backward(self, grad=1.0):
        logits, target = _saved(self, "logits")
        return F.cross_entropy_backward(grad, logits, target, device="cuda" if is_device_array(logits) else "cpu")
