"""linear, activations and cross-entropy, the public ops (numbacnn.functional): check once, pick device and kernel.

Siblings: ``numbacnn.cpu.functional`` (kernel 1, the formula, and the CPU launchers; faster kernels in
``numbacnn.cpu.linear_tiles`` and ``numbacnn.cpu.fast_exp``), ``numbacnn.cuda.functional`` (the GPU kernels, same
launcher names) and ``numbacnn.reference.functional`` (plain NumPy, book-like).

Each op has ``<name>_backward(grad_out, <inputs>)`` returning the gradients of its array inputs in order.
Shapes: linear x (N, I), weight (O, I), bias (O,) -> (N, O); activations keep any shape;
cross_entropy logits (N, K), target (N,) integer labels -> scalar mean loss.

Every op takes ``kernel=`` (None: the fastest that fits; 1: the formula, one output element at a time; the
numbers are listed in ``KERNELS`` of the target module) and ``device=`` ('cpu', 'cuda' or 'cudasim'; None
follows the arrays: a CUDA device array among them means 'cuda'). ``target=`` is the deprecated old name of
``device=``, except in cross_entropy, whose ``target`` is the labels, as in PyTorch.
"""
from __future__ import annotations

import numpy as np

from ._checks import FORMULA_ONLY, check_kernel, contiguous, float_array, float_arrays, implementation, \
    is_device_array, ready_dtype, real_number, resolve_device
from .limits import check_array_size, fits, max_array_bytes


def _kernels(device, op, kernel):
    """(target module, kernel number or None) for ``op`` on ``device``."""
    impl = implementation(device, "functional")
    return impl, check_kernel(kernel, impl.KERNELS[op], op)


# ----------------------------------------------------------------------------------------------
# linear


def _linear_arrays(device, x, weight, bias):
    """(dtype, x, weight, bias) checked and ready for ``device``'s kernels."""
    dt, (x, weight, bias) = float_arrays(device, (x, "x", 2), (weight, "weight", 2), (bias, "bias", 1))
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but weight expects {weight.shape[1]} "
                         f"(weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return dt, x, weight, bias


def _ready_linear(x, weight, bias, grad_out=None):
    """The dtype when x, weight, bias (and grad_out) go to the CPU kernels as they are, with fitting shapes."""
    dt = ready_dtype(x, weight, *(a for a in (bias, grad_out) if a is not None))
    if dt is None or x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        return None
    if bias is not None and bias.shape != (weight.shape[0],):
        return None
    if grad_out is not None and grad_out.shape != (x.shape[0], weight.shape[0]):
        return None
    return dt if fits((x.shape[0], weight.shape[0]), dt) else None


def linear(x, weight, bias=None, *, kernel=None, device=None, target=None):
    """x (N, I) @ weight (O, I).T + bias (O,) -> (N, O)."""
    device = resolve_device(device, target, x, weight, bias)
    impl, kernel = _kernels(device, "linear", kernel)
    if device == "cpu" and _ready_linear(x, weight, bias) is not None:  # the usual call: nothing to convert
        return impl.linear(x, weight, bias, kernel=kernel)
    dt, x, weight, bias = _linear_arrays(device, x, weight, bias)
    check_array_size((x.shape[0], weight.shape[0]), dt, f"linear's output for x of shape {tuple(x.shape)} and "
                                                        f"weight of shape {tuple(weight.shape)}")
    return impl.linear(x, weight, bias, kernel=kernel)


def linear_backward(grad_out, x, weight, bias=None, *, kernel=None, device=None, target=None):
    """(grad_x (N, I), grad_weight (O, I), grad_bias (O,) or None)."""
    device = resolve_device(device, target, grad_out, x, weight, bias)
    impl, kernel = _kernels(device, "linear_backward", kernel)
    if device == "cpu" and grad_out is not None and _ready_linear(x, weight, bias, grad_out) is not None:
        return impl.linear_backward(grad_out, x, weight, bias, kernel=kernel)
    dt, x, weight, bias = _linear_arrays(device, x, weight, bias)
    gy = float_array(device, grad_out, "grad_out", 2, dt)
    if tuple(gy.shape) != (x.shape[0], weight.shape[0]):
        raise ValueError(f"grad_out must have shape {(x.shape[0], weight.shape[0])}, got {tuple(gy.shape)}")
    return impl.linear_backward(gy, x, weight, bias, kernel=kernel)


