"""The layer base class (numbacnn.nn.module): ``Module`` with parameters by name, state dicts and ``.to(device)``.

Also the two helpers every layer's backward uses: ``saved_for_backward`` (what forward kept) and
``accumulate_grad`` (PyTorch's gradient accumulation into ``p.grad``).
"""
from __future__ import annotations

import numpy as np

from .._checks import check_device, is_device_array
from .._host_copy import to_numpy
from ..parameter import Parameter


class Module:
    """Base class: ``forward``, ``backward``, parameters by name, state dicts and ``.to(device)``."""

    can_skip_grad_x = False  # True for layers whose backward takes need_grad_x=False (Conv2d)

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
        return {name: to_numpy(p.data) for name, p in self.named_parameters()}

    def load_state_dict(self, state):
        """Copy arrays (NumPy, or torch tensors via ``np.asarray``) into the parameters, on this module's device.

        Keys and shapes must match exactly; the error names every missing or unexpected key.
        """
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict of arrays like state_dict() returns, got {type(state).__name__}")
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if missing or unexpected:
            raise ValueError(f"state_dict keys do not match the model: missing {missing}, unexpected {unexpected}")
        values = {}
        for name, p in params.items():  # every entry checked before any parameter changes
            try:
                value = np.asarray(to_numpy(state[name]) if is_device_array(state[name]) else state[name])
            except Exception:
                raise TypeError(f"state_dict[{name!r}] must be an array, got {type(state[name]).__name__}") from None
            if value.dtype.kind not in "fiu":
                raise TypeError(f"state_dict[{name!r}] must hold real numbers, got dtype {value.dtype}")
            if tuple(value.shape) != p.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {tuple(value.shape)}, the model expects {p.shape}")
            values[name] = np.array(value, dtype=p.dtype, order="C", copy=True)  # never share the caller's array
        for name, p in params.items():
            value = values[name]
            if self.device == "cuda":
                from ..cuda import to_device
                value = to_device(value)
            p.data = value
            p.grad = None
        return self

    def to(self, device):
        """Move every parameter to ``"cpu"`` or ``"cuda"`` (``"cudasim"`` under the simulator); compute follows.

        Gradients are dropped (like a fresh ``zero_grad``). Raises ``numbacnn.cuda.NoGPUError`` without a GPU.
        """
        device = check_device(device)
        if device == "cuda":
            from .._checks import cuda_module
            cuda = cuda_module()  # NoGPUError with the two ways on when there is no GPU
            move = cuda.to_device
        else:
            move = to_numpy
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


def saved_for_backward(module, what="input"):
    """What ``module.forward`` kept for its backward; RuntimeError when forward has not run."""
    x = getattr(module, "_saved", None)
    if x is None:
        raise RuntimeError(f"{type(module).__name__}.backward called before forward (no saved {what})")
    return x


def accumulate_grad(p, g):
    """p.grad = g when None, else p.grad + g (PyTorch accumulates gradients until zero_grad)."""
    if p.grad is None:
        p.grad = g
    elif is_device_array(g):  # rare (training calls zero_grad every step): add on the host, copy back
        from .. import cuda
        p.grad = cuda.to_device(cuda.to_host(p.grad) + cuda.to_host(g))
    else:
        p.grad += g
