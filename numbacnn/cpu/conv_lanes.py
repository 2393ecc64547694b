"""conv2d's CPU kernels with a tile of examples in the lanes (numbacnn.cpu.conv_lanes): forward kernel 4, grad
input kernel 3 and grad weight kernel 4, for stride 1 and batches of a tile of examples (16 float32, 8 float64).

``numbacnn.cpu.conv`` (kernel 1, the formula, and the launchers; its docstring has the table of kernels) picks
these; ``numbacnn.cpu.conv_tiles`` has kernels 2 and 3, which put output positions or channels in the lanes.
Each kernel here is tested against those and kernel 1 (tests/test_kernels_conv.py).

The idea: lane l of every tile holds example n0 + l. A tile of examples is turned into the lanes once
(``examples_to_lanes``, 16x16 squares in registers) and its output turned back (``lanes_to_examples``); in
between, every formula runs as written, one fused multiply-add serving 16 examples:
    yt[o, i, j] = b[o] + sum_{c, p, q} w[o, c, p, q] * xt[c, i + p*dh, j + q*dw]    (xt: the padded inputs)
There are no junk columns (kernels 2's flat rows) and no scattered stores (kernel 3), and the border terms
that kernel 2 multiplies by padding are skipped where no padding is stored (grad input). The sums keep
kernels 2 and 3's order where the bits are the same (forward, grad input); the weight gradient adds each
tile's lanes in lane order and the tiles in order, so its bits do not depend on the thread count.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import PARALLEL
from .conv_tiles import _pack_tap_major, _tap_offsets
from .fast_exp import sigmoid_into
from .tiles import (examples_to_lanes, fma4_taps, fma6_at, fma6_taps, lanes_to_examples, tile_fill, tile_lanes,
                    tile_load, tile_mul_add, tile_relu, tile_store, tile_sum)


@njit(inline="always")
def _padded_lanes(x, xf, n0, nl, pt, pl, Hp, Wp, lanes):
    """xt[((c * Hp + h + pt) * Wp + v + pl) * lanes + lane] = x[n0 + lane, c, h, v]: nl examples of x (xf: x
    flat) one per lane, inside their zero padding (planes Hp x Wp)."""
    C, H, W = x.shape[1], x.shape[2], x.shape[3]
    E = C * H * W
    xt0 = np.zeros(E * lanes, x.dtype)  # unpadded: xt0[((c * H + h) * W + v) * lanes + lane]
    examples_to_lanes(xf, n0, nl, E, xt0, lanes)
    if Hp == H and Wp == W:  # no padding (LeNet's conv2): xt0 is xt (a copy cost 4 % of conv2's forward)
        return xt0
    xt = np.zeros(C * Hp * Wp * lanes, x.dtype)
    for c in range(C):
        for h in range(H):
            row = ((c * Hp + h + pt) * Wp + pl) * lanes
            xt[row:row + W * lanes] = xt0[(c * H + h) * W * lanes:(c * H + h + 1) * W * lanes]
    return xt


@njit(inline="always")
def _store_block(buf, at, stride, lanes, nb, a0, a1, a2, a3, a4, a5):
    """buf[(at + r * stride) * lanes : ... + lanes] = a_r for the block's first nb of six sums (one channel apart)."""
    tile_store(buf, at * lanes, a0)
    if nb > 1:
        tile_store(buf, (at + stride) * lanes, a1)
    if nb > 2:
        tile_store(buf, (at + 2 * stride) * lanes, a2)
    if nb > 3:
        tile_store(buf, (at + 3 * stride) * lanes, a3)
    if nb > 4:
        tile_store(buf, (at + 4 * stride) * lanes, a4)
    if nb > 5:
        tile_store(buf, (at + 5 * stride) * lanes, a5)


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def conv2d_forward_kernel4(x, w, b, out, pt, pb, pl, pr, dh, dw, groups, act):
    """Stride 1, a tile of examples at a time (16 float32 / 8 float64, one per lane):
        acc[n] = b[o] + sum_k w[o, k] * xt[off[k] + m][n]       (xt: the tile's examples, padded, one per lane)
    for six output channels of a group at once (four for a block of two to four), their sums in registers over
    all K taps (``fma6_taps``: one tile of inputs, six fused multiply-adds). Every sum is a real output: no junk
    columns (kernel 2) and no scattered stores (kernel 3); the examples go into the lanes and back with
    ``tile_transpose``. The sums run in kernels 2 and 3's order: for finite data, their bits.
    The weights are packed tap-major per group, wt[g][k * S + r] = w[g * Og + r, k], as for kernel 2.
    ``act``: 0 for the sums as they are; 1 for relu(the sums), applied to the tiles before they are stored
    (``tile_relu``: relu_forward_kernel1's bits); 2 for their sigmoid, applied to each tile of examples' sums
    while they are in the cache (``sigmoid_into``: sigmoid_forward_kernel2's bits). No second pass over out."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    HO, WO = out.shape[2], out.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    K = Cg * KH * KW
    Og = O // groups
    S = Og + 5
    lanes = tile_lanes(b)
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    for k in range(K):
        off[k] *= lanes  # tap k reads the tile at off[k] + (i * Wp + j) * lanes
    wt, bp = _pack_tap_major(w, b, groups, S)
    F = O * HO * WO  # values per example of out
    xf, of = x.reshape(x.size), out.reshape(out.size)
    for blk in prange((N + lanes - 1) // lanes):
        n0 = blk * lanes
        nl = min(lanes, N - n0)  # examples in this tile; the rest of the lanes sum zeros
        xt = _padded_lanes(x, xf, n0, nl, pt, pl, Hp, Wp, lanes)
        yt = np.empty(F * lanes, x.dtype)
        for g in range(groups):
            xg, wg, bg = xt[g * Cg * Hp * Wp * lanes:], wt[g].reshape(K * S), bp[g]
            for r in range(0, Og, 6):  # output channels g * Og + r .. + nb - 1
                nb = min(6, Og - r)
                for i in range(HO):
                    for j in range(WO):
                        m = (i * Wp + j) * lanes
                        at = ((g * Og + r) * HO + i) * WO + j  # out[., g * Og + r, i, j]
                        a0, a1 = tile_fill(bg[r]), tile_fill(bg[r + 1])  # bp's rows have 5 zeros of slack
                        a2, a3 = tile_fill(bg[r + 2]), tile_fill(bg[r + 3])
                        a4, a5 = tile_fill(bg[r + 4]), tile_fill(bg[r + 5])
                        if nb > 4:
                            a0, a1, a2, a3, a4, a5 = fma6_taps(a0, a1, a2, a3, a4, a5, xg, off, m, wg, S, r)
                        else:
                            a0, a1, a2, a3 = fma4_taps(a0, a1, a2, a3, xg, off, m, wg, S, r)
                        if act == 1:
                            a0, a1, a2 = tile_relu(a0), tile_relu(a1), tile_relu(a2)
                            a3, a4, a5 = tile_relu(a3), tile_relu(a4), tile_relu(a5)
                        _store_block(yt, at, HO * WO, lanes, nb, a0, a1, a2, a3, a4, a5)
        if act == 2:  # into a second buffer: in place, LLVM's overlap check would turn the loop scalar
            st = np.empty(F * lanes, x.dtype)
            sigmoid_into(yt, st)
            yt = st
        lanes_to_examples(yt, of, n0, nl, F, lanes)


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def conv2d_grad_input_kernel3(gy, w, gx, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1, a tile of examples at a time (16 float32 / 8 float64, one per lane): the formula of kernel 1,
        gx[n, c, h, v] = sum_{o, p, q} w[o, c, p, q] * gy[n, o, h + pt - p*dh, v + pl - q*dw]    (in-range terms only)
    for six input channels of a group at once, their sums in registers over every (p, q) that lands inside gy
    and the group's output channels (``fma6_at``): one tile of gy, six fused multiply-adds. Only the real terms
    are computed (kernel 2's flat rows add 44 % of zeros for conv2), at the price of turning each tile of examples
    into lanes and back (``tile_transpose``). The sums run in kernel 2's order: the same bits.
    The weights are packed per group, wq[g][((p * KW + q) * Og + o) * S + c] = w[g * Og + o, c, p, q]."""
    N, C, H, W = gx.shape
    O, Cg, KH, KW = w.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Og = O // groups
    S = Cg + 5  # a row of wq: Cg channels, 5 zeros so a block of six never reads past it
    wq = np.zeros((groups, KH * KW * Og * S), w.dtype)
    for o in range(O):
        for c in range(Cg):
            for p in range(KH):
                for q in range(KW):
                    wq[o // Og, ((p * KW + q) * Og + o % Og) * S + c] = w[o, c, p, q]
    rows = np.empty(Og, np.int64)  # where output channel o's weights start in a tap's block of wq
    for o in range(Og):
        rows[o] = o * S
    lanes = tile_lanes(wq[0])
    E, F, positions = O * HO * WO, C * H * W, HO * WO  # values per example of gy, of gx; positions of a gy plane
    gyf, gxf = gy.reshape(gy.size), gx.reshape(gx.size)
    zero = tile_fill(gx.dtype.type(0))
    for blk in prange((N + lanes - 1) // lanes):
        n0 = blk * lanes
        nl = min(lanes, N - n0)  # examples in this tile; the rest of the lanes sum zeros
        gyt = np.zeros(E * lanes, gy.dtype)  # gyt[((o * HO + i) * WO + j) * lanes + lane] = gy[n0 + lane, o, i, j]
        gxt = np.empty(F * lanes, gx.dtype)
        examples_to_lanes(gyf, n0, nl, E, gyt, lanes)
        for g in range(groups):
            wg = wq[g]
            for c0 in range(0, Cg, 6):  # input channels g * Cg + c0 .. + nb - 1
                nb = min(6, Cg - c0)
                for h in range(H):
                    for v in range(W):
                        a0 = a1 = a2 = a3 = a4 = a5 = zero
                        for p in range(KH):
                            i = h + pt - p * dh
                            if 0 <= i < HO:
                                for q in range(KW):
                                    j = v + pl - q * dw
                                    if 0 <= j < WO:
                                        a0, a1, a2, a3, a4, a5 = fma6_at(
                                            a0, a1, a2, a3, a4, a5, gyt[((g * Og) * positions + i * WO + j) * lanes:],
                                            positions * lanes, 0, wg[(p * KW + q) * Og * S + c0:], rows,
                                            0, 1, 2, 3, 4, 5)
                        at = ((g * Cg + c0) * H + h) * W + v  # gx[., c, h, v] for the block's first channel
                        _store_block(gxt, at, H * W, lanes, nb, a0, a1, a2, a3, a4, a5)
        lanes_to_examples(gxt, gxf, n0, nl, F, lanes)


@njit(inline="always")
def _dots_3x5(gyt, go0, go1, go2, xg, reads, d0, d1, d2, d3, d4, lanes, zero):
    """Fifteen tiles of sums, s[a * 5 + t] = sum_pos gyt[go_a + pos * lanes] * xg[reads[pos] + d_t] lane by lane
    (three output channels' gradients times five taps' inputs): per position, eight tile loads serve fifteen
    fused multiply-adds, all fifteen sums in registers."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = s9 = s10 = s11 = s12 = s13 = s14 = zero
    for pos in range(reads.size):
        m = reads[pos]
        at = pos * lanes
        g0, g1, g2 = tile_load(gyt, go0 + at), tile_load(gyt, go1 + at), tile_load(gyt, go2 + at)
        x0, x1, x2 = tile_load(xg, m + d0), tile_load(xg, m + d1), tile_load(xg, m + d2)
        x3, x4 = tile_load(xg, m + d3), tile_load(xg, m + d4)
        s0, s1, s2 = tile_mul_add(s0, g0, x0), tile_mul_add(s1, g0, x1), tile_mul_add(s2, g0, x2)
        s3, s4 = tile_mul_add(s3, g0, x3), tile_mul_add(s4, g0, x4)
        s5, s6, s7 = tile_mul_add(s5, g1, x0), tile_mul_add(s6, g1, x1), tile_mul_add(s7, g1, x2)
        s8, s9 = tile_mul_add(s8, g1, x3), tile_mul_add(s9, g1, x4)
        s10, s11, s12 = tile_mul_add(s10, g2, x0), tile_mul_add(s11, g2, x1), tile_mul_add(s12, g2, x2)
        s13, s14 = tile_mul_add(s13, g2, x3), tile_mul_add(s14, g2, x4)
    return s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14


@njit(parallel=PARALLEL, cache=True, error_model="numpy")
def conv2d_grad_weight_kernel4(gy, x, gw, pt, pb, pl, pr, dh, dw, groups):
    """Stride 1, a tile of examples at a time (16 float32 / 8 float64, one per lane):
        gw[o, k] = sum_blocks sum_lanes sum_(i, j) gyt[o, i, j] * xt[off[k] + i * Wp + j]
    (gyt, xt: the block's gy and padded x, one example per lane). Three output channels times five taps, fifteen
    sums, stay in registers over every output position (``_dots_3x5``); a tile's lanes are then added in lane
    order (``tile_sum``) and the blocks' sums in block order, so the bits do not depend on the thread count.
    Only real positions, no junk columns (kernel 2 reads a flat row 14 % longer for conv1); the sums' order
    differs from kernels 2 and 3 (float rounding, not results, differs)."""
    N, C, H, W = x.shape
    O, Cg, KH, KW = gw.shape
    HO, WO = gy.shape[2], gy.shape[3]
    Hp, Wp = H + pt + pb, W + pl + pr
    K = Cg * KH * KW
    Og = O // groups
    positions = HO * WO
    lanes = tile_lanes(gw.reshape(gw.size))
    off = _tap_offsets(Cg, KH, KW, Hp, Wp, dh, dw)
    for k in range(K):
        off[k] *= lanes
    reads = np.empty(positions, np.int64)  # where output position (i, j) reads xt: (i * Wp + j) * lanes
    for pos in range(positions):
        reads[pos] = (pos // WO * Wp + pos % WO) * lanes
    blocks = (N + lanes - 1) // lanes
    part = np.zeros((blocks, O, K), gw.dtype)  # each block's sums
    G = O * positions  # values per example of gy
    xf, gyf = x.reshape(x.size), gy.reshape(gy.size)
    zero = tile_fill(gw.dtype.type(0))
    for blk in prange(blocks):
        n0 = blk * lanes
        nl = min(lanes, N - n0)  # examples in this tile; the rest of the lanes hold zeros
        xt = _padded_lanes(x, xf, n0, nl, pt, pl, Hp, Wp, lanes)
        gyt = np.zeros(G * lanes, gy.dtype)  # gyt[(o * positions + pos) * lanes + lane] = gy[n0 + lane, o, pos]
        examples_to_lanes(gyf, n0, nl, G, gyt, lanes)
        for g in range(groups):
            xg = xt[g * Cg * Hp * Wp * lanes:]
            last_o = (g + 1) * Og - 1
            for o0 in range(g * Og, last_o + 1, 3):  # a short block repeats its last channel, not stored
                o1, o2 = min(o0 + 1, last_o), min(o0 + 2, last_o)
                for k0 in range(0, K, 5):  # a short block repeats the last tap, not stored
                    sums = _dots_3x5(gyt, o0 * positions * lanes, o1 * positions * lanes, o2 * positions * lanes,
                                     xg, reads, off[k0], off[min(k0 + 1, K - 1)], off[min(k0 + 2, K - 1)],
                                     off[min(k0 + 3, K - 1)], off[min(k0 + 4, K - 1)], lanes, zero)
                    for a in range(3):
                        for t in range(5):
                            if o0 + a <= last_o and k0 + t < K:
                                part[blk, o0 + a, k0 + t] = tile_sum(sums[a * 5 + t])
    gwk = gw.reshape(O, K)
    for o in range(O):
        for k in range(K):
            acc = gw.dtype.type(0)  # 0 + the blocks' sums, in block order
            for blk in range(blocks):
                acc += part[blk, o, k]
            gwk[o, k] = acc
