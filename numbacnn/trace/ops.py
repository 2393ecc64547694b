"""Op-level traces (numbacnn.trace.ops): every window of one conv2d / pooling call, gathered around the real
kernel's output.

The real kernel runs (``numbacnn.conv2d``, ``conv2d_backward``, ``max_pool2d`` ...); the windows are then
gathered from its inputs with NumPy, and each window's sum is checked against what the kernel wrote
(``TraceVerificationError`` if not within float tolerance). Small inputs only: the record holds every window.

An ``OpTrace`` is ``op`` (a string), ``meta`` (JSON-able dict) and ``arrays`` (name -> ndarray, also reachable
as attributes: ``t.window``). ``t.save(path)`` writes one ``.npz`` (NumPy + a JSON header, no pickle);
``numbacnn.trace.load(path)`` or ``OpTrace.load(path)`` reads it back.

Windows are listed in visit order: row-major over the output index, ``m = ((n * O + o) * HO + i) * WO + j``
(the order of the book's loops and of the one-thread-per-output CUDA map). M = number of windows.

conv2d (``op="conv2d"``), x (N, C, H, W), weight (O, Cg, KH, KW), Cg = C // groups:
    x, weight, out (N, O, HO, WO: the kernel's output), kernel (O, Cg, KH, KW: weight as applied,
    i.e. flipped when flip=True), bias (O,) only when given
    pos (M, 4) int       (n, o, i, j) of the output element each window produced
    channels (M, Cg) int the input channels of the window (its group's)
    rows (M, KH) int     input row read by each kernel row: i*sh - pad_top + p*dh (may be outside 0..H-1)
    cols (M, KW) int     input column read by each kernel column: j*sw - pad_left + q*dw
    window (M, Cg, KH, KW)   the input values under the kernel (0 where padding)
    pad (M, Cg, KH, KW) bool True where the kernel sits on padding
    products (M, Cg, KH, KW) window * kernel[o], in the input dtype
    bias_term (M,)       bias[o] (0 without bias)
    sum (M,) float64     bias_term + products.sum(): the gathered result
    result (M,)          out[n, o, i, j]: what the kernel wrote (checked equal to sum within tolerance)
    block, thread (M, 3) int  device="cudasim" only: (x, y, z) blockIdx / threadIdx of the thread that wrote it,
                         observed while the real kernel ran (numbacnn.trace.cuda_observe); with it
    access (A, 6) int    every access of that launch: array (index into meta["cuda"]["arrays"]), flat element,
                         block id, thread id (x fastest), barrier phase, 1 for a write; access_value (A,) the value
                         meta["cuda"]: kernel name, grid, block, arrays [(name, "global" | "shared", shape)], counts

conv2d_backward (``op="conv2d_backward"``): the real ``conv2d_backward`` outputs, and for each element which
terms contributed. grad_weight is the correlation of the input with the output gradient; grad_x is the full
convolution of the (stride-spread) output gradient with the kernel. (CUDA targets run the real CUDA backward
kernels; no thread map is recorded for the backward pass.)
    x, weight, grad_out, grad_x, grad_weight, grad_bias (only with bias), kernel (as in conv2d)
    gw_pos (Mw, 4)       (o, c, p, q) of each grad_weight element, row-major
    gw_channel (Mw,)     input channel c + group offset that this weight multiplies
    gw_rows (Mw, HO), gw_cols (Mw, WO)  the input row / column read for each output row i / column j
    gw_x (Mw, N, HO, WO)        the input values read (0 on padding), gw_pad the padding mask
    gw_grad_out (Mw, N, HO, WO) grad_out[:, o]
    gw_products, gw_sum (float64), gw_result (= grad_weight[o, c, p, q])
    gx_pos (Mx, 4)       (n, c, h, w) of each grad_x element, row-major
    gx_out_channels (Mx, Og)  the output channels o of the element's group
    gx_rows (Mx, KH), gx_cols (Mx, KW)  the output row i (column j) whose window put kernel row p (column q)
                         on this element, or -1 where none does (outside the output or between strides)
    gx_grad_out (Mx, Og, KH, KW)  grad_out[n, o, i, j] (0 where gx_pad)
    gx_kernel (Mx, Og, KH, KW)    kernel[o, c, p, q]
    gx_pad (Mx, Og, KH, KW) bool  True where no output element contributes (the full convolution's padding)
    gx_products, gx_sum (float64), gx_result (= grad_x[n, c, h, w])

max_pool2d / min_pool2d / avg_pool2d (``op`` is the function name), x (N, C, H, W):
    x, out (N, C, HO, WO)
    pos (M, 4) int       (n, c, i, j)
    rows (M, KH), cols (M, KW)  input rows / columns of the window (with dilation; may be outside the input)
    window (M, KH, KW)   values under the window; padding holds the pad value (-inf max, +inf min, 0 avg)
    pad (M, KH, KW) bool True on padding (and, with ceil_mode, beyond it)
    result (M,)          out[n, c, i, j]
    max/min: indices (N, C, HO, WO) the kernel's return_indices (flat h * W + w); chosen (M,) the same per window;
             chosen_hw (M, 2) its (h, w); chosen_pq (M, 2) its place (p, q) in the window
    avg: sum (M,) float64 of the window's non-padding values; divisor (M,) what the sum was divided by
    block, thread (M, 3)  CUDA targets only
"""
from __future__ import annotations

