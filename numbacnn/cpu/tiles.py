"""Tiles (numbacnn.cpu.tiles): 64 bytes of a float array (16 float32 or 8 float64) held in registers as one LLVM vector.

Why: the fast convolution keeps a running sum per output position across all 150 taps of a LeNet
kernel. Written with scalars or NumPy slices, Numba/LLVM keeps those sums in memory (a load and a
store per multiply-add) or leaves them scalar; a Tile is a value, so they stay in vector registers
(two AVX2 registers per tile) and the loop is pure fused multiply-adds:

    acc = tile_fill(b[o])                                   # b[o] in every lane
    for k in range(K):                                      # acc += xp[off[k] + m : ... + lanes] * wt[k * O + o]
        acc = tile_fma(acc, tile_load(xp, off[k] + m), wt, k * O + o)
    tile_store(out_row, m, acc)                             # out_row[m : m + lanes] = acc

``tile_add(a, b)`` adds two tiles, ``tile_add_at(arr, i, t)`` adds t into arr[i : i + lanes];
``tile_lanes(a)`` is the lane count for a's dtype; ``GEMM_MATH`` the fastmath flags of the kernels that
use tiles. The micro-kernels at the end (``fma6_taps``, ``fma4_taps``, ``fma6_along``, ``fma6_at``) keep six or
four running sums of tiles in registers, one tile load serving several fused multiply-adds (conv's tile kernels);
``tile_transpose`` turns a square of lanes x lanes values in registers; with it ``examples_to_lanes`` and
``lanes_to_examples`` put a tile of examples one per lane and back (the kernels that sum a tile of examples at once).
Arrays must be 1-D and contiguous, indices >= 0 and the whole tile in range: these are raw loads and stores, with
no bounds check and no negative-index wrap-around.
"""
from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

TILE_BYTES = 64

# GEMM_MATH: the fastmath flags of the kernels that sum like a BLAS does (conv's and linear's tile and dot-product
# kernels): LLVM may fuse a * b + c into one FMA and reorder the additions of a sum (into vector lanes). It does
# not assume away NaN or infinity, so they propagate as in PyTorch.
GEMM_MATH = {"contract", "reassoc"}


class Tile(types.Type):
    """Numba type of a tile of ``dtype`` (a vector of TILE_BYTES // itemsize lanes)."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = TILE_BYTES * 8 // dtype.bitwidth
        super().__init__(name=f"Tile({dtype}x{self.lanes})")


@register_model(Tile)
class _TileModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.lanes))


def _check_array(arr, what):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and isinstance(arr.dtype, types.Float)):
        raise TypingError(f"{what} needs a 1-D contiguous float array, got {arr}")


def _address(context, builder, arrty, arr, i):
    """Pointer to arr[i] (no checks)."""
    return builder.gep(context.make_array(arrty)(context, builder, arr).data, [i])


def _splat(builder, scalar, vt):
    """A vector of type vt with scalar in every lane."""
    one = builder.insert_element(ir.Constant(vt, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vt, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count))


@intrinsic
def tile_lanes(typingctx, arr):
    """Number of lanes of a tile of arr's dtype (a compile-time constant)."""
    _check_array(arr, "tile_lanes")
    lanes = Tile(arr.dtype).lanes
    return types.intp(arr), lambda context, builder, sig, args: context.get_constant(types.intp, lanes)


