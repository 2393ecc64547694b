"""Linear layer, activations and cross-entropy on the GPU: @cuda.jit kernels and their host-side launchers.

Formulas as in ``numbacnn.functional``:
    linear        y[n, o] = b[o] + sum_k x[n, k] * w[o, k]
    its backward  gx[n, k] = sum_o gy[n, o] * w[o, k];  gw[o, k] = sum_n gy[n, o] * x[n, k];  gb[o] = sum_n gy[n, o]
    cross-entropy loss = mean_n [ logsumexp(logits[n]) - logits[n, target[n]] ]

Kernels:
    linear_forward_kernel1, linear_grad_input_kernel1, linear_grad_weight_kernel1   one thread per output element
    matmul_kernel2       shared-memory tiled c[m, n] = sum_k A[m, k] * B[n, k] (+ bias[n]) that serves all three
                         (A or B read transposed as needed); tile x tile threads per block
    relu/sigmoid/tanh_kernel1 and their backward: one thread per element (sigmoid/tanh also from y)
    cross_entropy_rows_kernel1   one thread per example: its loss term
    mean_kernel1 / mean_kernel2  the batch mean: one thread walking the terms / one block tree-summing them
    cross_entropy_backward_kernel1   one thread per logit
Sums: the simple kernels add up in float64 (``acc = 0.0``) like the CPU kernels; the fast ones in the data's
dtype, as PyTorch does on a GPU (float64 arithmetic is many times slower than float32 on most GPUs).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ..functional import check_labels
from . import config
from .arrays import _check_device, device_float, device_floats, flat, is_device, to_device
from .conv import channel_sum1, channel_sum2
from .reduce import block_sum

# ----------------------------------------------------------------------------------------------
# Kernels: linear


@cuda.jit
def linear_forward_kernel1(x, w, b, y, has_bias):
    N, O = y.shape
    t = cuda.grid(1)  # one thread per y[n, o]
    if t >= N * O:
        return
    n, o = t // O, t % O
    acc = 0.0
    for k in range(x.shape[1]):
        acc += x[n, k] * w[o, k]
    y[n, o] = acc + b[o] if has_bias else acc


@cuda.jit
def linear_grad_input_kernel1(gy, w, gx):
    N, I = gx.shape
    t = cuda.grid(1)  # one thread per gx[n, k]
    if t >= N * I:
        return
    n, k = t // I, t % I
    acc = 0.0
    for o in range(w.shape[0]):
        acc += gy[n, o] * w[o, k]
    gx[n, k] = acc


@cuda.jit
def linear_grad_weight_kernel1(gy, x, gw):
    O, I = gw.shape
    t = cuda.grid(1)  # one thread per gw[o, k]
    if t >= O * I:
        return
    o, k = t // I, t % I
    acc = 0.0
    for n in range(x.shape[0]):
        acc += gy[n, o] * x[n, k]
    gw[o, k] = acc


@cuda.jit(device=True)
def _element(a, row, col, transposed):
    """A[row, col] where A is ``a`` or, when ``transposed``, a.T."""
    return a[col, row] if transposed else a[row, col]


@cuda.jit
def matmul_kernel2(a, ta, b, tb, bias, has_bias, c):
    """c[m, n] = sum_k A[m, k] * B[n, k] (+ bias[n]), with A = a or a.T (ta) and B = b or b.T (tb).

    Block (T, T) computes the tile c[m0:m0+T, n0:n0+T]. It walks k in steps of T: the threads copy a T x T
    tile of A and one of B into shared memory (one element each), wait, multiply the tiles, and wait again.
    """
    M, Nc = c.shape
    K = a.shape[0] if ta else a.shape[1]
    T = cuda.blockDim.x
    ty, tx = cuda.threadIdx.y, cuda.threadIdx.x
    m0, n0 = cuda.blockIdx.y * T, cuda.blockIdx.x * T
    smem = cuda.shared.array(0, dtype=c.dtype)
    As = smem[:T * T]  # As[r * T + s] = A[m0 + r, k0 + s]
    Bs = smem[T * T:2 * T * T]  # Bs[r * T + s] = B[n0 + r, k0 + s]
    acc = c.dtype.type(0)  # float32 sums for float32 data (float64 is slow on most GPUs)
    for k0 in range(0, K, T):
        if m0 + ty < M and k0 + tx < K:
            As[ty * T + tx] = _element(a, m0 + ty, k0 + tx, ta)
        else:
            As[ty * T + tx] = 0
        if n0 + ty < Nc and k0 + tx < K:
            Bs[ty * T + tx] = _element(b, n0 + ty, k0 + tx, tb)
        else:
            Bs[ty * T + tx] = 0
        cuda.syncthreads()
        for s in range(T):
            acc += As[ty * T + s] * Bs[tx * T + s]
        cuda.syncthreads()
    if m0 + ty < M and n0 + tx < Nc:
        c[m0 + ty, n0 + tx] = acc + bias[n0 + tx] if has_bias else acc


# ----------------------------------------------------------------------------------------------
# Kernels: activations (flat arrays: one thread per element)


@cuda.jit
def relu_kernel1(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = x[i] if x[i] > 0 else 0


@cuda.jit
def relu_backward_kernel1(gy, x, gx):
    i = cuda.grid(1)
    if i < x.size:
        gx[i] = gy[i] if x[i] > 0 else 0


@cuda.jit
def sigmoid_kernel1(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = 1.0 / (1.0 + math.exp(-x[i]))


@cuda.jit
def sigmoid_backward_kernel1(gy, x, gx):
    i = cuda.grid(1)
    if i < x.size:
        s = 1.0 / (1.0 + math.exp(-x[i]))
        gx[i] = gy[i] * s * (1.0 - s)


@cuda.jit
def sigmoid_backward_from_y_kernel1(gy, y, gx):
    """gx = gy * (1 - y) * y from the forward's output y: no exp."""
    i = cuda.grid(1)
    if i < y.size:
        gx[i] = gy[i] * (1.0 - y[i]) * y[i]


