"""2-D pooling (D2L 6.5): argument rules, Numba CPU kernels, and the public API.

Shapes (NCHW): x (N, C, H, W) -> y (N, C, HO, WO), one plane at a time, channels never mixed. With
    HO = (H + 2*ph - dh*(KH - 1) - 1 + (sh - 1 if ceil_mode else 0)) // sh + 1   (WO likewise),
less one when ceil_mode would start the last window in the right/bottom padding, window (i, j) covers
rows i*sh - ph + p*dh (p < KH) and columns j*sw - pw + q*dw (q < KW):
    max_pool2d  y[n, c, i, j] = max over the window of x (padding is -inf, never chosen)
    min_pool2d  y[n, c, i, j] = min over the window of x (padding is +inf) = -max_pool2d(-x)
    avg_pool2d  y[n, c, i, j] = sum over the window of x / divisor (padding is 0; dilation 1)
Adaptive pooling picks the windows from the output size: rows floor(i*H/HO) .. ceil((i+1)*H/HO) - 1.

Everything follows PyTorch's CPU kernels to the last bit where it can: max/min take the *first* extreme
of a window in row-major order (strict comparison) and a NaN wins (the last NaN of the window); indices
are flat positions h*W + w in the input plane; float32 sums are accumulated in float32 in row-major order.
The plain NumPy version is ``numbacnn.reference.pool``; the CUDA version is ``numbacnn.cuda`` (same names).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ._checks import as_float, check_target, cuda_module, is_device_array, pair


@dataclass(frozen=True)
class PoolGeometry:
    """Validated options of one max/min/avg pooling call (each a pair: rows, columns)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool
    out_hw: tuple[int, int]


def pool_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """Output length along one axis, PyTorch's ``pooling_output_shape`` (floor division, ceil rule)."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window must start inside the input or the left padding
    return out


def _flag(v, name):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def pool_geometry(x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> PoolGeometry:
    """Check shapes and options the way torch.nn.functional.max_pool2d does; errors name the argument.

    ``stride=None`` (or an empty list, as torch allows) means ``stride = kernel_size``.
    """
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got {len(x_shape)} (shape {tuple(x_shape)})")
    H, W = int(x_shape[2]), int(x_shape[3])
    kernel = pair(kernel_size, "kernel_size")
    strides = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else pair(stride, "stride")
    dil = pair(dilation, "dilation")
    pads = pair(padding, "padding", minimum=0)
    ceil_mode = _flag(ceil_mode, "ceil_mode")
    if pads[0] > kernel[0] // 2 or pads[1] > kernel[1] // 2:
        raise ValueError(f"padding must be at most half of kernel_size in each dimension, got padding={padding!r} "
                         f"with kernel_size={kernel_size!r}")
    out = tuple(pool_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in zip((H, W), kernel, strides, pads, dil))
    if min(out) < 1:
        raise ValueError(f"output size would be {out[0]}x{out[1]}: the window (kernel_size={kernel_size!r}, "
                         f"dilation={dilation!r}) is larger than the padded input "
                         f"{H + 2 * pads[0]}x{W + 2 * pads[1]}")
    return PoolGeometry(kernel, strides, pads, dil, ceil_mode, out)


def adaptive_pool_geometry(x_shape, output_size) -> tuple[int, int]:
    """(HO, WO) for adaptive pooling: ``output_size`` is an int or a pair (None keeps that input size)."""
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got {len(x_shape)} (shape {tuple(x_shape)})")
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        out = tuple(x_shape[2 + k] if v is None else v for k, v in enumerate(output_size))
    else:
        out = (output_size, output_size)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in out):
        raise ValueError(f"output_size must be an int or a pair of ints, got {output_size!r}")
    if min(out) < 1:
        raise ValueError(f"output_size must be positive, got {output_size!r}")
    if min(x_shape[2], x_shape[3]) < 1:
        raise ValueError(f"x must have non-empty planes, got shape {tuple(x_shape)}")
    return int(out[0]), int(out[1])


# ----------------------------------------------------------------------------------------------
# CPU kernels (Numba @njit). One parallel job per (example, channel) plane: the backward passes
# scatter into their own plane only, so they are race-free.


@njit(parallel=True, cache=True)
def max_pool2d_forward_cpu(x, out, idx, kh, kw, sh, sw, ph, pw, dh, dw, sign):
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


@njit(parallel=True, cache=True)
def adaptive_max_pool2d_forward_cpu(x, out, idx):
    """Like max_pool2d_forward_cpu with window rows floor(i*H/HO) .. ceil((i+1)*H/HO) - 1 (columns likewise)."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            h0 = (i * H) // HO
            h1 = ((i + 1) * H + HO - 1) // HO
            for j in range(WO):
                w0 = (j * W) // WO
                w1 = ((j + 1) * W + WO - 1) // WO
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


