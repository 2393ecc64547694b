"""2-D cross-correlation / convolution: argument rules, Numba CPU kernels, and the public API.

Shapes (NCHW): x (N, C, H, W), weight (O, C // groups, KH, KW), bias (O,) -> y (N, O, HO, WO) with
    HO = (H + pad_top + pad_bottom - dilation_h * (KH - 1) - 1) // stride_h + 1   (WO likewise).
The forward pass is the formula of D2L 6.2 / 6.3 / 6.4, one output element at a time:
    y[n, o, i, j] = b[o] + sum_{c, p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o, c, p, q]
where g = o // (O // groups) is the group of output channel o and out-of-range x reads are the zero padding.
The plain NumPy version is ``numbacnn.reference.conv``; the CUDA version is ``numbacnn.cuda.conv``.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from ._checks import as_float, check_target, common_dtype, cuda_module, is_device_array
from .cpu.tiles import TILE_BYTES, tile_add_at, tile_fill, tile_fma, tile_lanes, tile_load, tile_store
from .geometry import ConvGeometry, conv_geometry  # noqa: F401  (re-exported: numbacnn.conv.conv_geometry)




# ----------------------------------------------------------------------------------------------
# Simple CPU kernels: the formula, one output element at a time, any stride. They are the readable
# version and the fallback for strided convolutions; the fast kernels below are tested against them.


@njit(parallel=True, cache=True)
def conv2d_forward_cpu_simple(x, w, b, out, sh, sw, pt, pl, dh, dw, groups):
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
def conv2d_grad_weight_cpu_simple(gy, x, gw, sh, sw, pt, pl, dh, dw, groups):
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
def conv2d_grad_input_cpu_simple(gy, w, gx, sh, sw, pt, pl, dh, dw, groups):
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


# ----------------------------------------------------------------------------------------------
# Fast CPU kernels for stride 1 (LeNet's case; any padding, dilation and groups).
#
# The trick: pad example n once into a flat buffer xp, channel after channel, rows Wp = W + pl + pr
# apart. Output (i, j) then sits at m = i * Wp + j of a flat output row, and tap (c, p, q) of the
# kernel reads xp[off[k] + m] with off[k] = c * Hp * Wp + p * dh * Wp + q * dw: one shifted slice of xp
# per tap, the same for every output. The convolution becomes a sum of shifted slices times scalars,
#     acc[m] = b[o] + sum_k w[o, k] * xp[off[k] + m],      k = (c, p, q) flattened,
# whose loop over m is contiguous. The Wp - WO columns at the end of each flat row are junk and
# dropped; L is rounded up to a multiple of 16 (buffers have the slack) so m runs in whole tiles.
# Forward and grad_input keep their running sums in registers as tiles (``_tiles``: 16 float32 lanes
# of m) for six channels at once, over every tap: the micro-kernel ``_fma6`` is one tile load and six
# fused multiply-adds per tap. grad_weight is a dot product over m, vectorized by LLVM.
# For groups of at least a tile of output channels (conv2's 16) the forward and grad_weight turn the
# roles: a tile holds 16 output channels, and the forward then computes no junk columns at all.
#
# GEMM_MATH lets LLVM fuse a * b + c into one FMA and reorder the additions of a sum (as every BLAS
# does); it does not assume away NaN or infinity, so they propagate as in PyTorch.

GEMM_MATH = {"contract", "reassoc"}


@njit(inline="always")
def _flat_length(HO, WO, Wp):
    """Length of the flat output row covering every output (i, j) at i * Wp + j, rounded up to 16."""
    return ((HO - 1) * Wp + WO + 15) // 16 * 16


@njit(inline="always")
def _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw):
    """off[k] for tap k = (c, p, q): where x[c, i + p*dh, j + q*dw] sits in xp relative to output m = i*Wp + j."""
    off = np.empty(Cg * KH * KW, np.int64)
    for c in range(Cg):
        for p in range(KH):
            for q in range(KW):
                off[(c * KH + p) * KW + q] = c * Hp * Wp + p * dh * Wp + q * dw
    return off


@njit(inline="always")
def _pad_into(x, n, xp, pt, pl, Hp, Wp):
    """xp (C * Hp * Wp + slack,) <- example n of x inside its zero padding, flat."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    xp[:] = 0.0
    for c in range(C):
        for h in range(H):
            row = (c * Hp + h + pt) * Wp + pl
            xp[row:row + W] = x[n, c, h]