@cuda.jit
def tanh_kernel1(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = math.tanh(x[i])


@cuda.jit
def tanh_backward_kernel1(gy, x, gx):
    i = cuda.grid(1)
    if i < x.size:
        t = math.tanh(x[i])
        gx[i] = gy[i] * (1.0 - t * t)


@cuda.jit
def tanh_backward_from_y_kernel1(gy, y, gx):
    """gx = gy * (1 - y * y) from the forward's output y = tanh(x)."""
    i = cuda.grid(1)
    if i < y.size:
        gx[i] = gy[i] * (1.0 - y[i] * y[i])


# ----------------------------------------------------------------------------------------------
# Kernels: cross-entropy


@cuda.jit(device=True)
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


@cuda.jit
def cross_entropy_rows_kernel1(logits, target, terms):
    """terms[n] = logsumexp(logits[n]) - logits[n, target[n]]; NaN for a label outside [0, K)."""
    N, K = logits.shape
    n = cuda.grid(1)
    if n >= N:
        return
    t = target[n]
    if t < 0 or t >= K:
        terms[n] = math.nan
        return
    m, s = _row_max_and_sum(logits, n)
    terms[n] = m + math.log(s) - logits[n, t]


@cuda.jit
def mean_kernel1(values, out):
    """out[0] = mean of values: one thread adds them up in order (launch with one thread)."""
    if cuda.grid(1) == 0:
        acc = 0.0
        for i in range(values.size):
            acc += values[i]
        out[0] = acc / values.size


@cuda.jit
def mean_kernel2(values, out):
    """out[0] = mean of values: the threads of one block each sum a stride, then tree-sum the partials."""
    acc = 0.0
    for i in range(cuda.threadIdx.x, values.size, cuda.blockDim.x):
        acc += values[i]
    partial = cuda.shared.array(0, dtype=values.dtype)
    total = block_sum(partial, acc)
    if cuda.threadIdx.x == 0:
        out[0] = total / values.size


@cuda.jit
def cross_entropy_backward_kernel1(grad, logits, target, gl):
    """gl[n, k] = grad[0] * (softmax(logits[n])[k] - [k == target[n]]) / N: one thread per logit."""
    N, K = logits.shape
    t = cuda.grid(1)
    if t >= N * K:
        return
    n, k = t // K, t % K
    m, s = _row_max_and_sum(logits, n)  # every thread of row n recomputes these: simple, not fast
    p = math.exp(logits[n, k] - m) / s
    onehot = 1.0 if k == target[n] else 0.0
    gl[n, k] = grad[0] * (p - onehot) / N


# ----------------------------------------------------------------------------------------------
# Launchers


def matmul2(a, ta, b, tb, c, bias=None):
    """c = A @ B.T (+ bias) with the tiled kernel; ``ta`` / ``tb`` say a / b hold A / B transposed."""
    T = config.tile
    grid = (config.blocks(c.shape[1], T), config.blocks(c.shape[0], T))
    has_bias = bias is not None
    matmul_kernel2[grid, (T, T), 0, 2 * T * T * c.dtype.itemsize](a, ta, b, tb, bias if has_bias else c[0],
                                                                  has_bias, c)


def _check_linear(x, weight, bias):
    dt, (x, weight, bias) = device_floats((x, "x", 2), (weight, "weight", 2), (bias, "bias", 1))
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but weight expects {weight.shape[1]} "
                         f"(weight shape {tuple(weight.shape)})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    return dt, x, weight, bias


def linear(x, weight, bias=None):
    """x (N, I) @ weight (O, I).T + bias (O,) -> device array (N, O)."""
    dt, x, weight, bias = _check_linear(x, weight, bias)
    y = cuda.device_array((x.shape[0], weight.shape[0]), dtype=dt)
    if y.size == 0:  # an empty batch launches nothing (a grid of 0 blocks is an error)
        return y
    if config.simple:
        has_bias = bias is not None
        linear_forward_kernel1[config.launch_1d(y.size)](x, weight, bias if has_bias else y[0], y, has_bias)
    else:
        matmul2(x, False, weight, False, y, bias)
    return y


def linear_backward(grad_out, x, weight, bias=None):
    """(grad_x (N, I), grad_weight (O, I), grad_bias (O,) or None) as device arrays."""
    dt, x, weight, bias = _check_linear(x, weight, bias)
    gy = device_float(grad_out, "grad_out", 2, dt)
    if tuple(gy.shape) != (x.shape[0], weight.shape[0]):
        raise ValueError(f"grad_out must have shape {(x.shape[0], weight.shape[0])}, got {tuple(gy.shape)}")
    gx = cuda.device_array(tuple(x.shape), dtype=dt)
    gw = cuda.device_array(tuple(weight.shape), dtype=dt)
    if x.shape[0] == 0:  # an empty batch: the gradients are zero sums
        gw = cuda.to_device(np.zeros(tuple(weight.shape), dt))
        gb = None if bias is None else cuda.to_device(np.zeros(weight.shape[0], dt))
        return gx, gw, gb
    if config.simple:
        linear_grad_input_kernel1[config.launch_1d(gx.size)](gy, weight, gx)
        linear_grad_weight_kernel1[config.launch_1d(gw.size)](gy, x, gw)
    else:
        matmul2(gy, False, weight, True, gx)  # gx[n, k] = sum_o gy[n, o] * w.T[k, o]
        matmul2(gy, True, x, True, gw)  # gw[o, k] = sum_n gy.T[o, n] * x.T[k, n]
    gb = None
    if bias is not None:
        gb = cuda.device_array(weight.shape[0], dtype=dt)
        # the bias gradient is conv's channel sum over images of 1 x 1 pixels
        gy4 = _contiguous(gy).reshape(gy.shape[0], gy.shape[1], 1, 1)
        (channel_sum1 if config.simple else channel_sum2)(gy4, gb)
    return gx, gw, gb


@cuda.jit
def copy2d_kernel1(a, out):
    """out[r, k] = a[r, k]: a C-ordered copy of a strided matrix (e.g. a transposed tensor from another library)."""
    t = cuda.grid(1)
    if t < out.size:
        r, k = t // out.shape[1], t % out.shape[1]
        out[r, k] = a[r, k]


def _contiguous(a):
    if a.is_c_contiguous():
        return a
    out = cuda.device_array(tuple(a.shape), dtype=a.dtype)
    if out.size:
        copy2d_kernel1[config.launch_1d(out.size)](a, out)
    return out


def _unary(kernel, name):
    def forward(x):
        _, (x,) = device_floats((x, "x", None))
        y = cuda.device_array(tuple(x.shape), dtype=x.dtype)
        if x.size:
            kernel[config.launch_1d(x.size)](flat(x), flat(y))
        return y
    forward.__name__ = forward.__qualname__ = name
    return forward


def _unary_backward(kernel, name, from_y=None):
    def backward(grad_out, x, *, y=None):
        if y is not None:  # the forward's output: the from_y kernel (x may be None)
            dt, (y,) = device_floats((y, "y", None))
            if x is not None and tuple(x.shape) != tuple(y.shape):
                raise ValueError(f"y must have x's shape {tuple(x.shape)}, got {tuple(y.shape)}")
            x, kernel_ = y, from_y
        elif x is None:
            raise TypeError(f"{name} needs x or y (the forward's output), got neither")
        else:
            dt, (x,) = device_floats((x, "x", None))
            kernel_ = kernel
        gy = device_float(grad_out, "grad_out", None, dt)
        if tuple(gy.shape) != tuple(x.shape):
            what = "x" if y is None else "y"
            raise ValueError(f"grad_out must have {what}'s shape {tuple(x.shape)}, got {tuple(gy.shape)}")
        gx = cuda.device_array(tuple(x.shape), dtype=dt)
        if x.size:
            kernel_[config.launch_1d(x.size)](flat(gy, "grad_out"), flat(x), flat(gx))
        return gx

    def backward_x_only(grad_out, x):
        return backward(grad_out, x)

    f = backward if from_y is not None else backward_x_only
    f.__name__ = f.__qualname__ = name
    return f


relu = _unary(relu_kernel1, "relu")
relu.__doc__ = "max(x, 0) elementwise -> device array."
relu_backward = _unary_backward(relu_backward_kernel1, "relu_backward")
relu_backward.__doc__ = "grad_out where x > 0, else 0 -> device array."
sigmoid = _unary(sigmoid_kernel1, "sigmoid")
sigmoid.__doc__ = "1 / (1 + exp(-x)) elementwise -> device array."
sigmoid_backward = _unary_backward(sigmoid_backward_kernel1, "sigmoid_backward", sigmoid_backward_from_y_kernel1)
sigmoid_backward.__doc__ = "grad_out * s * (1 - s), s = sigmoid(x), or grad_out * (1 - y) * y given y= -> device array."
tanh = _unary(tanh_kernel1, "tanh")
tanh.__doc__ = "tanh(x) elementwise -> device array."
tanh_backward = _unary_backward(tanh_backward_kernel1, "tanh_backward", tanh_backward_from_y_kernel1)
tanh_backward.__doc__ = "grad_out * (1 - tanh(x)**2), or grad_out * (1 - y**2) given y= -> device array."


def _check_ce(logits, target):
    _, (logits,) = device_floats((logits, "logits", 2))
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be non-empty, got shape {tuple(logits.shape)}")
    if is_device(target):
        # Labels already on the GPU are checked for dtype and shape only: checking their range would mean
        # reading them back. An out-of-range label makes the loss NaN instead.
        t = to_device(target)
        if np.dtype(t.dtype).kind not in "iu":
            raise TypeError(f"target must hold integer class labels, got dtype {np.dtype(t.dtype)}")
        if t.ndim != 1 or t.shape[0] != logits.shape[0]:
            raise ValueError(f"target must have shape ({logits.shape[0]},) to match logits "
                             f"{tuple(logits.shape)}, got {tuple(t.shape)}")
    else:
        t = cuda.to_device(check_labels(tuple(logits.shape), target))
    return logits, t


def cross_entropy(logits, target):
    """Mean cross-entropy of logits (N, K) against labels (N,) -> 0-d device array (read: float(to_host(loss)))."""
    logits, t = _check_ce(logits, target)
    N = logits.shape[0]
    terms = cuda.device_array(N, dtype=np.float64)  # float64, like the CPU kernel's running total
    cross_entropy_rows_kernel1[config.launch_1d(N)](logits, t, terms)
    loss = cuda.device_array(1, dtype=logits.dtype)
    if config.simple:
        mean_kernel1[1, 1](terms, loss)
    else:
        tpb = config.threads_per_block
        mean_kernel2[1, tpb, 0, tpb * terms.dtype.itemsize](terms, loss)
    return loss.reshape(())


def cross_entropy_backward(grad_out, logits, target):
    """grad_logits (N, K) = grad_out * (softmax(logits) - onehot(target)) / N as a device array.

    ``grad_out`` is a number or a 1-element device array (e.g. the loss's own gradient, kept on the GPU).
    """
    logits, t = _check_ce(logits, target)
    if is_device(grad_out):
        g = _check_device(to_device(grad_out), "grad_out", None)
        if g.size != 1:
            raise ValueError(f"grad_out must be a scalar, got shape {tuple(g.shape)}")
        g = g.reshape(1)
    else:
        g = cuda.to_device(np.array([float(grad_out)], dtype=logits.dtype))
    gl = cuda.device_array(tuple(logits.shape), dtype=logits.dtype)
    cross_entropy_backward_kernel1[config.launch_1d(gl.size)](g, logits, t, gl)
    return gl
