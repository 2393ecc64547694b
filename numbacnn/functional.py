"""Fully connected layer, activations and cross-entropy: Numba CPU kernels and the public API.

Each op has ``<name>_backward(grad_out, <inputs>)`` returning the gradients of its array inputs in order.
Shapes: linear x (N, I), weight (O, I), bias (O,) -> (N, O); activations keep any shape;
cross_entropy logits (N, K), target (N,) integer labels -> scalar mean loss.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._checks import as_float, check_target, common_dtype, cuda_module, is_device_array

# ----------------------------------------------------------------------------------------------
# CPU kernels


@njit(parallel=True, cache=True)
def linear_forward_cpu(x, w, b, y):
    """y[n, o] = b[o] + sum_k x[n, k] * w[o, k]."""
    N, I = x.shape
    O = w.shape[0]
    for n in prange(N):
        for o in range(O):
            acc = 0.0
            for k in range(I):
                acc += x[n, k] * w[o, k]
            y[n, o] = acc + b[o]


@njit(parallel=True, cache=True)
def linear_grad_input_cpu(gy, w, gx):
    """gx[n, k] = sum_o gy[n, o] * w[o, k]."""
    N, O = gy.shape
    I = w.shape[1]
    for n in prange(N):
        for k in range(I):
            gx[n, k] = 0.0
        for o in range(O):
            g = gy[n, o]
            for k in range(I):
                gx[n, k] += g * w[o, k]


@njit(parallel=True, cache=True)
def linear_grad_weight_cpu(gy, x, gw, gb):
    """gw[o, k] = sum_n gy[n, o] * x[n, k];  gb[o] = sum_n gy[n, o]."""
    N, O = gy.shape
    I = x.shape[1]
    for o in prange(O):
        for k in range(I):
            gw[o, k] = 0.0
        acc = 0.0
        for n in range(N):
            g = gy[n, o]
            acc += g
            for k in range(I):
                gw[o, k] += g * x[n, k]
        gb[o] = acc


@njit(cache=True)
def relu_cpu(x, y):
    for i in range(x.size):
        y.flat[i] = x.flat[i] if x.flat[i] > 0 else 0.0


@njit(cache=True)
def relu_backward_cpu(gy, x, gx):
    for i in range(x.size):
        gx.flat[i] = gy.flat[i] if x.flat[i] > 0 else 0.0


@njit(cache=True)
def sigmoid_cpu(x, y):
    for i in range(x.size):
        y.flat[i] = 1.0 / (1.0 + math.exp(-x.flat[i]))


@njit(cache=True)
def sigmoid_backward_cpu(gy, x, gx):
    for i in range(x.size):
        s = 1.0 / (1.0 + math.exp(-x.flat[i]))
        gx.flat[i] = gy.flat[i] * s * (1.0 - s)


@njit(cache=True)
def tanh_cpu(x, y):
    for i in range(x.size):
        y.flat[i] = math.tanh(x.flat[i])


@njit(cache=True)
def tanh_backward_cpu(gy, x, gx):
    for i in range(x.size):
        t = math.tanh(x.flat[i])
        gx.flat[i] = gy.flat[i] * (1.0 - t * t)


@njit(cache=True)
def cross_entropy_cpu(logits, target):
    """mean_n [ logsumexp(logits[n]) - logits[n, target[n]] ], with the row max subtracted first."""
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        m = logits[n, 0]
        for k in range(1, K):
            m = max(m, logits[n, k])
        s = 0.0
        for k in range(K):
            s += math.exp(logits[n, k] - m)
        total += m + math.log(s) - logits[n, target[n]]
    return total / N


@njit(cache=True)
def cross_entropy_backward_cpu(grad, logits, target, gl):
    """gl[n, k] = grad * (softmax(logits[n])[k] - [k == target[n]]) / N."""
    N, K = logits.shape
    for n in range(N):
        m = logits[n, 0]
        for k in range(1, K):
            m = max(m, logits[n, k])
        s = 0.0
        for k in range(K):
            s += math.exp(logits[n, k] - m)
        for k in range(K):
            p = math.exp(logits[n, k] - m) / s
            gl[n, k] = grad * (p - (1.0 if k == target[n] else 0.0)) / N


# ----------------------------------------------------------------------------------------------
# Public API


def _host(x, name, target, ndim=None):
    if is_device_array(x):
        raise TypeError(f"{name} is a CUDA device array: use target='cuda' (or copy it to the host)")
    return as_float(x, name, ndim)


def _check_linear(x, weight, bias):
    x = as_float(x, "x", 2)
    weight = as_float(weight, "weight", 2)
    bias = None if bias is None else as_float(bias, "bias", 1)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but weight expects {weight.shape[1]} (weight shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    dt = common_dtype(x, weight, bias)
    return x.astype(dt, copy=False), weight.astype(dt, copy=False), None if bias is None else bias.astype(dt, copy=False)


def linear(x, weight, bias=None, *, target="cpu"):
    """x (N, I) @ weight (O, I).T + bias (O,) -> (N, O)."""
    if check_target(target) == "cuda":
        return cuda_module().linear(x, weight, bias)
    x, weight, bias = _check_linear(x, weight, bias)
    b = np.zeros(weight.shape[0], x.dtype) if bias is None else bias
    y = np.empty((x.shape[0], weight.shape[0]), x.dtype)
    linear_forward_cpu(x, weight, b, y)
    return y


def linear_backward(grad_out, x, weight, bias=None, *, target="cpu"):
    """(grad_x (N, I), grad_weight (O, I), grad_bias (O,) or None)."""
    if check_target(target) == "cuda":
        return cuda_module().linear_backward(grad_out, x, weight, bias)
    x, weight, bias = _check_linear(x, weight, bias)
    gy = as_float(grad_out, "grad_out", 2).astype(x.dtype, copy=False)
    if gy.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"grad_out must have shape {(x.shape[0], weight.shape[0])}, got {gy.shape}")
    gx = np.empty_like(x)
    linear_grad_input_cpu(gy, weight, gx)
    gw = np.empty_like(weight)
    gb = np.empty(weight.shape[0], x.dtype)
    linear_grad_weight_cpu(gy, x, gw, gb)
    return gx, gw, (None if bias is None else gb)


def _unary(kernel, cuda_name):
    def forward(x, *, target="cpu"):
        if check_target(target) == "cuda":
            return getattr(cuda_module(), cuda_name)(x)
        x = _host(x, "x", target)
        y = np.empty_like(x)
        kernel(x, y)
        return y
    return forward


def _unary_backward(kernel, cuda_name):
    def backward(grad_out, x, *, target="cpu"):
        if check_target(target) == "cuda":
            return getattr(cuda_module(), cuda_name)(grad_out, x)
        x = _host(x, "x", target)
        gy = as_float(grad_out, "grad_out").astype(x.dtype, copy=False)
        if gy.shape != x.shape:
            raise ValueError(f"grad_out must have x's shape {x.shape}, got {gy.shape}")
        gx = np.empty_like(x)
        kernel(gy, x, gx)
        return gx
    return backward


relu = _unary(relu_cpu, "relu")
relu.__doc__ = "max(x, 0), elementwise."
relu_backward = _unary_backward(relu_backward_cpu, "relu_backward")
relu_backward.__doc__ = "grad_out where x > 0, else 0 (PyTorch's choice at x == 0)."
sigmoid = _unary(sigmoid_cpu, "sigmoid")
sigmoid.__doc__ = "1 / (1 + exp(-x)), elementwise."
sigmoid_backward = _unary_backward(sigmoid_backward_cpu, "sigmoid_backward")
sigmoid_backward.__doc__ = "grad_out * s * (1 - s) with s = sigmoid(x)."
tanh = _unary(tanh_cpu, "tanh")
tanh.__doc__ = "tanh(x), elementwise."
tanh_backward = _unary_backward(tanh_backward_cpu, "tanh_backward")
tanh_backward.__doc__ = "grad_out * (1 - tanh(x)**2)."
for _f, _n in ((relu, "relu"), (relu_backward, "relu_backward"), (sigmoid, "sigmoid"),
               (sigmoid_backward, "sigmoid_backward"), (tanh, "tanh"), (tanh_backward, "tanh_backward")):
    _f.__name__ = _f.__qualname__ = _n


def check_labels(logits_shape, target, name="target"):
    """target as an int64 array of labels in [0, K) matching the batch size of logits (N, K)."""
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {t.dtype}")
    if t.ndim != 1 or t.shape[0] != logits_shape[0]:
        raise ValueError(f"{name} must have shape ({logits_shape[0]},) to match logits {tuple(logits_shape)}, "
                         f"got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= logits_shape[1]):
        bad = t[(t < 0) | (t >= logits_shape[1])][0]
        raise ValueError(f"{name} has label {bad} out of range [0, {logits_shape[1]})")
    return np.ascontiguousarray(t, dtype=np.int64)


def _check_ce(logits, target):
    logits = as_float(logits, "logits", 2)
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be non-empty, got shape {logits.shape}")
    return logits, check_labels(logits.shape, target)


def _ce_device(logits, device):
    """cross_entropy's ``target`` is the labels (as in PyTorch), so its device is ``device``:
    None follows the logits (a CUDA array runs on the GPU), else 'cpu' / 'cuda' / 'cudasim'."""
    if device is None:
        return "cuda" if is_device_array(logits) else "cpu"
    return check_target(device)


def cross_entropy(logits, target, *, device=None):
    """Mean cross-entropy of logits (N, K) against integer labels target (N,); stable log-sum-exp."""
    if _ce_device(logits, device) == "cuda":
        return cuda_module().cross_entropy(logits, target)
    logits, t = _check_ce(logits, target)
    return logits.dtype.type(cross_entropy_cpu(logits, t))


def cross_entropy_backward(grad_out, logits, target, *, device=None):
    """grad_logits (N, K) = grad_out * (softmax(logits) - onehot(target)) / N."""
    if _ce_device(logits, device) == "cuda":
        return cuda_module().cross_entropy_backward(grad_out, logits, target)
    logits, t = _check_ce(logits, target)
    gl = np.empty_like(logits)
    cross_entropy_backward_cpu(float(grad_out), logits, t, gl)
    return gl