import numpy as np

from .._checks import as_float, pair, resolve_device
from .._host_copy import to_numpy
from ..geometry import conv_geometry
from .record import OpTrace  # noqa: F401  (re-exported)

MAX_ELEMENTS = 20_000_000  # op traces hold every window: refuse inputs that would need more than this


class TraceVerificationError(AssertionError):
    """The windows gathered around a kernel do not add up to what the kernel wrote."""


# ----------------------------------------------------------------------------------------------
# helpers


def _check_size(count, what):
    if count > MAX_ELEMENTS:
        raise ValueError(f"{what} would record {count} elements (limit {MAX_ELEMENTS}): op traces are for small "
                         f"inputs; use a smaller x")


def _verify(gathered, written, terms_abs, name):
    """Raise TraceVerificationError unless gathered (float64) equals written within float tolerance."""
    eps = np.finfo(written.dtype).eps if written.dtype.kind == "f" else 0.0
    tol = 8 * eps * terms_abs + 1e-30
    bad = np.abs(gathered - written.astype(np.float64)) > tol
    if bad.any():
        k = int(np.argmax(bad))
        raise TraceVerificationError(f"{name}: {int(bad.sum())} of {bad.size} gathered sums differ from the "
                                     f"kernel's output; first at window {k}: gathered {gathered[k]!r}, "
                                     f"kernel wrote {written.flat[k]!r}")


