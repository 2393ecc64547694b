"""linear on the CPU, kernels 2 and 3 (numbacnn.cpu.linear_tiles): the forward in register blocks, the backward on
tiles.

Kernel 1, the formula, is in ``numbacnn.cpu.functional`` (which launches these); the public op is
``numbacnn.functional.linear``, the book-like NumPy version ``numbacnn.reference.functional.linear`` and the
GPU kernels ``numbacnn.cuda.functional``.

    linear_forward_kernel2      y = x @ w.T + b, four examples times three output features per block
    linear_forward_kernel3      the same, a tile of examples (one per lane) times six output features per block
    linear_grad_input_kernel2   gx = gy @ w      with matmul_tiles (six rows of gx times one tile of columns)
    linear_grad_weight_kernel2  gw = gy.T @ x    with matmul_tiles; gb = sum over the batch of gy

Kernel 2's forward is one product whose innermost loop is a dot product over contiguous rows. ``GEMM_MATH``
(``numbacnn.cpu.tiles``) lets LLVM use FMAs and split each sum into vector lanes (reordering its additions, as
every BLAS does); NaN and infinity still propagate.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .tiles import (GEMM_MATH, examples_to_lanes, lanes_to_examples, tile_add, tile_add_at, tile_fill, tile_fma,
                    tile_lanes, tile_load, tile_store)

# The forward: a block of 4 rows of x times 3 rows of w keeps twelve sums in registers, so each loaded value is
# used three or four times (4 x 3 measured fastest of 2x4, 4x2, 3x4, 4x4, 6x2, 8x2 at LeNet's shapes: more sums
# spill out of AVX2's 16 registers).


@njit(parallel=PARALLEL, cache=True, fastmath=GEMM_MATH, error_model="numpy")
def linear_forward_kernel2(x, w, b, y):
    """y[n, o] = b[o] + sum_k x[n, k] * w[o, k], for four examples and three output features at a time."""
    N, I = x.shape
    O = w.shape[0]
    zero = y.dtype.type(0)
    for quad in prange((N + 3) // 4):
        n0 = 4 * quad
        n1, n2, n3 = min(n0 + 1, N - 1), min(n0 + 2, N - 1), min(n0 + 3, N - 1)  # a short last block
        x0, x1, x2, x3 = x[n0], x[n1], x[n2], x[n3]                             # repeats its last example
        o = 0
        while o + 3 <= O:
            w0, w1, w2 = w[o], w[o + 1], w[o + 2]
            s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = s30 = s31 = s32 = zero
            for k in range(I):
                s00 += x0[k] * w0[k]
                s01 += x0[k] * w1[k]
                s02 += x0[k] * w2[k]
                s10 += x1[k] * w0[k]
                s11 += x1[k] * w1[k]
                s12 += x1[k] * w2[k]
                s20 += x2[k] * w0[k]
                s21 += x2[k] * w1[k]
                s22 += x2[k] * w2[k]
                s30 += x3[k] * w0[k]
                s31 += x3[k] * w1[k]
                s32 += x3[k] * w2[k]
            y[n0, o], y[n0, o + 1], y[n0, o + 2] = s00 + b[o], s01 + b[o + 1], s02 + b[o + 2]
            y[n1, o], y[n1, o + 1], y[n1, o + 2] = s10 + b[o], s11 + b[o + 1], s12 + b[o + 2]
            y[n2, o], y[n2, o + 1], y[n2, o + 2] = s20 + b[o], s21 + b[o + 1], s22 + b[o + 2]
            y[n3, o], y[n3, o + 1], y[n3, o + 2] = s30 + b[o], s31 + b[o + 1], s32 + b[o + 2]
            o += 3
        for o in range(o, O):  # the last O % 3 features
            s0 = s1 = s2 = s3 = zero
            for k in range(I):
                s0 += x0[k] * w[o, k]
                s1 += x1[k] * w[o, k]
                s2 += x2[k] * w[o, k]
                s3 += x3[k] * w[o, k]
            y[n0, o], y[n1, o], y[n2, o], y[n3, o] = s0 + b[o], s1 + b[o], s2 + b[o], s3 + b[o]


# The two backward products are "c = A @ b" with b's rows contiguous: grad_x = gy @ w and grad_w = gy.T @ x.
# There the micro-kernel holds six rows of c times one tile of its columns as six running sums in
# registers; per k it loads one tile of b's row k and adds it times six numbers of A (broadcast), as in
# the convolution. Neither operand is transposed: A is read in place with strides (stride_k, stride_m).
# The sums run over blocks of _KBLOCK values of k and are then added to c, which keeps the rounding
# error of a long sum (256 examples for grad_w) below PyTorch's; one running sum over all of k had
# about 1.7 times PyTorch's error (LeNet's 400 -> 120 layer, against a float64 product).
# The last block of rows and the last tile of columns are moved back to end at M and P, so they
# overlap the one before and recompute the same values; one thread does both, so its "add to c"
# never meets another thread's.

_KBLOCK = 64


@njit(inline="always")
def _fma6_rows(a0, a1, a2, a3, a4, a5, af, stride_k, stride_m, m0, bf, P, p0, k0, k1):
    """a_i += b[k, p0 : p0 + lanes] * A[m0 + i, k] for k0 <= k < k1, with A[m, k] = af[k * stride_k + m * stride_m].
    The convolution's own micro-kernel computes the same with k's offsets read from an array; sharing it here
    measured 5-10 % slower (and 3 microseconds more per call at small shapes), so the linear layer keeps its own."""
    for k in range(k0, k1):
        b_row = tile_load(bf, k * P + p0)
        at = k * stride_k + m0 * stride_m
        a0 = tile_fma(a0, b_row, af, at)
        a1 = tile_fma(a1, b_row, af, at + stride_m)
        a2 = tile_fma(a2, b_row, af, at + 2 * stride_m)
        a3 = tile_fma(a3, b_row, af, at + 3 * stride_m)
        a4 = tile_fma(a4, b_row, af, at + 4 * stride_m)
        a5 = tile_fma(a5, b_row, af, at + 5 * stride_m)
    return a0, a1, a2, a3, a4, a5


@njit(inline="always")
def _put(cf, i, tile, first):
    """cf[i : i + lanes] = tile if first, else += tile."""
    if first:
        tile_store(cf, i, tile)
    else:
        tile_add_at(cf, i, tile)


@njit(inline="always")
def _matmul_columns(af, stride_k, stride_m, M, Kd, bf, P, p0, cf):
    """c[:, p0 : p0 + lanes] = A @ b[:, p0 : p0 + lanes], six rows of c at a time."""
    zero = tile_fill(cf.dtype.type(0))
    for mb in range((M + 5) // 6):
        m0 = min(6 * mb, M - 6)
        for k0 in range(0, Kd, _KBLOCK):
            a0, a1, a2, a3, a4, a5 = _fma6_rows(zero, zero, zero, zero, zero, zero,
                                                af, stride_k, stride_m, m0, bf, P, p0, k0, min(k0 + _KBLOCK, Kd))
            first = k0 == 0
            _put(cf, m0 * P + p0, a0, first)
            _put(cf, (m0 + 1) * P + p0, a1, first)
            _put(cf, (m0 + 2) * P + p0, a2, first)
            _put(cf, (m0 + 3) * P + p0, a3, first)
            _put(cf, (m0 + 4) * P + p0, a4, first)
            _put(cf, (m0 + 5) * P + p0, a5, first)


@njit(parallel=PARALLEL, cache=True, fastmath=GEMM_MATH, error_model="numpy")
def matmul_tiles(a, stride_k, stride_m, b, c):
    """c (M, P) = A @ b (Kd, P) with A[m, k] = a.flat[k * stride_k + m * stride_m]; all C-contiguous, M >= 6,
    P >= lanes, Kd >= 1. The threads split c's columns, a tile each."""
    M, P = c.shape
    Kd = b.shape[0]
    af, bf, cf = a.reshape(-1), b.reshape(-1), c.reshape(-1)
    lanes = tile_lanes(cf)
    full = P // lanes
    for column_tile in prange(full):
        # the thread of the last full tile also does the last partial one, moved back to end at P (one call
        # site: the micro-kernel is inlined once, which halves this kernel's compile time)
        for part in range(2 if column_tile == full - 1 and P % lanes else 1):
            _matmul_columns(af, stride_k, stride_m, M, Kd, bf, P, column_tile * lanes if part == 0 else P - lanes, cf)


