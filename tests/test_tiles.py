"""numbacnn._tiles: register tiles load, store, fill and fused multiply-add exactly, and refuse wrong types."""
import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from numbacnn.cpu.tiles import tile_add, tile_add_at, tile_fill, tile_fma, tile_lanes, tile_load, tile_store


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
