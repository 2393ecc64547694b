"""conv2d on the CPU (numbacnn.cpu.conv): kernel 1, the formula one output element at a time, and the launchers.

Siblings: the public ``numbacnn.conv`` (checks the arguments, then calls the launchers here), the NumPy
``numbacnn.reference.conv``, the register-tile kernels 2 and 3 in ``numbacnn.cpu.conv_tiles`` and those with a
tile of examples in the lanes (forward 4, grad input 3, grad weight 4) in ``numbacnn.cpu.conv_lanes``, and the GPU's
``numbacnn.cuda.conv`` (same launcher names and signatures). For x (N, C, H, W), w (O, Cg, KH, KW), Cg = C / groups:
    y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]
with g = o // (O / groups) and the zero padding standing for out-of-range reads of x (D2L 6.2-6.4).

KERNELS (``kernel=`` of the public functions; None picks the fastest that fits):
    conv2d           1  conv2d_forward_kernel1, the formula (any stride; the choice for stride > 1)
                     2  conv2d_forward_kernel2, 16 output positions per tile (stride 1; the choice below 16
                        output channels per group in float32, 8 in float64)
                     3  conv2d_forward_kernel3, 16 output channels per tile (stride 1; the choice from there on)
                     4  conv2d_forward_kernel4, 16 examples per tile (stride 1; the choice for batches of a tile
                        of examples: 16 float32, 8 float64)
    conv2d_backward  1  conv2d_grad_input_kernel1 + conv2d_grad_weight_kernel1 (the formulas, any stride)
                     2  conv2d_grad_input_kernel2 + conv2d_grad_weight_kernel2, dot products (stride 1)
                     3  conv2d_grad_weight_kernel3, 16 channels per tile (stride 1; the choice from 16 output
                        channels per group), and conv2d_grad_input_kernel3, 16 examples per tile, for batches of
                        a tile of examples and groups of 4+ input channels (else conv2d_grad_input_kernel2)
                     4  conv2d_grad_weight_kernel4, 16 examples per tile (stride 1; the choice below 16 output
                        channels for batches of a tile of examples), and conv2d_grad_input_kernel3 for groups of
                        4+ input channels (else conv2d_grad_input_kernel2)
                     (every number sums the bias gradient with conv2d_grad_bias_kernel1)
    corr2d           1  corr2d_forward_kernel1 (D2L 6.2.1)
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .conv_lanes import conv2d_forward_kernel4, conv2d_grad_input_kernel3, conv2d_grad_weight_kernel4
from .conv_tiles import (conv2d_forward_kernel2, conv2d_forward_kernel3, conv2d_grad_input_kernel2,
                         conv2d_grad_weight_kernel2, conv2d_grad_weight_kernel3)
from .fast_exp import sigmoid_forward_kernel2
from .functional import relu_forward_kernel1
from .tiles import GEMM_MATH, TILE_BYTES

KERNELS = {"conv2d": (1, 2, 3, 4), "conv2d_backward": (1, 2, 3, 4), "corr2d": (1,)}
# The tile kernels' weight gradient sums the batch in this many slices (each thread takes whole slices), then adds
# the slices' sums in order: a fixed number, so the bits of grad_weight do not depend on how many threads run.
GRAD_WEIGHT_JOBS = 8

# ----------------------------------------------------------------------------------------------
# Kernel 1: the formula, one output element at a time (a prange over the elements' rows, so both cores work).


@njit(parallel=PARALLEL, cache=True)
def conv2d_forward_kernel1(x, w, b, y, sh, sw, pt, pl, dh, dw, groups):
    """y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = y.shape[2], y.shape[3]
    for row in prange(N * O * HO):  # output row y[n, o, i, :]
        n, o, i = row // (O * HO), row // HO % O, row % HO
        g = o // (O // groups)  # the group of output channel o reads input channels g*Cg ... g*Cg + Cg - 1
        for j in range(WO):
            acc = b[o]
            for c in range(Cg):
                for p in range(KH):
                    hi = i * sh - pt + p * dh  # input row under kernel row p
                    if 0 <= hi < H:
                        for q in range(KW):
                            wj = j * sw - pl + q * dw  # input column under kernel column q
                            if 0 <= wj < W:
                                acc += x[n, g * Cg + c, hi, wj] * w[o, c, p, q]
            y[n, o, i, j] = acc