@njit(cache=True, error_model="numpy")
def tiles_fit(M, Kd, c):
    """Whether matmul_tiles can compute c (M, P) with Kd terms per sum."""
    return M >= 6 and Kd >= 1 and c.shape[1] >= tile_lanes(c.reshape(-1))


@njit(cache=True, error_model="numpy")
def linear_grad_input_kernel2(gy, w, gx):
    """gx[n, k] = sum_o gy[n, o] * w[o, k]  (gx = gy @ w: A = gy read row by row, b = w)."""
    N, O = gy.shape
    if tiles_fit(N, O, gx):
        # an int64 stride 1 (np.int64, not the literal 1): one compile serves both gradients. Literal strides made
        # two specializations, 5-15 % faster on LeNet's layers but 1.3 s more compiling on a first run.
        matmul_tiles(np.ascontiguousarray(gy), np.int64(1), O, np.ascontiguousarray(w), gx)
    else:  # small shapes: the forward kernel with a = gy, b = w.T (kernel 3: training compiles it anyway)
        linear_forward_kernel3(gy, np.ascontiguousarray(w.T), np.zeros(w.shape[1], gx.dtype), gx)


@njit(cache=True, error_model="numpy")
def linear_grad_weight_kernel2(gy, x, gw, gb):
    """gw[o, k] = sum_n gy[n, o] * x[n, k]  (gw = gy.T @ x: A = gy read column by column, b = x);
    gb[o] = sum_n gy[n, o]."""
    N, O = gy.shape
    if tiles_fit(O, N, gw):
        matmul_tiles(np.ascontiguousarray(gy), O, np.int64(1), np.ascontiguousarray(x), gw)
    else:  # small shapes: the forward kernel with a = gy.T, b = x.T
        linear_forward_kernel3(np.ascontiguousarray(gy.T), np.ascontiguousarray(x.T), np.zeros(x.shape[1], gw.dtype),
                               gw)
    gb[:] = 0.0
    for n in range(N):
        gb += gy[n]


