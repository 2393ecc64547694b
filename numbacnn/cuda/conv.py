"""conv2d on the GPU (numbacnn.cuda.conv): @cuda.jit kernels (kernel 1 the formula, then faster ones) and launchers.

Siblings: the public ``numbacnn.conv`` (checks the arguments, then calls the launchers here), the NumPy
``numbacnn.reference.conv``, the CPU's ``numbacnn.cpu.conv`` (same launcher names and signatures). For
x (N, C, H, W), w (O, Cg, KH, KW), Cg = C / groups (D2L 6.2-6.4):
    y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]
with g = o // (O / groups) and the zero padding standing for out-of-range reads of x.

KERNELS (``kernel=`` of the public functions; None: 1 under ``config.simple``, else the fastest):
    conv2d           1  conv2d_forward_kernel1      one thread per output element y[n, o, i, j]
                     2  conv2d_forward_kernel2      a tile x tile block of threads per output tile of one (n, o); the
                                                    input patch the tile reads, and w[o, c], staged in shared memory
                                                    once per input channel (None falls back to 1 where the patch
                                                    does not fit in shared memory or N * O > 65535)
    conv2d_backward  1  conv2d_grad_input_kernel1   one thread per input element: gathers every output that read it
                        conv2d_grad_weight_kernel1  one thread per weight element: sums over (n, i, j)
                        channel_sum_kernel1         the bias gradient sum_{n, i, j} gy[n, o, i, j], one thread each
                     2  conv2d_grad_input_kernel1   (the same)
                        conv2d_grad_weight_kernel2  one block per weight element, tree-summed in shared memory
                        channel_sum_kernel2         one block per bias element
    corr2d           1, 2  conv2d's kernel 1 or 2 on one example with one channel in and out
``flip_kernel1`` turns the kernel by 180 degrees for flip=True (strict convolution). Sums: kernels 1 add up like
the CPU's kernel 1 (float64 ``acc = 0.0`` for the weight and bias gradients); kernels 2 in the data's dtype, as
PyTorch does on a GPU (float64 arithmetic is many times slower than float32 on most GPUs).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from ..geometry import ConvGeometry
from . import config
from .reduce import block_sum

MAX_SHARED_BYTES = 48 * 1024  # shared memory a block may use without opting in, on every GPU Numba supports
KERNELS = {"conv2d": (1, 2), "conv2d_backward": (1, 2), "corr2d": (1, 2)}

# ----------------------------------------------------------------------------------------------
# Kernels


@cuda.jit
def conv2d_forward_kernel1(x, w, b, y, sh, sw, pt, pl, dh, dw, groups):
    """y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]."""
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
# Launchers: size the grid, allocate the outputs. Arrays come checked from numbacnn.conv (device arrays of one
# float dtype), with a ConvGeometry; the kernels take it as (sh, sw, pt, pl, dh, dw, groups).


def _channel_sum1(gy, gb):
    channel_sum_kernel1[config.launch_1d(gb.size)](gy, gb)


def _channel_sum2(gy, gb):
    tpb = config.threads_per_block
    channel_sum_kernel2[gb.size, tpb, 0, tpb * gb.dtype.itemsize](gy, gb)


channel_sum1, channel_sum2 = _channel_sum1, _channel_sum2  # linear's bias gradient too (numbacnn.cuda.functional)


def _kernel_args(geo):
    return (*geo.stride, geo.padding[0], geo.padding[2], *geo.dilation, geo.groups)


def _pick(kernel):
    """The kernel number to run: ``kernel``, or for None 1 under config.simple and 2 otherwise."""
    return (1 if config.simple else 2) if kernel is None else kernel


def _tile_shared_bytes(w, geo, itemsize):
    """Shared memory of conv2d_forward_kernel2: the input patch one tile of outputs reads, and one channel's weights."""
    T, (sh, sw), (dh, dw) = config.tile, geo.stride, geo.dilation
    KH, KW = w.shape[2], w.shape[3]
    PH, PW = (T - 1) * sh + (KH - 1) * dh + 1, (T - 1) * sw + (KW - 1) * dw + 1
    return (PH * PW + KH * KW) * itemsize


def _tile_limit(x, w, geo):
    """What conv2d_forward_kernel2 needs that these shapes lack ('' when it can run them)."""
    nbytes = _tile_shared_bytes(w, geo, np.dtype(x.dtype).itemsize)
    if nbytes > MAX_SHARED_BYTES:
        return f"its input patch and weights ({nbytes} bytes) to fit in {MAX_SHARED_BYTES} bytes of shared memory"
    if x.shape[0] * w.shape[0] > 65535:
        return f"N * O <= 65535 (the grid's z), got {x.shape[0] * w.shape[0]}"
    return ""


