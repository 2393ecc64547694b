"""Pooling on the CPU (numbacnn.cpu.pool): Numba @njit kernels and their launchers, numbered as on CUDA.

Siblings: ``numbacnn.pool`` (the public functions: they check the arguments and call the launchers here),
``numbacnn.reference.pool`` (plain NumPy, the book's version), ``numbacnn.cuda.pool`` (the same launchers on the
GPU). Nothing here checks user input: arrays arrive contiguous, of one float dtype, with a checked geometry.

x (N, C, H, W) -> y (N, C, HO, WO), one plane at a time; windows and PyTorch's rules: ``numbacnn.pool``'s docstring.

KERNELS (public op -> numbers; ``kernel=None`` picks 2 where it fits, else 1):
    max_pool2d, min_pool2d   1  max_pool2d_forward_kernel1: one output at a time, any options (min: sign -1)
                             2  max_pool2d_forward_kernel2: 2x2 window, stride 2, no padding, dilation 1, every
                                window inside x (LeNet's pooling)
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
from .tiles import pool_max4_store, tile_lanes, tile_load_pairs

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
# Kernel 2: LeNet's pooling, 2x2 windows, stride 2, no padding, dilation 1, every window inside the input
# (HO = H // 2, WO = W // 2). Same results to the bit as kernel 1 (tested against it): the first maximum in
# row-major order wins (strict >), a NaN wins (the last NaN of the window), sums run in row-major order
# from 0. The windows do not overlap, so the backward passes need no scatter-add: each window's cells get
# 0, then its winner (max) or every cell (avg) gets its gradient.


@njit(inline="always")
def _winner_of_4(a, b, c, d):
    """Tap 0..3 of the window [a, b; c, d] that max pooling picks: the first maximum, or the last NaN.
    Compares in x's own dtype (no float64 conversion); LLVM turns the ifs into selects."""
    k, best = 0, a
    if b > best:
        k, best = 1, b
    if c > best:
        k, best = 2, c
    if d > best:
        k = 3
    if (a != a) | (b != b) | (c != c) | (d != d):  # rare: the last NaN wins
        k = 3 if d != d else (2 if c != c else (1 if b != b else 0))
    return k


@njit(inline="always")
def _window_winner(r0, r1, j, sign):
    """_winner_of_4 of window j of rows r0, r1 for max (sign 1) or min (sign -1) pooling."""
    if sign > 0:
        return _winner_of_4(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1])
    return _winner_of_4(-r0[2 * j], -r0[2 * j + 1], -r1[2 * j], -r1[2 * j + 1])


@njit(inline="always")
def _zero_margin(gx, n, c, h0, w0):
    """gx[n, c] = 0 in the rows from h0 and the columns from w0: the cells outside every 2x2 window."""
    H, W = gx.shape[2], gx.shape[3]
    zero = gx.dtype.type(0)
    for h in range(h0, H):
        for w in range(W):
            gx[n, c, h, w] = zero
    for h in range(h0):
        for w in range(w0, W):
            gx[n, c, h, w] = zero


