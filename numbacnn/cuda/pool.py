"""Pooling on the GPU (numbacnn.cuda.pool): @cuda.jit kernels and their launchers, numbered as on the CPU.

Siblings: ``numbacnn.pool`` (the public functions: they check the arguments and call the launchers here),
``numbacnn.reference.pool`` (plain NumPy), ``numbacnn.cpu.pool`` (the same launchers, @njit). Nothing here checks
user input: arrays arrive as Numba device arrays of one float dtype (indices: integers), with a checked geometry.

Window (i, j) of a plane covers rows i*sh - ph + p*dh (p < KH) and columns j*sw - pw + q*dw (q < KW); adaptive
pooling uses rows floor(i*H/HO) .. ceil((i+1)*H/HO) - 1. Kernels (one thread per element, no atomics):
    max_pool2d_forward_kernel1           one thread per output: the window's first maximum (a NaN wins) and its index
    adaptive_max_pool2d_forward_kernel1  the same over adaptive windows
    max_pool2d_backward_kernel1          one thread per input cell: gathers gy from the windows whose winner it is
    adaptive_max_pool2d_backward_kernel1 the same for adaptive windows
    avg_pool2d_forward_kernel1 / avg_pool2d_backward_kernel1                    window sum / divisor, and its gather
    adaptive_avg_pool2d_forward_kernel1 / adaptive_avg_pool2d_backward_kernel1  the same for adaptive windows
The backward kernels gather in the order the CPU kernels scatter (windows in row-major order), so sums agree.
max/min_pool2d_backward take the forward's indices (``indices=``) as the CPU versions do: the same gather kernel
then reads them instead of a fresh forward's (a gather needs no atomic adds where windows overlap).
Pooling reads each input a few times and does almost no arithmetic: it is memory-bound, and one thread per
element is already the fast layout, so there is no tiled variant: KERNELS has kernel 1 only (min pooling runs
max pooling's kernels with sign -1).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from . import config

KERNELS = {op: (1,) for op in (
    "max_pool2d", "max_pool2d_backward", "min_pool2d", "min_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "adaptive_max_pool2d", "adaptive_max_pool2d_backward")}

# ----------------------------------------------------------------------------------------------
# Kernels


@cuda.jit
def max_pool2d_forward_kernel1(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, sign):
    """out = sign * max over the window of sign * x (sign = -1: min pooling); idx = h*W + w of the winner."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    t = cuda.grid(1)  # one thread per out[n, c, i, j]
    if t >= N * C * HO * WO:
        return
    j = t % WO
    i = (t // WO) % HO
    c = (t // (WO * HO)) % C
    n = t // (WO * HO * C)
    h0 = i * sh - ph  # the window's first row, maybe in the padding
    h1 = min(h0 + (kh - 1) * dh + 1, H)
    while h0 < 0:  # skip the taps that land in the top padding
        h0 += dh
    w0 = j * sw - pw
    w1 = min(w0 + (kw - 1) * dw + 1, W)
    while w0 < 0:
        w0 += dw
    best = -math.inf
    arg = h0 * W + w0
    for h in range(h0, h1, dh):
        for w in range(w0, w1, dw):
            v = sign * x[n, c, h, w]
            if v > best or math.isnan(v):  # strict: the first maximum in row-major order stays
                best = v
                arg = h * W + w
    out[n, c, i, j] = sign * best
    idx[n, c, i, j] = arg


@cuda.jit
def adaptive_max_pool2d_forward_kernel1(x, out, idx):
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    t = cuda.grid(1)
    if t >= N * C * HO * WO:
        return
    j = t % WO
    i = (t // WO) % HO
    c = (t // (WO * HO)) % C
    n = t // (WO * HO * C)
    h0, h1 = (i * H) // HO, ((i + 1) * H + HO - 1) // HO  # rows floor(i*H/HO) .. ceil((i+1)*H/HO) - 1
    w0, w1 = (j * W) // WO, ((j + 1) * W + WO - 1) // WO
    best = -math.inf
    arg = h0 * W + w0
    for h in range(h0, h1):
        for w in range(w0, w1):
            v = x[n, c, h, w]
            if v > best or math.isnan(v):
                best = v
                arg = h * W + w
    out[n, c, i, j] = best
    idx[n, c, i, j] = arg


@cuda.jit
def max_pool2d_backward_kernel1(gy, idx, gx, kh, kw, sh, sw, ph, pw, dh, dw):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] over the windows (i, j) whose winner is (h, w).

    Window i can contain row h only if i*sh - ph <= h <= i*sh - ph + (kh-1)*dh, i.e.
    ceil((h + ph - (kh-1)*dh) / sh) <= i <= floor((h + ph) / sh); the winner index settles the rest.
    """
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.grid(1)  # one thread per gx[n, c, h, w]
    if t >= N * C * H * W:
        return
    w = t % W
    h = (t // W) % H
    c = (t // (W * H)) % C
    n = t // (W * H * C)
    i_lo = max(0, -((-(h + ph - (kh - 1) * dh)) // sh))  # ceil division
    i_hi = min(HO - 1, (h + ph) // sh)
    j_lo = max(0, -((-(w + pw - (kw - 1) * dw)) // sw))
    j_hi = min(WO - 1, (w + pw) // sw)
    me = h * W + w
    acc = gx.dtype.type(0)
    for i in range(i_lo, i_hi + 1):
        for j in range(j_lo, j_hi + 1):
            if idx[n, c, i, j] == me:
                acc += gy[n, c, i, j]
    gx[n, c, h, w] = acc


@cuda.jit
def adaptive_max_pool2d_backward_kernel1(gy, idx, gx):
    """Like max_pool2d_backward_kernel1; window i covers row h for floor(h*HO/H) <= i <= ceil((h+1)*HO/H) - 1."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.grid(1)
    if t >= N * C * H * W:
        return
    w = t % W
    h = (t // W) % H
    c = (t // (W * H)) % C
    n = t // (W * H * C)
    me = h * W + w
    acc = gx.dtype.type(0)
    for i in range((h * HO) // H, ((h + 1) * HO + H - 1) // H):
        for j in range((w * WO) // W, ((w + 1) * WO + W - 1) // W):
            if idx[n, c, i, j] == me:
                acc += gy[n, c, i, j]
    gx[n, c, h, w] = acc


@cuda.jit(device=True)
def _avg_window(i, s, k, p, size):
    """Window (start, end) of output i clipped to the input, and its length clipped to the padded input."""
    start = i * s - p
    end = min(start + k, size + p)
    padded = end - start
    return max(start, 0), min(end, size), padded


@cuda.jit(device=True)
def _avg_divisor(h0, h1, w0, w1, ph_len, pw_len, count_include_pad, divisor_override):
    """PyTorch's divisor: the override, else the window size clipped to the padded input or to the input."""
    if divisor_override != 0:
        return divisor_override
    if count_include_pad:
        return ph_len * pw_len
    return (h1 - h0) * (w1 - w0)


@cuda.jit
def avg_pool2d_forward_kernel1(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    t = cuda.grid(1)  # one thread per out[n, c, i, j]
    if t >= N * C * HO * WO:
        return
    j = t % WO
    i = (t // WO) % HO
    c = (t // (WO * HO)) % C
    n = t // (WO * HO * C)
    h0, h1, ph_len = _avg_window(i, sh, kh, ph, H)
    w0, w1, pw_len = _avg_window(j, sw, kw, pw, W)
    if h0 >= h1 or w0 >= w1:
        out[n, c, i, j] = 0
        return
    acc = x.dtype.type(0)  # accumulate in x's dtype, as PyTorch does
    for h in range(h0, h1):
        for w in range(w0, w1):
            acc += x[n, c, h, w]
    out[n, c, i, j] = acc / _avg_divisor(h0, h1, w0, w1, ph_len, pw_len, count_include_pad, divisor_override)


@cuda.jit
def avg_pool2d_backward_kernel1(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] / divisor(i, j) over the windows (i, j) that contain (h, w):
    those with i*sh - ph <= h < i*sh - ph + kh, i.e. ceil((h + ph - kh + 1) / sh) <= i <= floor((h + ph) / sh)."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.grid(1)  # one thread per gx[n, c, h, w]
    if t >= N * C * H * W:
        return
    w = t % W
    h = (t // W) % H
    c = (t // (W * H)) % C
    n = t // (W * H * C)
    acc = gx.dtype.type(0)
    for i in range(max(0, -((-(h + ph - kh + 1)) // sh)), min(HO - 1, (h + ph) // sh) + 1):
        h0, h1, ph_len = _avg_window(i, sh, kh, ph, H)
        if h < h0 or h >= h1:  # a ceil_mode window clipped before row h
            continue
        for j in range(max(0, -((-(w + pw - kw + 1)) // sw)), min(WO - 1, (w + pw) // sw) + 1):
            w0, w1, pw_len = _avg_window(j, sw, kw, pw, W)
            if w < w0 or w >= w1:
                continue
            divisor = _avg_divisor(h0, h1, w0, w1, ph_len, pw_len, count_include_pad, divisor_override)
            acc += gx.dtype.type(gy[n, c, i, j] / divisor)  # rounded to the dtype first, as in PyTorch
    gx[n, c, h, w] = acc


@cuda.jit
def adaptive_avg_pool2d_forward_kernel1(x, out):
    """out = window sum / kh / kw (PyTorch divides twice, so do we)."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    t = cuda.grid(1)
    if t >= N * C * HO * WO:
        return
    j = t % WO
    i = (t // WO) % HO
    c = (t // (WO * HO)) % C
    n = t // (WO * HO * C)
    h0, h1 = (i * H) // HO, ((i + 1) * H + HO - 1) // HO
    w0, w1 = (j * W) // WO, ((j + 1) * W + WO - 1) // WO
    acc = x.dtype.type(0)
    for h in range(h0, h1):
        for w in range(w0, w1):
            acc += x[n, c, h, w]
    out[n, c, i, j] = x.dtype.type(acc / (h1 - h0)) / (w1 - w0)


@cuda.jit
def adaptive_avg_pool2d_backward_kernel1(gy, gx):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] / kh / kw over the adaptive windows (i, j) that contain (h, w)."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.grid(1)
    if t >= N * C * H * W:
        return
    w = t % W
    h = (t // W) % H
    c = (t // (W * H)) % C
    n = t // (W * H * C)
    acc = gx.dtype.type(0)
    for i in range((h * HO) // H, ((h + 1) * HO + H - 1) // H):
        h0, h1 = (i * H) // HO, ((i + 1) * H + HO - 1) // HO
        for j in range((w * WO) // W, ((w + 1) * WO + W - 1) // W):
            w0, w1 = (j * W) // WO, ((j + 1) * W + WO - 1) // WO
            acc += gx.dtype.type(gx.dtype.type(gy[n, c, i, j] / (h1 - h0)) / (w1 - w0))
    gx[n, c, h, w] = acc


# ----------------------------------------------------------------------------------------------
# Launchers, the same names and signatures as numbacnn.cpu.pool; ``kernel`` is None or 1 (the only one).


def max_pool2d(x, geo, sign=1.0, kernel=None):
    """(out, idx) device arrays of max pooling (sign 1) or min pooling (sign -1); idx int64 h*W + w."""
    shape = tuple(x.shape[:2]) + geo.out_hw
    out = cuda.device_array(shape, dtype=x.dtype)
    idx = cuda.device_array(shape, dtype=np.int64)
    if out.size:
        max_pool2d_forward_kernel1[config.launch_1d(out.size)](x, out, idx, *geo.kernel, *geo.stride, *geo.padding,
                                                               *geo.dilation, sign)
    return out, idx


def max_pool2d_backward(grad_out, x, geo, indices=None, sign=1.0, kernel=None):
    """Gradient w.r.t. x (a device array, N, C, H, W) of max (sign 1) / min (sign -1) pooling; the winners are
    read from ``indices`` (the forward's) when given, else found again by a forward pass."""
    if indices is None:
        _, indices = max_pool2d(x, geo, sign)
    gx = cuda.device_array(tuple(x.shape), dtype=x.dtype)
    if gx.size:
        max_pool2d_backward_kernel1[config.launch_1d(gx.size)](grad_out, indices, gx, *geo.kernel, *geo.stride,
                                                               *geo.padding, *geo.dilation)
    return gx


def avg_pool2d(x, geo, count_include_pad=True, divisor_override=0, kernel=None):
    """Average pooling -> device array (N, C, HO, WO); ``divisor_override`` 0 means none."""
    out = cuda.device_array(tuple(x.shape[:2]) + geo.out_hw, dtype=x.dtype)
    if out.size:
        avg_pool2d_forward_kernel1[config.launch_1d(out.size)](x, out, *geo.kernel, *geo.stride, *geo.padding,
                                                               count_include_pad, divisor_override)
    return out


def avg_pool2d_backward(grad_out, x, geo, count_include_pad=True, divisor_override=0, kernel=None):
    """Gradient of avg_pool2d w.r.t. x as a device array (N, C, H, W)."""
    gx = cuda.device_array(tuple(x.shape), dtype=x.dtype)
    if gx.size:
        avg_pool2d_backward_kernel1[config.launch_1d(gx.size)](grad_out, gx, *geo.kernel, *geo.stride, *geo.padding,
                                                               count_include_pad, divisor_override)
    return gx


def adaptive_avg_pool2d(x, out_hw, kernel=None):
    """Adaptive average pooling -> device array (N, C, HO, WO) = out_hw."""
    out = cuda.device_array(tuple(x.shape[:2]) + tuple(out_hw), dtype=x.dtype)
    if out.size:
        adaptive_avg_pool2d_forward_kernel1[config.launch_1d(out.size)](x, out)
    return out


def adaptive_avg_pool2d_backward(grad_out, x, kernel=None):
    """Gradient of adaptive_avg_pool2d w.r.t. x as a device array (N, C, H, W)."""
    gx = cuda.device_array(tuple(x.shape), dtype=x.dtype)
    if gx.size:
        adaptive_avg_pool2d_backward_kernel1[config.launch_1d(gx.size)](grad_out, gx)
    return gx


def adaptive_max_pool2d(x, out_hw, kernel=None):
    """(out, idx) device arrays of adaptive max pooling to (HO, WO) = out_hw; idx int64 h*W + w."""
    shape = tuple(x.shape[:2]) + tuple(out_hw)
    out = cuda.device_array(shape, dtype=x.dtype)
    idx = cuda.device_array(shape, dtype=np.int64)
    if out.size:
        adaptive_max_pool2d_forward_kernel1[config.launch_1d(out.size)](x, out, idx)
    return out, idx


def adaptive_max_pool2d_backward(grad_out, x, kernel=None):
    """Gradient of adaptive_max_pool2d w.r.t. x as a device array (N, C, H, W)."""
    _, idx = adaptive_max_pool2d(x, tuple(grad_out.shape[2:]))
    gx = cuda.device_array(tuple(x.shape), dtype=x.dtype)
    if gx.size:
        adaptive_max_pool2d_backward_kernel1[config.launch_1d(gx.size)](grad_out, idx, gx)
    return gx