def _conv2d_forward1(x, w, b, y, *args):
    conv2d_forward_kernel1[config.launch_1d(y.size)](x, w, b, y, *args)


def _conv2d_forward2(x, w, b, y, geo):
    T = config.tile
    grid = (config.blocks(y.shape[3], T), config.blocks(y.shape[2], T), y.shape[0] * y.shape[1])
    nbytes = _tile_shared_bytes(w, geo, y.dtype.itemsize)
    conv2d_forward_kernel2[grid, (T, T), 0, nbytes](x, w, b, y, *_kernel_args(geo))


def _conv2d_grad_input1(gy, w, gx, *args):
    conv2d_grad_input_kernel1[config.launch_1d(gx.size)](gy, w, gx, *args)


def _conv2d_grad_weight1(gy, x, gw, *args):
    conv2d_grad_weight_kernel1[config.launch_1d(gw.size)](gy, x, gw, *args)


def _conv2d_grad_weight2(gy, x, gw, *args):
    tpb = config.threads_per_block
    conv2d_grad_weight_kernel2[gw.size, tpb, 0, tpb * gw.dtype.itemsize](gy, x, gw, *args)


@functools.lru_cache(maxsize=32)
def _zeros(n, dtype_str):
    """A device vector of n zeros, made once and reused: the bias of a conv2d without one (never written)."""
    return cuda.to_device(np.zeros(n, np.dtype(dtype_str)))


def _flip(w):
    """A new device array holding the kernel turned by 180 degrees."""
    out = cuda.device_array(tuple(w.shape), dtype=w.dtype)
    flip_kernel1[config.launch_1d(w.size)](w, out)
    return out


def conv2d(x, w, b, geo, *, flip, kernel):
    """y (N, O, HO, WO), a device array, for x (N, C, H, W), w (O, C / groups, KH, KW), b (O,) or None."""
    run = _pick(kernel)
    limit = _tile_limit(x, w, geo) if run == 2 else ""
    if limit and kernel == 2:
        raise ValueError(f"kernel 2 of conv2d needs {limit}; kernel 1 has no such limit")
    if limit:  # the fastest that fits
        run = 1
    w = _flip(w) if flip else w
    b = b if b is not None else _zeros(w.shape[0], np.dtype(x.dtype).str)
    y = cuda.device_array((x.shape[0], w.shape[0]) + geo.out_hw, dtype=x.dtype)
    if y.size:  # an empty batch launches nothing (a grid of 0 blocks is an error)
        if run == 1:
            _conv2d_forward1(x, w, b, y, *_kernel_args(geo))
        else:
            _conv2d_forward2(x, w, b, y, geo)
    return y


def conv2d_backward(gy, x, w, b, geo, *, flip, need_grad_x, kernel):
    """(grad_x or None, grad_weight, grad_bias or None) as device arrays, for gy (N, O, HO, WO)."""
    run, args = _pick(kernel), _kernel_args(geo)
    wf = _flip(w) if flip else w
    gx = cuda.device_array(tuple(x.shape), dtype=x.dtype) if need_grad_x else None
    if need_grad_x and gx.size:
        _conv2d_grad_input1(gy, wf, gx, *args)
    gw = cuda.device_array(tuple(w.shape), dtype=x.dtype)
    (_conv2d_grad_weight1 if run == 1 else _conv2d_grad_weight2)(gy, x, gw, *args)
    if flip:  # that was the gradient of the flipped kernel: turn it back
        gw = _flip(gw)
    gb = None
    if b is not None:
        gb = cuda.device_array(tuple(b.shape), dtype=x.dtype)
        (_channel_sum1 if run == 1 else _channel_sum2)(gy, gb)
    return gx, gw, gb


def corr2d(X, K, *, kernel):
    """Y (H - h + 1, W - w + 1), a device array: conv2d on one example with one channel in and out."""
    HO, WO = X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1
    geo = ConvGeometry((1, 1), (0, 0, 0, 0), (1, 1), 1, (HO, WO))
    x, w = X.reshape(1, 1, *X.shape), K.reshape(1, 1, *K.shape)
    return conv2d(x, w, None, geo, flip=False, kernel=kernel).reshape(HO, WO)
