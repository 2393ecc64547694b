"""linear, activations and cross-entropy on the CPU (numbacnn.cpu.functional): kernel 1, the formula, and launchers.

Siblings: the public ops (which check the arguments and call the launchers here) are ``numbacnn.functional``,
the book-like NumPy versions ``numbacnn.reference.functional``, the GPU kernels ``numbacnn.cuda.functional``
(same launcher names and signatures). Faster kernels sit in ``numbacnn.cpu.linear_tiles`` (linear's kernel 2),
``numbacnn.cpu.fast_exp`` (sigmoid's and cross_entropy's kernel 2, with a vectorized exp) and
``numbacnn.cpu.lines`` (relu's kernel 2, on whole cache lines).

KERNELS, what each number runs (``kernel=None``: the highest number, except linear's, which takes 3 for a tile of
examples, 16 float32 / 8 float64, else 2, and relu's, below):

    linear                  1 linear_forward_kernel1          2 linear_forward_kernel2 (4 x 3 register blocks)
                            3 linear_forward_kernel3 (a tile of examples, one per lane, times six features)
    linear_backward         1 linear_grad_input_kernel1 + linear_grad_weight_kernel1
                            2 linear_grad_input_kernel2 + linear_grad_weight_kernel2 (matmul_tiles; small shapes
                              the forward kernel 3)
    relu, relu_backward     1 relu_forward_kernel1 / relu_backward_kernel1 (on one thread below ONE_THREAD_BELOW
                              elements: relu_forward_one_thread_kernel1 / relu_backward_one_thread_kernel1)
                            2 relu_forward_kernel2 / relu_backward_kernel2 (whole cache lines per thread; None
                              takes 2 from ONE_THREAD_BELOW elements, else kernel 1 on one thread)
    sigmoid                 1 sigmoid_forward_kernel1 (libm exp)  2 sigmoid_forward_kernel2 (vectorized exp)
    sigmoid_backward        1 sigmoid_backward_kernel1, or sigmoid_backward_from_y_kernel1 given y=
                            2 sigmoid_backward_kernel2 (vectorized exp; needs x: given y= there is no exp)
    tanh, tanh_backward     1 tanh_forward_kernel1 / tanh_backward_kernel1, or tanh_backward_from_y_kernel1 given y=
    cross_entropy           1 cross_entropy_forward_kernel1 (two passes per row, libm exp)
                            2 cross_entropy_forward_kernel2 (label check fused in, vectorized exp)
    cross_entropy_backward  1 cross_entropy_backward_kernel1

Shapes: linear x (N, I), weight (O, I), bias (O,) -> (N, O); activations keep any shape (flat, contiguous);
cross_entropy logits (N, K), labels (N,) int64 -> a scalar of the logits' dtype, NaN for a label outside [0, K).
The launchers take checked, C-contiguous arrays of one float dtype and check nothing themselves.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .fast_exp import cross_entropy_forward_kernel2, sigmoid_backward_kernel2, sigmoid_forward_kernel2
from .lines import relu_backward_kernel2, relu_forward_kernel2
from .linear_tiles import (linear_forward_kernel2, linear_forward_kernel3, linear_grad_input_kernel2,
                           linear_grad_weight_kernel2)
from .tiles import TILE_BYTES

KERNELS = {
    "linear": (1, 2, 3), "linear_backward": (1, 2),
    "relu": (1, 2), "relu_backward": (1, 2),
    "sigmoid": (1, 2), "sigmoid_backward": (1, 2),
    "tanh": (1,), "tanh_backward": (1,),
    "cross_entropy": (1, 2), "cross_entropy_backward": (1,),
}

# ----------------------------------------------------------------------------------------------
# Kernels 1: the formulas, one output element at a time (sums in float64, acc = 0.0)


@njit(parallel=PARALLEL, cache=True)
def linear_forward_kernel1(x, w, b, y):
    """y[n, o] = b[o] + sum_k x[n, k] * w[o, k]."""
    N, I = x.shape
    O = w.shape[0]
    for n in prange(N):
        for o in range(O):
            acc = 0.0
            for k in range(I):
                acc += x[n, k] * w[o, k]
            y[n, o] = acc + b[o]


@njit(parallel=PARALLEL, cache=True)
def linear_grad_input_kernel1(gy, w, gx):
    """gx[n, k] = sum_o gy[n, o] * w[o, k]."""
    N, O = gy.shape
    I = w.shape[1]
    for n in prange(N):
        for k in range(I):
            acc = 0.0
            for o in range(O):
                acc += gy[n, o] * w[o, k]
            gx[n, k] = acc


@njit(parallel=PARALLEL, cache=True)
def linear_grad_weight_kernel1(gy, x, gw, gb):
    """gw[o, k] = sum_n gy[n, o] * x[n, k];  gb[o] = sum_n gy[n, o]."""
    N, O = gy.shape
    I = x.shape[1]
    for o in prange(O):
        for k in range(I):
            acc = 0.0
            for n in range(N):
                acc += gy[n, o] * x[n, k]
            gw[o, k] = acc
        acc = 0.0
        for n in range(N):
            acc += gy[n, o]
        gb[o] = acc


@njit(parallel=PARALLEL, cache=True)
def relu_forward_kernel1(x, y):
    """y = 0 where x < 0, else x (so NaN stays NaN, as in PyTorch); flat views of the contiguous arrays, split
    across the threads."""
    xf, yf = x.reshape(-1), y.reshape(-1)
    zero = yf.dtype.type(0)
    for i in prange(xf.size):
        yf[i] = zero if xf[i] < 0 else xf[i]


@njit(parallel=PARALLEL, cache=True)
def relu_backward_kernel1(gy, x, gx):
    """gx = 0 where x <= 0, else gy (PyTorch's choice at x == 0; a NaN x passes the gradient, as in PyTorch)."""
    gyf, xf, gxf = gy.reshape(-1), x.reshape(-1), gx.reshape(-1)
    zero = gxf.dtype.type(0)
    for i in prange(xf.size):
        gxf[i] = zero if xf[i] <= 0 else gyf[i]


# Below this many elements relu runs on one thread: a launch on the pool costs 1.5-3 µs, more than the second
# core saves (measured on 2 cores: 30720 float32, 2.4 µs on one thread, 2.7-4.3 µs on two; PyTorch's grain is
# 32768 too).
ONE_THREAD_BELOW = 32768


@njit(cache=True)
def relu_forward_one_thread_kernel1(x, y):
    """relu_forward_kernel1 on one thread, for arrays below ONE_THREAD_BELOW elements (x, y flat)."""
    zero = y.dtype.type(0)
    for i in range(x.size):
        y[i] = zero if x[i] < 0 else x[i]


@njit(cache=True)
def relu_backward_one_thread_kernel1(gy, x, gx):
    """relu_backward_kernel1 on one thread, for arrays below ONE_THREAD_BELOW elements (all flat)."""
    zero = gx.dtype.type(0)
    for i in range(x.size):
        gx[i] = zero if x[i] <= 0 else gy[i]


@njit(cache=True)
def sigmoid_forward_kernel1(x, y):
    """y = 1 / (1 + exp(-x)), libm's exp."""
    for i in range(x.size):
        y.flat[i] = 1.0 / (1.0 + math.exp(-x.flat[i]))


@njit(cache=True)
def sigmoid_backward_kernel1(gy, x, gx):
    """gx = gy * s * (1 - s) with s = sigmoid(x)."""
    for i in range(x.size):
        s = 1.0 / (1.0 + math.exp(-x.flat[i]))
        gx.flat[i] = gy.flat[i] * s * (1.0 - s)


@njit(parallel=PARALLEL, cache=True)
def sigmoid_backward_from_y_kernel1(gy, y, gx):
    """gx = gy * (1 - y) * y from the forward's output y = sigmoid(x): no exp (PyTorch's formula and order)."""
    gyf, yf, gxf = gy.reshape(-1), y.reshape(-1), gx.reshape(-1)
    one = yf.dtype.type(1)
    for i in prange(yf.size):
        gxf[i] = gyf[i] * (one - yf[i]) * yf[i]


@njit(cache=True)
def tanh_forward_kernel1(x, y):
    """y = tanh(x), libm's tanh."""
    for i in range(x.size):
        y.flat[i] = math.tanh(x.flat[i])


@njit(cache=True)
def tanh_backward_kernel1(gy, x, gx):
    """gx = gy * (1 - tanh(x)**2)."""
    for i in range(x.size):
        t = math.tanh(x.flat[i])
        gx.flat[i] = gy.flat[i] * (1.0 - t * t)


@njit(parallel=PARALLEL, cache=True)
def tanh_backward_from_y_kernel1(gy, y, gx):
    """gx = gy * (1 - y * y) from the forward's output y = tanh(x) (PyTorch's formula)."""
    gyf, yf, gxf = gy.reshape(-1), y.reshape(-1), gx.reshape(-1)
    one = yf.dtype.type(1)
    for i in prange(yf.size):
        gxf[i] = gyf[i] * (one - yf[i] * yf[i])


@njit(inline="always")
def _row_max_and_sum(logits, n):
    """(m, s) with m = max_k logits[n, k] and s = sum_k exp(logits[n, k] - m): the stable log-sum-exp pieces."""
    K = logits.shape[1]
    m = logits[n, 0]
    for k in range(1, K):
        m = max(m, logits[n, k])
    s = 0.0
    for k in range(K):
        s += math.exp(logits[n, k] - m)
    return m, s


@njit(cache=True)
def cross_entropy_forward_kernel1(logits, target):
    """mean_n [ logsumexp(logits[n]) - logits[n, target[n]] ], with the row max subtracted first; NaN for a
    label outside [0, K)."""
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        if target[n] < 0 or target[n] >= K:
            return np.nan
        m, s = _row_max_and_sum(logits, n)
        total += m + math.log(s) - logits[n, target[n]]
    return total / N


@njit(cache=True)
def cross_entropy_backward_kernel1(grad, logits, target, gl):
    """gl[n, k] = grad * (softmax(logits[n])[k] - [k == target[n]]) / N; NaN at the label for an infinite grad
    (PyTorch's log_softmax backward gives inf - inf there)."""
    N, K = logits.shape
    for n in range(N):
        m, s = _row_max_and_sum(logits, n)
        for k in range(K):
            p = math.exp(logits[n, k] - m) / s
            if k == target[n] and math.isinf(grad):
                gl[n, k] = np.nan
            else:
                gl[n, k] = grad * (p - (1.0 if k == target[n] else 0.0)) / N


# ----------------------------------------------------------------------------------------------
# Launchers: allocate the outputs, pick the kernel (None: the fastest), run it


def linear(x, weight, bias, *, kernel=None):
    """y (N, O) = x (N, I) @ weight (O, I).T + bias (O,) (None: no bias)."""
    b = np.zeros(weight.shape[0], x.dtype) if bias is None else bias
    y = np.empty((x.shape[0], weight.shape[0]), x.dtype)
    if kernel is None:  # a tile of examples: kernel 3
        kernel = 3 if x.shape[0] >= TILE_BYTES // x.itemsize else 2
    forward = {1: linear_forward_kernel1, 2: linear_forward_kernel2, 3: linear_forward_kernel3}[kernel]
    forward(x, weight, b, y)
    return y


def linear_backward(grad_out, x, weight, bias, *, kernel=None):
    """(grad_x (N, I), grad_weight (O, I), grad_bias (O,) or None when bias is None)."""
    gx = np.empty_like(x)
    gw = np.empty_like(weight)
    gb = np.empty(weight.shape[0], x.dtype)
    if kernel == 1:
        linear_grad_input_kernel1(grad_out, weight, gx)
        linear_grad_weight_kernel1(grad_out, x, gw, gb)
    else:
        linear_grad_input_kernel2(grad_out, weight, gx)
        linear_grad_weight_kernel2(grad_out, x, gw, gb)
    return gx, gw, (None if bias is None else gb)


def _map(kernel, *arrays):
    """kernel(*arrays, out) into a new array shaped like the last input; returns out.

    The kernels are elementwise: they get flat views (the arrays are contiguous), so each compiles once per
    dtype, not once per dtype and number of dimensions (a cold start compiles fewer kernels)."""
    last = arrays[-1]
    out = np.empty_like(last)
    if len(arrays) == 1:  # written out for one and two inputs: 0.2 µs less than a list of views (4 % of a small op)
        kernel(last.reshape(-1), out.reshape(-1))
    elif len(arrays) == 2:
        kernel(arrays[0].reshape(-1), last.reshape(-1), out.reshape(-1))
    else:
        kernel(*[a.reshape(-1) for a in arrays], out.reshape(-1))
    return out


def _relu_kernel2(kernel, size):
    """True when relu and its backward run kernel 2: asked for, or kernel None from ONE_THREAD_BELOW elements
    (below that, kernel 1 on one thread)."""
    return kernel == 2 or (kernel is None and size >= ONE_THREAD_BELOW)


def relu(x, *, kernel=None):
    """max(x, 0), elementwise (kernel None: 2, or kernel 1 on one thread below ONE_THREAD_BELOW elements)."""
    if _relu_kernel2(kernel, x.size):  # kernel 2 makes its output itself
        return relu_forward_kernel2(x)
    return _map(relu_forward_kernel1 if x.size >= ONE_THREAD_BELOW else relu_forward_one_thread_kernel1, x)


def relu_backward(grad_out, x, *, kernel=None):
    """grad_out where x > 0, else 0 (kernels as relu's)."""
    if _relu_kernel2(kernel, x.size):
        return relu_backward_kernel2(grad_out, x)
    return _map(relu_backward_kernel1 if x.size >= ONE_THREAD_BELOW else relu_backward_one_thread_kernel1, grad_out, x)


def sigmoid(x, *, kernel=None):
    """1 / (1 + exp(-x)), elementwise."""
    return _map(sigmoid_forward_kernel1 if kernel == 1 else sigmoid_forward_kernel2, x)


def sigmoid_backward(grad_out, x, y=None, *, kernel=None):
    """grad_out * s * (1 - s) with s = sigmoid(x), or s = y (the forward's output) when y is given."""
    if y is not None:
        if kernel == 2:
            raise ValueError("kernel 2 of sigmoid_backward computes sigmoid(x) again with the vectorized exp, got y= "
                             "(the forward's output, which needs no exp): kernel 1 takes y=")
        return _map(sigmoid_backward_from_y_kernel1, grad_out, y)
    return _map(sigmoid_backward_kernel1 if kernel == 1 else sigmoid_backward_kernel2, grad_out, x)


def tanh(x, *, kernel=None):
    """tanh(x), elementwise."""
    return _map(tanh_forward_kernel1, x)


def tanh_backward(grad_out, x, y=None, *, kernel=None):
    """grad_out * (1 - t * t) with t = tanh(x), or t = y (the forward's output) when y is given."""
    if y is not None:
        return _map(tanh_backward_from_y_kernel1, grad_out, y)
    return _map(tanh_backward_kernel1, grad_out, x)


def cross_entropy(logits, target, *, kernel=None):
    """Mean cross-entropy of logits (N, K) against int64 labels (N,), as a scalar of the logits' dtype (NaN for a
    label outside [0, K))."""
    if kernel == 1:
        loss = cross_entropy_forward_kernel1(logits, target)
    else:
        loss, _ = cross_entropy_forward_kernel2(logits, target)  # (nan, first bad row) for a bad label
    return logits.dtype.type(loss)


def cross_entropy_backward(grad_out, logits, target, *, kernel=None):
    """grad_logits (N, K) = grad_out * (softmax(logits) - onehot(target)) / N; grad_out a Python float."""
    gl = np.empty_like(logits)
    cross_entropy_backward_kernel1(grad_out, logits, target, gl)
    return gl