@njit(parallel=PARALLEL, cache=True)
def max_pool2d_forward_kernel2(x, out, idx, sign):
    """max_pool2d_forward_kernel1 for a 2x2 window, stride 2, no padding, HO = H // 2, WO = W // 2: a tile of
    windows of one output row at a time (16 float32 / 8 float64; a row's last tile only as many as are left),
    their taps loaded as even and odd lanes of the two input rows (``tile_load_pairs``) and their winners
    picked and stored lane by lane with _winner_of_4's rule (``pool_max4_store``)."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    xf, of, idf = x.reshape(x.size), out.reshape(out.size), idx.reshape(idx.size)
    lanes = tile_lanes(of)
    for job in prange(N * C):  # plane (n, c)
        for i in range(HO):
            top = (job * H + 2 * i) * W  # input row 2i, flat
            for j0 in range(0, WO, lanes):  # windows j0 .. j0 + count - 1
                count = min(lanes, WO - j0)
                a, b = tile_load_pairs(xf, top + 2 * j0, 2 * count)
                c, d = tile_load_pairs(xf, top + W + 2 * j0, 2 * count)
                at = (job * HO + i) * WO + j0
                pool_max4_store(a, b, c, d, sign, of, at, idf, at, 2 * i * W + 2 * j0, W, count)


@njit(parallel=PARALLEL, cache=True)
def max_pool2d_backward_kernel2(gy, x, gx, sign):
    """Gradient of the 2x2 stride-2 max pool straight from x: the winner of each window gets 0 + gy, the rest 0."""
    N, C, H, W = x.shape
    HO, WO = gy.shape[2], gy.shape[3]
    zero = gx.dtype.type(0)
    for job in prange(N * C):
        n, c = job // C, job % C
        _zero_margin(gx, n, c, 2 * HO, 2 * WO)
        for i in range(HO):
            r0, r1 = x[n, c, 2 * i], x[n, c, 2 * i + 1]
            g0, g1 = gx[n, c, 2 * i], gx[n, c, 2 * i + 1]
            for j in range(2 * WO):
                g0[j] = zero
                g1[j] = zero
            for j in range(WO):  # one store at a computed address: no branch on the winner
                k = _window_winner(r0, r1, j, sign)
                gx[n, c, 2 * i + k // 2, 2 * j + k % 2] = zero + gy[n, c, i, j]  # 0 + g, as the general kernel


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def avg_pool2d_forward_kernel2(x, out, divisor):
    """avg_pool2d_forward_kernel1 for a 2x2 window, stride 2, no padding, full windows:
    (((0 + a) + b) + c) + d) / divisor."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    zero = x.dtype.type(0)
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            r0, r1 = x[n, c, 2 * i], x[n, c, 2 * i + 1]
            for j in range(WO):
                acc = (((zero + r0[2 * j]) + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]
                out[n, c, i, j] = acc / divisor


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def avg_pool2d_backward_kernel2(gy, gx, divisor):
    """Gradient of the 2x2 stride-2 average pool: every cell of window (i, j) gets 0 + gy[i, j] / divisor."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    zero = gx.dtype.type(0)
    for job in prange(N * C):
        n, c = job // C, job % C
        _zero_margin(gx, n, c, 2 * HO, 2 * WO)
        for i in range(HO):
            g0, g1 = gx[n, c, 2 * i], gx[n, c, 2 * i + 1]
            for j in range(WO):
                g = zero + gx.dtype.type(gy[n, c, i, j] / divisor)
                g0[2 * j] = g
                g0[2 * j + 1] = g
                g1[2 * j] = g
                g1[2 * j + 1] = g


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def avg_pool2d_sigmoid_backward_kernel2(gy, y, gx, divisor):
    """avg_pool2d_backward_kernel2, then sigmoid's backward from its output y (sigmoid_backward_from_y_kernel1),
    in one pass: gx = g * (1 - y) * y with g = 0 + gy[i, j] / divisor in window (i, j)'s cells and 0 outside
    every window; the same operations in the same order as the two kernels, so the same bits, without the
    full-size gradient in between (d2l LeNet's Sigmoid then AvgPool2d). Each pair of input rows takes its
    windows' g spread over a row first, so the rows themselves are plain elementwise loops (vectorized)."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    zero, one = gx.dtype.type(0), gx.dtype.type(1)
    for n in prange(N):
        spread = np.empty(W, gx.dtype)  # g of every cell of a row pair; 0 in the columns outside every window
        for c in range(C):
            for w in range(2 * WO, W):
                spread[w] = zero
            for h in range(H):
                if h % 2 == 0 and h < 2 * HO:
                    for j in range(WO):
                        g = zero + gx.dtype.type(gy[n, c, h // 2, j] / divisor)
                        spread[2 * j] = g
                        spread[2 * j + 1] = g
                elif h >= 2 * HO:  # a last row outside every window
                    for w in range(W):
                        spread[w] = zero
                yr, gr = y[n, c, h], gx[n, c, h]
                for w in range(W):
                    gr[w] = spread[w] * (one - yr[w]) * yr[w]


# ----------------------------------------------------------------------------------------------
# Launchers, the same names and signatures as numbacnn.cuda.pool: x, grad_out contiguous of one float dtype,
# indices int64; ``kernel`` None (the fastest that fits) or a number from KERNELS.


def _pick(kernel, geo, x_shape, op):
    """The kernel number to run: None picks 2 where it fits, else 1; a pinned 2 that does not fit is an error."""
    H, W = x_shape[2], x_shape[3]
    fits = (geo.kernel == (2, 2) and geo.stride == (2, 2) and geo.padding == (0, 0) and geo.dilation == (1, 1)
            and geo.out_hw == (H // 2, W // 2))  # the 2x2 stride-2 kernels: every window inside x
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


def avg_pool2d_sigmoid_backward(grad_out, y, geo, count_include_pad=True, divisor_override=0):
    """The gradient w.r.t. a sigmoid's input, for avg pooling of its output y: avg_pool2d_backward then sigmoid's
    backward from y, in one pass where kernel 2 fits (2x2 windows, stride 2); None where it does not."""
    if _pick(None, geo, y.shape, "avg_pool2d_backward") != 2:
        return None
    gx = np.empty_like(y)
    avg_pool2d_sigmoid_backward_kernel2(grad_out, y, gx, float(divisor_override or 4))
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
