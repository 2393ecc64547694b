"""Which CUDA block and thread computes each output element (numbacnn.trace.cuda_map), as the real kernels do.

Each kernel computes conv2d / pooling exactly like the simple CUDA kernels (one thread per output element,
the same sums in the same order) and also writes its ``blockIdx`` and ``threadIdx`` next to the value.
Two launch layouts, those of ``numbacnn.cuda`` (block sizes from ``numbacnn.cuda.config``):
    "simple": 1-D blocks of ``config.threads_per_block`` threads; thread t = blockIdx.x * blockDim.x + threadIdx.x
              computes the t-th output element in row-major order (``conv2d_forward_kernel1``).
    "tiled":  2-D blocks of tile x tile threads; blockIdx.z is the output plane n * O + o (pooling n * C + c),
              i = blockIdx.y * tile + threadIdx.y, j = blockIdx.x * tile + threadIdx.x (``conv2d_forward_kernel2``,
              whose threads compute the same sums from a shared-memory copy of the input patch).
``threads`` overrides the block size: an int for "simple", an int or a pair (ty, tx) for "tiled".
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

LAYOUTS = ("simple", "tiled")


def _config():
    from numbacnn.cuda import config

    return config


def default_layout(op="conv2d"):
    """The layout numbacnn.cuda uses for ``op`` now: "tiled" for conv2d unless config.simple, else "simple"."""
    if op != "conv2d" or getattr(_config(), "simple", False):
        return "simple"
    return "tiled"


def _launch(layout, out_shape, threads):
    """(grid, block) for one thread per element of out_shape (N, P, HO, WO)."""
    cfg = _config()
    N, P, HO, WO = out_shape
    if layout == "simple":
        tpb = int(threads) if threads is not None else int(getattr(cfg, "threads_per_block", 256))
        return ((N * P * HO * WO + tpb - 1) // tpb,), (tpb,)
    if layout != "tiled":
        raise ValueError(f"layout must be 'simple' or 'tiled', got {layout!r}")
    if threads is None:
        threads = int(getattr(cfg, "tile", 16))
    ty, tx = (threads, threads) if isinstance(threads, int) else threads
    return (math.ceil(WO / tx), math.ceil(HO / ty), N * P), (tx, ty)


@cuda.jit(device=True)
def _where(shape, tiled):
    """(n, p, i, j) of this thread's output element, or n = -1 when it has none."""
    N, P, HO, WO = shape
    if tiled:
        j = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
        i = cuda.blockIdx.y * cuda.blockDim.y + cuda.threadIdx.y
        plane = cuda.blockIdx.z
        if i >= HO or j >= WO or plane >= N * P:
            return -1, 0, 0, 0
        return plane // P, plane % P, i, j
    t = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    if t >= N * P * HO * WO:
        return -1, 0, 0, 0
    return t // (WO * HO * P), (t // (WO * HO)) % P, (t // WO) % HO, t % WO


@cuda.jit(device=True)
def _record(blk, thr, n, o, i, j):
    blk[n, o, i, j, 0] = cuda.blockIdx.x
    blk[n, o, i, j, 1] = cuda.blockIdx.y
    blk[n, o, i, j, 2] = cuda.blockIdx.z
    thr[n, o, i, j, 0] = cuda.threadIdx.x
    thr[n, o, i, j, 1] = cuda.threadIdx.y
    thr[n, o, i, j, 2] = cuda.threadIdx.z