# ----------------------------------------------------------------------------------------------
# Activations: elementwise, any shape


def _elementwise(op, x, kernel, device, target):
    """op(x) for relu, sigmoid and tanh: x checked and converted as needed, on its device."""
    ready = ready_dtype(x) is not None and x.nbytes <= max_array_bytes()  # nothing to convert
    if ready and kernel is None and device is None and target is None and not FORMULA_ONLY.get():
        # The common call: a NumPy array the CPU kernels take as it is and no options, so no other check applies.
        # Fewer Python calls before the kernel: they run on cold caches after a large op (benchmarks/README.md).
        return getattr(implementation("cpu", "functional"), op)(x)
    device = resolve_device(device, target, x, stacklevel=4)
    impl, kernel = _kernels(device, op, kernel)
    if device == "cpu" and ready:
        return getattr(impl, op)(x, kernel=kernel)
    dt, (x,) = float_arrays(device, (x, "x", None))
    check_array_size(tuple(x.shape), dt, f"{op}'s output for x of shape {tuple(x.shape)}")
    return getattr(impl, op)(x, kernel=kernel)


def _elementwise_backward(op, device, kernel, grad_out, x, y=None, *, takes_y=True):
    """The backward of an elementwise op from x, or from y (the forward's output) when y is given."""
    impl, kernel = _kernels(device, op, kernel)
    a = x if y is None else y
    if device == "cpu" and (x is None or y is None) and ready_dtype(grad_out, a) is not None \
            and grad_out.shape == a.shape and a.nbytes <= max_array_bytes():  # nothing to convert
        launch = getattr(impl, op)
        return launch(grad_out, a, kernel=kernel) if y is None else launch(grad_out, None, a, kernel=kernel)
    if y is None and x is None:
        raise TypeError(f"{op} needs x or y (the forward's output), got neither" if takes_y else f"{op} needs x")
    if y is not None and x is not None and np.shape(x) != np.shape(y):
        raise ValueError(f"y must have x's shape {np.shape(x)}, got {np.shape(y)}")
    name = "x" if y is None else "y"
    dt, (a,) = float_arrays(device, (x if y is None else y, name, None))
    gy = float_array(device, grad_out, "grad_out", None, dt)
    if tuple(gy.shape) != tuple(a.shape):
        raise ValueError(f"grad_out must have {name}'s shape {tuple(a.shape)}, got {tuple(gy.shape)}")
    check_array_size(tuple(a.shape), dt, f"{op}'s output for {name} of shape {tuple(a.shape)}")
    if y is None:
        return getattr(impl, op)(gy, a, kernel=kernel)
    return getattr(impl, op)(gy, None, a, kernel=kernel)


def relu(x, *, kernel=None, device=None, target=None):
    """max(x, 0), elementwise (NaN stays NaN, as in PyTorch)."""
    return _elementwise("relu", x, kernel, device, target)


def relu_backward(grad_out, x, *, kernel=None, device=None, target=None):
    """0 where x <= 0, else grad_out (PyTorch's choice at x == 0; a NaN x passes grad_out, as in PyTorch)."""
    device = resolve_device(device, target, grad_out, x)
    return _elementwise_backward("relu_backward", device, kernel, grad_out, x, takes_y=False)


def sigmoid(x, *, kernel=None, device=None, target=None):
    """1 / (1 + exp(-x)), elementwise."""
    return _elementwise("sigmoid", x, kernel, device, target)


def sigmoid_backward(grad_out, x=None, *, y=None, kernel=None, device=None, target=None):
    """grad_out * s * (1 - s) with s = sigmoid(x).

    ``y=`` (the forward's output, keyword): grad_out * (1 - y) * y with no exp, as PyTorch's backward does;
    x may then be None (given, its shape must match y's)."""
    device = resolve_device(device, target, grad_out, x, y)
    return _elementwise_backward("sigmoid_backward", device, kernel, grad_out, x, y)


def tanh(x, *, kernel=None, device=None, target=None):
    """tanh(x), elementwise."""
    return _elementwise("tanh", x, kernel, device, target)


def tanh_backward(grad_out, x=None, *, y=None, kernel=None, device=None, target=None):
    """grad_out * (1 - tanh(x)**2).

    ``y=`` (the forward's output, keyword): grad_out * (1 - y * y), as PyTorch's backward; x may then be None."""
    device = resolve_device(device, target, grad_out, x, y)
    return _elementwise_backward("tanh_backward", device, kernel, grad_out, x, y)