@intrinsic
def tile_load(typingctx, arr, i):
    """The tile arr[i : i + lanes]."""
    _check_array(arr, "tile_load")
    tt = Tile(arr.dtype)

    def codegen(context, builder, sig, args):
        vp = builder.bitcast(_address(context, builder, sig.args[0], *args), context.get_value_type(tt).as_pointer())
        return builder.load(vp, align=arr.dtype.bitwidth // 8)
    return tt(arr, i), codegen


@intrinsic
def tile_store(typingctx, arr, i, tile):
    """arr[i : i + lanes] = tile."""
    _check_array(arr, "tile_store")
    if tile != Tile(arr.dtype):
        raise TypingError(f"tile_store: a {tile} does not fit an array of {arr.dtype}")

    def codegen(context, builder, sig, args):
        vp = builder.bitcast(_address(context, builder, sig.args[0], args[0], args[1]), args[2].type.as_pointer())
        builder.store(args[2], vp, align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.none(arr, i, tile), codegen


@intrinsic
def tile_fill(typingctx, x):
    """A tile with x in every lane."""
    if not isinstance(x, types.Float):
        raise TypingError(f"tile_fill needs a float, got {x}")
    tt = Tile(x)
    return tt(x), lambda context, builder, sig, args: _splat(builder, args[0], context.get_value_type(tt))


@intrinsic
def tile_add(typingctx, a, b):
    """a + b, lane by lane."""
    if not (isinstance(a, Tile) and a == b):
        raise TypingError(f"tile_add needs two tiles of one dtype, got {a} and {b}")
    return a(a, b), lambda context, builder, sig, args: builder.fadd(args[0], args[1])


@intrinsic
def tile_fma(typingctx, acc, x, arr, i):
    """acc + x * arr[i] in every lane (acc and x tiles, arr[i] a scalar): one fused multiply-add per lane where
    the processor has FMA (``llvm.fmuladd``; a multiply and an add on one without, instead of a slow libm call)."""
    _check_array(arr, "tile_fma")
    if not (isinstance(acc, Tile) and acc == x == Tile(arr.dtype)):
        raise TypingError(f"tile_fma needs two tiles of {arr.dtype}, got {acc} and {x}")

    def codegen(context, builder, sig, args):
        a, xv, arrv, idx = args
        s = builder.load(_address(context, builder, sig.args[2], arrv, idx))
        vt = a.type
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                                             f"llvm.fmuladd.v{vt.count}f{arr.dtype.bitwidth}")
        return builder.call(fma, [xv, _splat(builder, s, vt), a])
    return acc(acc, x, arr, i), codegen


@intrinsic
def tile_mul_add(typingctx, acc, a, b):
    """acc + a * b, lane by lane (three tiles; one fused multiply-add per lane where the processor has FMA)."""
    if not (isinstance(acc, Tile) and acc == a == b):
        raise TypingError(f"tile_mul_add needs three tiles of one dtype, got {acc}, {a} and {b}")

    def codegen(context, builder, sig, args):
        vt = args[0].type
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]),
                                             f"llvm.fmuladd.v{vt.count}f{acc.dtype.bitwidth}")
        return builder.call(fma, [args[1], args[2], args[0]])
    return acc(acc, a, b), codegen


@intrinsic
def tile_sum(typingctx, t):
    """The sum of t's lanes, added in lane order (lane 0 + lane 1 + ...): a fixed order, so fixed bits."""
    if not isinstance(t, Tile):
        raise TypingError(f"tile_sum needs a tile, got {t}")

    def codegen(context, builder, sig, args):
        acc = builder.extract_element(args[0], ir.Constant(ir.IntType(32), 0))
        for lane in range(1, t.lanes):
            acc = builder.fadd(acc, builder.extract_element(args[0], ir.Constant(ir.IntType(32), lane)))
        return acc
    return t.dtype(t), codegen


@intrinsic
def tile_relu(typingctx, t):
    """0 where t < 0, else t, lane by lane (NaN and -0.0 stay: relu_forward_kernel1's rule)."""
    if not isinstance(t, Tile):
        raise TypingError(f"tile_relu needs a tile, got {t}")

    def codegen(context, builder, sig, args):
        zero = ir.Constant(args[0].type, None)
        return builder.select(builder.fcmp_ordered("<", args[0], zero), zero, args[0])
    return t(t), codegen


@njit(inline="always")
def tile_add_at(arr, i, t):
    """arr[i : i + lanes] += t."""
    tile_store(arr, i, tile_add(tile_load(arr, i), t))


# ----------------------------------------------------------------------------------------------
# Micro-kernels: six (or four) running sums of tiles in registers; one tile load serves several fused multiply-adds.


@njit(inline="always")
def fma6_taps(a0, a1, a2, a3, a4, a5, src, off, m, wk, S, r):
    """a_i += src[off[k] + m : ... + lanes] * wk[k * S + r + i] for every k: six running sums of tiles, in registers."""
    for k in range(off.size):
        tile = tile_load(src, off[k] + m)
        a0 = tile_fma(a0, tile, wk, k * S + r)
        a1 = tile_fma(a1, tile, wk, k * S + r + 1)
        a2 = tile_fma(a2, tile, wk, k * S + r + 2)
        a3 = tile_fma(a3, tile, wk, k * S + r + 3)
        a4 = tile_fma(a4, tile, wk, k * S + r + 4)
        a5 = tile_fma(a5, tile, wk, k * S + r + 5)
    return a0, a1, a2, a3, a4, a5


