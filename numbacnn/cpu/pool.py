"""Pooling on the CPU (numbacnn.cpu.pool): Numba @njit kernels and their launchers, numbered as on CUDA.

Siblings: ``numbacnn.pool`` (the public functions: they check the arguments and call the launchers here),
``numbacnn.reference.pool`` (plain NumPy, the book's version), ``numbacnn.cuda.pool`` (the same launchers on the
GPU). Nothing here checks user input: arrays arrive contiguous, of one float dtype, with a checked geometry.

x (N, C, H, W) -> y (N, C, HO, WO), one plane at a time; windows and PyTorch's rules: ``numbacnn.pool``'s docstring.

KERNELS (public op -> numbers; ``kernel=None`` picks 2 where it fits, else 1):
    max_pool2d, min_pool2d   1  max_pool2d_forward_kernel1: one output at a time, any options (min: sign -1)
                             2  max_pool2d_forward_kernel2: 2x2 window, stride 2, no padding, dilation 1, every
                                window inside x (LeNet's pooling; the kernels 2 are in ``numbacnn.cpu.pool_2x2``)
    max/min_pool2d_backward  1  the winners from indices= or from forward kernel 1, then max_pool2d_backward_kernel1
                                scatters each output's gradient to its winner
                             2  max_pool2d_backward_kernel2: each 2x2 window's winner found again in x (no indices=)
    avg_pool2d (_backward)   1  avg_pool2d_forward_kernel1 / _backward_kernel1;  2  the 2x2 stride-2 kernel2s
    adaptive_avg_pool2d, adaptive_max_pool2d (and _backward)   1 only: the formula kernels
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .pool_2x2 import (avg_pool2d_backward_kernel2, avg_pool2d_forward_kernel2, fits_2x2, max_pool2d_backward_kernel2,
                       max_pool2d_forward_kernel2)

KERNELS = {
    "max_pool2d": (1, 2), "max_pool2d_backward": (1, 2), "min_pool2d": (1, 2), "min_pool2d_backward": (1, 2),
    "avg_pool2d": (1, 2), "avg_pool2d_backward": (1, 2),
    "adaptive_avg_pool2d": (1,), "adaptive_avg_pool2d_backward": (1,),
    "adaptive_max_pool2d": (1,), "adaptive_max_pool2d_backward": (1,),
}

# ----------------------------------------------------------------------------------------------
# Kernel 1: the formula, one output at a time. A parallel job per (example, channel) plane: race-free backwards.


@njit(parallel=PARALLEL, cache=True)
def max_pool2d_forward_kernel1(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, sign):
    """out[n, c, i, j] = max over the window of sign * x, times sign (sign = -1: min pooling);
    idx[n, c, i, j] = h * W + w of the winner: the first maximum in row-major order, or the last NaN.
    An all-padding window gives -inf and the index of its first tap, as in PyTorch."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            h0 = i * sh - ph
            h1 = min(h0 + (kh - 1) * dh + 1, H)
            while h0 < 0:  # skip the taps that land in the top padding
                h0 += dh
            for j in range(WO):
                w0 = j * sw - pw
                w1 = min(w0 + (kw - 1) * dw + 1, W)
                while w0 < 0:
                    w0 += dw
                best = -np.inf
                arg = h0 * W + w0
                nans = 0
                for h in range(h0, h1, dh):
                    for w in range(w0, w1, dw):
                        v = sign * x[n, c, h, w]
                        if v > best:  # strict: the first maximum wins
                            best = v
                            arg = h * W + w
                        nans += v != v
                if nans:  # a NaN beats everything, and the last NaN wins (a second pass keeps the first one fast)
                    for h in range(h0, h1, dh):
                        for w in range(w0, w1, dw):
                            if x[n, c, h, w] != x[n, c, h, w]:
                                best = np.nan
                                arg = h * W + w
                out[n, c, i, j] = sign * best
                idx[n, c, i, j] = arg


@njit(inline="always")
def _adaptive_window(i, size, out_size):
    """Window i of adaptive pooling along one axis: floor(i*size/out_size) .. ceil((i+1)*size/out_size) - 1."""
    return (i * size) // out_size, ((i + 1) * size + out_size - 1) // out_size