# ----------------------------------------------------------------------------------------------
# Cross-entropy: its ``target`` is the labels (as in PyTorch), so only ``device=`` selects the device


def _check_label_array(t, logits_shape, name):
    """Refuse labels (an array, on the host or the device) that are not integers of shape (N,)."""
    if np.dtype(t.dtype).kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {np.dtype(t.dtype)}")
    if t.ndim != 1 or t.shape[0] != logits_shape[0]:
        raise ValueError(f"{name} must have shape ({logits_shape[0]},) to match logits {tuple(logits_shape)}, "
                         f"got {tuple(t.shape)}")


def _label_array(logits_shape, target, name="target"):
    """target as a contiguous int64 array of shape (N,) for logits (N, K); its range is not checked here."""
    if target is None or isinstance(target, (str, bytes, dict)):
        raise TypeError(f"{name} must be an array of integer class labels, got {type(target).__name__}")
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    _check_label_array(t, logits_shape, name)
    return contiguous(t, np.int64, name)


def check_labels(logits_shape, target, name="target"):
    """target as an int64 array of labels in [0, K) matching the batch size of logits (N, K)."""
    labels = _label_array(logits_shape, target, name)
    t = labels
    if t.size and (t.min() < 0 or t.max() >= logits_shape[1]):
        bad = t[(t < 0) | (t >= logits_shape[1])][0]
        raise ValueError(f"{name} has label {bad} out of range [0, {logits_shape[1]})")
    return labels


def _logits(device, logits):
    _, (logits,) = float_arrays(device, (logits, "logits", 2))
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be non-empty, got shape {tuple(logits.shape)}")
    return logits


def _labels(device, logits_shape, target, *, check_range):
    """The labels for ``device``'s kernels. On the GPU, labels already there are checked for dtype and shape only
    (checking their range would mean reading them back): a bad one makes the loss NaN."""
    if device == "cuda":
        from .cuda.arrays import to_device

        if is_device_array(target):
            labels = to_device(target)
            _check_label_array(labels, logits_shape, "target")
            return labels
        return to_device(check_labels(logits_shape, target))
    return check_labels(logits_shape, target) if check_range else _label_array(logits_shape, target)


def _scalar(v, name):
    """A real number, or a 1-element real NumPy array (a loss), as a float; errors name ``name``."""
    if isinstance(v, np.ndarray) and v.dtype.kind in "fiu":
        if v.size != 1:
            raise ValueError(f"{name} must be a number (the loss's gradient), got an array of shape {v.shape}")
        v = v.reshape(()).item()
    return real_number(v, name)


def cross_entropy(logits, target, *, kernel=None, device=None):
    """Mean cross-entropy of logits (N, K) against integer labels target (N,); stable log-sum-exp.

    On the CPU the result is a scalar of the logits' dtype; on CUDA a 0-d device array
    (read it with ``float(numbacnn.cuda.to_host(loss))``)."""
    device = resolve_device(device, None, logits)
    impl, kernel = _kernels(device, "cross_entropy", kernel)
    logits = _logits(device, logits)
    labels = _labels(device, logits.shape, target, check_range=False)  # CPU: the kernels give NaN for a bad label
    loss = impl.cross_entropy(logits, labels, kernel=kernel)
    if device == "cpu" and np.isnan(loss):
        check_labels(logits.shape, target)  # raises the error that names the first bad label, if there is one
    return loss


def cross_entropy_backward(grad_out, logits, target, *, kernel=None, device=None):
    """grad_logits (N, K) = grad_out * (softmax(logits) - onehot(target)) / N.

    ``grad_out`` is a real number (or a 1-element real array, such as the loss itself); on CUDA also a 1-element
    device array (the loss's own gradient, kept on the GPU)."""
    device = resolve_device(device, None, logits)
    impl, kernel = _kernels(device, "cross_entropy_backward", kernel)
    logits = _logits(device, logits)
    labels = _labels(device, logits.shape, target, check_range=True)
    if device == "cuda" and is_device_array(grad_out):
        from .cuda.arrays import device_scalar

        grad = device_scalar(grad_out, "grad_out", logits.dtype)
    else:
        grad = _scalar(grad_out, "grad_out")
        if device == "cuda":
            from .cuda.arrays import device_scalar

            grad = device_scalar(grad, "grad_out", logits.dtype)
    return impl.cross_entropy_backward(grad, logits, labels, kernel=kernel)