@njit(inline="always")
def _example_row(x, xf, n, xp, pt, pb, pl, pr, L):
    """Example n of x as a flat padded row (planes Hp * Wp apart, readable L past the last plane): x's own
    memory when there is no padding and that overrun stays inside x (it only reaches junk lanes),
    else xp filled by _pad_into."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    if pt == 0 and pb == 0 and pl == 0 and pr == 0 and (n + 1) * C * H * W + L <= xf.size:
        return xf[n * C * H * W:]
    _pad_into(x, n, xp, pt, pl, H + pt + pb, W + pl + pr)
    return xp


@njit(inline="always")
def _pack_tap_major(w, b, groups, S):
    """wt (groups, K, S) with wt[g, k, r] = w[g * Og + r, k] and bp (groups, S) with bp[g, r] = b[g * Og + r]:
    the weights tap-major per group, each row's Og channels padded with zeros to S."""
    O = w.shape[0]
    Og, K = O // groups, w.size // O
    wt = np.zeros((groups, K, S), w.dtype)
    wt[:, :, :Og] = w.reshape(groups, Og, K).transpose(0, 2, 1)
    bp = np.zeros((groups, S), w.dtype)
    bp[:, :Og] = b.reshape(groups, Og)
    return wt, bp


@njit(inline="always")
def _widen_into(gy, n, gp, Wp):
    """gp (O, L) <- gy[n] laid out as flat output rows (i * Wp + j), zero in the junk columns."""
    O, HO, WO = gy.shape[1], gy.shape[2], gy.shape[3]
    gp[:] = 0.0
    for o in range(O):
        for i in range(HO):
            gp[o, i * Wp:i * Wp + WO] = gy[n, o, i]


@njit(inline="always")
def _fma6(a0, a1, a2, a3, a4, a5, src, off, m, wk, S, r):
    """a_i += src[off[k] + m : ... + lanes] * wk[k * S + r + i] for every k: six running sums of tiles, in registers."""
    for k in range(off.size):
        s = tile_load(src, off[k] + m)
        a0 = tile_fma(a0, s, wk, k * S + r)
        a1 = tile_fma(a1, s, wk, k * S + r + 1)
        a2 = tile_fma(a2, s, wk, k * S + r + 2)
        a3 = tile_fma(a3, s, wk, k * S + r + 3)
        a4 = tile_fma(a4, s, wk, k * S + r + 4)
        a5 = tile_fma(a5, s, wk, k * S + r + 5)
    return a0, a1, a2, a3, a4, a5


@njit(inline="always")
def _fma4(a0, a1, a2, a3, src, off, m, wk, S, r):
    """_fma6 for four sums (a block of two to four channels)."""
    for k in range(off.size):
        s = tile_load(src, off[k] + m)
        a0 = tile_fma(a0, s, wk, k * S + r)
        a1 = tile_fma(a1, s, wk, k * S + r + 1)
        a2 = tile_fma(a2, s, wk, k * S + r + 2)
        a3 = tile_fma(a3, s, wk, k * S + r + 3)
    return a0, a1, a2, a3