@njit(parallel=True, cache=True)
def max_pool2d_backward_cpu(gy, idx, gx):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] over the outputs whose winner was (h, w) (i.e. idx == h*W + w).
    An index off the plane (a window that saw only padding) routes nothing. Windows may overlap: += ."""
    N, C, H, W = gx.shape
    HW, S = H * W, gy.shape[2] * gy.shape[3]
    gyf, idxf, gxf = gy.reshape(-1), idx.reshape(-1), gx.reshape(-1)  # C-contiguous: flat views
    zero = gx.dtype.type(0)
    for p in prange(N * C):
        plane = gxf[p * HW:(p + 1) * HW]  # indexed like idx: h*W + w
        plane[:] = zero
        g, k = gyf[p * S:(p + 1) * S], idxf[p * S:(p + 1) * S]
        for t in range(S):
            if 0 <= k[t] < HW:
                plane[k[t]] += g[t]


# Fast paths for LeNet's pooling: 2x2 windows, stride 2, no padding, dilation 1, every window inside the
# input (HO = H // 2, WO = W // 2). Same results to the bit as the general kernels above (tested against
# them): the first maximum in row-major order wins (strict >), a NaN wins (the last NaN of the window),
# sums run in row-major order from 0. The windows do not overlap, so the backward passes need no
# scatter-add: each window's cells get 0, then its winner (max) or every cell (avg) gets its gradient.


@njit(inline="always")
def _argmax4(a, b, c, d):
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
def _winner(r0, r1, j, sign):
    """_argmax4 of window j of rows r0, r1 for max (sign 1) or min (sign -1) pooling."""
    if sign > 0:
        return _argmax4(r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1])
    return _argmax4(-r0[2 * j], -r0[2 * j + 1], -r1[2 * j], -r1[2 * j + 1])


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


@njit(parallel=True, cache=True)
def max_pool2d_2x2_forward_cpu(x, out, idx, sign):
    """max_pool2d_forward_cpu for kernel 2, stride 2, no padding, HO = H // 2, WO = W // 2."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            r0, r1 = x[n, c, 2 * i], x[n, c, 2 * i + 1]
            for j in range(WO):
                k = _winner(r0, r1, j, sign)
                h, w = 2 * i + k // 2, 2 * j + k % 2
                v = x[n, c, h, w]
                out[n, c, i, j] = v if v == v else np.nan  # the general kernel writes np.nan for a NaN
                idx[n, c, i, j] = h * W + w