@njit(inline="always")
def fma4_taps(a0, a1, a2, a3, src, off, m, wk, S, r):
    """fma6_taps for four sums (a block of two to four channels)."""
    for k in range(off.size):
        tile = tile_load(src, off[k] + m)
        a0 = tile_fma(a0, tile, wk, k * S + r)
        a1 = tile_fma(a1, tile, wk, k * S + r + 1)
        a2 = tile_fma(a2, tile, wk, k * S + r + 2)
        a3 = tile_fma(a3, tile, wk, k * S + r + 3)
    return a0, a1, a2, a3


@njit(inline="always")
def fma6_along(a0, a1, a2, a3, a4, a5, src, off, m, lanes, wk, S, r):
    """a_i += src[off[k] + m + i*lanes : ... + lanes] * wk[k * S + r] for every k: six consecutive tiles of one
    row of sums (for a single channel, where a block of channels would be mostly empty)."""
    for k in range(off.size):
        start = off[k] + m
        a0 = tile_fma(a0, tile_load(src, start), wk, k * S + r)
        a1 = tile_fma(a1, tile_load(src, start + lanes), wk, k * S + r)
        a2 = tile_fma(a2, tile_load(src, start + 2 * lanes), wk, k * S + r)
        a3 = tile_fma(a3, tile_load(src, start + 3 * lanes), wk, k * S + r)
        a4 = tile_fma(a4, tile_load(src, start + 4 * lanes), wk, k * S + r)
        a5 = tile_fma(a5, tile_load(src, start + 5 * lanes), wk, k * S + r)
    return a0, a1, a2, a3, a4, a5


@njit(inline="always")
def fma6_at(a0, a1, a2, a3, a4, a5, src, S, o, wk, at, d0, d1, d2, d3, d4, d5):
    """a_i += src[row * S + o : ... + lanes] * wk[at[row] + d_i] for every row < at.size: fma6_taps with the
    roles turned, the tile walking down the rows of src and each sum reading wk at its own offset d_i."""
    for row in range(at.size):
        tile = tile_load(src, row * S + o)
        base = at[row]
        a0 = tile_fma(a0, tile, wk, base + d0)
        a1 = tile_fma(a1, tile, wk, base + d1)
        a2 = tile_fma(a2, tile, wk, base + d2)
        a3 = tile_fma(a3, tile, wk, base + d3)
        a4 = tile_fma(a4, tile, wk, base + d4)
        a5 = tile_fma(a5, tile, wk, base + d5)
    return a0, a1, a2, a3, a4, a5


