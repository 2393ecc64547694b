"""Fully connected layer, activations and cross-entropy: Numba CPU kernels and the public API.

Each op has ``<name>_backward(grad_out, <inputs>)`` returning the gradients of its array inputs in order.
Shapes: linear x (N, I), weight (O, I), bias (O,) -> (N, O); activations keep any shape;
cross_entropy logits (N, K), target (N,) integer labels -> scalar mean loss.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ._checks import as_float, check_target, common_dtype, cuda_module, is_device_array
from .cpu.tiles import tile_add_at, tile_fill, tile_fma, tile_lanes, tile_load, tile_store
from .conv import GEMM_MATH

# ----------------------------------------------------------------------------------------------
# CPU kernels


@njit(parallel=True, cache=True)
def linear_forward_cpu_simple(x, w, b, y):
    """y[n, o] = b[o] + sum_k x[n, k] * w[o, k]."""
    N, I = x.shape
    O = w.shape[0]
    for n in prange(N):
        for o in range(O):
            acc = 0.0
            for k in range(I):
                acc += x[n, k] * w[o, k]
            y[n, o] = acc + b[o]


@njit(parallel=True, cache=True)
def linear_grad_input_cpu_simple(gy, w, gx):
    """gx[n, k] = sum_o gy[n, o] * w[o, k]."""
    N, O = gy.shape
    I = w.shape[1]
    for n in prange(N):
        for k in range(I):
            gx[n, k] = 0.0
        for o in range(O):
            g = gy[n, o]
            for k in range(I):
                gx[n, k] += g * w[o, k]


@njit(parallel=True, cache=True)
def linear_grad_weight_cpu_simple(gy, x, gw, gb):
    """gw[o, k] = sum_n gy[n, o] * x[n, k];  gb[o] = sum_n gy[n, o]."""
    N, O = gy.shape
    I = x.shape[1]
    for o in prange(O):
        for k in range(I):
            gw[o, k] = 0.0
        acc = 0.0
        for n in range(N):
            g = gy[n, o]
            acc += g
            for k in range(I):
                gw[o, k] += g * x[n, k]
        gb[o] = acc


# Fast versions of the three linear kernels. All three are one product "out = a @ b.T + bias" whose
# innermost loop is a dot product over contiguous rows; a block of 4 rows of a times 3 rows of b
# keeps twelve sums in registers, so each loaded value is used three or four times (4 x 3 measured
# fastest of 2x4, 4x2, 3x4, 4x4, 6x2, 8x2 at LeNet's shapes: more sums spill out of AVX2's 16 registers).
# GEMM_MATH (from conv) lets LLVM use FMAs and split each sum into vector lanes (reordering its additions,
# as every BLAS does); NaN and infinity still propagate.


@njit(parallel=True, cache=True, fastmath=GEMM_MATH)
def linear_forward_cpu(x, w, b, y):
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
# the convolution (_fma6). Neither operand is transposed: A is read in place with strides (sk, sm).
# The sums run over blocks of _KBLOCK values of k and are then added to c, which keeps the rounding
# error of a long sum (256 examples for grad_w) below PyTorch's; one running sum over all of k had
# about 1.7 times PyTorch's error (LeNet's 400 -> 120 layer, against a float64 product).
# The last block of rows and the last tile of columns are moved back to end at M and P, so they
# overlap the one before and recompute the same values; one thread does both, so its "add to c"
# never meets another thread's.

_KBLOCK = 64


@njit(inline="always")
def _fma6_rows(a0, a1, a2, a3, a4, a5, af, sk, sm, m0, bf, P, p0, k0, k1):
    """a_i += b[k, p0 : p0 + lanes] * A[m0 + i, k] for k0 <= k < k1, with A[m, k] = af[k * sk + m * sm]. The
    convolution's _fma6_at computes the same with k's offsets read from an array; sharing it here measured
    5-10 % slower (and 3 microseconds more per call at small shapes), so the linear layer keeps its own."""
    for k in range(k0, k1):
        s = tile_load(bf, k * P + p0)
        r = k * sk + m0 * sm
        a0 = tile_fma(a0, s, af, r)
        a1 = tile_fma(a1, s, af, r + sm)
        a2 = tile_fma(a2, s, af, r + 2 * sm)
        a3 = tile_fma(a3, s, af, r + 3 * sm)
        a4 = tile_fma(a4, s, af, r + 4 * sm)
        a5 = tile_fma(a5, s, af, r + 5 * sm)
    return a0, a1, a2, a3, a4, a5


@njit(inline="always")
def _put(cf, i, t, first):
    """cf[i : i + lanes] = t if first, else += t."""
    if first:
        tile_store(cf, i, t)
    else:
        tile_add_at(cf, i, t)


@njit(inline="always")
def _matmul_columns(af, sk, sm, M, Kd, bf, P, p0, cf):
    """c[:, p0 : p0 + lanes] = A @ b[:, p0 : p0 + lanes], six rows of c at a time."""
    zero = tile_fill(cf.dtype.type(0))
    for mb in range((M + 5) // 6):
        m0 = min(6 * mb, M - 6)
        for k0 in range(0, Kd, _KBLOCK):
            a0, a1, a2, a3, a4, a5 = _fma6_rows(zero, zero, zero, zero, zero, zero,
                                                af, sk, sm, m0, bf, P, p0, k0, min(k0 + _KBLOCK, Kd))
            first = k0 == 0
            _put(cf, m0 * P + p0, a0, first)
            _put(cf, (m0 + 1) * P + p0, a1, first)
            _put(cf, (m0 + 2) * P + p0, a2, first)
            _put(cf, (m0 + 3) * P + p0, a3, first)
            _put(cf, (m0 + 4) * P + p0, a4, first)
            _put(cf, (m0 + 5) * P + p0, a5, first)


@njit(parallel=True, cache=True, fastmath=GEMM_MATH)
def _matmul_tiles(a, sk, sm, b, c):
    """c (M, P) = A @ b (Kd, P) with A[m, k] = a.flat[k * sk + m * sm]; all C-contiguous, M >= 6, P >= lanes,
    Kd >= 1. The threads split c's columns, a tile each."""
    M, P = c.shape
    Kd = b.shape[0]
    af, bf, cf = a.reshape(-1), b.reshape(-1), c.reshape(-1)
    L = tile_lanes(cf)
    full = P // L
    for t in prange(full):
        _matmul_columns(af, sk, sm, M, Kd, bf, P, t * L, cf)
        if t == full - 1 and P % L:  # the last partial tile, moved back to end at P
            _matmul_columns(af, sk, sm, M, Kd, bf, P, P - L, cf)


