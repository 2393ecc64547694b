"""conv2d on the GPU: @cuda.jit kernels (simple first, then faster ones) and their host-side launchers.

The formula is the one in ``numbacnn.conv`` (D2L 6.2-6.4), for x (N, C, H, W), w (O, Cg, KH, KW), Cg = C / groups:
    y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]
with g = o // (O / groups) and the zero padding standing for out-of-range reads of x.

Kernels:
    conv2d_forward_kernel1      one thread per output element y[n, o, i, j]
    conv2d_forward_kernel2      a tile x tile block of threads per output tile of one (n, o); the input patch the
                                tile reads, and w[o, c], are staged in shared memory once per input channel
    conv2d_grad_input_kernel1   one thread per input element: gathers every output that read it (no atomics)
    conv2d_grad_weight_kernel1  one thread per weight element: sums over (n, i, j)
    conv2d_grad_weight_kernel2  one block per weight element: the block splits (n, i, j) and tree-sums in shared memory
    channel_sum_kernel1 / 2     the bias gradient sum_{n, i, j} gy[n, o, i, j], per thread / per block
    flip_kernel1                the kernel turned by 180 degrees, for flip=True (strict convolution)
Sums: the simple kernels add up in float64 (``acc = 0.0``) like the CPU kernels; the fast ones in the data's
dtype, as PyTorch does on a GPU (float64 arithmetic is many times slower than float32 on most GPUs).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from ..conv import conv_geometry
from . import config
from .arrays import device_float, device_floats
from .reduce import block_sum

MAX_SHARED_BYTES = 48 * 1024  # shared memory a block may use without opting in, on every GPU Numba supports

# ----------------------------------------------------------------------------------------------
# Kernels


@cuda.jit
def conv2d_forward_kernel1(x, w, b, y, sh, sw, pt, pl, dh, dw, groups):
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = y.shape[2], y.shape[3]
    t = cuda.grid(1)  # this thread's output element, counted in y's row-major order
    if t >= N * O * HO * WO:
        return
    j = t % WO
    i = (t // WO) % HO
    o = (t // (WO * HO)) % O
    n = t // (WO * HO * O)
    g = o // (O // groups)  # the group of output channel o reads input channels g*Cg ... g*Cg + Cg - 1
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


@cuda.jit
def conv2d_forward_kernel2(x, w, b, y, sh, sw, pt, pl, dh, dw, groups):
    """Block (tile, tile) computes y[n, o, i0:i0+T, j0:j0+T] with (n, o) = blockIdx.z; grid x/y walk the tiles."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = y.shape[2], y.shape[3]
    T = cuda.blockDim.x
    ti, tj = cuda.threadIdx.y, cuda.threadIdx.x
    n, o = cuda.blockIdx.z // O, cuda.blockIdx.z % O
    i0, j0 = cuda.blockIdx.y * T, cuda.blockIdx.x * T  # the tile's first output row and column
    i, j = i0 + ti, j0 + tj
    g = o // (O // groups)
    # The tile reads input rows i0*sh - pt ... (i0+T-1)*sh - pt + (KH-1)*dh: a PH x PW patch.
    PH = (T - 1) * sh + (KH - 1) * dh + 1
    PW = (T - 1) * sw + (KW - 1) * dw + 1
    smem = cuda.shared.array(0, dtype=x.dtype)  # dynamic: PH*PW patch values, then KH*KW weights
    patch = smem[:PH * PW]
    wts = smem[PH * PW:PH * PW + KH * KW]
    me = ti * T + tj  # this thread's rank in the block, for the cooperative loads
    acc = b[o]
    for c in range(Cg):
        ci = g * Cg + c
        for k in range(me, PH * PW, T * T):  # load the patch (zeros where it hangs over the padding)
            hi = i0 * sh - pt + k // PW
            wj = j0 * sw - pl + k % PW
            if 0 <= hi < H and 0 <= wj < W:
                patch[k] = x[n, ci, hi, wj]
            else:
                patch[k] = 0
        for k in range(me, KH * KW, T * T):
            wts[k] = w[o, c, k // KW, k % KW]
        cuda.syncthreads()
        if i < HO and j < WO:
            for p in range(KH):
                for q in range(KW):
                    acc += patch[(ti * sh + p * dh) * PW + tj * sw + q * dw] * wts[p * KW + q]
        cuda.syncthreads()  # everyone is done with this channel before the next load overwrites it
    if i < HO and j < WO:
        y[n, o, i, j] = acc


@cuda.jit
def conv2d_grad_input_kernel1(gy, w, gx, sh, sw, pt, pl, dh, dw, groups):
    """gx[n, ci, h, v] = sum of gy[n, o, i, j] * w[o, c, p, q] over the (o, p, q, i, j) whose window read x[n, ci, h, v]:
    h = i*sh - pt + p*dh, so i = (h + pt - p*dh) / sh when that is a whole number in [0, HO)."""
    N, C, H, W = gx.shape
    O, Cg, KH, KW = w.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.grid(1)
    if t >= N * C * H * W:
        return
    v = t % W
    h = (t // W) % H
    ci = (t // (W * H)) % C
    n = t // (W * H * C)
    Og = O // groups
    g, c = ci // Cg, ci % Cg
    acc = gx.dtype.type(0)  # in the data's dtype, as the CPU kernel accumulates into gx
    for o in range(g * Og, (g + 1) * Og):
        for p in range(KH):
            ri = h + pt - p * dh  # = i * sh for the output row i that put kernel row p on input row h
            if ri < 0 or ri % sh != 0 or ri // sh >= HO:
                continue
            i = ri // sh
            for q in range(KW):
                rj = v + pl - q * dw
                if rj < 0 or rj % sw != 0 or rj // sw >= WO:
                    continue
                acc += gy[n, o, i, rj // sw] * w[o, c, p, q]
    gx[n, ci, h, v] = acc


@cuda.jit
def conv2d_grad_weight_kernel1(gy, x, gw, sh, sw, pt, pl, dh, dw, groups):
    """gw[o, c, p, q] = sum_{n, i, j} gy[n, o, i, j] * x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.grid(1)
    if t >= O * Cg * KH * KW:
        return
    q = t % KW
    p = (t // KW) % KH
    c = (t // (KW * KH)) % Cg
    o = t // (KW * KH * Cg)
    ci = (o // (O // groups)) * Cg + c
    acc = 0.0
    for n in range(N):
        for i in range(HO):
            hi = i * sh - pt + p * dh
            if 0 <= hi < H:
                for j in range(WO):
                    wj = j * sw - pl + q * dw
                    if 0 <= wj < W:
                        acc += gy[n, o, i, j] * x[n, ci, hi, wj]
    gw[o, c, p, q] = acc


@cuda.jit
def conv2d_grad_weight_kernel2(gy, x, gw, sh, sw, pt, pl, dh, dw, groups):
    """Block b computes weight element b (row-major in gw); its threads stride over the N*HO*WO terms."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    t = cuda.blockIdx.x
    q = t % KW
    p = (t // KW) % KH
    c = (t // (KW * KH)) % Cg
    o = t // (KW * KH * Cg)
    ci = (o // (O // groups)) * Cg + c
    acc = gw.dtype.type(0)  # float32 sums for float32 data (float64 is slow on most GPUs)
    for r in range(cuda.threadIdx.x, N * HO * WO, cuda.blockDim.x):
        n, i, j = r // (HO * WO), (r // WO) % HO, r % WO
        hi = i * sh - pt + p * dh
        wj = j * sw - pl + q * dw
        if 0 <= hi < H and 0 <= wj < W:
            acc += gy[n, o, i, j] * x[n, ci, hi, wj]
    partial = cuda.shared.array(0, dtype=x.dtype)
    total = block_sum(partial, acc)
    if cuda.threadIdx.x == 0:
        gw[o, c, p, q] = total


@cuda.jit
def channel_sum_kernel1(gy, gb):
    """gb[o] = sum_{n, i, j} gy[n, o, i, j]: one thread per channel."""
    N, O, HO, WO = gy.shape
    o = cuda.grid(1)
    if o >= O:
        return
    acc = 0.0
    for n in range(N):
        for i in range(HO):
            for j in range(WO):
                acc += gy[n, o, i, j]
    gb[o] = acc


@cuda.jit
def channel_sum_kernel2(gy, gb):
    """gb[o] = sum_{n, i, j} gy[n, o, i, j]: block o splits the sum over its threads."""
    N, O, HO, WO = gy.shape
    o = cuda.blockIdx.x
    acc = gb.dtype.type(0)  # float32 sums for float32 data (float64 is slow on most GPUs)
    for r in range(cuda.threadIdx.x, N * HO * WO, cuda.blockDim.x):
        acc += gy[r // (HO * WO), o, (r // WO) % HO, r % WO]
    partial = cuda.shared.array(0, dtype=gy.dtype)
    total = block_sum(partial, acc)
    if cuda.threadIdx.x == 0:
        gb[o] = total


@cuda.jit
def flip_kernel1(w, out):
    """out[o, c, p, q] = w[o, c, KH-1-p, KW-1-q]: the kernel turned by 180 degrees (strict convolution, flip=True)."""
    O, Cg, KH, KW = w.shape
    t = cuda.grid(1)
    if t >= O * Cg * KH * KW:
        return
    q = t % KW
    p = (t // KW) % KH
    c = (t // (KW * KH)) % Cg
    o = t // (KW * KH * Cg)
    out[o, c, p, q] = w[o, c, KH - 1 - p, KW - 1 - q]


# ----------------------------------------------------------------------------------------------
# Launchers: choose a kernel, size the grid, allocate outputs. Geometry args are (sh, sw, pt, pl, dh, dw, groups).


def conv2d_forward1(x, w, b, y, *args):
    conv2d_forward_kernel1[config.launch_1d(y.size)](x, w, b, y, *args)


def _tile_shared_bytes(T, w, itemsize, sh, sw, dh, dw):
    KH, KW = w.shape[2], w.shape[3]
    PH = (T - 1) * sh + (KH - 1) * dh + 1
    PW = (T - 1) * sw + (KW - 1) * dw + 1
    return (PH * PW + KH * KW) * itemsize


def conv2d_forward2(x, w, b, y, *args):
    """The tiled kernel, or kernel1 when the patch would not fit in shared memory or the grid in 65535 z-blocks."""
    sh, sw, pt, pl, dh, dw, groups = args
    N, O, HO, WO = y.shape
    T = config.tile
    nbytes = _tile_shared_bytes(T, w, y.dtype.itemsize, sh, sw, dh, dw)
    if nbytes > MAX_SHARED_BYTES or N * O > 65535:
        return conv2d_forward1(x, w, b, y, *args)
    grid = (config.blocks(WO, T), config.blocks(HO, T), N * O)
    conv2d_forward_kernel2[grid, (T, T), 0, nbytes](x, w, b, y, *args)


def conv2d_grad_weight1(gy, x, gw, *args):
    conv2d_grad_weight_kernel1[config.launch_1d(gw.size)](gy, x, gw, *args)


def conv2d_grad_weight2(gy, x, gw, *args):
    tpb = config.threads_per_block
    conv2d_grad_weight_kernel2[gw.size, tpb, 0, tpb * gw.dtype.itemsize](gy, x, gw, *args)


def channel_sum1(gy, gb):
    channel_sum_kernel1[config.launch_1d(gb.size)](gy, gb)


def channel_sum2(gy, gb):
    tpb = config.threads_per_block
    channel_sum_kernel2[gb.size, tpb, 0, tpb * gb.dtype.itemsize](gy, gb)


def conv2d_grad_input1(gy, w, gx, *args):
    conv2d_grad_input_kernel1[config.launch_1d(gx.size)](gy, w, gx, *args)


@functools.lru_cache(maxsize=32)
def _zeros(n, dtype_str):
    """A device vector of n zeros, made once and reused: the bias of a conv2d without one (never written)."""
    return cuda.to_device(np.zeros(n, np.dtype(dtype_str)))


def _flip(w):
    """A new device array holding the kernel turned by 180 degrees."""
    out = cuda.device_array(tuple(w.shape), dtype=w.dtype)
    flip_kernel1[config.launch_1d(w.size)](w, out)
    return out


def _prepare(x, weight, bias, stride, padding, dilation, groups):
    dt, (x, weight, bias) = device_floats((x, "x", 4), (weight, "weight", 4), (bias, "bias", 1))
    geo = conv_geometry(tuple(x.shape), tuple(weight.shape), None if bias is None else tuple(bias.shape),
                        stride, padding, dilation, groups)
    args = (*geo.stride, geo.padding[0], geo.padding[2], *geo.dilation, geo.groups)
    return dt, x, weight, bias, geo, args


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False):
    """``numbacnn.conv2d`` on the GPU: x (N, C, H, W), weight (O, C/groups, KH, KW) -> device array (N, O, HO, WO)."""
    dt, x, weight, bias, geo, args = _prepare(x, weight, bias, stride, padding, dilation, groups)
    w = _flip(weight) if flip else weight
    b = bias if bias is not None else _zeros(w.shape[0], dt.str)
    y = cuda.device_array((x.shape[0], w.shape[0]) + geo.out_hw, dtype=dt)
    if y.size:  # an empty batch launches nothing (a grid of 0 blocks is an error)
        (conv2d_forward1 if config.simple else conv2d_forward2)(x, w, b, y, *args)
    return y


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False,
                    need_grad_x=True):
    """(grad_x or None, grad_weight, grad_bias or None) as device arrays; see ``numbacnn.conv2d_backward``."""
    if not isinstance(need_grad_x, (bool, np.bool_)):
        raise TypeError(f"need_grad_x must be True or False, got {need_grad_x!r}")
    dt, x, weight, bias, geo, args = _prepare(x, weight, bias, stride, padding, dilation, groups)
    gy = device_float(grad_out, "grad_out", 4, dt)
    expected = (x.shape[0], weight.shape[0]) + geo.out_hw
    if tuple(gy.shape) != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {tuple(gy.shape)}")
    w = _flip(weight) if flip else weight
    gx = cuda.device_array(tuple(x.shape), dtype=dt) if need_grad_x else None
    if need_grad_x and gx.size:
        conv2d_grad_input1(gy, w, gx, *args)
    gw = cuda.device_array(tuple(weight.shape), dtype=dt)
    (conv2d_grad_weight1 if config.simple else conv2d_grad_weight2)(gy, x, gw, *args)
    if flip:  # that was the gradient of the flipped kernel: turn it back
        gw = _flip(gw)
    gb = None
    if bias is not None:
        gb = cuda.device_array(tuple(bias.shape), dtype=dt)
        (channel_sum1 if config.simple else channel_sum2)(gy, gb)
    return gx, gw, gb