@njit(parallel=True, cache=True)
def max_pool2d_2x2_backward_cpu(gy, x, gx, sign):
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
                k = _winner(r0, r1, j, sign)
                gx[n, c, 2 * i + k // 2, 2 * j + k % 2] = zero + gy[n, c, i, j]  # 0 + g, as the general kernel


@njit(parallel=True, cache=True, error_model="numpy")
def avg_pool2d_2x2_forward_cpu(x, out, divisor):
    """avg_pool2d_forward_cpu for kernel 2, stride 2, no padding, full windows: (((0 + a) + b) + c) + d) / divisor."""
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


@njit(parallel=True, cache=True, error_model="numpy")
def avg_pool2d_2x2_backward_cpu(gy, gx, divisor):
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


def _is_2x2(geo, H, W):
    """True when the fast 2x2 stride-2 kernels apply (no padding, dilation 1, every window inside x)."""
    return (geo.kernel == (2, 2) and geo.stride == (2, 2) and geo.padding == (0, 0) and geo.dilation == (1, 1)
            and geo.out_hw == (H // 2, W // 2))


@njit(cache=True)
def _avg_window(i, s, k, p, size):
    """Window (start, end) of output i clipped to the input, and its length clipped to the padded input."""
    start = i * s - p
    end = min(start + k, size + p)
    padded = end - start
    return max(start, 0), min(end, size), padded


@njit(parallel=True, cache=True)
def avg_pool2d_forward_cpu(x, out, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
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


@njit(parallel=True, cache=True)
def avg_pool2d_backward_cpu(gy, gx, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override):
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


@njit(parallel=True, cache=True)
def adaptive_avg_pool2d_forward_cpu(x, out):
    """out[n, c, i, j] = sum over the window of x / kh / kw (PyTorch divides twice, so do we)."""
    N, C, H, W = x.shape
    HO, WO = out.shape[2], out.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for i in range(HO):
            h0 = (i * H) // HO
            h1 = ((i + 1) * H + HO - 1) // HO
            for j in range(WO):
                w0 = (j * W) // WO
                w1 = ((j + 1) * W + WO - 1) // WO
                acc = x.dtype.type(0)
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        acc += x[n, c, h, w]
                out[n, c, i, j] = x.dtype.type(acc / (h1 - h0)) / (w1 - w0)


@njit(parallel=True, cache=True)
def adaptive_avg_pool2d_backward_cpu(gy, gx):
    """gx[n, c, h, w] = sum of gy[n, c, i, j] / kh / kw over the windows (i, j) that contain (h, w)."""
    N, C, H, W = gx.shape
    HO, WO = gy.shape[2], gy.shape[3]
    for job in prange(N * C):
        n, c = job // C, job % C
        for h in range(H):
            for w in range(W):
                gx[n, c, h, w] = 0.0
        for i in range(HO):
            h0 = (i * H) // HO
            h1 = ((i + 1) * H + HO - 1) // HO
            for j in range(WO):
                w0 = (j * W) // WO
                w1 = ((j + 1) * W + WO - 1) // WO
                delta = gx.dtype.type(gx.dtype.type(gy[n, c, i, j] / (h1 - h0)) / (w1 - w0))
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        gx[n, c, h, w] += delta


# ----------------------------------------------------------------------------------------------
# Public API


def _host(x, name="x"):
    if is_device_array(x):
        raise TypeError(f"{name} is a CUDA device array: use target='cuda' (or copy it to the host)")
    return as_float(x, name, 4)


def _grad(grad_out, x, out_hw):
    gy = _host(grad_out, "grad_out").astype(x.dtype, copy=False)
    expected = tuple(x.shape[:2]) + tuple(out_hw)
    if gy.shape != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {gy.shape}")
    return np.ascontiguousarray(gy)


def _extreme_pool(x, kernel_size, stride, padding, dilation, ceil_mode, sign):
    x = _host(x)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    shape = tuple(x.shape[:2]) + geo.out_hw
    out = np.empty(shape, dtype=x.dtype)
    idx = np.empty(shape, dtype=np.int64)
    if _is_2x2(geo, x.shape[2], x.shape[3]):
        max_pool2d_2x2_forward_cpu(x, out, idx, sign)
    else:
        max_pool2d_forward_cpu(x, out, idx, *geo.kernel, *geo.stride, *geo.padding, *geo.dilation, sign)
    return x, geo, out, idx


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *,
               target="cpu"):
    """Max pooling of x (N, C, H, W) -> (N, C, HO, WO), or (out, indices) with int64 indices h*W + w.

    Mirrors ``torch.nn.functional.max_pool2d``: stride defaults to kernel_size, padding is -inf.
    """
    if check_target(target) == "cuda":
        return cuda_module().max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return_indices = _flag(return_indices, "return_indices")
    _, _, out, idx = _extreme_pool(x, kernel_size, stride, padding, dilation, ceil_mode, 1.0)
    return (out, idx) if return_indices else out


def min_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False, *,
               target="cpu"):
    """Min pooling of x (N, C, H, W) -> (N, C, HO, WO): -max_pool2d(-x), first minimum wins, padding is +inf."""
    if check_target(target) == "cuda":
        return cuda_module().min_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return_indices = _flag(return_indices, "return_indices")
    _, _, out, idx = _extreme_pool(x, kernel_size, stride, padding, dilation, ceil_mode, -1.0)
    return (out, idx) if return_indices else out


def check_indices(indices, expected_shape):
    """The forward's ``return_indices`` output as a contiguous int64 array of ``expected_shape``, or a clear error."""
    if is_device_array(indices):
        raise TypeError("indices is a CUDA device array: use target='cuda' (or copy it to the host)")
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must hold integer positions h*W + w (the forward's return_indices output), "
                        f"got dtype {idx.dtype}")
    if idx.shape != tuple(expected_shape):
        raise ValueError(f"indices must have the output's shape {tuple(expected_shape)}, got {idx.shape}")
    return np.ascontiguousarray(idx, dtype=np.int64)


def _extreme_pool_backward(grad_out, x, kernel_size, stride, padding, dilation, ceil_mode, sign, indices):
    x = _host(x)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    gy = _grad(grad_out, x, geo.out_hw)
    gx = np.empty_like(x)
    if indices is not None:  # the forward's winners: scatter, no search
        max_pool2d_backward_cpu(gy, check_indices(indices, gy.shape), gx)
        return gx
    if _is_2x2(geo, x.shape[2], x.shape[3]):  # winners found again in one pass, gradient written directly
        max_pool2d_2x2_backward_cpu(gy, np.ascontiguousarray(x), gx, sign)
        return gx
    x, geo, _, idx = _extreme_pool(x, kernel_size, stride, padding, dilation, ceil_mode, sign)
    max_pool2d_backward_cpu(gy, idx, gx)
    return gx


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None, target="cpu"):
    """Gradient of max_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its winner (summed).

    ``indices`` (optional, N, C, HO, WO): the forward's ``return_indices`` output. Given, the winners are
    taken from it (as PyTorch's backward does) instead of being searched for again in x; x then only gives
    the shape. An index off the plane (a window that saw only padding) routes no gradient.
    """
    if check_target(target) == "cuda":
        return cuda_module().max_pool2d_backward(grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                                                 indices=indices)
    return _extreme_pool_backward(grad_out, x, kernel_size, stride, padding, dilation, ceil_mode, 1.0, indices)


def min_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                        indices=None, target="cpu"):
    """Gradient of min_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its first minimum
    (or to the winners in ``indices``, min_pool2d's ``return_indices`` output, as in max_pool2d_backward)."""
    if check_target(target) == "cuda":
        return cuda_module().min_pool2d_backward(grad_out, x, kernel_size, stride, padding, dilation, ceil_mode,
                                                 indices=indices)
    return _extreme_pool_backward(grad_out, x, kernel_size, stride, padding, dilation, ceil_mode, -1.0, indices)


