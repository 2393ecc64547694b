"""numbacnn.cpu.tiles: tiles and micro-kernels load, store, fill and multiply-add exactly; bad types are refused."""
import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numbacnn.cpu.tiles import (fma4_taps, fma6_along, fma6_at, fma6_taps, tile_add, tile_add_at, tile_fill, tile_fma,
                                tile_lanes, tile_load, tile_load_pairs, tile_mul_add, tile_relu, tile_store, tile_sum,
                                tile_transpose)


@njit
def _axpy_tiles(x, w, start, b):
    """out[start : start + lanes] = 2b + x[start + j] * w[j] summed over j (two taps), through tiles."""
    out = np.zeros_like(x)
    a = tile_fill(b)
    a = tile_fma(a, tile_load(x, start), w, 0)
    a = tile_fma(a, tile_load(x, start + 1), w, 1)
    a = tile_add(a, tile_fill(b))
    tile_store(out, start, a)
    return out, tile_lanes(x)


@pytest.mark.parametrize("dtype, lanes", [(np.float32, 16), (np.float64, 8)])
def test_tile_ops_match_numpy(dtype, lanes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(40).astype(dtype)
    w = rng.standard_normal(2).astype(dtype)
    b = dtype(0.25)
    out, n = _axpy_tiles(x, w, 3, b)
    assert n == lanes
    expected = np.zeros_like(x)
    # fused multiply-adds round once per tap: compare in float64 with one rounding per step allowed
    expected[3:3 + lanes] = (2 * np.float64(b) + x[3:3 + lanes].astype(np.float64) * w[0]
                             + x[4:4 + lanes].astype(np.float64) * w[1])
    np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
    assert not out[:3].any() and not out[3 + lanes:].any()  # nothing written outside the tile


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tile_add_at_adds_into_one_tile(dtype):
    arr = np.arange(40, dtype=dtype)
    njit(lambda a: tile_add_at(a, 5, tile_fill(a.dtype.type(0.5))))(arr)
    lanes = 64 // arr.itemsize
    expected = np.arange(40, dtype=dtype)
    expected[5:5 + lanes] += 0.5
    assert np.array_equal(arr, expected)


def test_tile_nan_and_inf_propagate():
    x = np.zeros(32, np.float32)
    x[1], x[2] = np.nan, np.inf
    out, _ = _axpy_tiles(x, np.ones(2, np.float32), 0, np.float32(0))
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == np.inf  # out[j] = x[j] + x[j + 1]


@njit
def _transpose(src, i, src_stride, dst, j, dst_stride):
    tile_transpose(src, i, src_stride, dst, j, dst_stride)


@pytest.mark.parametrize("dtype, lanes", [(np.float32, 16), (np.float64, 8)])
def test_tile_transpose_turns_a_square_and_touches_nothing_else(dtype, lanes):
    src = np.arange(1000, dtype=dtype)
    dst = np.full(1000, -1, dtype)
    _transpose(src, 3, 41, dst, 7, 50)  # rows of the square 41 apart in src, 50 apart in dst, neither aligned
    square = np.stack([src[3 + k * 41:3 + k * 41 + lanes] for k in range(lanes)])  # square[k, r]
    got = np.stack([dst[7 + r * 50:7 + r * 50 + lanes] for r in range(lanes)])  # got[r, k]
    np.testing.assert_array_equal(got, square.T)
    assert (dst == -1).sum() == dst.size - lanes * lanes


@njit
def _mul_add_sum(a, b, c):
    t = tile_mul_add(tile_load(c, 0), tile_load(a, 0), tile_load(b, 0))
    out = np.zeros_like(a)
    tile_store(out, 0, t)
    return out, tile_sum(t)


@pytest.mark.parametrize("dtype, lanes", [(np.float32, 16), (np.float64, 8)])
def test_tile_mul_add_and_sum(dtype, lanes):
    rng = np.random.default_rng(1)
    a, b, c = (rng.standard_normal(lanes).astype(dtype) for _ in range(3))
    out, total = _mul_add_sum(a, b, c)
    exact = a.astype(np.float64) * b + c  # one rounding (FMA) or two: within 2 ulp of the exact value
    np.testing.assert_allclose(out, exact, rtol=4 * np.finfo(dtype).eps, atol=4 * np.finfo(dtype).eps)
    in_order = dtype(0) + out[0]
    for v in out[1:]:
        in_order = dtype(in_order + v)  # lane 0 + lane 1 + ..., rounded to dtype at each step
    assert total == in_order


@njit
def _pairs(a, i, n):
    even, odd = tile_load_pairs(a, i, n)
    out = np.zeros(2 * tile_lanes(a), a.dtype)
    tile_store(out, 0, even)
    tile_store(out, tile_lanes(a), odd)
    return out


@pytest.mark.parametrize("dtype, lanes", [(np.float32, 16), (np.float64, 8)])
def test_tile_load_pairs_splits_even_and_odd_and_reads_only_n(dtype, lanes):
    a = np.arange(100, dtype=dtype) + 1
    out = _pairs(a, 3, 2 * lanes)
    np.testing.assert_array_equal(out[:lanes], a[3:3 + 2 * lanes:2])
    np.testing.assert_array_equal(out[lanes:], a[4:4 + 2 * lanes:2])
    short = a[:13].copy()  # n = 5 at the end of the array: a full load would read past it
    out = _pairs(short, 8, 5)
    np.testing.assert_array_equal(out[:3], short[8:13:2])
    np.testing.assert_array_equal(out[lanes:lanes + 2], short[9:13:2])
    assert not out[3:lanes].any() and not out[lanes + 2:].any()  # lanes past n hold 0


@njit
def _relu_tile(a):
    out = np.empty_like(a)
    tile_store(out, 0, tile_relu(tile_load(a, 0)))
    return out


@pytest.mark.parametrize("dtype, lanes", [(np.float32, 16), (np.float64, 8)])
def test_tile_relu_has_relu_forward_kernel1s_bits(dtype, lanes):
    from numbacnn.cpu.functional import relu_forward_kernel1

    a = np.resize(np.array([np.nan, -0.0, 0.0, -1.5, 2.5, -np.inf, np.inf, 1e-30], dtype), lanes)
    want = np.empty_like(a)
    relu_forward_kernel1(a, want)
    assert np.array_equal(_relu_tile(a).view(np.uint8), want.view(np.uint8))


def test_tile_type_errors_name_the_operation():
    @njit
    def load_2d(a):
        return tile_load(a, 0)

    @njit
    def mixed(a, b):
        t = tile_load(a, 0)
        return tile_fma(t, t, b, 0)

    with pytest.raises(TypingError, match="tile_load needs a 1-D contiguous float array"):
        load_2d(np.zeros((4, 16), np.float32))
    with pytest.raises(TypingError, match="tile_fma needs two tiles of float64"):
        mixed(np.zeros(16, np.float32), np.zeros(16, np.float64))
    with pytest.raises(TypingError, match="tile_transpose needs two arrays of one dtype"):
        _transpose(np.zeros(300, np.float32), 0, 16, np.zeros(300, np.float64), 0, 16)


@njit
def _micro_kernels(src, off, wk, S, at, d):
    """Rows: fma6_taps, fma4_taps, fma6_along, fma6_at, from zero sums, their tiles stored side by side."""
    lanes = tile_lanes(src)
    z = tile_fill(src.dtype.type(0))
    out = np.zeros((4, 6 * lanes), src.dtype)
    for row, sums in enumerate((fma6_taps(z, z, z, z, z, z, src, off, 1, wk, S, 0),
                                fma6_along(z, z, z, z, z, z, src, off, 1, lanes, wk, S, 0),
                                fma6_at(z, z, z, z, z, z, src, S, 0, wk, at, d[0], d[1], d[2], d[3], d[4], d[5]))):
        for i in range(6):
            tile_store(out[(0, 2, 3)[row]], i * lanes, sums[i])
    four = fma4_taps(z, z, z, z, src, off, 1, wk, S, 0)
    for i in range(4):
        tile_store(out[1], i * lanes, four[i])
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_micro_kernels_match_numpy(dtype):
    """a_i += src[off[k] + m : + lanes] * wk[k * S + r + i] (taps), the same along six tiles, and the roles turned."""
    lanes = 64 // np.dtype(dtype).itemsize
    rng = np.random.default_rng(0)
    src = rng.standard_normal(12 * lanes).astype(dtype)
    wk = rng.standard_normal(8 * lanes).astype(dtype)
    off, at, d = np.array([0, 3, 5]), np.array([0, 2, 7]), np.arange(6) * 2
    S = 7
    got = _micro_kernels(src, off, wk, S, at, d)
    s64, w64 = src.astype(np.float64), wk.astype(np.float64)
    taps = [sum(s64[off[k] + 1:off[k] + 1 + lanes] * w64[k * S + i] for k in range(3)) for i in range(6)]
    along = [sum(s64[off[k] + 1 + i * lanes:off[k] + 1 + (i + 1) * lanes] * w64[k * S] for k in range(3))
             for i in range(6)]
    turned = [sum(s64[row * S:row * S + lanes] * w64[at[row] + d[i]] for row in range(3)) for i in range(6)]
    tol = dict(rtol=8 * np.finfo(dtype).eps, atol=8 * np.finfo(dtype).eps)
    np.testing.assert_allclose(got[0], np.concatenate(taps), **tol)
    np.testing.assert_allclose(got[1][:4 * lanes], np.concatenate(taps[:4]), **tol)
    np.testing.assert_allclose(got[2], np.concatenate(along), **tol)
    np.testing.assert_allclose(got[3], np.concatenate(turned), **tol)
