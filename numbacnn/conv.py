"""2-D cross-correlation / convolution: argument rules, Numba CPU kernels, and the public API.

Shapes (NCHW): x (N, C, H, W), weight (O, C // groups, KH, KW), bias (O,) -> y (N, O, HO, WO) with
    HO = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) // stride_h + 1   (WO likewise).
The forward pass is the formula of D2L 6.2 / 6.3 / 6.4, one output element at a time:
    y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]
where g = o // (O // groups) is the group of output channel o and out-of-range x reads are the zero padding.
The plain NumPy version is ``numbacnn.reference.conv``; the CUDA version is ``numbacnn.cuda.conv``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ._checks import as_float, check_target, common_dtype, cuda_module, is_device_array, pair


@dataclass(frozen=True)
class ConvGeometry:
    """Validated options of one conv2d call (padding as top, bottom, left, right)."""

    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    groups: int
    out_hw: tuple[int, int]


def conv_geometry(x_shape, w_shape, b_shape=None, stride=1, padding=0, dilation=1, groups=1) -> ConvGeometry:
    """Check shapes and options the way torch.nn.functional.conv2d does; errors name the argument."""
    if len(x_shape) != 4:
        raise ValueError(f"x must have 4 dimensions (N, C, H, W), got {len(x_shape)} (shape {tuple(x_shape)})")
    if len(w_shape) != 4:
        raise ValueError(f"weight must have 4 dimensions (O, C/groups, KH, KW), got {len(w_shape)} "
                         f"(shape {tuple(w_shape)})")
    N, C, H, W = x_shape
    O, Cg, KH, KW = w_shape
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    groups = int(groups)
    if min(KH, KW) < 1 or O < 1:
        raise ValueError(f"kernel_size must be positive, got weight shape {tuple(w_shape)}")
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels, got C={C}")
    if O % groups:
        raise ValueError(f"groups={groups} must divide the output channels, got weight.shape[0]={O}")
    if Cg * groups != C:
        raise ValueError(f"channel mismatch: x has C={C} channels but weight expects C/groups={Cg} "
                         f"with groups={groups} (weight shape {tuple(w_shape)})")
    if b_shape is not None and tuple(b_shape) != (O,):
        raise ValueError(f"bias must have shape ({O},), got {tuple(b_shape)}")
    sh, sw = pair(stride, "stride")
    dh, dw = pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"padding='same' is not supported for strided convolutions, got stride={stride!r}")
            th, tw = dh * (KH - 1), dw * (KW - 1)  # PyTorch puts the odd extra cell at the bottom / right
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    else:
        ph, pw = pair(padding, "padding", minimum=0)
        pads = (ph, ph, pw, pw)
    HO = (H + pads[0] + pads[1] - dh * (KH - 1) - 1) // sh + 1
    WO = (W + pads[2] + pads[3] - dw * (KW - 1) - 1) // sw + 1
    if HO < 1 or WO < 1:
        raise ValueError(f"output size would be {HO}x{WO}: the (dilated) kernel {KH}x{KW} is larger than "
                         f"the padded input {H + pads[0] + pads[1]}x{W + pads[2] + pads[3]}")
    return ConvGeometry((sh, sw), pads, (dh, dw), groups, (HO, WO))


# ----------------------------------------------------------------------------------------------
# CPU kernels (Numba @njit). One parallel job per (example, output channel) in the forward pass.


@njit(parallel=True, cache=True)
def conv2d_forward_cpu(x, w, b, out, sh, sw, pt, pl, dh, dw, groups):
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = out.shape[2], out.shape[3]
    Og = O // groups
    for job in prange(N * O):
        n, o = job // O, job % O
        g = o // Og
        for i in range(HO):
            for j in range(WO):
                out[n, o, i, j] = b[o]
        for c in range(Cg):
            ci = g * Cg + c
            for p in range(KH):
                for q in range(KW):
                    wv = w[o, c, p, q]
                    for i in range(HO):
                        hi = i * sh - pt + p * dh
                        if hi < 0 or hi >= H:
                            continue
                        for j in range(WO):
                            wj = j * sw - pl + q * dw
                            if 0 <= wj < W:
                                out[n, o, i, j] += x[n, ci, hi, wj] * wv


@njit(parallel=True, cache=True)
def conv2d_grad_weight_cpu(gy, x, gw, sh, sw, pt, pl, dh, dw, groups):
    """gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Og = O // groups
    for job in prange(O * Cg):
        o, c = job // Cg, job % Cg
        ci = (o // Og) * Cg + c
        for p in range(KH):
            for q in range(KW):
                acc = 0.0
                for n in range(N):
                    for i in range(HO):
                        hi = i * sh - pt + p * dh
                        if hi < 0 or hi >= H:
                            continue
                        for j in range(WO):
                            wj = j * sw - pl + q * dw
                            if 0 <= wj < W:
                                acc += gy[n, o, i, j] * x[n, ci, hi, wj]
                gw[o, c, p, q] = acc


@njit(parallel=True, cache=True)
def conv2d_grad_input_cpu(gy, w, gx, sh, sw, pt, pl, dh, dw, groups):
    """gx[n, ci, h, v] = sum of gy[n, o, i, j] * w[o, c, p, q] over every (o, i, j, p, q) whose window read x[n, ci, h, v]."""
    N, C, H, W = gx.shape
    O, Cg, KH, KW = w.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Og = O // groups
    for job in prange(N * C):
        n, ci = job // C, job % C
        g, c = ci // Cg, ci % Cg
        for h in range(H):
            for v in range(W):
                gx[n, ci, h, v] = 0.0
        for o in range(g * Og, (g + 1) * Og):
            for p in range(KH):
                for q in range(KW):
                    wv = w[o, c, p, q]
                    for i in range(HO):
                        hi = i * sh - pt + p * dh
                        if hi < 0 or hi >= H:
                            continue
                        for j in range(WO):
                            wj = j * sw - pl + q * dw
                            if 0 <= wj < W:
                                gx[n, ci, hi, wj] += gy[n, o, i, j] * wv


@njit(parallel=True, cache=True)
def channel_sum_cpu(gy, gb):
    """gb[o] = sum_{n, i, j} gy[n, o, i, j] (the bias gradient)."""
    N, O, HO, WO = gy.shape
    for o in prange(O):
        acc = 0.0
        for n in range(N):
            for i in range(HO):
                for j in range(WO):
                    acc += gy[n, o, i, j]
        gb[o] = acc


@njit(cache=True)
def corr2d_cpu(X, K, Y):
    """Y[i, j] = sum_{a, b} X[i + a, j + b] * K[a, b] (D2L 6.2.1)."""
    h, w = K.shape
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            acc = 0.0
            for a in range(h):
                for b in range(w):
                    acc += X[i + a, j + b] * K[a, b]
            Y[i, j] = acc


# ----------------------------------------------------------------------------------------------
# Public API


def corr2d(X, K):
    """2-D cross-correlation of a matrix X (H, W) with a kernel K (h, w) -> (H - h + 1, W - w + 1)."""
    X = as_float(X, "X", 2)
    K = as_float(K, "K", 2)
    if K.shape[0] > X.shape[0] or K.shape[1] > X.shape[1] or K.size == 0:
        raise ValueError(f"K of shape {K.shape} must be non-empty and fit inside X of shape {X.shape}")
    dt = common_dtype(X, K)
    Y = np.empty((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1), dtype=dt)
    corr2d_cpu(X.astype(dt, copy=False), K.astype(dt, copy=False), Y)
    return Y


def _prepare(x, weight, bias):
    x = as_float(x, "x", 4)
    weight = as_float(weight, "weight", 4)
    bias = None if bias is None else as_float(bias, "bias", 1)
    dt = common_dtype(x, weight, bias)
    x, weight = x.astype(dt, copy=False), weight.astype(dt, copy=False)
    bias = None if bias is None else bias.astype(dt, copy=False)
    return x, weight, bias


def _flipped(weight):
    return np.ascontiguousarray(weight[:, :, ::-1, ::-1])


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False, target="cpu"):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/groups, KH, KW) -> (N, O, HO, WO).

    Mirrors ``torch.nn.functional.conv2d``; ``padding`` is an int, a pair, ``"valid"`` or ``"same"``.
    ``flip=True`` flips the kernel in both axes: strict convolution (D2L 6.2.5).
    """
    if check_target(target) == "cuda":
        return cuda_module().conv2d(x, weight, bias, stride, padding, dilation, groups, flip=flip)
    if is_device_array(x) or is_device_array(weight):
        raise TypeError("x and weight are CUDA device arrays: use target='cuda' (or copy them to the host)")
    x, weight, bias = _prepare(x, weight, bias)
    geo = conv_geometry(x.shape, weight.shape, None if bias is None else bias.shape,
                        stride, padding, dilation, groups)
    w = _flipped(weight) if flip else weight
    b = np.zeros(w.shape[0], dtype=x.dtype) if bias is None else bias
    out = np.empty((x.shape[0], w.shape[0]) + geo.out_hw, dtype=x.dtype)
    conv2d_forward_cpu(x, w, b, out, *geo.stride, geo.padding[0], geo.padding[2], *geo.dilation, geo.groups)
    return out


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False,
                    target="cpu"):
    """Gradients of conv2d: (grad_x like x, grad_weight like weight, grad_bias like bias or None).

    grad_weight is the correlation of the input with the output gradient; grad_x is the "full"
    convolution of the output gradient with the kernel.
    """
    if check_target(target) == "cuda":
        return cuda_module().conv2d_backward(grad_out, x, weight, bias, stride, padding, dilation, groups, flip=flip)
    x, weight, bias = _prepare(x, weight, bias)
    geo = conv_geometry(x.shape, weight.shape, None if bias is None else bias.shape,
                        stride, padding, dilation, groups)
    gy = as_float(grad_out, "grad_out", 4).astype(x.dtype, copy=False)
    expected = (x.shape[0], weight.shape[0]) + geo.out_hw
    if gy.shape != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {gy.shape}")
    w = _flipped(weight) if flip else weight
    args = (*geo.stride, geo.padding[0], geo.padding[2], *geo.dilation, geo.groups)
    gx = np.empty_like(x)
    conv2d_grad_input_cpu(gy, w, gx, *args)
    gw = np.empty_like(w)
    conv2d_grad_weight_cpu(gy, x, gw, *args)
    if flip:
        gw = _flipped(gw)
    gb = None
    if bias is not None:
        gb = np.empty_like(bias)
        channel_sum_cpu(gy, gb)
    return gx, gw, gb