@njit(parallel=PARALLEL, cache=True)
def adaptive_max_pool2d_forward_kernel1(x, out, idx):
    """Like max_pool2d_forward_kernel1 over the windows of _adaptive_window (rows and columns)."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            h0, h1 = _adaptive_window(i, H, HO)
            for j in range(WO):
                w0, w1 = _adaptive_window(j, W, WO)
                best = -np.inf
                arg = h0 * W + w0
                nans = 0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        v = x[n, c, h, w]
                        if v > best:
                            best = v
                            arg = h * W + w
                        nans += v != v
                if nans:
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            if x[n, c, h, w] != x[n, c, h, w]:
                                best = np.nan
                                arg = h * W + w
                out[n, c, i, j] = best
                idx[n, c, i, j] = arg


@njit(parallel=PARALLEL, cache=True)
def max_pool2d_backward_kernel1(gy, idx, gx):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] over the outputs whose winner was (h, w) (i.e. idx == h*W + w).
    An index off the plane (a window that saw only padding) routes nothing. Windows may overlap: += ."""
    N, C, H, W = gx.shape
    HW, S = H * W, gy.shape[2] * gy.shape[3]
    gyf, idxf, gxf = gy.reshape(-1), idx.reshape(-1), gx.reshape(-1)  # C-contiguous: flat views
    zero = gx.dtype.type(0)
    for job in prange(N * C):
        plane = gxf[job * HW:(job + 1) * HW]  # indexed like idx: h*W + w
        plane[:] = zero
        grads, winners = gyf[job * S:(job + 1) * S], idxf[job * S:(job + 1) * S]
        for t in range(S):
            if 0 <= winners[t] < HW:
                plane[winners[t]] += grads[t]


adaptive_max_pool2d_backward_kernel1 = max_pool2d_backward_kernel1  # the same scatter: winners are indices


@njit(cache=True)
def _avg_window(i, s, k, p, size):
    """Window (start, end) of output i clipped to the input, and its length clipped to the padded input."""
    start = i * s - p
    end = min(start + k, size + p)
    padded = end - start
    return max(start, 0), min(end, size), padded


