"""Plain NumPy fully connected layer, activations and cross-entropy, each with its backward beside it."""
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
    """The gradient passes where x > 0 (PyTorch uses 0 at x == 0)."""
    return grad_out * (x > 0)


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
    return grad_out * p / len(target)


def sgd(params, grads, momentum_buffers, *, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
        maximize=False):
    """torch.optim.SGD's algorithm, line by line, on NumPy arrays (updated in place)."""
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            if momentum_buffers[i] is None:
                momentum_buffers[i] = g.copy()
            else:
                momentum_buffers[i][...] = momentum * momentum_buffers[i] + (1 - dampening) * g
            buf = momentum_buffers[i]
            g = g + momentum * buf if nesterov else buf
        p -= lr * g