@njit(parallel=PARALLEL, cache=True)
def conv2d_grad_input_kernel1(gy, w, gx, sh, sw, pt, pl, dh, dw, groups):
    """gx[n, ci, h, v] = sum of gy[n, o, i, j] * w[o, c, p, q] over the (o, p, q, i, j) whose window read x[n, ci, h, v]:
    h = i*sh - pt + p*dh, so i = (h + pt - p*dh) / sh when that is a whole number in [0, HO)."""
    N, C, H, W = gx.shape
    O, Cg, KH, KW = w.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Og = O // groups
    for row in prange(N * C * H):  # input-gradient row gx[n, ci, h, :]
        n, ci, h = row // (C * H), row // H % C, row % H
        g, c = ci // Cg, ci % Cg
        for v in range(W):
            acc = gx.dtype.type(0)  # in the data's dtype
            for o in range(g * Og, (g + 1) * Og):
                for p in range(KH):
                    ri = h + pt - p * dh  # = i * sh for the output row i that put kernel row p on input row h
                    if ri < 0 or ri % sh != 0 or ri // sh >= HO:
                        continue
                    for q in range(KW):
                        rj = v + pl - q * dw
                        if rj < 0 or rj % sw != 0 or rj // sw >= WO:
                            continue
                        acc += gy[n, o, ri // sh, rj // sw] * w[o, c, p, q]
            gx[n, ci, h, v] = acc


@njit(parallel=PARALLEL, cache=True)
def conv2d_grad_weight_kernel1(gy, x, gw, sh, sw, pt, pl, dh, dw, groups):
    """gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    for t in prange(O * Cg * KH * KW):  # weight element t, in gw's row-major order
        o, c, p, q = t // (Cg * KH * KW), t // (KH * KW) % Cg, t // KW % KH, t % KW
        ci = (o // (O // groups)) * Cg + c
        acc = 0.0  # float64
        for n in range(N):
            for i in range(HO):
                hi = i * sh - pt + p * dh
                if 0 <= hi < H:
                    for j in range(WO):
                        wj = j * sw - pl + q * dw
                        if 0 <= wj < W:
                            acc += gy[n, o, i, j] * x[n, ci, hi, wj]
        gw[o, c, p, q] = acc


@njit(parallel=PARALLEL, cache=True, fastmath=GEMM_MATH)
def conv2d_grad_bias_kernel1(gy, gb):
    """gb[o] = sum_{n, i, j} gy[n, o, i, j] (GEMM_MATH lets the float64 sum run in vector lanes)."""
    N, O, HO, WO = gy.shape
    for o in prange(O):
        acc = 0.0
        for n in range(N):
            plane = gy[n, o].reshape(HO * WO)
            for m in range(HO * WO):
                acc += plane[m]
        gb[o] = acc


@njit(cache=True)
def corr2d_forward_kernel1(X, K, Y):
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
# Launchers: arrays already checked by numbacnn.conv (contiguous, one float dtype) and a ConvGeometry.


def _pick(op, kernel, geo, x, w):
    """The kernel number to run: the fastest that fits for None, else ``kernel`` if it handles the stride."""
    if geo.stride != (1, 1):
        if kernel not in (None, 1):
            raise ValueError(f"kernel {kernel} of {op} needs stride 1, got stride={geo.stride}; "
                             f"kernel 1 takes any stride")
        return 1
    if kernel is not None:
        return kernel
    lanes = TILE_BYTES // w.itemsize
    if op == "conv2d" and x.shape[0] >= lanes:
        return 4  # a tile of examples in the lanes
    if w.shape[0] // geo.groups >= lanes:
        return 3  # a tile of output channels in the lanes (conv2's 16)
    return 4 if x.shape[0] >= lanes else 2


def _flipped(w):
    """The kernel turned by 180 degrees (strict convolution, flip=True)."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1])


def _formula_args(geo):
    """Kernel 1's geometry arguments: (sh, sw, pt, pl, dh, dw, groups)."""
    return (*geo.stride, geo.padding[0], geo.padding[2], *geo.dilation, geo.groups)


def conv2d(x, w, b, geo, *, flip, kernel, activation=None):
    """y (N, O, HO, WO) for x (N, C, H, W), w (O, C / groups, KH, KW), b (O,) or None; see ``numbacnn.conv2d``.
    ``activation`` "relu" or "sigmoid": that of y, inside kernel 4, else by relu_forward_kernel1 or
    sigmoid_forward_kernel2 on y (the same bits either way)."""
    kernel = _pick("conv2d", kernel, geo, x, w)
    w = _flipped(w) if flip else w
    b = np.zeros(w.shape[0], dtype=x.dtype) if b is None else b
    y = np.empty((x.shape[0], w.shape[0]) + geo.out_hw, dtype=x.dtype)
    if kernel == 1:
        conv2d_forward_kernel1(x, w, b, y, *_formula_args(geo))
    else:
        if kernel == 4:
            act = {None: 0, "relu": 1, "sigmoid": 2}[activation]
            conv2d_forward_kernel4(x, w, b, y, *geo.padding, *geo.dilation, geo.groups, act)
            return y
        forward = conv2d_forward_kernel3 if kernel == 3 else conv2d_forward_kernel2
        forward(x, w, b, y, *geo.padding, *geo.dilation, geo.groups)
    if activation is not None:  # into a new array: in place, the loops would not vectorize (overlap checks)
        z = np.empty_like(y)
        (relu_forward_kernel1 if activation == "relu" else sigmoid_forward_kernel2)(y.reshape(-1), z.reshape(-1))
        y = z
    return y


def conv2d_backward(gy, x, w, b, geo, *, flip, need_grad_x, kernel):
    """(grad_x or None, grad_weight, grad_bias or None) for gy (N, O, HO, WO); see ``numbacnn.conv2d_backward``."""
    kernel = _pick("conv2d_backward", kernel, geo, x, w)
    w = _flipped(w) if flip else w
    gx = np.empty_like(x) if need_grad_x else None
    gw = np.empty_like(w)
    if kernel == 1:
        args = _formula_args(geo)
        if need_grad_x:
            conv2d_grad_input_kernel1(gy, w, gx, *args)
        conv2d_grad_weight_kernel1(gy, x, gw, *args)
    else:
        args = (*geo.padding, *geo.dilation, geo.groups)
        if need_grad_x:
            grad_input = conv2d_grad_input_kernel2
            if (kernel == 4 or (kernel == 3 and x.shape[0] >= TILE_BYTES // x.itemsize)) and w.shape[1] >= 4:
                grad_input = conv2d_grad_input_kernel3  # a tile of examples, and blocks of channels mostly full
            grad_input(gy, w, gx, *args)
        if kernel == 4:
            conv2d_grad_weight_kernel4(gy, x, gw, *args)  # its blocks of a tile of examples fix the bits
        else:
            grad_weight = conv2d_grad_weight_kernel3 if kernel == 3 else conv2d_grad_weight_kernel2
            grad_weight(gy, x, gw, *args, GRAD_WEIGHT_JOBS)
    if flip:  # that was the gradient of the flipped kernel: turn it back
        gw = _flipped(gw)
    gb = None
    if b is not None:
        gb = np.empty_like(b)
        conv2d_grad_bias_kernel1(gy, gb)
    return gx, gw, gb


def corr2d(X, K, *, kernel):
    """Y (H - h + 1, W - w + 1) for X (H, W) and K (h, w); see ``numbacnn.corr2d``."""
    Y = np.empty((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1), dtype=X.dtype)
    corr2d_forward_kernel1(X, K, Y)
    return Y