@njit(parallel=PARALLEL, cache=True)
def avg_pool2d_forward_kernel1(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """out[n, c, i, j] = sum over the window of x / divisor, with PyTorch's divisor: divisor_override if
    nonzero, else the window size clipped to the padded input (count_include_pad) or to the input."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            h0, h1, ph_len = _avg_window(i, sh, kh, ph, H)
            for j in range(WO):
                w0, w1, pw_len = _avg_window(j, sw, kw, pw, W)
                if h0 >= h1 or w0 >= w1:
                    out[n, c, i, j] = 0.0
                    continue
                if divisor_override != 0:
                    divisor = divisor_override
                elif count_include_pad:
                    divisor = ph_len * pw_len
                else:
                    divisor = (h1 - h0) * (w1 - w0)
                acc = x.dtype.type(0)  # accumulate in x's dtype, as PyTorch does
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        acc += x[n, c, h, w]
                out[n, c, i, j] = acc / divisor


@njit(parallel=PARALLEL, cache=True)
def avg_pool2d_backward_kernel1(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] / divisor(i, j) over the windows (i, j) that contain (h, w)."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for h in range(H):
            for w in range(W):
                gx[n, c, h, w] = 0.0
        for i in range(HO):
            h0, h1, ph_len = _avg_window(i, sh, kh, ph, H)
            for j in range(WO):
                w0, w1, pw_len = _avg_window(j, sw, kw, pw, W)
                if h0 >= h1 or w0 >= w1:
                    continue
                if divisor_override != 0:
                    divisor = divisor_override
                elif count_include_pad:
                    divisor = ph_len * pw_len
                else:
                    divisor = (h1 - h0) * (w1 - w0)
                g = gx.dtype.type(gy[n, c, i, j] / divisor)  # rounded to the dtype, as in PyTorch
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        gx[n, c, h, w] += g


@njit(parallel=PARALLEL, cache=True)
def adaptive_avg_pool2d_forward_kernel1(x, out):
    """out[n, c, i, j] = sum over the window of x / kh / kw (PyTorch divides twice, so do we)."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            h0, h1 = _adaptive_window(i, H, HO)
            for j in range(WO):
                w0, w1 = _adaptive_window(j, W, WO)
                acc = x.dtype.type(0)
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        acc += x[n, c, h, w]
                out[n, c, i, j] = x.dtype.type(acc / (h1 - h0)) / (w1 - w0)


@njit(parallel=PARALLEL, cache=True)
def adaptive_avg_pool2d_backward_kernel1(gy, gx):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] / kh / kw over the windows (i, j) that contain (h, w)."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for h in range(H):
            for w in range(W):
                gx[n, c, h, w] = 0.0
        for i in range(HO):
            h0, h1 = _adaptive_window(i, H, HO)
            for j in range(WO):
                w0, w1 = _adaptive_window(j, W, WO)
                delta = gx.dtype.type(gx.dtype.type(gy[n, c, i, j] / (h1 - h0)) / (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        gx[n, c, h, w] += delta


# ----------------------------------------------------------------------------------------------
# Launchers, the same names and signatures as numbacnn.cuda.pool: x, grad_out contiguous of one float dtype,
# indices int64; ``kernel`` None (the fastest that fits) or a number from KERNELS.


def _pick(kernel, geo, x_shape, op):
    """The kernel number to run: None picks 2 where it fits, else 1; a pinned 2 that does not fit is an error."""
    H, W = x_shape[2], x_shape[3]
    fits = fits_2x2(geo, x_shape)
    if kernel is None:
        return 2 if fits else 1
    if kernel == 2 and not fits:
        raise ValueError(f"kernel 2 of {op} needs a 2x2 window with stride 2, no padding, dilation 1 and every "
                         f"window inside x (ceil_mode=False, or even H and W), got kernel_size={geo.kernel}, "
                         f"stride={geo.stride}, padding={geo.padding}, dilation={geo.dilation}, "
                         f"ceil_mode={geo.ceil_mode} with H, W = {H}, {W}; kernel 1 takes any options")
    return kernel


def max_pool2d(x, geo, sign=1.0, kernel=None):
    """(out, idx) of max pooling (sign 1) or min pooling (sign -1): out (N, C, HO, WO), idx int64 h*W + w."""
    shape = tuple(x.shape[:2]) + geo.out_hw
    out, idx = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    if _pick(kernel, geo, x.shape, "max_pool2d" if sign > 0 else "min_pool2d") == 2:
        max_pool2d_forward_kernel2(x, out, idx, sign)
    else:
        max_pool2d_forward_kernel1(x, out, idx, *geo.kernel, *geo.stride, *geo.padding, *geo.dilation, sign)
    return out, idx


def max_pool2d_backward(grad_out, x, geo, indices=None, sign=1.0, kernel=None):
    """Gradient w.r.t. x (N, C, H, W) of max (sign 1) / min (sign -1) pooling: each output's gradient to its
    window's winner, read from ``indices`` (the forward's) when given, else found again in x."""
    op = "max_pool2d_backward" if sign > 0 else "min_pool2d_backward"
    gx = np.empty_like(x)
    if indices is not None:  # the forward's winners: scatter, no search
        if kernel == 2:
            raise ValueError(f"kernel 2 of {op} finds the winners again in x: it takes no indices= (kernel 1 does)")
        max_pool2d_backward_kernel1(grad_out, indices, gx)
    elif _pick(kernel, geo, x.shape, op) == 2:  # winners found again in one pass, gradient written directly
        max_pool2d_backward_kernel2(grad_out, x, gx, sign)
    else:
        _, idx = max_pool2d(x, geo, sign, kernel=1)
        max_pool2d_backward_kernel1(grad_out, idx, gx)
    return gx


def avg_pool2d(x, geo, count_include_pad=True, divisor_override=0, kernel=None):
    """Average pooling of x (N, C, H, W) -> (N, C, HO, WO); ``divisor_override`` 0 means none."""
    out = np.empty(tuple(x.shape[:2]) + geo.out_hw, dtype=x.dtype)
    if _pick(kernel, geo, x.shape, "avg_pool2d") == 2:
        avg_pool2d_forward_kernel2(x, out, float(divisor_override or 4))
    else:
        avg_pool2d_forward_kernel1(x, out, *geo.kernel, *geo.stride, *geo.padding, count_include_pad,
                                   divisor_override)
    return out


def avg_pool2d_backward(grad_out, x, geo, count_include_pad=True, divisor_override=0, kernel=None):
    """Gradient of avg_pool2d w.r.t. x (N, C, H, W): each output's gradient / divisor to every window cell."""
    gx = np.empty_like(x)
    if _pick(kernel, geo, x.shape, "avg_pool2d_backward") == 2:
        avg_pool2d_backward_kernel2(grad_out, gx, float(divisor_override or 4))
    else:
        avg_pool2d_backward_kernel1(grad_out, gx, *geo.kernel, *geo.stride, *geo.padding, count_include_pad,
                                    divisor_override)
    return gx


def adaptive_avg_pool2d(x, out_hw, kernel=None):
    """Adaptive average pooling of x (N, C, H, W) -> (N, C, HO, WO) = out_hw (kernel 1 only)."""
    out = np.empty(tuple(x.shape[:2]) + tuple(out_hw), dtype=x.dtype)
    adaptive_avg_pool2d_forward_kernel1(x, out)
    return out


def adaptive_avg_pool2d_backward(grad_out, x, kernel=None):
    """Gradient of adaptive_avg_pool2d w.r.t. x (N, C, H, W); the windows follow from grad_out's shape."""
    gx = np.empty_like(x)
    adaptive_avg_pool2d_backward_kernel1(grad_out, gx)
    return gx


def adaptive_max_pool2d(x, out_hw, kernel=None):
    """(out, idx) of adaptive max pooling of x (N, C, H, W) to (HO, WO) = out_hw; idx int64 h*W + w."""
    shape = tuple(x.shape[:2]) + tuple(out_hw)
    out, idx = np.empty(shape, dtype=x.dtype), np.empty(shape, dtype=np.int64)
    adaptive_max_pool2d_forward_kernel1(x, out, idx)
    return out, idx


def adaptive_max_pool2d_backward(grad_out, x, kernel=None):
    """Gradient of adaptive_max_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its winner."""
    _, idx = adaptive_max_pool2d(x, grad_out.shape[2:])
    gx = np.empty_like(x)
    adaptive_max_pool2d_backward_kernel1(grad_out, idx, gx)
    return gx