@njit(cache=True)
def _tiles_fit(M, Kd, c):
    """Whether _matmul_tiles can compute c (M, P) with Kd terms per sum."""
    return M >= 6 and Kd >= 1 and c.shape[1] >= tile_lanes(c.reshape(-1))


@njit(cache=True)
def linear_grad_input_cpu(gy, w, gx):
    """gx[n, k] = sum_o gy[n, o] * w[o, k]  (gx = gy @ w: A = gy read row by row, b = w)."""
    N, O = gy.shape
    if _tiles_fit(N, O, gx):
        _matmul_tiles(np.ascontiguousarray(gy), 1, O, np.ascontiguousarray(w), gx)
    else:  # small shapes: the forward kernel with a = gy, b = w.T
        linear_forward_cpu(gy, np.ascontiguousarray(w.T), np.zeros(w.shape[1], gx.dtype), gx)


@njit(cache=True)
def linear_grad_weight_cpu(gy, x, gw, gb):
    """gw[o, k] = sum_n gy[n, o] * x[n, k]  (gw = gy.T @ x: A = gy read column by column, b = x);
    gb[o] = sum_n gy[n, o]."""
    N, O = gy.shape
    if _tiles_fit(O, N, gw):
        _matmul_tiles(np.ascontiguousarray(gy), O, 1, np.ascontiguousarray(x), gw)
    else:  # small shapes: the forward kernel with a = gy.T, b = x.T
        linear_forward_cpu(np.ascontiguousarray(gy.T), np.ascontiguousarray(x.T), np.zeros(x.shape[1], gw.dtype), gw)
    gb[:] = 0.0
    for n in range(N):
        gb += gy[n]


@njit(parallel=True, cache=True)
def relu_cpu(x, y):
    """y = x where x > 0, else 0; flat views of the contiguous arrays, split across the threads."""
    xf, yf = x.reshape(-1), y.reshape(-1)
    zero = yf.dtype.type(0)
    for i in prange(xf.size):
        yf[i] = xf[i] if xf[i] > 0 else zero


@njit(parallel=True, cache=True)
def relu_backward_cpu(gy, x, gx):
    """gx = gy where x > 0, else 0."""
    gyf, xf, gxf = gy.reshape(-1), x.reshape(-1), gx.reshape(-1)
    zero = gxf.dtype.type(0)
    for i in prange(xf.size):
        gxf[i] = gyf[i] if xf[i] > 0 else zero