def _avg_options(count_include_pad, divisor_override):
    count_include_pad = _flag(count_include_pad, "count_include_pad")
    if divisor_override is None:
        return count_include_pad, 0
    if not isinstance(divisor_override, numbers.Integral) or isinstance(divisor_override, bool):
        raise TypeError(f"divisor_override must be None or an int, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"divisor_override must be nonzero, got {divisor_override!r}")
    return count_include_pad, int(divisor_override)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, target="cpu"):
    """Average pooling of x (N, C, H, W) -> (N, C, HO, WO), mirroring ``torch.nn.functional.avg_pool2d``.

    Divisor: divisor_override if given; else the window size clipped to the padded input
    (count_include_pad=True) or to the input itself (False).
    """
    if check_target(target) == "cuda":
        return cuda_module().avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                        divisor_override)
    x = _host(x)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    out = np.empty(tuple(x.shape[:2]) + geo.out_hw, dtype=x.dtype)
    if _is_2x2(geo, x.shape[2], x.shape[3]):
        avg_pool2d_2x2_forward_cpu(x, out, float(override or 4))
    else:
        avg_pool2d_forward_cpu(x, out, *geo.kernel, *geo.stride, *geo.padding, include, override)
    return out


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None, *, target="cpu"):
    """Gradient of avg_pool2d w.r.t. x (N, C, H, W): each output's gradient / divisor to every window cell."""
    if check_target(target) == "cuda":
        return cuda_module().avg_pool2d_backward(grad_out, x, kernel_size, stride, padding, ceil_mode,
                                                 count_include_pad, divisor_override)
    x = _host(x)
    geo = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    include, override = _avg_options(count_include_pad, divisor_override)
    gy = _grad(grad_out, x, geo.out_hw)
    gx = np.empty_like(x)
    if _is_2x2(geo, x.shape[2], x.shape[3]):
        avg_pool2d_2x2_backward_cpu(gy, gx, float(override or 4))
    else:
        avg_pool2d_backward_cpu(gy, gx, *geo.kernel, *geo.stride, *geo.padding, include, override)
    return gx