def _transpose_stages(builder, rows):
    """The rows (a square of lanes x lanes, lanes a power of two) transposed: at each scale b = lanes/2 ... 1,
    every pair of rows (r, r + b) swaps its off-diagonal blocks of b lanes (two shuffles per pair)."""
    n = len(rows)
    b = n // 2
    while b >= 1:
        lo = [k if (k // b) % 2 == 0 else n + k - b for k in range(n)]
        hi = [k + b if (k // b) % 2 == 0 else n + k for k in range(n)]
        mask_lo = ir.Constant(ir.VectorType(ir.IntType(32), n), lo)
        mask_hi = ir.Constant(ir.VectorType(ir.IntType(32), n), hi)
        out = list(rows)
        for r in range(n):
            if (r // b) % 2 == 0:
                out[r] = builder.shuffle_vector(rows[r], rows[r + b], mask_lo)
                out[r + b] = builder.shuffle_vector(rows[r], rows[r + b], mask_hi)
        rows = out
        b //= 2
    return rows


@intrinsic
def tile_transpose(typingctx, src, i, src_stride, dst, j, dst_stride):
    """A lanes x lanes square transposed: dst[j + r * dst_stride + k] = src[i + k * src_stride + r] for r, k < lanes.

    Row k of the square is the tile src[i + k * src_stride : ... + lanes]; the shuffles run in registers (four
    rounds for 16 lanes), so a blocked transpose costs a fraction of an element-by-element copy."""
    _check_array(src, "tile_transpose")
    _check_array(dst, "tile_transpose")
    if src.dtype != dst.dtype:
        raise TypingError(f"tile_transpose needs two arrays of one dtype, got {src.dtype} and {dst.dtype}")
    tt = Tile(src.dtype)

    def codegen(context, builder, sig, args):
        s, si, ss, d, di, ds = args
        vt = context.get_value_type(tt)
        align = src.dtype.bitwidth // 8
        rows = []
        for k in range(tt.lanes):
            at = builder.add(si, builder.mul(ss, ir.Constant(ss.type, k)))
            vp = builder.bitcast(_address(context, builder, sig.args[0], s, at), vt.as_pointer())
            rows.append(builder.load(vp, align=align))
        for r, row in enumerate(_transpose_stages(builder, rows)):
            at = builder.add(di, builder.mul(ds, ir.Constant(ds.type, r)))
            vp = builder.bitcast(_address(context, builder, sig.args[3], d, at), vt.as_pointer())
            builder.store(row, vp, align=align)
        return context.get_dummy_value()
    return types.none(src, types.intp, types.intp, dst, types.intp, types.intp), codegen


@njit(inline="always")
def examples_to_lanes(af, n0, nl, E, at, lanes):
    """at[e * lanes + lane] = af[(n0 + lane) * E + e] for e < E, lane < nl: nl examples of E values each (af flat),
    one example per lane; whole squares of a tile go through tile_transpose."""
    whole = E // lanes * lanes if nl == lanes else 0
    for e0 in range(0, whole, lanes):
        tile_transpose(af, n0 * E + e0, E, at, e0 * lanes, lanes)
    for lane in range(nl):
        for e in range(whole, E):
            at[e * lanes + lane] = af[(n0 + lane) * E + e]


@njit(inline="always")
def lanes_to_examples(at, af, n0, nl, E, lanes):
    """af[(n0 + lane) * E + e] = at[e * lanes + lane]: examples_to_lanes undone."""
    whole = E // lanes * lanes if nl == lanes else 0
    for e0 in range(0, whole, lanes):
        tile_transpose(at, e0 * lanes, lanes, af, n0 * E + e0, E)
    for lane in range(nl):
        for e in range(whole, E):
            af[(n0 + lane) * E + e] = at[e * lanes + lane]


# ----------------------------------------------------------------------------------------------
# Max pooling's 2x2 windows, a tile of windows at once (max_pool2d_forward_kernel2): masked loads and stores, so
# a short row (LeNet's 14 windows in 16 lanes) reads and writes exactly its own elements.


def _lane_mask(builder, n, count):
    """<count x i1>: lane < n."""
    it = ir.VectorType(ir.IntType(64), count)
    return builder.icmp_signed("<", ir.Constant(it, list(range(count))), _splat(builder, n, it))


def _masked(builder, op, vt, ptr):
    """llvm.masked.load / llvm.masked.store for vectors of type vt at ptr."""
    elem = "f32" if vt.element == ir.FloatType() else ("f64" if vt.element == ir.DoubleType() else "i64")
    mask = ir.VectorType(ir.IntType(1), vt.count)
    name = f"llvm.masked.{op}.v{vt.count}{elem}.p0"
    if op == "load":
        return cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [ptr.type, ir.IntType(32), mask, vt]),
                                              name)
    return cgutils.get_or_insert_function(builder.module,
                                          ir.FunctionType(ir.VoidType(), [vt, ptr.type, ir.IntType(32), mask]), name)


@intrinsic
def tile_load_pairs(typingctx, arr, i, n):
    """(even, odd): the tiles arr[i : i + n : 2] and arr[i + 1 : i + n : 2] (n <= 2 * lanes; lanes past n hold 0).
    Only arr[i : i + n] is read."""
    _check_array(arr, "tile_load_pairs")
    tt = Tile(arr.dtype)

    def codegen(context, builder, sig, args):
        a, at, nn = args
        lanes = tt.lanes
        wide = ir.VectorType(context.get_value_type(arr.dtype), 2 * lanes)
        ptr = builder.bitcast(_address(context, builder, sig.args[0], a, at), wide.as_pointer())
        align = ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8)
        v = builder.call(_masked(builder, "load", wide, ptr),
                         [ptr, align, _lane_mask(builder, nn, 2 * lanes), ir.Constant(wide, None)])
        undef = ir.Constant(wide, ir.Undefined)
        even = ir.Constant(ir.VectorType(ir.IntType(32), lanes), list(range(0, 2 * lanes, 2)))
        odd = ir.Constant(ir.VectorType(ir.IntType(32), lanes), list(range(1, 2 * lanes, 2)))
        return context.make_tuple(builder, sig.return_type,
                                  [builder.shuffle_vector(v, undef, even), builder.shuffle_vector(v, undef, odd)])
    return types.UniTuple(tt, 2)(arr, types.intp, types.intp), codegen


@intrinsic
def pool_max4_store(typingctx, a, b, c, d, sign, out, o, idx, p, base, W, n):
    """The winners of n 2x2 windows [a, b; c, d] (one window per lane) stored at out[o : o + n] and their
    positions at idx[p : p + n]: lane by lane ``_winner_of_4`` of max pooling on sign * value (sign 1: max,
    -1: min): the first maximum in row-major order, or the last NaN, whose value is then np.nan. The position of
    lane l is base + 2 * l plus 0, 1, W or W + 1 for taps a, b, c, d."""
    if not (isinstance(a, Tile) and a == b == c == d):
        raise TypingError(f"pool_max4_store needs four tiles of one dtype, got {a}, {b}, {c} and {d}")
    _check_array(out, "pool_max4_store")
    if out.dtype != a.dtype or not (isinstance(idx, types.Array) and idx.dtype == types.int64 and idx.ndim == 1
                                    and idx.layout == "C"):
        raise TypingError(f"pool_max4_store needs out of {a.dtype} and idx of int64, got {out} and {idx}")

    def codegen(context, builder, sig, args):
        va, vb, vc, vd, s, ov, oo, iv, pp, bb, ww, nn = args
        vt = va.type
        lanes = vt.count
        it = ir.VectorType(ir.IntType(64), lanes)
        sv = _splat(builder, context.cast(builder, s, sig.args[4], a.dtype), vt)
        va, vb, vc, vd = (builder.fmul(t, sv) for t in (va, vb, vc, vd))
        k = lambda v: ir.Constant(it, [v] * lanes)  # noqa: E731
        m = builder.fcmp_ordered(">", vb, va)
        best, tap = builder.select(m, vb, va), builder.select(m, k(1), k(0))
        m = builder.fcmp_ordered(">", vc, best)
        best, tap = builder.select(m, vc, best), builder.select(m, k(2), tap)
        m = builder.fcmp_ordered(">", vd, best)
        best, tap = builder.select(m, vd, best), builder.select(m, k(3), tap)
        na, nb, nc, nd = (builder.fcmp_unordered("uno", t, t) for t in (va, vb, vc, vd))
        nan_tap = builder.select(nd, k(3), builder.select(nc, k(2), builder.select(nb, k(1), k(0))))
        any_nan = builder.or_(builder.or_(na, nb), builder.or_(nc, nd))
        tap = builder.select(any_nan, nan_tap, tap)
        value = builder.select(any_nan, ir.Constant(vt, [float("nan")] * lanes), builder.fmul(best, sv))
        wv = _splat(builder, ww, it)
        offset = builder.select(builder.icmp_signed("==", tap, k(1)), k(1), k(0))
        offset = builder.select(builder.icmp_signed("==", tap, k(2)), wv, offset)
        offset = builder.select(builder.icmp_signed("==", tap, k(3)), builder.add(wv, k(1)), offset)
        where = builder.add(builder.add(_splat(builder, bb, it), ir.Constant(it, list(range(0, 2 * lanes, 2)))), offset)
        mask = _lane_mask(builder, nn, lanes)
        optr = builder.bitcast(_address(context, builder, sig.args[5], ov, oo), vt.as_pointer())
        align = ir.Constant(ir.IntType(32), a.dtype.bitwidth // 8)
        builder.call(_masked(builder, "store", vt, optr), [value, optr, align, mask])
        iptr = builder.bitcast(_address(context, builder, sig.args[7], iv, pp), it.as_pointer())
        builder.call(_masked(builder, "store", it, iptr), [where, iptr, ir.Constant(ir.IntType(32), 8), mask])
        return context.get_dummy_value()
    return types.none(a, b, c, d, sign, out, types.intp, idx, types.intp, types.intp, types.intp, types.intp), codegen
