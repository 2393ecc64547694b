"""Pooling's kernels 2 on the CPU (numbacnn.cpu.pool_2x2): LeNet's 2x2 windows with stride 2, and the one-pass
backward of a Sigmoid followed by such an average pooling.

``numbacnn.cpu.pool`` (kernels 1, the formulas, and the launchers) picks these where ``fits_2x2``; the one-pass
pair is run by ``numbacnn.pool.avg_pool2d_backward_after_sigmoid`` (``Sequential``'s Sigmoid + AvgPool2d).
Each is tested against kernel 1 (tests/test_kernels_pool.py) or the two ops it replaces (tests/test_nn.py).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .tiles import pool_max4_store, tile_lanes, tile_load_pairs


def fits_2x2(geo, x_shape):
    """Whether the kernels 2 take this pooling: a 2x2 window, stride 2, no padding, dilation 1, every window
    inside x (HO = H // 2, WO = W // 2)."""
    H, W = x_shape[2], x_shape[3]
    return (geo.kernel == (2, 2) and geo.stride == (2, 2) and geo.padding == (0, 0) and geo.dilation == (1, 1)
            and geo.out_hw == (H // 2, W // 2))


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


def avg_pool2d_sigmoid_backward(grad_out, y, geo, count_include_pad=True, divisor_override=0):
    """The gradient w.r.t. a sigmoid's input, for avg pooling of its output y: avg_pool2d_backward then sigmoid's
    backward from y, in one pass where the kernels 2 fit (``fits_2x2``); None where they do not."""
    if not fits_2x2(geo, y.shape):
        return None
    gx = np.empty_like(y)
    avg_pool2d_sigmoid_backward_kernel2(grad_out, y, gx, float(divisor_override or 4))
    return gx