@njit(cache=True)
def sigmoid_cpu_simple(x, y):
    for i in range(x.size):
        y.flat[i] = 1.0 / (1.0 + math.exp(-x.flat[i]))


@njit(cache=True)
def sigmoid_backward_cpu_simple(gy, x, gx):
    for i in range(x.size):
        s = 1.0 / (1.0 + math.exp(-x.flat[i]))
        gx.flat[i] = gy.flat[i] * s * (1.0 - s)


# Sigmoid with an exp that vectorizes (math.exp is a libm call per element, which LLVM cannot
# vectorize): exp(t) = 2**k * exp(r) with k = round(t / ln 2) and |r| <= ln(2) / 2, exp(r) from its
# Taylor series, 2**k built from its bits. float64 data: computed in float64, series to r**12 (relative
# error below 1e-16). float32 data: computed in float32 (eight lanes per instruction instead of four),
# series to r**7 (truncation 5e-9) summed in Estrin's order (10 % faster than Horner's); the sigmoid is
# then at most 2.2 ulps from the exact one (PyTorch's: 2.0 ulps; measured on 1.1 million values).
# error_model="numpy" drops Python's zero-division check, which would stop the loops from vectorizing.

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two so k * ln 2 is exact to double precision
_LN2_LO = 1.90821492927058770002e-10
_ROUNDER = 6755399441055744.0  # 1.5 * 2**52: t + _ROUNDER rounds t to an integer kept in the low mantissa bits
_LOG2E_F = np.float32(_LOG2E)
_LN2_HI_F = np.float32(0.693359375)  # 0x3f318000: k * _LN2_HI_F is exact in float32 for |k| < 2**11
_LN2_LO_F = np.float32(-2.12194440e-4)
_ROUNDER_F = np.float32(12582912.0)  # 1.5 * 2**23
_F32_TAYLOR = tuple(np.float32(1 / math.factorial(j)) for j in range(2, 8))  # 1/2!, ..., 1/7!


@intrinsic
def _bitcast(typingctx, value, like):
    """``value``'s bits reinterpreted as the type of ``like`` (int64 <-> float64, int32 <-> float32)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))
    return like(value, like), codegen


@njit(inline="always", fastmath={"contract"})
def _exp(t):
    """exp(t) for a float64 t: 0 below -708, inf above 709, NaN for NaN."""
    u = min(max(t, -708.0), 709.0)
    z = u * _LOG2E + _ROUNDER
    k = z - _ROUNDER  # round(u / ln 2), and as an integer: bits(z) - bits(_ROUNDER)
    r = (u - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 479001600.0
    for d in (39916800.0, 3628800.0, 362880.0, 40320.0, 5040.0, 720.0, 120.0, 24.0, 6.0, 2.0, 1.0, 1.0):
        p = p * r + 1.0 / d
    kbits = _bitcast(z, np.int64(0)) - _bitcast(_ROUNDER, np.int64(0))
    e = p * _bitcast((kbits + 1023) << 52, 0.0)
    if t < -708.0:
        e = 0.0
    if t > 709.0:
        e = math.inf
    if t != t:
        e = t
    return e


@njit(inline="always", fastmath={"contract"})
def _exp_f32(t):
    """exp(t) for a float32 t: clamped to -87.3 below (~1e-38), inf above 88.3 (2**k must stay finite), NaN for NaN."""
    u = min(max(t, np.float32(-87.3)), np.float32(88.3))
    z = u * _LOG2E_F + _ROUNDER_F
    k = z - _ROUNDER_F
    r = (u - k * _LN2_HI_F) - k * _LN2_LO_F
    r2 = r * r  # exp(r) = 1 + r + r**2 * h(r), h's six terms summed in pairs (Estrin): a shorter chain than Horner's
    c2, c3, c4, c5, c6, c7 = _F32_TAYLOR
    h = (c2 + r * c3) + r2 * (c4 + r * c5) + (r2 * r2) * (c6 + r * c7)
    p = np.float32(1) + (r + r2 * h)
    kbits = _bitcast(z, np.int32(0)) - _bitcast(_ROUNDER_F, np.int32(0))  # k (Numba widens int32 sums)
    e = p * _bitcast(np.int32((kbits + 127) << 23), np.float32(0))
    if t > np.float32(88.3):
        e = np.float32(math.inf)
    if t != t:
        e = t
    return e


def _exp_like(t):
    """exp(t) in t's own precision: _exp for float64, _exp_f32 for float32 (picked when Numba compiles)."""
    return math.exp(t)


