"""conv2d's fast CPU kernels (numbacnn.cpu.conv_tiles): kernels 2 and 3, for stride 1, sums in register tiles.

``numbacnn.cpu.conv`` (kernel 1, the formula, and the launchers; its docstring has the table of kernels) picks
these; ``numbacnn.conv`` is the public function, ``numbacnn.reference.conv`` the NumPy version, ``numbacnn.cuda.conv``
the GPU's. Each kernel here is tested against kernel 1 (tests/test_kernels_conv.py).

The trick: pad example n once into a flat buffer xp, channel after channel, rows Wp = W + pl + pr apart. Output
(i, j) then sits at m = i * Wp + j of a flat output row, and tap k = (c, p, q) reads xp[off[k] + m] with
off[k] = c * Hp * Wp + p * dh * Wp + q * dw: one shifted slice of xp per tap, the same for every output, so
    acc[m] = b[o] + sum_k w[o, k] * xp[off[k] + m]
is a loop over contiguous m. The Wp - WO junk columns at the end of each flat row are dropped; L is rounded up to
a multiple of 16 (buffers have the slack) so m runs in whole tiles. Kernels 2 keep 16 positions m (float32; 8
float64) in a tile's lanes, six channels' tiles in registers over every tap (``fma6_taps``: one load, six fused
multiply-adds); kernels 3, for groups of 16+ output channels, put 16 channels in the lanes instead.

``error_model="numpy"``: the kernels divide only by sizes (never zero), so Numba need not generate the code that
raises ZeroDivisionError; that code made up a good part of their compile time (a first run compiles them).
Set-up done once per call (tap offsets, packed weights) is written as plain loops, which compile quicker than
NumPy's transposes; the per-example copies stay slice copies, which run twice as fast as element loops.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .tiles import (GEMM_MATH, fma4_taps, fma6_along, fma6_at, fma6_taps, tile_add_at, tile_fill, tile_lanes,
                    tile_load, tile_store)


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
            xp[row:row + W] = x[n, c, h]  # a slice copy: twice as fast as an element loop here


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
    wf = w.reshape(w.size)
    wt = np.zeros((groups, K, S), w.dtype)
    bp = np.zeros((groups, S), w.dtype)
    for g in range(groups):
        for r in range(Og):
            bp[g, r] = b[g * Og + r]
            for k in range(K):
                wt[g, k, r] = wf[(g * Og + r) * K + k]
    return wt, bp


@njit(inline="always")
def _widen_into(gy, n, gp, Wp):
    """gp (O, L) <- gy[n] laid out as flat output rows (i * Wp + j), zero in the junk columns."""
    O, HO, WO = gy.shape[1], gy.shape[2], gy.shape[3]
    gp[:] = 0.0
    for o in range(O):
        for i in range(HO):
            gp[o, i * Wp:i * Wp + WO] = gy[n, o, i]


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def conv2d_forward_kernel2(x, w, b, out, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1: acc[m] = b[o] + sum_k w[o, k] * xp[off[k] + m], then out[n, o, i, j] = acc[i * Wp + j].

    The sums run one tile of outputs m at a time (16 float32 / 8 float64 lanes) for six output channels of a
    group (four when two to four are left), over all K taps, in registers: each tile of xp loaded serves six
    fused multiply-adds. The weights are packed tap-major per group, wt[g][k * S + r] = w[g * Og + r, k],
    rows padded with 5 zeros so a block never reads past its row.
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
    lanes = tile_lanes(bp[0])
    xf = x.reshape(x.size)
    for n in prange(N):
        xp = _example_row(x, xf, n, np.empty(C * Hp * Wp + L, x.dtype), pt, pb, pl, pr, L)
        acc = np.empty((6, L), x.dtype)
        for g in range(groups):
            xg, wg, bg = xp[g * Cg * Hp * Wp:], wt[g].reshape(K * S), bp[g]
            for r in range(0, Og, 6):  # output channels g * Og + r .. + nb - 1
                nb = min(6, Og - r)
                for m in range(0, L, lanes):
                    a0, a1, a2, a3 = tile_fill(bg[r]), tile_fill(bg[r + 1]), tile_fill(bg[r + 2]), tile_fill(bg[r + 3])
                    if nb > 4:
                        a4, a5 = tile_fill(bg[r + 4]), tile_fill(bg[r + 5])
                        a0, a1, a2, a3, a4, a5 = fma6_taps(a0, a1, a2, a3, a4, a5, xg, off, m, wg, S, r)
                        tile_store(acc[4], m, a4)
                        tile_store(acc[5], m, a5)
                    else:
                        a0, a1, a2, a3 = fma4_taps(a0, a1, a2, a3, xg, off, m, wg, S, r)
                    tile_store(acc[0], m, a0)
                    tile_store(acc[1], m, a1)
                    tile_store(acc[2], m, a2)
                    tile_store(acc[3], m, a3)
                for in_block in range(nb):
                    for i in range(HO):
                        out[n, g * Og + r + in_block, i, :] = acc[in_block, i * Wp:i * Wp + WO]


@njit(parallel=PARALLEL, cache=True, fastmath=GEMM_MATH, error_model="numpy")
def conv2d_forward_kernel3(x, w, b, out, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1, for groups of at least a tile of output channels (conv2's 16): the sums of
    conv2d_forward_kernel2 with the roles turned, a tile holding 16 output channels of one output position.

    Six positions' tiles stay in registers over all K taps (``fma6_at``: per tap, one tile of weights,
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
    positions = HO * WO
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    lanes = tile_lanes(b)
    S = (Og + lanes - 1) // lanes * lanes
    wt, bp = _pack_tap_major(w, b, groups, S)
    reads = np.empty((positions + 5) // 6 * 6, np.int64)  # where output position (i, j) reads xp: i * Wp + j
    for pos in range(reads.size):
        clamped = min(pos, positions - 1)
        reads[pos] = clamped // WO * Wp + clamped % WO
    xf, of = x.reshape(x.size), out.reshape(out.size)
    for n in prange(N):
        xp = _example_row(x, xf, n, np.empty(C * Hp * Wp, x.dtype), pt, pb, pl, pr, 0)
        buf = np.empty(6 * lanes, x.dtype)
        for g in range(groups):
            xg, wg, bg = xp[g * Cg * Hp * Wp:], wt[g].reshape(K * S), bp[g]
            for o in range(0, Og, lanes):  # output channels g * Og + o .. + n_lanes - 1
                n_lanes = min(lanes, Og - o)
                bias = tile_load(bg, o)
                for pos in range(0, positions, 6):  # output positions pos .. pos + n_pos - 1
                    a0, a1, a2, a3, a4, a5 = fma6_at(bias, bias, bias, bias, bias, bias, wg, S, o, xg, off,
                                                      reads[pos], reads[pos + 1], reads[pos + 2], reads[pos + 3],
                                                      reads[pos + 4], reads[pos + 5])
                    tile_store(buf, 0, a0)
                    tile_store(buf, lanes, a1)
                    tile_store(buf, 2 * lanes, a2)
                    tile_store(buf, 3 * lanes, a3)
                    tile_store(buf, 4 * lanes, a4)
                    tile_store(buf, 5 * lanes, a5)
                    start, n_pos = (n * O + g * Og + o) * positions + pos, min(6, positions - pos)
                    if n_lanes == lanes and n_pos == 6:  # loops of constant length (unrolled): 20 % of the time saved
                        for lane in range(lanes):
                            for slot in range(6):
                                of[start + lane * positions + slot] = buf[slot * lanes + lane]
                    else:
                        for lane in range(n_lanes):
                            for slot in range(n_pos):
                                of[start + lane * positions + slot] = buf[slot * lanes + lane]


@njit(inline="always")
def _plane_of(c, r, nb, C):
    """Plane of gxp that sum r of a block of nb channels starting at c goes to (slack plane C + r if r >= nb)."""
    return c + r if r < nb else C + r


@njit(inline="always")
def _scatter_block(gxp, ci, nb, C, plane, shift, gpf, rows, wk, S, c, L, lanes):
    """gxp[ci + r, shift + m] += sum_o wk[o * S + c + r] * gpf[rows[o] + m] for the nb channels ci .. ci + nb - 1,
    one tile of m at a time (``fma6_taps``); a block's unused sums go to slack planes, never to other channels.

    The tiles are stored in plane order: where planes are shorter than a tile (tiny inputs), a tile's junk
    lanes reach into the next plane and write back what they loaded; the next plane's store must come after."""
    dst0, dst1 = _plane_of(ci, 0, nb, C) * plane + shift, _plane_of(ci, 1, nb, C) * plane + shift
    dst2, dst3 = _plane_of(ci, 2, nb, C) * plane + shift, _plane_of(ci, 3, nb, C) * plane + shift
    dst4, dst5 = _plane_of(ci, 4, nb, C) * plane + shift, _plane_of(ci, 5, nb, C) * plane + shift
    for m in range(0, L, lanes):
        a0, a1 = tile_load(gxp, dst0 + m), tile_load(gxp, dst1 + m)
        a2, a3 = tile_load(gxp, dst2 + m), tile_load(gxp, dst3 + m)
        if nb > 4:
            a4, a5 = tile_load(gxp, dst4 + m), tile_load(gxp, dst5 + m)
            a0, a1, a2, a3, a4, a5 = fma6_taps(a0, a1, a2, a3, a4, a5, gpf, rows, m, wk, S, c)
            tile_store(gxp, dst0 + m, a0)
            tile_store(gxp, dst1 + m, a1)
            tile_store(gxp, dst2 + m, a2)
            tile_store(gxp, dst3 + m, a3)
            tile_store(gxp, dst4 + m, a4)
            tile_store(gxp, dst5 + m, a5)
        else:
            a0, a1, a2, a3 = fma4_taps(a0, a1, a2, a3, gpf, rows, m, wk, S, c)
            tile_store(gxp, dst0 + m, a0)
            tile_store(gxp, dst1 + m, a1)
            tile_store(gxp, dst2 + m, a2)
            tile_store(gxp, dst3 + m, a3)