def _grid(*sizes):
    """Row-major index arrays over ``sizes``, flattened: one int64 array per axis."""
    return [a.ravel() for a in np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij")]


def _observed(device, call):
    """(call(), the observation of its CUDA kernels) under the simulator; (call(), None) elsewhere.

    Only the simulator can watch threads: on a real GPU (device="cuda") the trace holds the values, no thread map.
    """
    if device != "cudasim":
        return call(), None
    from .cuda_observe import observe

    with observe() as run:
        result = call()
    return result, run


def _thread_fields(run, device_out, arrays, meta):
    """Add block / thread (who wrote each output, in window order) and the access log of that launch."""
    block, thread = run.writers(device_out)
    arrays["block"], arrays["thread"] = block.reshape(-1, 3), thread.reshape(-1, 3)
    launch = run.launch_of(device_out)
    t = launch.table()
    sizes = np.array([a.itemsize for a in launch.arrays], np.int64)
    flat = t["offset"] // sizes[t["code"]] if len(t["code"]) else t["offset"]
    arrays["access"] = np.stack([t["code"], flat, t["block"], t["thread"], t["phase"], t["write"].astype(np.int64)],
                                axis=1)
    arrays["access_value"] = t["value"]
    meta["cuda"] = dict(kernel=launch.name, grid=list(launch.grid), block=list(launch.block),
                        arrays=[[a.name, a.space, list(a.shape)] for a in launch.arrays], counts=run.counts())


def _prepare(x, weight, bias):
    x = as_float(x, "x", 4)
    weight = as_float(weight, "weight", 4)
    bias = None if bias is None else as_float(bias, "bias", 1)
    dt = np.float64 if np.float64 in (x.dtype, weight.dtype, None if bias is None else bias.dtype) else np.float32
    return x.astype(dt, copy=False), weight.astype(dt, copy=False), None if bias is None else bias.astype(dt)


# ----------------------------------------------------------------------------------------------
# conv2d


def trace_conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False, device=None,
                 backward=False, grad_out=None, kernel=None, target=None):
    """Run ``numbacnn.conv2d`` (or, with ``backward=True``, ``conv2d_backward``) and record every window.

    x (N, C, H, W), weight (O, C/groups, KH, KW), bias (O,) or None. For the backward pass ``grad_out``
    (N, O, HO, WO) defaults to ones. ``device``: "cpu" (default), "cuda" or "cudasim" (``target=`` is its
    deprecated name; meta["target"] records it); ``kernel``: the kernel number (None: the op's default). Under
    "cudasim" the real kernel runs under the observer, which records who wrote each output and every access.
    Returns an ``OpTrace`` (fields in the module docstring).
    """
    import numbacnn as nc

    resolve_device(device, target)  # a clear error for an unknown device or a missing GPU
    device = device or target or "cpu"  # as named: "cudasim" is kept for the op call and the record
    number = kernel  # below, ``kernel`` is the weight as applied (flipped for flip=True)
    x, weight, bias = _prepare(x, weight, bias)
    geo = conv_geometry(x.shape, weight.shape, None if bias is None else bias.shape, stride, padding, dilation,
                        groups)
    N, C, H, W = x.shape
    O, Cg, KH, KW = weight.shape
    HO, WO = geo.out_hw
    kernel = np.ascontiguousarray(weight[:, :, ::-1, ::-1]) if flip else weight
    meta = dict(stride=geo.stride, padding=geo.padding, dilation=geo.dilation, groups=geo.groups, flip=bool(flip),
                target=device, x_shape=x.shape, weight_shape=weight.shape, out_shape=(N, O, HO, WO),
                has_bias=bias is not None, dtype=str(x.dtype), padding_arg=padding if isinstance(padding, str)
                else list(pair(padding, "padding", 0)))
    if backward:
        return _trace_conv2d_backward(nc, x, weight, bias, kernel, geo, meta, grad_out, device)

    _check_size(N * O * HO * WO * Cg * KH * KW, "trace_conv2d")
    y, run = _observed(device, lambda: nc.conv2d(x, weight, bias, stride, padding, dilation, groups, flip=flip,
                                                 kernel=number, device=device))
    out = to_numpy(y)
    n, o, i, j = _grid(N, O, HO, WO)
    (sh, sw), (pt, _, pl, _), (dh, dw) = geo.stride, geo.padding, geo.dilation
    rows = i[:, None] * sh - pt + np.arange(KH) * dh
    cols = j[:, None] * sw - pl + np.arange(KW) * dw
    Og = O // geo.groups
    channels = (o // Og)[:, None] * Cg + np.arange(Cg)
    inside = ((rows >= 0) & (rows < H))[:, None, :, None] & ((cols >= 0) & (cols < W))[:, None, None, :]
    pad = np.broadcast_to(~inside, (len(n), Cg, KH, KW)).copy()
    window = x[n[:, None, None, None], channels[:, :, None, None], np.clip(rows, 0, H - 1)[:, None, :, None],
               np.clip(cols, 0, W - 1)[:, None, None, :]]
    window[pad] = 0
    products = window * kernel[o]
    bias_term = np.zeros(len(n), x.dtype) if bias is None else bias[o]
    total = products.reshape(len(n), -1).astype(np.float64).sum(axis=1) + bias_term
    result = out[n, o, i, j]
    _verify(total, result, np.abs(products.reshape(len(n), -1)).astype(np.float64).sum(axis=1) + np.abs(bias_term),
            "conv2d")
    arrays = dict(x=x, weight=weight, kernel=kernel, out=out, pos=np.stack([n, o, i, j], axis=1), channels=channels,
                  rows=rows, cols=cols, window=window, pad=pad, products=products, bias_term=bias_term, sum=total,
                  result=result)
    if bias is not None:
        arrays["bias"] = bias
    if run is not None:
        _thread_fields(run, y, arrays, meta)
    return OpTrace("conv2d", meta, arrays)


def _trace_conv2d_backward(nc, x, weight, bias, kernel, geo, meta, grad_out, device):
    N, C, H, W = x.shape
    O, Cg, KH, KW = weight.shape
    HO, WO = geo.out_hw
    Og = O // geo.groups
    (sh, sw), (pt, _, pl, _), (dh, dw) = geo.stride, geo.padding, geo.dilation
    if grad_out is None:
        grad_out = np.ones((N, O, HO, WO), dtype=x.dtype)
    gy = as_float(grad_out, "grad_out", 4).astype(x.dtype, copy=False)
    if gy.shape != (N, O, HO, WO):
        raise ValueError(f"grad_out must have the output's shape {(N, O, HO, WO)}, got {gy.shape}")
    _check_size(O * Cg * KH * KW * N * HO * WO + N * C * H * W * Og * KH * KW, "trace_conv2d(backward=True)")
    gx, gw, gb = nc.conv2d_backward(gy, x, weight, bias, geo.stride, _padding_arg(meta), geo.dilation, geo.groups,
                                    flip=meta["flip"], device=device)
    gx, gw = to_numpy(gx), to_numpy(gw)
    gb = None if gb is None else to_numpy(gb)
    flip = meta["flip"]

    # grad_weight[o, c, p, q] = sum_{n, i, j} grad_out[n, o, i, j] * x[n, ci, rows[i], cols[j]]
    o, c, p, q = _grid(O, Cg, KH, KW)
    pe = KH - 1 - p if flip else p  # the kernel tap actually applied (the reported gradient is flipped back)
    qe = KW - 1 - q if flip else q
    ci = (o // Og) * Cg + c
    gw_rows = np.arange(HO) * sh - pt + pe[:, None] * dh
    gw_cols = np.arange(WO) * sw - pl + qe[:, None] * dw
    ok_r = (gw_rows >= 0) & (gw_rows < H)
    ok_c = (gw_cols >= 0) & (gw_cols < W)
    gw_pad = np.broadcast_to(~(ok_r[:, None, :, None] & ok_c[:, None, None, :]), (len(o), N, HO, WO)).copy()
    gw_x = x[np.arange(N)[None, :, None, None], ci[:, None, None, None], np.clip(gw_rows, 0, H - 1)[:, None, :, None],
             np.clip(gw_cols, 0, W - 1)[:, None, None, :]]
    gw_x[gw_pad] = 0
    gw_gy = gy.transpose(1, 0, 2, 3)[o]
    gw_products = gw_x * gw_gy
    gw_sum = gw_products.reshape(len(o), -1).astype(np.float64).sum(axis=1)
    gw_result = gw[o, c, p, q]
    _verify(gw_sum, gw_result, np.abs(gw_products.reshape(len(o), -1)).astype(np.float64).sum(axis=1),
            "conv2d_backward grad_weight")

    # grad_x[n, ci, h, w] = sum over (o, p, q) with h = i*sh - pt + p*dh, w = j*sw - pl + q*dw of gy * kernel
    n, cx, h, w = _grid(N, C, H, W)
    g, cl = cx // Cg, cx % Cg
    out_ch = g[:, None] * Og + np.arange(Og)
    num_r = h[:, None] + pt - np.arange(KH) * dh
    num_c = w[:, None] + pl - np.arange(KW) * dw
    r_ok = (num_r % sh == 0) & (num_r >= 0) & (num_r // sh < HO)
    c_ok = (num_c % sw == 0) & (num_c >= 0) & (num_c // sw < WO)
    gx_rows = np.where(r_ok, num_r // sh, -1)
    gx_cols = np.where(c_ok, num_c // sw, -1)
    gx_pad = np.broadcast_to(~(r_ok[:, None, :, None] & c_ok[:, None, None, :]), (len(n), Og, KH, KW)).copy()
    gx_gy = gy[n[:, None, None, None], out_ch[:, :, None, None], np.clip(gx_rows, 0, HO - 1)[:, None, :, None],
               np.clip(gx_cols, 0, WO - 1)[:, None, None, :]]
    gx_gy[gx_pad] = 0
    gx_kernel = kernel[out_ch[:, :, None, None], cl[:, None, None, None], np.arange(KH)[None, None, :, None],
                       np.arange(KW)[None, None, None, :]]
    gx_products = gx_gy * gx_kernel
    gx_sum = gx_products.reshape(len(n), -1).astype(np.float64).sum(axis=1)
    gx_result = gx[n, cx, h, w]
    _verify(gx_sum, gx_result, np.abs(gx_products.reshape(len(n), -1)).astype(np.float64).sum(axis=1),
            "conv2d_backward grad_x")

    arrays = dict(x=x, weight=weight, kernel=kernel, grad_out=gy, grad_x=gx, grad_weight=gw,
                  gw_pos=np.stack([o, c, p, q], axis=1), gw_channel=ci, gw_rows=gw_rows, gw_cols=gw_cols, gw_x=gw_x,
                  gw_pad=gw_pad, gw_grad_out=gw_gy, gw_products=gw_products, gw_sum=gw_sum, gw_result=gw_result,
                  gx_pos=np.stack([n, cx, h, w], axis=1), gx_out_channels=out_ch, gx_rows=gx_rows, gx_cols=gx_cols,
                  gx_grad_out=gx_gy, gx_kernel=gx_kernel, gx_pad=gx_pad, gx_products=gx_products, gx_sum=gx_sum,
                  gx_result=gx_result)
    if bias is not None:
        arrays["bias"] = bias
        arrays["grad_bias"] = gb
        _verify(gy.astype(np.float64).sum(axis=(0, 2, 3)), gb, np.abs(gy).astype(np.float64).sum(axis=(0, 2, 3)),
                "conv2d_backward grad_bias")
    return OpTrace("conv2d_backward", meta, arrays)


def _padding_arg(meta):
    p = meta["padding_arg"]
    return p if isinstance(p, str) else tuple(p)


# ----------------------------------------------------------------------------------------------
# pooling

_POOL_MODES = ("max", "min", "avg")


def pool_divisors(H, W, rows0, cols0, KH, KW, ph, pw, count_include_pad, divisor_override):
    """PyTorch's avg_pool2d divisor per window, from the window's first row / column (may be negative)."""
    if divisor_override is not None:
        return np.full(len(rows0), divisor_override, dtype=np.int64)
    hend = np.minimum(rows0 + KH, H + ph)
    wend = np.minimum(cols0 + KW, W + pw)
    pool = (hend - rows0) * (wend - cols0)
    if count_include_pad:
        return pool
    hs, ws = np.maximum(rows0, 0), np.maximum(cols0, 0)
    he, we = np.minimum(hend, H), np.minimum(wend, W)
    return (he - hs) * (we - ws)


def trace_pool2d(x, mode="max", kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False,
                 count_include_pad=True, divisor_override=None, *, device=None, kernel=None, target=None):
    """Run ``numbacnn.<mode>_pool2d`` on x (N, C, H, W) and record every window (fields in the module docstring).

    ``mode`` is ``"max"``, ``"min"`` or ``"avg"``; the other options are those of the pooling op
    (``dilation`` for max/min only; ``count_include_pad`` and ``divisor_override`` for avg only).
    ``device`` (``target=`` deprecated) and ``kernel`` as in ``trace_conv2d``.
    """
    import numbacnn as nc

    if mode not in _POOL_MODES:
        raise ValueError(f"mode must be 'max', 'min' or 'avg', got {mode!r}")
    resolve_device(device, target)  # a clear error for an unknown device or a missing GPU
    device = device or target or "cpu"  # as named: "cudasim" is kept for the op call and the record
    x = as_float(x, "x", 4)
    KH, KW = pair(kernel_size, "kernel_size")
    sh, sw = (KH, KW) if stride is None else pair(stride, "stride")
    ph, pw = pair(padding, "padding", minimum=0)
    dh, dw = pair(dilation, "dilation")
    if mode == "avg" and (dh, dw) != (1, 1):
        raise ValueError(f"dilation must be 1 for mode='avg' (avg_pool2d has no dilation), got {dilation!r}")
    N, C, H, W = x.shape
    name = f"{mode}_pool2d"
    fn = getattr(nc, name)
    indices = None
    if mode == "avg":
        y, run = _observed(device, lambda: fn(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                                              divisor_override, kernel=kernel, device=device))
    else:
        (y, indices), run = _observed(device, lambda: fn(x, kernel_size, stride, padding, dilation, ceil_mode, True,
                                                         kernel=kernel, device=device))
        indices = to_numpy(indices)
    out = to_numpy(y)
    HO, WO = out.shape[2:]
    _check_size(N * C * HO * WO * KH * KW, "trace_pool2d")
    n, c, i, j = _grid(N, C, HO, WO)
    rows = i[:, None] * sh - ph + np.arange(KH) * dh
    cols = j[:, None] * sw - pw + np.arange(KW) * dw
    inside = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]
    pad = ~inside
    window = x[n[:, None, None], c[:, None, None], np.clip(rows, 0, H - 1)[:, :, None],
               np.clip(cols, 0, W - 1)[:, None, :]]
    pad_value = {"max": -np.inf, "min": np.inf, "avg": 0.0}[mode]
    window[pad] = pad_value
    result = out[n, c, i, j]
    meta = dict(mode=mode, kernel_size=(KH, KW), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw),
                ceil_mode=bool(ceil_mode), target=device, x_shape=x.shape, out_shape=out.shape, dtype=str(x.dtype),
                pad_value=str(pad_value))
    arrays = dict(x=x, out=out, pos=np.stack([n, c, i, j], axis=1), rows=rows, cols=cols, window=window, pad=pad,
                  result=result)
    if mode == "avg":
        meta.update(count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
        divisor = pool_divisors(H, W, rows[:, 0], cols[:, 0], KH, KW, ph, pw, count_include_pad, divisor_override)
        total = np.where(pad, 0, window).reshape(len(n), -1).astype(np.float64).sum(axis=1)
        expect = total / divisor
        _verify(expect, result, np.abs(window).reshape(len(n), -1).astype(np.float64).sum(axis=1) / divisor,
                name)
        arrays.update(sum=total, divisor=divisor)
    else:
        chosen = indices[n, c, i, j].astype(np.int64)
        ch, cw = chosen // W, chosen % W
        hit = (rows[:, :, None] == ch[:, None, None]) & (cols[:, None, :] == cw[:, None, None]) & ~pad
        if not hit.reshape(len(n), -1).any(axis=1).all():
            k = int(np.argmin(hit.reshape(len(n), -1).any(axis=1)))
            raise TraceVerificationError(f"{name}: the kernel's index {chosen[k]} for window {k} is not in the window")
        flat = hit.reshape(len(n), -1).argmax(axis=1)
        pq = np.stack([flat // KW, flat % KW], axis=1)
        best = window.reshape(len(n), -1).max(axis=1) if mode == "max" else window.reshape(len(n), -1).min(axis=1)
        picked = x[n, c, ch, cw]
        same = (picked == result) | (np.isnan(picked) & np.isnan(result))
        extreme = (best == result) | np.isnan(result)
        if not (same & extreme).all():
            k = int(np.argmin(same & extreme))
            raise TraceVerificationError(f"{name}: window {k}: kernel wrote {result[k]!r}, its chosen element holds "
                                         f"{picked[k]!r}, the window's {mode} is {best[k]!r}")
        arrays.update(indices=indices, chosen=chosen, chosen_hw=np.stack([ch, cw], axis=1), chosen_pq=pq)
    if run is not None:
        _thread_fields(run, y, arrays, meta)
    return OpTrace(name, meta, arrays)


# ----------------------------------------------------------------------------------------------
# linear


def trace_linear(x, weight, bias=None, *, device=None, kernel=None):
    """Run ``numbacnn.linear`` on x (B, I), weight (O, I), bias (O,) and record each output's sum.

    Fields: x, weight, bias (when given), out (B, O), pos (M, 2) (b, o) in row-major order, sum (M,) float64
    x[b] . weight[o] + bias[o] gathered with NumPy, result (M,) what the kernel wrote; under "cudasim" also
    block, thread, access, access_value and meta["cuda"] (as in ``trace_conv2d``).
    """
    import numbacnn as nc

    resolve_device(device, None)
    device = device or "cpu"
    x, weight = as_float(x, "x", 2), as_float(weight, "weight", 2)
    bias = None if bias is None else as_float(bias, "bias", 1)
    _check_size(x.shape[0] * weight.shape[0] * x.shape[1], "trace_linear")
    y, run = _observed(device, lambda: nc.linear(x, weight, bias, kernel=kernel, device=device))
    out = to_numpy(y)
    b, o = _grid(x.shape[0], weight.shape[0])
    products = x[b].astype(np.float64) * weight[o]
    bias_term = np.zeros(len(b)) if bias is None else bias[o].astype(np.float64)
    total = products.sum(axis=1) + bias_term
    result = out[b, o]
    _verify(total, result, np.abs(products).sum(axis=1) + np.abs(bias_term), "linear")
    meta = dict(target=device, x_shape=x.shape, weight_shape=weight.shape, out_shape=out.shape,
                has_bias=bias is not None, dtype=str(out.dtype))
    arrays = dict(x=x, weight=weight, out=out, pos=np.stack([b, o], axis=1), sum=total, result=result)
    if bias is not None:
        arrays["bias"] = bias
    if run is not None:
        _thread_fields(run, y, arrays, meta)
    return OpTrace("linear", meta, arrays)
