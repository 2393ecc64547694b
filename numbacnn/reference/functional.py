"""linear, activations and cross-entropy in plain NumPy (numbacnn.reference.functional), each backward beside it.

The book-like oracle of the kernels. Siblings: the public ops ``numbacnn.functional``, the CPU kernels
``numbacnn.cpu.functional`` (with ``cpu.linear_tiles`` and ``cpu.fast_exp``) and the GPU kernels
``numbacnn.cuda.functional``.
"""
from __future__ import annotations

import numpy as np


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias; x (N, I), weight (O, I), bias (O,) -> (N, O)."""
    y = x @ weight.T
    return y if bias is None else y + bias


def linear_backward(grad_out, x, weight, bias=None):
    """(grad_x = g @ W, grad_W = g.T @ x, grad_b = sum_n g)."""
    return grad_out @ weight, grad_out.T @ x, None if bias is None else grad_out.sum(0)


def relu(x):
    return np.maximum(x, 0)


def relu_backward(grad_out, x):
    """The gradient passes unless x <= 0 (PyTorch uses 0 at x == 0; a NaN x passes it, as in PyTorch)."""
    return np.where(x <= 0, np.zeros_like(grad_out), grad_out)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def sigmoid_backward(grad_out, x, *, y=None):
    """grad_out * s * (1 - s) with s = sigmoid(x), or s = y, the forward's output (PyTorch's way: no exp)."""
    s = sigmoid(x) if y is None else y
    return grad_out * s * (1 - s)


def tanh(x):
    return np.tanh(x)


def tanh_backward(grad_out, x, *, y=None):
    """grad_out * (1 - t**2) with t = tanh(x), or t = y, the forward's output."""
    t = np.tanh(x) if y is None else y
    return grad_out * (1 - t * t)


def log_softmax(logits):
    """log softmax, stable: subtract the row maximum before exp (log-sum-exp trick)."""
    m = logits.max(axis=1, keepdims=True)
    z = logits - m
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def cross_entropy(logits, target):
    """Mean over the batch of -log softmax(logits)[n, target[n]]; logits (N, K), target (N,) ints."""
    return -log_softmax(logits)[np.arange(len(target)), target].mean()


def cross_entropy_backward(grad_out, logits, target):
    """d loss / d logits = grad_out * (softmax(logits) - onehot(target)) / N."""
    p = np.exp(log_softmax(logits))
    p[np.arange(len(target)), target] -= 1
    g = grad_out * p / len(target)
    if np.isinf(grad_out):  # PyTorch's log_softmax backward gives inf - inf at the label
        g[np.arange(len(target)), target] = np.nan
    return g