def adaptive_avg_pool2d(x, output_size, *, target="cpu"):
    """Adaptive average pooling of x (N, C, H, W) -> (N, C, HO, WO); output_size 1 is global average pooling."""
    if check_target(target) == "cuda":
        return cuda_module().adaptive_avg_pool2d(x, output_size)
    x = _host(x)
    out = np.empty(tuple(x.shape[:2]) + adaptive_pool_geometry(x.shape, output_size), dtype=x.dtype)
    adaptive_avg_pool2d_forward_cpu(x, out)
    return out


def adaptive_avg_pool2d_backward(grad_out, x, output_size, *, target="cpu"):
    """Gradient of adaptive_avg_pool2d w.r.t. x (N, C, H, W)."""
    if check_target(target) == "cuda":
        return cuda_module().adaptive_avg_pool2d_backward(grad_out, x, output_size)
    x = _host(x)
    gy = _grad(grad_out, x, adaptive_pool_geometry(x.shape, output_size))
    gx = np.empty_like(x)
    adaptive_avg_pool2d_backward_cpu(gy, gx)
    return gx


def _adaptive_max(x, output_size):
    x = _host(x)
    shape = tuple(x.shape[:2]) + adaptive_pool_geometry(x.shape, output_size)
    out = np.empty(shape, dtype=x.dtype)
    idx = np.empty(shape, dtype=np.int64)
    adaptive_max_pool2d_forward_cpu(x, out, idx)
    return x, out, idx


def adaptive_max_pool2d(x, output_size, return_indices=False, *, target="cpu"):
    """Adaptive max pooling of x (N, C, H, W) -> (N, C, HO, WO), or (out, int64 indices h*W + w)."""
    if check_target(target) == "cuda":
        return cuda_module().adaptive_max_pool2d(x, output_size, return_indices)
    return_indices = _flag(return_indices, "return_indices")
    _, out, idx = _adaptive_max(x, output_size)
    return (out, idx) if return_indices else out


def adaptive_max_pool2d_backward(grad_out, x, output_size, *, target="cpu"):
    """Gradient of adaptive_max_pool2d w.r.t. x (N, C, H, W): each output's gradient goes to its winner."""
    if check_target(target) == "cuda":
        return cuda_module().adaptive_max_pool2d_backward(grad_out, x, output_size)
    x, out, idx = _adaptive_max(x, output_size)
    gy = _grad(grad_out, x, out.shape[2:])
    gx = np.empty_like(x)
    max_pool2d_backward_cpu(gy, idx, gx)
    return gx