@njit(inline="always")
def _fma6_along(a0, a1, a2, a3, a4, a5, src, off, m, T, wk, S, r):
    """a_i += src[off[k] + m + i*T : ... + lanes] * wk[k * S + r] for every k: six consecutive tiles of one
    row of sums (for a single channel, where a block of channels would be mostly empty)."""
    for k in range(off.size):
        s = off[k] + m
        a0 = tile_fma(a0, tile_load(src, s), wk, k * S + r)
        a1 = tile_fma(a1, tile_load(src, s + T), wk, k * S + r)
        a2 = tile_fma(a2, tile_load(src, s + 2 * T), wk, k * S + r)
        a3 = tile_fma(a3, tile_load(src, s + 3 * T), wk, k * S + r)
        a4 = tile_fma(a4, tile_load(src, s + 4 * T), wk, k * S + r)
        a5 = tile_fma(a5, tile_load(src, s + 5 * T), wk, k * S + r)
    return a0, a1, a2, a3, a4, a5


@njit(parallel=True, cache=True)
def conv2d_forward_cpu(x, w, b, out, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1: acc[m] = b[o] + sum_k w[o, k] * xp[off[k] + m], then out[n, o, i, j] = acc[i * Wp + j].

    The sums run one tile of outputs m at a time (16 float32 / 8 float64 lanes, see ``_tiles``) for six
    output channels of a group (four when two to four are left), over all K taps, in registers: each
    tile of xp loaded serves six fused multiply-adds. The weights are packed tap-major per group,
    wt[g][k * S + r] = w[g * Og + r, k], rows padded with 5 zeros so a block never reads past its row.
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = out.shape[2], out.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    K = Cg * KH * KW
    Og = O // groups
    S = Og + 5
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    wt, bp = _pack_tap_major(w, b, groups, S)
    T = tile_lanes(bp[0])
    xf = x.reshape(x.size)
    for n in prange(N):
        xp = _example_row(x, xf, n, np.empty(C * Hp * Wp + L, x.dtype), pt, pb, pl, pr, L)
        acc = np.empty((6, L), x.dtype)
        for g in range(groups):
            xg, wg, bg = xp[g * Cg * Hp * Wp:], wt[g].reshape(K * S), bp[g]
            for r in range(0, Og, 6):  # output channels g * Og + r .. + nb - 1
                nb = min(6, Og - r)
                for m in range(0, L, T):
                    a0, a1, a2, a3 = tile_fill(bg[r]), tile_fill(bg[r + 1]), tile_fill(bg[r + 2]), tile_fill(bg[r + 3])
                    if nb > 4:
                        a4, a5 = tile_fill(bg[r + 4]), tile_fill(bg[r + 5])
                        a0, a1, a2, a3, a4, a5 = _fma6(a0, a1, a2, a3, a4, a5, xg, off, m, wg, S, r)
                        tile_store(acc[4], m, a4)
                        tile_store(acc[5], m, a5)
                    else:
                        a0, a1, a2, a3 = _fma4(a0, a1, a2, a3, xg, off, m, wg, S, r)
                    tile_store(acc[0], m, a0)
                    tile_store(acc[1], m, a1)
                    tile_store(acc[2], m, a2)
                    tile_store(acc[3], m, a3)
                for i in range(nb):
                    for h in range(HO):
                        for j in range(WO):
                            out[n, g * Og + r + i, h, j] = acc[i, h * Wp + j]


@njit(inline="always")
def _fma6_at(a0, a1, a2, a3, a4, a5, src, S, o, wk, at, e0, e1, e2, e3, e4, e5):
    """a_i += src[j * S + o : ... + lanes] * wk[at[j] + e_i] for every j < at.size: _fma6 with the roles
    turned, the tile walking down the rows of src and each sum reading wk at its own offset e_i."""
    for j in range(at.size):
        s = tile_load(src, j * S + o)
        d = at[j]
        a0 = tile_fma(a0, s, wk, d + e0)
        a1 = tile_fma(a1, s, wk, d + e1)
        a2 = tile_fma(a2, s, wk, d + e2)
        a3 = tile_fma(a3, s, wk, d + e3)
        a4 = tile_fma(a4, s, wk, d + e4)
        a5 = tile_fma(a5, s, wk, d + e5)
    return a0, a1, a2, a3, a4, a5


@njit(parallel=True, cache=True, fastmath=GEMM_MATH)
def conv2d_forward_tiles_cpu(x, w, b, out, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1, for groups of at least a tile of output channels (conv2's 16): the sums of
    conv2d_forward_cpu with the roles turned, a tile holding 16 output channels of one output position.

    Six positions' tiles stay in registers over all K taps (``_fma6_at``: per tap, one tile of weights,
    wt[g][k * S + o] = w[g * Og + o, k] with rows padded to whole tiles, and six broadcast inputs). Only
    real outputs are computed, none of the flat row's junk columns (conv2: 100 positions, not 144 lanes).
    Works for any group size (unused lanes are not stored); positions past the last repeat the last.
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = out.shape[2], out.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    K = Cg * KH * KW
    Og = O // groups
    P = HO * WO
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    T = tile_lanes(b)
    S = (Og + T - 1) // T * T
    wt, bp = _pack_tap_major(w, b, groups, S)
    B = (P + 5) // 6 * 6
    e = np.empty(B, np.int64)  # where output position p = (i, j) reads xp: i * Wp + j
    for p in range(B):
        q = min(p, P - 1)
        e[p] = q // WO * Wp + q % WO
    xf, of = x.reshape(x.size), out.reshape(out.size)
    for n in prange(N):
        xp = _example_row(x, xf, n, np.empty(C * Hp * Wp, x.dtype), pt, pb, pl, pr, 0)
        buf = np.empty(6 * T, x.dtype)
        for g in range(groups):
            xg, wg, bg = xp[g * Cg * Hp * Wp:], wt[g].reshape(K * S), bp[g]
            for o in range(0, Og, T):  # output channels g * Og + o .. + nl - 1
                nl = min(T, Og - o)
                a = tile_load(bg, o)
                for p in range(0, P, 6):  # output positions p .. p + ni - 1
                    a0, a1, a2, a3, a4, a5 = _fma6_at(a, a, a, a, a, a, wg, S, o, xg, off,
                                                        e[p], e[p + 1], e[p + 2], e[p + 3], e[p + 4], e[p + 5])
                    tile_store(buf, 0, a0)
                    tile_store(buf, T, a1)
                    tile_store(buf, 2 * T, a2)
                    tile_store(buf, 3 * T, a3)
                    tile_store(buf, 4 * T, a4)
                    tile_store(buf, 5 * T, a5)
                    start, ni = (n * O + g * Og + o) * P + p, min(6, P - p)
                    if nl == T and ni == 6:  # loops of constant length (unrolled): 20 % of the time saved
                        for l in range(T):
                            for i in range(6):
                                of[start + l * P + i] = buf[i * T + l]
                    else:
                        for l in range(nl):
                            for i in range(ni):
                                of[start + l * P + i] = buf[i * T + l]


@njit(inline="always")
def _plane(c, r, nb, C):
    """Plane of gxp that sum r of a block of nb channels starting at c goes to (slack plane C + r if r >= nb)."""
    return c + r if r < nb else C + r


@njit(inline="always")
def _scatter_block(gxp, ci, nb, C, P, s, gpf, og, wk, S, c, L, T):
    """gxp[ci + r, s + m] += sum_o wk[o * S + c + r] * gpf[og[o] + m] for the nb channels ci .. ci + nb - 1,
    one tile of m at a time (``_fma6``); a block's unused sums go to slack planes, never to other channels.

    The tiles are stored in plane order: where planes are shorter than a tile (tiny inputs), a tile's junk
    lanes reach into the next plane and write back what they loaded; the next plane's store must come after."""
    e0, e1 = _plane(ci, 0, nb, C) * P + s, _plane(ci, 1, nb, C) * P + s
    e2, e3 = _plane(ci, 2, nb, C) * P + s, _plane(ci, 3, nb, C) * P + s
    e4, e5 = _plane(ci, 4, nb, C) * P + s, _plane(ci, 5, nb, C) * P + s
    for m in range(0, L, T):
        a0, a1 = tile_load(gxp, e0 + m), tile_load(gxp, e1 + m)
        a2, a3 = tile_load(gxp, e2 + m), tile_load(gxp, e3 + m)
        if nb > 4:
            a4, a5 = tile_load(gxp, e4 + m), tile_load(gxp, e5 + m)
            a0, a1, a2, a3, a4, a5 = _fma6(a0, a1, a2, a3, a4, a5, gpf, og, m, wk, S, c)
            tile_store(gxp, e0 + m, a0)
            tile_store(gxp, e1 + m, a1)
            tile_store(gxp, e2 + m, a2)
            tile_store(gxp, e3 + m, a3)
            tile_store(gxp, e4 + m, a4)
            tile_store(gxp, e5 + m, a5)
        else:
            a0, a1, a2, a3 = _fma4(a0, a1, a2, a3, gpf, og, m, wk, S, c)
            tile_store(gxp, e0 + m, a0)
            tile_store(gxp, e1 + m, a1)
            tile_store(gxp, e2 + m, a2)
            tile_store(gxp, e3 + m, a3)


@njit(inline="always")
def _scatter_along(gxp, e, gpf, og, wk, S, c, L, T):
    """gxp[e + m] += sum_o wk[o * S + c] * gpf[og[o] + m] for one channel, six tiles of m at a time
    (``_fma6_along``); tiles past the flat row (m + i*T >= L) are computed but not stored."""
    for m in range(0, L, 6 * T):
        a0, a1, a2 = tile_load(gxp, e + m), tile_load(gxp, e + m + T), tile_load(gxp, e + m + 2 * T)
        a3, a4, a5 = tile_load(gxp, e + m + 3 * T), tile_load(gxp, e + m + 4 * T), tile_load(gxp, e + m + 5 * T)
        a0, a1, a2, a3, a4, a5 = _fma6_along(a0, a1, a2, a3, a4, a5, gpf, og, m, T, wk, S, c)
        tile_store(gxp, e + m, a0)
        if m + T < L:
            tile_store(gxp, e + m + T, a1)
        if m + 2 * T < L:
            tile_store(gxp, e + m + 2 * T, a2)
        if m + 3 * T < L:
            tile_store(gxp, e + m + 3 * T, a3)
        if m + 4 * T < L:
            tile_store(gxp, e + m + 4 * T, a4)
        if m + 5 * T < L:
            tile_store(gxp, e + m + 5 * T, a5)


@njit(parallel=True, cache=True)
def conv2d_grad_input_cpu(gy, w, gx, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1: tap (p, q) sends every output's gradient back to where it read, at shift s = p*dh*Wp + q*dw:
        gxp[c, s + m] += sum_o w[o, c, p, q] * gp[o, m]        (gp: gy[n] as flat rows, gxp: gx[n] padded, flat)
    For each tap and tile of m, six input channels of a group at a time sum over the group's output
    channels in registers (``_fma6``, starting from gxp's tiles), then store back; gx is gxp unpadded.
    Groups of fewer than four input channels (conv1's one) go one channel x six tiles of m at a time.
    The weights are packed per group and tap, wq[g, p, q][o * S + c] = w[g * Og + o, c, p, q]."""
    N, C, H, W = gx.shape
    O, Cg, KH, KW = w.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    Og = O // groups
    S = Cg + 5
    P = Hp * Wp  # one padded input plane
    wq = np.zeros((groups, KH, KW, Og, S), w.dtype)
    wq[:, :, :, :, :Cg] = w.reshape(groups, Og, Cg, KH, KW).transpose(0, 3, 4, 1, 2)
    off = np.arange(O) * L  # where each output channel's row starts in gp
    T = tile_lanes(wq[0, 0, 0, 0])
    for n in prange(N):
        gpf = np.empty(O * L + 5 * T, gy.dtype)  # slack: six tiles in a row may run past the last row
        _widen_into(gy, n, gpf[:O * L].reshape(O, L), Wp)
        gxp = np.zeros((C + 6) * P + L + 6 * T, gx.dtype)  # 6 slack planes take a block's unused sums
        for g in range(groups):
            og = off[g * Og:(g + 1) * Og]
            for p in range(KH):
                for q in range(KW):
                    wk = wq[g, p, q].reshape(Og * S)
                    s = p * dh * Wp + q * dw  # the tap's shift in the flat padded plane
                    if Cg < 4:  # few input channels: one at a time, six tiles of m
                        for c in range(Cg):
                            _scatter_along(gxp, (g * Cg + c) * P + s, gpf, og, wk, S, c, L, T)
                    else:  # input channels g * Cg + c .. + nb - 1, six at a time
                        for c in range(0, Cg, 6):
                            _scatter_block(gxp, g * Cg + c, min(6, Cg - c), C, P, s, gpf, og, wk, S, c, L, T)
        for ci in range(C):
            for h in range(H):
                for v in range(W):
                    gx[n, ci, h, v] = gxp[(ci * Hp + h + pt) * Wp + pl + v]


@njit(parallel=True, cache=True, fastmath=GEMM_MATH)
def conv2d_grad_weight_cpu(gy, x, gw, pt, pb, pl, pr, dh, dw, groups, threads):
    """Stride 1: gw[o, k] = sum_n sum_m gp[o, m] * xp[off[k] + m]: dot products, for two output channels
    (a, b) and four taps at a time, so every loaded value serves two or four of the eight sums.

    Each of ``threads`` jobs sums its share of the batch into its own copy of gw; the copies are added at the end.
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    K = Cg * KH * KW
    Og = O // groups
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    T = max(1, min(N, threads))
    part = np.zeros((T, O, K), gw.dtype)
    zero = gw.dtype.type(0)
    for t in prange(T):
        xp = np.empty(C * Hp * Wp + L, x.dtype)
        gp = np.empty((O, L), gy.dtype)
        for n in range(t * N // T, (t + 1) * N // T):
            _pad_into(x, n, xp, pt, pl, Hp, Wp)
            _widen_into(gy, n, gp, Wp)
            oa = 0
            while oa < O:
                ob = oa + 1 if oa + 1 < O and (oa + 1) // Og == oa // Og else oa  # a lone channel pairs with itself
                xg = xp[(oa // Og) * Cg * Hp * Wp:]
                ga, gb = gp[oa], gp[ob]
                k = 0
                while k + 4 <= K:
                    x0, x1 = xg[off[k]:off[k] + L], xg[off[k + 1]:off[k + 1] + L]
                    x2, x3 = xg[off[k + 2]:off[k + 2] + L], xg[off[k + 3]:off[k + 3] + L]
                    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
                    for m in range(L):
                        a0 += ga[m] * x0[m]
                        a1 += ga[m] * x1[m]
                        a2 += ga[m] * x2[m]
                        a3 += ga[m] * x3[m]
                        b0 += gb[m] * x0[m]
                        b1 += gb[m] * x1[m]
                        b2 += gb[m] * x2[m]
                        b3 += gb[m] * x3[m]
                    part[t, oa, k], part[t, oa, k + 1] = part[t, oa, k] + a0, part[t, oa, k + 1] + a1
                    part[t, oa, k + 2], part[t, oa, k + 3] = part[t, oa, k + 2] + a2, part[t, oa, k + 3] + a3
                    if ob != oa:
                        part[t, ob, k], part[t, ob, k + 1] = part[t, ob, k] + b0, part[t, ob, k + 1] + b1
                        part[t, ob, k + 2], part[t, ob, k + 3] = part[t, ob, k + 2] + b2, part[t, ob, k + 3] + b3
                    k += 4
                for k in range(k, K):
                    x0 = xg[off[k]:off[k] + L]
                    a0 = b0 = zero
                    for m in range(L):
                        a0 += ga[m] * x0[m]
                        b0 += gb[m] * x0[m]
                    part[t, oa, k] += a0
                    if ob != oa:
                        part[t, ob, k] += b0
                oa = ob + 1
    gwk = gw.reshape(O, K)
    gwk[:] = 0.0
    for t in range(T):
        gwk += part[t]


@njit(parallel=True, cache=True)
def conv2d_grad_weight_tiles_cpu(gy, x, gw, pt, pb, pl, pr, dh, dw, groups, threads):
    """Stride 1, groups of at least a tile of output channels (conv2's 16): the same sums as
    conv2d_grad_weight_cpu, gw[o, k] = sum_n sum_m gq[m, o] * xp[off[k] + m], with gy[n] stored transposed
    (gq[m, o], o contiguous) so that a tile holds 16 output channels: six taps' tiles of sums stay in
    registers over all m (``_fma6_at``). Each of ``threads`` jobs keeps its own sums part[t, g, k, o]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    K = Cg * KH * KW
    Og = O // groups
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    Th = max(1, min(N, threads))
    T = tile_lanes(gw.reshape(O * K))
    S = (Og + T - 1) // T * T  # a row of gq or part: Og channels padded to whole tiles
    part = np.zeros((Th, groups, (K + 5) * S), gw.dtype)  # rows k; 5 slack rows take a short block's unused sums
    zero = tile_fill(gw.dtype.type(0))
    xf = x.reshape(x.size)
    last = K - 1  # a short block of taps: its unused sums reread the last tap, into slack rows
    ms = np.arange(L)  # every position m of the flat output row
    for t in prange(Th):
        buf = np.empty(C * Hp * Wp + L, x.dtype)
        gq = np.empty((groups, L, S), gy.dtype)
        for n in range(t * N // Th, (t + 1) * N // Th):
            xp = _example_row(x, xf, n, buf, pt, pb, pl, pr, L)
            gq[:] = 0.0
            for o in range(O):
                for i in range(HO):
                    for j in range(WO):
                        gq[o // Og, i * Wp + j, o % Og] = gy[n, o, i, j]
            for g in range(groups):
                xg, gqg, pg = xp[g * Cg * Hp * Wp:], gq[g].reshape(L * S), part[t, g]
                for o0 in range(0, Og, T):
                    for k0 in range(0, K, 6):
                        d0, d1, d2 = off[k0], off[min(k0 + 1, last)], off[min(k0 + 2, last)]
                        d3, d4, d5 = off[min(k0 + 3, last)], off[min(k0 + 4, last)], off[min(k0 + 5, last)]
                        a0 = a1 = a2 = a3 = a4 = a5 = zero  # this example's sums, then added to the job's
                        a0, a1, a2, a3, a4, a5 = _fma6_at(a0, a1, a2, a3, a4, a5, gqg, S, o0, xg, ms,
                                                          d0, d1, d2, d3, d4, d5)
                        e = k0 * S + o0
                        tile_add_at(pg, e, a0)
                        tile_add_at(pg, e + S, a1)
                        tile_add_at(pg, e + 2 * S, a2)
                        tile_add_at(pg, e + 3 * S, a3)
                        tile_add_at(pg, e + 4 * S, a4)
                        tile_add_at(pg, e + 5 * S, a5)
    gwk = gw.reshape(O, K)
    for o in range(O):
        g, r = o // Og, o % Og
        for k in range(K):
            acc = part[0, g, k * S + r]
            for t in range(1, Th):
                acc += part[t, g, k * S + r]
            gwk[o, k] = acc


@njit(parallel=True, cache=True, fastmath=GEMM_MATH)
def channel_sum_cpu(gy, gb):
    """gb[o] = sum_{n, i, j} gy[n, o, i, j] (the bias gradient; GEMM_MATH lets the sum use vector lanes)."""
    N, O, HO, WO = gy.shape
    for o in prange(O):
        acc = 0.0
        for n in range(N):
            plane = gy[n, o].reshape(HO * WO)
            for m in range(HO * WO):
                acc += plane[m]
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
    x, weight = np.ascontiguousarray(x, dt), np.ascontiguousarray(weight, dt)  # the fast kernels read flat views
    bias = None if bias is None else bias.astype(dt, copy=False)
    return x, weight, bias


def _tile_of_channels(w, groups):
    """Whether a group has at least a tile's worth of output channels (16 float32, 8 float64): then the
    kernels that put output channels in a tile's lanes are used (conv2), else those that put positions there."""
    return w.shape[0] // groups >= TILE_BYTES // w.itemsize


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
    if geo.stride == (1, 1):
        forward = conv2d_forward_tiles_cpu if _tile_of_channels(w, geo.groups) else conv2d_forward_cpu
        forward(x, w, b, out, *geo.padding, *geo.dilation, geo.groups)
    else:
        conv2d_forward_cpu_simple(x, w, b, out, *geo.stride, geo.padding[0], geo.padding[2], *geo.dilation,
                                  geo.groups)
    return out


def conv2d_backward(grad_out, x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, flip=False,
                    need_grad_x=True, target="cpu"):
    """Gradients of conv2d: (grad_x like x, grad_weight like weight, grad_bias like bias or None).

    grad_weight is the correlation of the input with the output gradient; grad_x is the "full"
    convolution of the output gradient with the kernel. ``need_grad_x=False`` skips grad_x (returned
    as None), as PyTorch does for a first layer whose input needs no gradient.
    """
    if check_target(target) == "cuda":
        return cuda_module().conv2d_backward(grad_out, x, weight, bias, stride, padding, dilation, groups, flip=flip,
                                             need_grad_x=need_grad_x)
    if not isinstance(need_grad_x, (bool, np.bool_)):
        raise TypeError(f"need_grad_x must be True or False, got {need_grad_x!r}")
    x, weight, bias = _prepare(x, weight, bias)
    geo = conv_geometry(x.shape, weight.shape, None if bias is None else bias.shape,
                        stride, padding, dilation, groups)
    gy = np.ascontiguousarray(as_float(grad_out, "grad_out", 4), x.dtype)
    expected = (x.shape[0], weight.shape[0]) + geo.out_hw
    if gy.shape != expected:
        raise ValueError(f"grad_out must have the output's shape {expected}, got {gy.shape}")
    w = _flipped(weight) if flip else weight
    gx = np.empty_like(x) if need_grad_x else None
    gw = np.empty_like(w)
    if geo.stride == (1, 1):
        args = (*geo.padding, *geo.dilation, geo.groups)
        if need_grad_x:
            conv2d_grad_input_cpu(gy, w, gx, *args)
        grad_weight = conv2d_grad_weight_tiles_cpu if _tile_of_channels(w, geo.groups) else conv2d_grad_weight_cpu
        grad_weight(gy, x, gw, *args, numba.get_num_threads())
    else:
        args = (*geo.stride, geo.padding[0], geo.padding[2], *geo.dilation, geo.groups)
        if need_grad_x:
            conv2d_grad_input_cpu_simple(gy, w, gx, *args)
        conv2d_grad_weight_cpu_simple(gy, x, gw, *args)
    if flip:
        gw = _flipped(gw)
    gb = None
    if bias is not None:
        gb = np.empty_like(bias)
        channel_sum_cpu(gy, gb)
    return gx, gw, gb