@cuda.jit
def conv2d_map_kernel(x, w, b, out, blk, thr, tiled, sh, sw, pt, pl, dh, dw, groups):
    """out[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    n, o, i, j = _where(out.shape, tiled)
    if n < 0:
        return
    g = o // (O // groups)
    acc = b[o]
    for c in range(Cg):
        for p in range(KH):
            hi = i * sh - pt + p * dh
            if 0 <= hi < H:
                for q in range(KW):
                    wj = j * sw - pl + q * dw
                    if 0 <= wj < W:
                        acc += x[n, g * Cg + c, hi, wj] * w[o, c, p, q]
    out[n, o, i, j] = acc
    _record(blk, thr, n, o, i, j)


@cuda.jit
def pool2d_map_kernel(x, out, blk, thr, tiled, kh, kw, sh, sw, ph, pw, dh, dw, mode, count_include_pad,
                      divisor_override, zero):
    """mode 1 max / -1 min: the first extreme of the window in row-major order (a NaN wins);
    mode 0 avg: the window's sum (in x's dtype: ``zero`` is 0 in that dtype) over PyTorch's divisor."""
    N, C, H, W = x.shape
    n, c, i, j = _where(out.shape, tiled)
    if n < 0:
        return
    if mode == 0:
        h0 = i * sh - ph
        w0 = j * sw - pw
        h1 = min(h0 + kh, H + ph)
        w1 = min(w0 + kw, W + pw)
        padded = (h1 - h0) * (w1 - w0)
        h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
        acc = zero
        for h in range(h0, h1):
            for w in range(w0, w1):
                acc += x[n, c, h, w]
        if divisor_override != 0:
            divisor = divisor_override
        elif count_include_pad:
            divisor = padded
        else:
            divisor = (h1 - h0) * (w1 - w0)
        out[n, c, i, j] = acc / divisor if h0 < h1 and w0 < w1 else 0.0
    else:
        best = -math.inf
        for p in range(kh):
            h = i * sh - ph + p * dh
            if 0 <= h < H:
                for q in range(kw):
                    w = j * sw - pw + q * dw
                    if 0 <= w < W:
                        v = mode * x[n, c, h, w]
                        if v > best or math.isnan(v):
                            best = v
        out[n, c, i, j] = mode * best
    _record(blk, thr, n, c, i, j)


def _outputs(shape, dtype):
    return (cuda.device_array(shape, dtype=dtype), cuda.to_device(np.full(shape + (3,), -1, np.int32)),
            cuda.to_device(np.full(shape + (3,), -1, np.int32)))


def conv2d_thread_map(x, kernel, bias, geo, threads=None, layout=None):
    """Run the instrumented conv kernel on host arrays x (N, C, H, W) and kernel (O, Cg, KH, KW) as applied.

    Returns (out (N, O, HO, WO), block (N, O, HO, WO, 3), thread (N, O, HO, WO, 3)) as host arrays;
    block / thread hold (x, y, z) of blockIdx / threadIdx.
    """
    layout = default_layout("conv2d") if layout is None else layout
    N, O = x.shape[0], kernel.shape[0]
    shape = (N, O) + tuple(geo.out_hw)
    b = np.zeros(O, x.dtype) if bias is None else bias
    out, blk, thr = _outputs(shape, x.dtype)
    grid, block = _launch(layout, shape, threads)
    conv2d_map_kernel[grid, block](cuda.to_device(x), cuda.to_device(np.ascontiguousarray(kernel)),
                                   cuda.to_device(b), out, blk, thr, layout == "tiled", *geo.stride, geo.padding[0],
                                   geo.padding[2], *geo.dilation, geo.groups)
    return out.copy_to_host(), blk.copy_to_host(), thr.copy_to_host()


def pool2d_thread_map(x, mode, kernel, stride, padding, dilation, out_shape, count_include_pad=True,
                      divisor_override=None, threads=None, layout=None):
    """Run the instrumented pooling kernel (mode 'max' | 'min' | 'avg') on a host array x (N, C, H, W).

    Returns (out, block, thread) like ``conv2d_thread_map``.
    """
    layout = default_layout("pool2d") if layout is None else layout
    shape = tuple(int(v) for v in out_shape)
    out, blk, thr = _outputs(shape, x.dtype)
    grid, block = _launch(layout, shape, threads)
    m = {"max": 1, "min": -1, "avg": 0}[mode]
    pool2d_map_kernel[grid, block](cuda.to_device(x), out, blk, thr, layout == "tiled", *kernel, *stride, *padding,
                                   *dilation, m, bool(count_include_pad), int(divisor_override or 0), x.dtype.type(0))
    return out.copy_to_host(), blk.copy_to_host(), thr.copy_to_host()
