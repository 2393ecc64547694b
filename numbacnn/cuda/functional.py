"""linear, activations and cross-entropy on the GPU (numbacnn.cuda.functional): @cuda.jit kernels and launchers.

Siblings: the public ops (which check the arguments and call the launchers here) are ``numbacnn.functional``,
the book-like NumPy versions ``numbacnn.reference.functional``, the CPU kernels ``numbacnn.cpu.functional`` (same
launcher names and signatures). The launchers take checked Numba device arrays of one float dtype (labels: ints)
and return device arrays; they check nothing themselves.

Formulas:
    linear        y[n, o] = b[o] + sum_k x[n, k] * w[o, k]
    its backward  gx[n, k] = sum_o gy[n, o] * w[o, k];  gw[o, k] = sum_n gy[n, o] * x[n, k];  gb[o] = sum_n gy[n, o]
    cross-entropy loss = mean_n [ logsumexp(logits[n]) - logits[n, target[n]] ]

KERNELS, what each number runs (``kernel=None``: 1 when ``numbacnn.cuda.config.simple``, else the highest):

    linear                  1 linear_forward_kernel1 (one thread per output)   2 linear_matmul_kernel2
    linear_backward         1 linear_grad_input_kernel1 + linear_grad_weight_kernel1 + conv's channel_sum_kernel1
                            2 linear_matmul_kernel2 twice (A or B read transposed) + conv's channel_sum_kernel2
    relu ... tanh_backward  1 <op>_forward_kernel1 / <op>_backward_kernel1 (or <op>_backward_from_y_kernel1 given y=):
                              one thread per element of the flat arrays
    cross_entropy           1 cross_entropy_forward_kernel1 (one thread per example: its loss term)
                              + cross_entropy_mean_kernel1 (one thread adds the terms up in order)
                            2 cross_entropy_forward_kernel1 + cross_entropy_mean_kernel2 (one block tree-sums them)
    cross_entropy_backward  1 cross_entropy_backward_kernel1 (one thread per logit)

linear_matmul_kernel2 is a shared-memory tiled c[m, n] = sum_k A[m, k] * B[n, k] (+ bias[n]) with tile x tile
threads per block. Sums: the kernels 1 add up in float64 (``acc = 0.0``) like the CPU kernels; the kernels 2 in
the data's dtype, as PyTorch does on a GPU (float64 arithmetic is many times slower than float32 on most GPUs).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from . import config
from .arrays import flat
from .conv import channel_sum1, channel_sum2
from .reduce import block_sum

KERNELS = {
    "linear": (1, 2), "linear_backward": (1, 2),
    "relu": (1,), "relu_backward": (1,),
    "sigmoid": (1,), "sigmoid_backward": (1,),
    "tanh": (1,), "tanh_backward": (1,),
    "cross_entropy": (1, 2), "cross_entropy_backward": (1,),
}

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
def linear_matmul_kernel2(a, ta, b, tb, bias, has_bias, c):
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
def relu_forward_kernel1(x, y):
    i = cuda.grid(1)
    if i < x.size:
        y[i] = 0 if x[i] < 0 else x[i]  # NaN stays NaN, as in PyTorch


@cuda.jit
def relu_backward_kernel1(gy, x, gx):
    i = cuda.grid(1)
    if i < x.size:
        gx[i] = 0 if x[i] <= 0 else gy[i]  # a NaN x passes the gradient, as in PyTorch


@cuda.jit
def sigmoid_forward_kernel1(x, y):
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
def tanh_forward_kernel1(x, y):
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
def cross_entropy_forward_kernel1(logits, target, terms):
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
def cross_entropy_mean_kernel1(values, out):
    """out[0] = mean of values: one thread adds them up in order (launch with one thread)."""
    if cuda.grid(1) == 0:
        acc = 0.0
        for i in range(values.size):
            acc += values[i]
        out[0] = acc / values.size


@cuda.jit
def cross_entropy_mean_kernel2(values, out):
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
    if k == target[n] and math.isinf(grad[0]):
        gl[n, k] = math.nan  # PyTorch's log_softmax backward gives inf - inf at the label
    else:
        gl[n, k] = grad[0] * (p - onehot) / N


@cuda.jit
def copy2d_kernel1(a, out):
    """out[r, k] = a[r, k]: a C-ordered copy of a strided matrix (e.g. a transposed tensor from another library)."""
    t = cuda.grid(1)
    if t < out.size:
        r, k = t // out.shape[1], t % out.shape[1]
        out[r, k] = a[r, k]


# ----------------------------------------------------------------------------------------------
# Launchers: allocate the outputs, pick the kernel, launch it


def _number(kernel):
    """The kernel to run: as asked, or for None 1 under ``config.simple`` and else 2, the fastest."""
    if kernel is None:
        return 1 if config.simple else 2
    return kernel


def _linear_matmul(a, ta, b, tb, c, bias=None):
    """c = A @ B.T (+ bias) with linear_matmul_kernel2; ``ta`` / ``tb`` say a / b hold A / B transposed."""
    T = config.tile
    grid = (config.blocks(c.shape[1], T), config.blocks(c.shape[0], T))
    has_bias = bias is not None
    linear_matmul_kernel2[grid, (T, T), 0, 2 * T * T * c.dtype.itemsize](a, ta, b, tb, bias if has_bias else c[0],
                                                                         has_bias, c)


def _contiguous(a):
    if a.is_c_contiguous():
        return a
    out = cuda.device_array(tuple(a.shape), dtype=a.dtype)
    if out.size:
        copy2d_kernel1[config.launch_1d(out.size)](a, out)
    return out


def linear(x, weight, bias, *, kernel=None):
    """x (N, I) @ weight (O, I).T + bias (O,) (None: no bias) -> device array (N, O)."""
    y = cuda.device_array((x.shape[0], weight.shape[0]), dtype=x.dtype)
    if y.size == 0:  # an empty batch launches nothing (a grid of 0 blocks is an error)
        return y
    if _number(kernel) == 1:
        has_bias = bias is not None
        linear_forward_kernel1[config.launch_1d(y.size)](x, weight, bias if has_bias else y[0], y, has_bias)
    else:
        _linear_matmul(x, False, weight, False, y, bias)
    return y


def linear_backward(grad_out, x, weight, bias, *, kernel=None):
    """(grad_x (N, I), grad_weight (O, I), grad_bias (O,) or None) as device arrays."""
    dt, gy = x.dtype, grad_out
    gx = cuda.device_array(tuple(x.shape), dtype=dt)
    gw = cuda.device_array(tuple(weight.shape), dtype=dt)
    if x.shape[0] == 0:  # an empty batch: the gradients are zero sums
        gw = cuda.to_device(np.zeros(tuple(weight.shape), dt))
        gb = None if bias is None else cuda.to_device(np.zeros(weight.shape[0], dt))
        return gx, gw, gb
    number = _number(kernel)
    if number == 1:
        linear_grad_input_kernel1[config.launch_1d(gx.size)](gy, weight, gx)
        linear_grad_weight_kernel1[config.launch_1d(gw.size)](gy, x, gw)
    else:
        _linear_matmul(gy, False, weight, True, gx)  # gx[n, k] = sum_o gy[n, o] * w.T[k, o]
        _linear_matmul(gy, True, x, True, gw)  # gw[o, k] = sum_n gy.T[o, n] * x.T[k, n]
    gb = None
    if bias is not None:
        gb = cuda.device_array(weight.shape[0], dtype=dt)
        # the bias gradient is conv's channel sum over images of 1 x 1 pixels
        gy4 = _contiguous(gy).reshape(gy.shape[0], gy.shape[1], 1, 1)
        (channel_sum1 if number == 1 else channel_sum2)(gy4, gb)
    return gx, gw, gb


def _map(kernel, *inputs):
    """kernel(*flat inputs, flat out), one thread per element, into a new device array shaped like the last input;
    ``inputs`` are (array, name) pairs (a strided device array is refused, naming it)."""
    like = inputs[-1][0]
    out = cuda.device_array(tuple(like.shape), dtype=like.dtype)
    if out.size:
        kernel[config.launch_1d(out.size)](*(flat(a, name) for a, name in inputs), flat(out))
    return out


def relu(x, *, kernel=None):
    """max(x, 0) elementwise -> device array."""
    return _map(relu_forward_kernel1, (x, "x"))


def relu_backward(grad_out, x, *, kernel=None):
    """grad_out where x > 0, else 0 -> device array."""
    return _map(relu_backward_kernel1, (grad_out, "grad_out"), (x, "x"))


def sigmoid(x, *, kernel=None):
    """1 / (1 + exp(-x)) elementwise -> device array."""
    return _map(sigmoid_forward_kernel1, (x, "x"))


def sigmoid_backward(grad_out, x, y=None, *, kernel=None):
    """grad_out * s * (1 - s), s = sigmoid(x), or s = y (the forward's output) given y= -> device array."""
    if y is not None:
        return _map(sigmoid_backward_from_y_kernel1, (grad_out, "grad_out"), (y, "y"))
    return _map(sigmoid_backward_kernel1, (grad_out, "grad_out"), (x, "x"))


def tanh(x, *, kernel=None):
    """tanh(x) elementwise -> device array."""
    return _map(tanh_forward_kernel1, (x, "x"))


def tanh_backward(grad_out, x, y=None, *, kernel=None):
    """grad_out * (1 - t * t), t = tanh(x), or t = y (the forward's output) given y= -> device array."""
    if y is not None:
        return _map(tanh_backward_from_y_kernel1, (grad_out, "grad_out"), (y, "y"))
    return _map(tanh_backward_kernel1, (grad_out, "grad_out"), (x, "x"))


def cross_entropy(logits, target, *, kernel=None):
    """Mean cross-entropy of logits (N, K) against labels (N,) -> 0-d device array (read: float(to_host(loss))).
    A label outside [0, K) makes the loss NaN."""
    N = logits.shape[0]
    terms = cuda.device_array(N, dtype=np.float64)  # float64, like the CPU kernel's running total
    cross_entropy_forward_kernel1[config.launch_1d(N)](logits, target, terms)
    loss = cuda.device_array(1, dtype=logits.dtype)
    if _number(kernel) == 1:
        cross_entropy_mean_kernel1[1, 1](terms, loss)
    else:
        tpb = config.threads_per_block
        cross_entropy_mean_kernel2[1, tpb, 0, tpb * terms.dtype.itemsize](terms, loss)
    return loss.reshape(())


def cross_entropy_backward(grad_out, logits, target, *, kernel=None):
    """grad_logits (N, K) = grad_out[0] * (softmax(logits) - onehot(target)) / N as a device array;
    ``grad_out`` is a 1-element device array."""
    gl = cuda.device_array(tuple(logits.shape), dtype=logits.dtype)
    cross_entropy_backward_kernel1[config.launch_1d(gl.size)](grad_out, logits, target, gl)
    return gl