@overload(_exp_like, inline="always")
def _exp_like_typed(t):
    if t == types.float32:
        return lambda t: _exp_f32(t)
    return lambda t: _exp(t)


@njit(parallel=True, cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_cpu(x, y):
    """y = 1 / (1 + exp(-x)), in x's precision (float32 data: eight lanes per instruction)."""
    xf, yf = x.reshape(-1), y.reshape(-1)
    one = yf.dtype.type(1)
    for i in prange(xf.size):
        yf[i] = one / (one + _exp_like(-xf[i]))


@njit(parallel=True, cache=True, fastmath={"contract"}, error_model="numpy")
def sigmoid_backward_cpu(gy, x, gx):
    """gx = gy * s * (1 - s) with s = sigmoid(x), in x's precision; where s is near 1, 1 - s is taken as
    e * s (e = exp(-x)), which does not cancel."""
    gyf, xf, gxf = gy.reshape(-1), x.reshape(-1), gx.reshape(-1)
    one = gxf.dtype.type(1)
    for i in prange(xf.size):
        e = _exp_like(-xf[i])
        s = one / (one + e)
        gxf[i] = gyf[i] * s * (e * s if e < one else one - s)


@njit(parallel=True, cache=True)
def sigmoid_backward_from_y_cpu(gy, y, gx):
    """gx = gy * (1 - y) * y from the forward's output y = sigmoid(x): no exp (PyTorch's formula and order)."""
    gyf, yf, gxf = gy.reshape(-1), y.reshape(-1), gx.reshape(-1)
    one = yf.dtype.type(1)
    for i in prange(yf.size):
        gxf[i] = gyf[i] * (one - yf[i]) * yf[i]


@njit(parallel=True, cache=True)
def tanh_backward_from_y_cpu(gy, y, gx):
    """gx = gy * (1 - y * y) from the forward's output y = tanh(x) (PyTorch's formula)."""
    gyf, yf, gxf = gy.reshape(-1), y.reshape(-1), gx.reshape(-1)
    one = yf.dtype.type(1)
    for i in prange(yf.size):
        gxf[i] = gyf[i] * (one - yf[i] * yf[i])


@njit(cache=True)
def tanh_cpu(x, y):
    for i in range(x.size):
        y.flat[i] = math.tanh(x.flat[i])


@njit(cache=True)
def tanh_backward_cpu(gy, x, gx):
    for i in range(x.size):
        t = math.tanh(x.flat[i])
        gx.flat[i] = gy.flat[i] * (1.0 - t * t)


@njit(cache=True)
def cross_entropy_cpu(logits, target):
    """mean_n [ logsumexp(logits[n]) - logits[n, target[n]] ], with the row max subtracted first."""
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        m = logits[n, 0]
        for k in range(1, K):
            m = max(m, logits[n, k])
        s = 0.0
        for k in range(K):
            s += math.exp(logits[n, k] - m)
        total += m + math.log(s) - logits[n, target[n]]
    return total / N


# The fast forward: the label check fused in (one pass over the labels instead of NumPy's min and max), and
# the exps of all N*K shifted logits in one flat loop that vectorizes (_exp_like, as sigmoid's) where a
# libm call per element does not. Returns (loss, -1), or (nan, n) for the first example n with a bad label.


@njit(inline="always")
def _ce_shifted(logits, target):
    """(first bad label's row or -1, logits - row max, row max)."""
    N, K = logits.shape
    z = np.empty((N, K), logits.dtype)
    mx = np.empty(N, logits.dtype)
    for n in range(N):
        if target[n] < 0 or target[n] >= K:
            return n, z, mx
    for n in range(N):
        m = logits[n, 0]
        for k in range(1, K):
            m = max(m, logits[n, k])
        mx[n] = m
        for k in range(K):
            z[n, k] = logits[n, k] - m
    return -1, z, mx


@njit(inline="always")
def _ce_mean(logits, target, e, mx):
    """mean_n [ row max + log(sum_k e[n, k]) - logits[n, target[n]] ], summed in float64."""
    N, K = logits.shape
    total = 0.0
    for n in range(N):
        s = 0.0
        for k in range(K):
            s += e[n, k]
        total += mx[n] + math.log(s) - logits[n, target[n]]
    return total / N


@njit(cache=True, fastmath={"contract"}, error_model="numpy")
def cross_entropy_cpu_fused(logits, target):
    """cross_entropy_cpu with the label check fused in -> (loss, first bad row or -1)."""
    bad, z, mx = _ce_shifted(logits, target)
    if bad >= 0:
        return np.nan, bad
    zf = z.reshape(-1)
    for i in range(zf.size):
        zf[i] = _exp_like(zf[i])
    return _ce_mean(logits, target, z, mx), -1


@njit(cache=True)
def cross_entropy_backward_cpu(grad, logits, target, gl):
    """gl[n, k] = grad * (softmax(logits[n])[k] - [k == target[n]]) / N."""
    N, K = logits.shape
    for n in range(N):
        m = logits[n, 0]
        for k in range(1, K):
            m = max(m, logits[n, k])
        s = 0.0
        for k in range(K):
            s += math.exp(logits[n, k] - m)
        for k in range(K):
            p = math.exp(logits[n, k] - m) / s
            gl[n, k] = grad * (p - (1.0 if k == target[n] else 0.0)) / N


# ----------------------------------------------------------------------------------------------
# Public API


def _host(x, name, target, ndim=None):
    if is_device_array(x):
        raise TypeError(f"{name} is a CUDA device array: use target='cuda' (or copy it to the host)")
    return as_float(x, name, ndim)


def _check_linear(x, weight, bias):
    x = as_float(x, "x", 2)
    weight = as_float(weight, "weight", 2)
    bias = None if bias is None else as_float(bias, "bias", 1)
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but weight expects {weight.shape[1]} (weight shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    dt = common_dtype(x, weight, bias)
    return x.astype(dt, copy=False), weight.astype(dt, copy=False), None if bias is None else bias.astype(dt, copy=False)


def linear(x, weight, bias=None, *, target="cpu"):
    """x (N, I) @ weight (O, I).T + bias (O,) -> (N, O)."""
    if check_target(target) == "cuda":
        return cuda_module().linear(x, weight, bias)
    x, weight, bias = _check_linear(x, weight, bias)
    b = np.zeros(weight.shape[0], x.dtype) if bias is None else bias
    y = np.empty((x.shape[0], weight.shape[0]), x.dtype)
    linear_forward_cpu(x, weight, b, y)
    return y


def linear_backward(grad_out, x, weight, bias=None, *, target="cpu"):
    """(grad_x (N, I), grad_weight (O, I), grad_bias (O,) or None)."""
    if check_target(target) == "cuda":
        return cuda_module().linear_backward(grad_out, x, weight, bias)
    x, weight, bias = _check_linear(x, weight, bias)
    gy = as_float(grad_out, "grad_out", 2).astype(x.dtype, copy=False)
    if gy.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"grad_out must have shape {(x.shape[0], weight.shape[0])}, got {gy.shape}")
    x, weight, gy = np.ascontiguousarray(x), np.ascontiguousarray(weight), np.ascontiguousarray(gy)  # read flat
    gx = np.empty_like(x)
    linear_grad_input_cpu(gy, weight, gx)
    gw = np.empty_like(weight)
    gb = np.empty(weight.shape[0], x.dtype)
    linear_grad_weight_cpu(gy, x, gw, gb)
    return gx, gw, (None if bias is None else gb)


def _unary(kernel, cuda_name):
    def forward(x, *, target="cpu"):
        if check_target(target) == "cuda":
            return getattr(cuda_module(), cuda_name)(x)
        x = _host(x, "x", target)
        y = np.empty_like(x)
        kernel(x, y)
        return y
    forward.__name__ = forward.__qualname__ = cuda_name
    return forward


def _apply_backward(kernel, grad_out, a, name):
    """kernel(grad_out, a, gx) -> gx, with grad_out checked against a's shape (a is x or the forward's y)."""
    gy = as_float(grad_out, "grad_out").astype(a.dtype, copy=False)
    if gy.shape != a.shape:
        raise ValueError(f"grad_out must have {name}'s shape {a.shape}, got {gy.shape}")
    gx = np.empty_like(a)
    kernel(gy, a, gx)
    return gx


def _unary_backward(kernel, cuda_name, from_y=None):
    """The backward of an elementwise op; with ``from_y`` it also takes ``y=`` (the forward's output)."""
    def backward(grad_out, x, *, target="cpu"):
        if check_target(target) == "cuda":
            return getattr(cuda_module(), cuda_name)(grad_out, x)
        return _apply_backward(kernel, grad_out, _host(x, "x", target), "x")

    def backward_from_y(grad_out, x=None, *, y=None, target="cpu"):
        if y is None:
            if x is None:
                raise TypeError(f"{cuda_name} needs x or y (the forward's output), got neither")
            return backward(grad_out, x, target=target)
        if check_target(target) == "cuda":
            return getattr(cuda_module(), cuda_name)(grad_out, x, y=y)
        if x is not None and np.shape(x) != np.shape(y):
            raise ValueError(f"y must have x's shape {np.shape(x)}, got {np.shape(y)}")
        return _apply_backward(from_y, grad_out, _host(y, "y", target), "y")

    f = backward if from_y is None else backward_from_y
    f.__name__ = f.__qualname__ = cuda_name
    return f


relu = _unary(relu_cpu, "relu")
relu.__doc__ = "max(x, 0), elementwise."
relu_backward = _unary_backward(relu_backward_cpu, "relu_backward")
relu_backward.__doc__ = "grad_out where x > 0, else 0 (PyTorch's choice at x == 0)."
sigmoid = _unary(sigmoid_cpu, "sigmoid")
sigmoid.__doc__ = "1 / (1 + exp(-x)), elementwise."
sigmoid_backward = _unary_backward(sigmoid_backward_cpu, "sigmoid_backward", sigmoid_backward_from_y_cpu)
sigmoid_backward.__doc__ = """grad_out * s * (1 - s) with s = sigmoid(x).

``y=`` (the forward's output, keyword): grad_out * (1 - y) * y with no exp, as PyTorch's backward does;
x may then be None (given, its shape must match y's)."""
tanh = _unary(tanh_cpu, "tanh")
tanh.__doc__ = "tanh(x), elementwise."
tanh_backward = _unary_backward(tanh_backward_cpu, "tanh_backward", tanh_backward_from_y_cpu)
tanh_backward.__doc__ = """grad_out * (1 - tanh(x)**2).

``y=`` (the forward's output, keyword): grad_out * (1 - y * y), as PyTorch's backward; x may then be None."""


def _label_array(logits_shape, target, name="target"):
    """target as a contiguous int64 array of shape (N,) for logits (N, K); its range is not checked here."""
    t = target if isinstance(target, np.ndarray) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {t.dtype}")
    if t.ndim != 1 or t.shape[0] != logits_shape[0]:
        raise ValueError(f"{name} must have shape ({logits_shape[0]},) to match logits {tuple(logits_shape)}, "
                         f"got {t.shape}")
    return np.ascontiguousarray(t, dtype=np.int64)


def check_labels(logits_shape, target, name="target"):
    """target as an int64 array of labels in [0, K) matching the batch size of logits (N, K)."""
    t = np.asarray(target)
    labels = _label_array(logits_shape, t, name)
    if t.size and (t.min() < 0 or t.max() >= logits_shape[1]):
        bad = t[(t < 0) | (t >= logits_shape[1])][0]
        raise ValueError(f"{name} has label {bad} out of range [0, {logits_shape[1]})")
    return labels


def _check_logits(logits):
    logits = as_float(logits, "logits", 2)
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits must be non-empty, got shape {logits.shape}")
    return logits


def _check_ce(logits, target):
    logits = _check_logits(logits)
    return logits, check_labels(logits.shape, target)


def _ce_device(logits, device):
    """cross_entropy's ``target`` is the labels (as in PyTorch), so its device is ``device``:
    None follows the logits (a CUDA array runs on the GPU), else 'cpu' / 'cuda' / 'cudasim'."""
    if device is None:
        return "cuda" if is_device_array(logits) else "cpu"
    return check_target(device)


def cross_entropy(logits, target, *, device=None):
    """Mean cross-entropy of logits (N, K) against integer labels target (N,); stable log-sum-exp."""
    if _ce_device(logits, device) == "cuda":
        return cuda_module().cross_entropy(logits, target)
    logits = _check_logits(logits)
    t = _label_array(logits.shape, target)  # dtype and shape; the range is checked in the kernel
    loss, bad = cross_entropy_cpu_fused(logits, t)
    if bad >= 0:
        check_labels(logits.shape, target)  # raises the error that names the first bad label
    return logits.dtype.type(loss)


def cross_entropy_backward(grad_out, logits, target, *, device=None):
    """grad_logits (N, K) = grad_out * (softmax(logits) - onehot(target)) / N."""
    if _ce_device(logits, device) == "cuda":
        return cuda_module().cross_entropy_backward(grad_out, logits, target)
    logits, t = _check_ce(logits, target)
    gl = np.empty_like(logits)
    cross_entropy_backward_cpu(float(grad_out), logits, t, gl)
    return gl