@njit(inline="always")
def _fma6_at_rows(zero, wf, I, o0, o1, o2, o3, o4, o5, xt, lanes, k0, k1):
    """Six sums from zero, p_i = sum_{k0 <= k < k1} xt[k * lanes : ... + lanes] * w[o_i, k] (wf: w flat, rows I
    long): one tile of x's column k serves six fused multiply-adds. tiles.fma6_at computes the same with k's
    offsets read from an array; used here it measured 10-15 % slower (120 -> 84: 33.7 against 29-30 µs)."""
    p0 = p1 = p2 = p3 = p4 = p5 = zero
    for k in range(k0, k1):
        col = tile_load(xt, k * lanes)
        p0, p1 = tile_fma(p0, col, wf, o0 * I + k), tile_fma(p1, col, wf, o1 * I + k)
        p2, p3 = tile_fma(p2, col, wf, o2 * I + k), tile_fma(p3, col, wf, o3 * I + k)
        p4, p5 = tile_fma(p4, col, wf, o4 * I + k), tile_fma(p5, col, wf, o5 * I + k)
    return p0, p1, p2, p3, p4, p5


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def linear_forward_kernel3(x, w, b, y):
    """y[n, o] = b[o] + sum_k x[n, k] * w[o, k] for a tile of examples at a time (16 float32 / 8 float64, one per
    lane): six output features' sums in registers over all k (``_fma6_at_rows``: one tile of x's column k, six
    weights broadcast from w's rows, read in place). x's tile goes into the lanes and y's back out with
    ``tile_transpose``, in the thread that owns the tile: no serial transpose of w, no horizontal sums."""
    N, I = x.shape
    O = w.shape[0]
    lanes = tile_lanes(b)
    wf, xf, yf = w.reshape(w.size), x.reshape(x.size), y.reshape(y.size)
    zero = tile_fill(y.dtype.type(0))
    for blk in prange((N + lanes - 1) // lanes):
        n0 = blk * lanes
        nl = min(lanes, N - n0)  # examples in this tile; the rest of the lanes sum zeros
        xt = np.zeros(I * lanes, x.dtype)  # xt[k * lanes + lane] = x[n0 + lane, k]
        examples_to_lanes(xf, n0, nl, I, xt, lanes)
        yt = np.empty(O * lanes, y.dtype)
        for o0 in range(0, O, 6):  # features o0 .. o0 + 5; past O a block repeats the last feature, unstored
            o1, o2, o3 = min(o0 + 1, O - 1), min(o0 + 2, O - 1), min(o0 + 3, O - 1)
            o4, o5 = min(o0 + 4, O - 1), min(o0 + 5, O - 1)
            a0, a1, a2 = tile_fill(b[o0]), tile_fill(b[o1]), tile_fill(b[o2])
            a3, a4, a5 = tile_fill(b[o3]), tile_fill(b[o4]), tile_fill(b[o5])
            for k0 in range(0, I, _KBLOCK):  # blocks of k summed from zero, then added: less rounding error
                p0, p1, p2, p3, p4, p5 = _fma6_at_rows(zero, wf, I, o0, o1, o2, o3, o4, o5, xt, lanes, k0,
                                                       min(I, k0 + _KBLOCK))
                a0, a1, a2 = tile_add(a0, p0), tile_add(a1, p1), tile_add(a2, p2)
                a3, a4, a5 = tile_add(a3, p3), tile_add(a4, p4), tile_add(a5, p5)
            tile_store(yt, o0 * lanes, a0)  # in order: a repeated feature's store comes after its own
            tile_store(yt, o1 * lanes, a1)
            tile_store(yt, o2 * lanes, a2)
            tile_store(yt, o3 * lanes, a3)
            tile_store(yt, o4 * lanes, a4)
            tile_store(yt, o5 * lanes, a5)
        lanes_to_examples(yt, yf, n0, nl, O, lanes)