@njit(inline="always")
def _scatter_along(gxp, dst, gpf, rows, wk, S, c, L, lanes):
    """gxp[dst + m] += sum_o wk[o * S + c] * gpf[rows[o] + m] for one channel, six tiles of m at a time
    (``fma6_along``); tiles past the flat row (m + i*lanes >= L) are computed but not stored."""
    for m in range(0, L, 6 * lanes):
        a0, a1 = tile_load(gxp, dst + m), tile_load(gxp, dst + m + lanes)
        a2, a3 = tile_load(gxp, dst + m + 2 * lanes), tile_load(gxp, dst + m + 3 * lanes)
        a4, a5 = tile_load(gxp, dst + m + 4 * lanes), tile_load(gxp, dst + m + 5 * lanes)
        a0, a1, a2, a3, a4, a5 = fma6_along(a0, a1, a2, a3, a4, a5, gpf, rows, m, lanes, wk, S, c)
        tile_store(gxp, dst + m, a0)
        if m + lanes < L:
            tile_store(gxp, dst + m + lanes, a1)
        if m + 2 * lanes < L:
            tile_store(gxp, dst + m + 2 * lanes, a2)
        if m + 3 * lanes < L:
            tile_store(gxp, dst + m + 3 * lanes, a3)
        if m + 4 * lanes < L:
            tile_store(gxp, dst + m + 4 * lanes, a4)
        if m + 5 * lanes < L:
            tile_store(gxp, dst + m + 5 * lanes, a5)


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def conv2d_grad_input_kernel2(gy, w, gx, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1: tap (p, q) sends every output's gradient back to where it read, at shift s = p*dh*Wp + q*dw:
        gxp[c, s + m] += sum_o w[o, c, p, q] * gp[o, m]        (gp: gy[n] as flat rows, gxp: gx[n] padded, flat)
    For each tap and tile of m, six input channels of a group at a time sum over the group's output
    channels in registers (``fma6_taps``, starting from gxp's tiles), then store back; gx is gxp unpadded.
    Groups of fewer than four input channels (conv1's one) go one channel x six tiles of m at a time.
    The weights are packed per group and tap, wq[g, p, q][o * S + c] = w[g * Og + o, c, p, q]."""
    N, C, H, W = gx.shape
    O, Cg, KH, KW = w.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    Og = O // groups
    S = Cg + 5
    plane = Hp * Wp  # one padded input plane
    wq = np.zeros((groups, KH, KW, Og, S), w.dtype)
    for o in range(O):
        for c in range(Cg):
            for p in range(KH):
                for q in range(KW):
                    wq[o // Og, p, q, o % Og, c] = w[o, c, p, q]
    rows = np.empty(O, np.int64)  # where each output channel's row starts in gp
    for o in range(O):
        rows[o] = o * L
    lanes = tile_lanes(wq[0, 0, 0, 0])
    for n in prange(N):
        gpf = np.empty(O * L + 5 * lanes, gy.dtype)  # slack: six tiles in a row may run past the last row
        _widen_into(gy, n, gpf[:O * L].reshape(O, L), Wp)
        gxp = np.zeros((C + 6) * plane + L + 6 * lanes, gx.dtype)  # 6 slack planes take a block's unused sums
        for g in range(groups):
            group_rows = rows[g * Og:(g + 1) * Og]
            for p in range(KH):
                for q in range(KW):
                    wk = wq[g, p, q].reshape(Og * S)
                    shift = p * dh * Wp + q * dw  # the tap's shift in the flat padded plane
                    if Cg < 4:  # few input channels: one at a time, six tiles of m
                        for c in range(Cg):
                            _scatter_along(gxp, (g * Cg + c) * plane + shift, gpf, group_rows, wk, S, c, L, lanes)
                    else:  # input channels g * Cg + c .. + nb - 1, six at a time
                        for c in range(0, Cg, 6):
                            _scatter_block(gxp, g * Cg + c, min(6, Cg - c), C, plane, shift, gpf, group_rows, wk, S,
                                           c, L, lanes)
        for ci in range(C):
            for h in range(H):
                row = (ci * Hp + h + pt) * Wp + pl
                gx[n, ci, h, :] = gxp[row:row + W]


@njit(parallel=PARALLEL, cache=True, fastmath=GEMM_MATH, error_model="numpy")
def conv2d_grad_weight_kernel2(gy, x, gw, pt, pb, pl, pr, dh, dw, groups, jobs):
    """Stride 1: gw[o, k] = sum_n sum_m gp[o, m] * xp[off[k] + m]: dot products (vectorized by LLVM), for two
    output channels (a, b) and four taps at a time, so every loaded value serves two or four of the eight sums.

    Each of ``jobs`` jobs sums its share of the batch into its own copy of gw; the copies are added at the end.
    """
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    K = Cg * KH * KW
    Og = O // groups
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    jobs = max(1, min(N, jobs))
    part = np.zeros((jobs, O, K), gw.dtype)
    zero = gw.dtype.type(0)
    for t in prange(jobs):
        xp = np.empty(C * Hp * Wp + L, x.dtype)
        gp = np.empty((O, L), gy.dtype)
        for n in range(t * N // jobs, (t + 1) * N // jobs):
            _pad_into(x, n, xp, pt, pl, Hp, Wp)
            _widen_into(gy, n, gp, Wp)
            oa = 0
            while oa < O:
                ob = oa + 1 if oa + 1 < O and (oa + 1) // Og == oa // Og else oa  # a lone channel pairs with itself
                xg = xp[(oa // Og) * Cg * Hp * Wp:]
                gya, gyb = gp[oa], gp[ob]
                k = 0
                while k + 4 <= K:
                    x0, x1 = xg[off[k]:off[k] + L], xg[off[k + 1]:off[k + 1] + L]
                    x2, x3 = xg[off[k + 2]:off[k + 2] + L], xg[off[k + 3]:off[k + 3] + L]
                    a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = zero
                    for m in range(L):
                        a0 += gya[m] * x0[m]
                        a1 += gya[m] * x1[m]
                        a2 += gya[m] * x2[m]
                        a3 += gya[m] * x3[m]
                        b0 += gyb[m] * x0[m]
                        b1 += gyb[m] * x1[m]
                        b2 += gyb[m] * x2[m]
                        b3 += gyb[m] * x3[m]
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
                        a0 += gya[m] * x0[m]
                        b0 += gyb[m] * x0[m]
                    part[t, oa, k] += a0
                    if ob != oa:
                        part[t, ob, k] += b0
                oa = ob + 1
    gwk = gw.reshape(O, K)
    for o in range(O):
        for k in range(K):
            acc = zero  # 0 + the jobs' sums, in order (as gw[:] = 0; gw += part[t] did)
            for t in range(jobs):
                acc += part[t, o, k]
            gwk[o, k] = acc


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def conv2d_grad_weight_kernel3(gy, x, gw, pt, pb, pl, pr, dh, dw, groups, jobs):
    """Stride 1, groups of at least a tile of output channels (conv2's 16): the same sums as
    conv2d_grad_weight_kernel2, gw[o, k] = sum_n sum_(i, j) gq[i * WO + j, o] * xp[off[k] + i * Wp + j], with
    gy[n] stored transposed (gq[pos, o], o contiguous) so that a tile holds 16 output channels: six taps' tiles
    of sums stay in registers over every real output position (``fma6_at``; none of the flat row's junk columns:
    conv2's 100 positions, not 144). Each of ``jobs`` jobs keeps its own sums part[t, g, k, o]."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    L = _flat_length(HO, WO, Wp)
    K = Cg * KH * KW
    Og = O // groups
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    jobs = max(1, min(N, jobs))
    lanes = tile_lanes(gw.reshape(O * K))
    S = (Og + lanes - 1) // lanes * lanes  # a row of gq or part: Og channels padded to whole tiles
    part = np.zeros((jobs, groups, (K + 5) * S), gw.dtype)  # rows k; 5 slack rows take a short block's unused sums
    zero = tile_fill(gw.dtype.type(0))
    xf = x.reshape(x.size)
    last = K - 1  # a short block of taps: its unused sums reread the last tap, into slack rows
    positions = HO * WO
    reads = np.empty(positions, np.int64)  # where output position (i, j) reads xp: i * Wp + j
    for pos in range(positions):
        reads[pos] = pos // WO * Wp + pos % WO
    for t in prange(jobs):
        buf = np.empty(C * Hp * Wp + L, x.dtype)
        gq = np.zeros((groups, positions, S), gy.dtype)  # lanes past Og stay zero
        for n in range(t * N // jobs, (t + 1) * N // jobs):
            xp = _example_row(x, xf, n, buf, pt, pb, pl, pr, L)
            for o in range(O):
                for i in range(HO):
                    for j in range(WO):
                        gq[o // Og, i * WO + j, o % Og] = gy[n, o, i, j]
            for g in range(groups):
                xg, gqg, pg = xp[g * Cg * Hp * Wp:], gq[g].reshape(positions * S), part[t, g]
                for o0 in range(0, Og, lanes):
                    for k0 in range(0, K, 6):
                        d0, d1, d2 = off[k0], off[min(k0 + 1, last)], off[min(k0 + 2, last)]
                        d3, d4, d5 = off[min(k0 + 3, last)], off[min(k0 + 4, last)], off[min(k0 + 5, last)]
                        a0 = a1 = a2 = a3 = a4 = a5 = zero  # this example's sums, then added to the job's
                        a0, a1, a2, a3, a4, a5 = fma6_at(a0, a1, a2, a3, a4, a5, gqg, S, o0, xg, reads,
                                                          d0, d1, d2, d3, d4, d5)
                        row = k0 * S + o0  # tap k0's row of part, at channel o0
                        tile_add_at(pg, row, a0)
                        tile_add_at(pg, row + S, a1)
                        tile_add_at(pg, row + 2 * S, a2)
                        tile_add_at(pg, row + 3 * S, a3)
                        tile_add_at(pg, row + 4 * S, a4)
                        tile_add_at(pg, row + 5 * S, a5)
    gwk = gw.reshape(O, K)
    for o in range(O):
        g, r = o // Og, o % Og
        for k in range(K):
            acc = part[0, g, k * S + r]
            for t in range(1, jobs):
                acc += part[t, g, k * S + r]
            gwk[o, k] = acc
