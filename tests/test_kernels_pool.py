"""The fast 2x2 pooling kernels against the general ones, bit for bit."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st


def _pool_input(rng, shape, dtype):
    """Values with many ties, signed zeros, infinities and NaNs, so every tie and NaN rule is exercised."""
    x = rng.choice(np.array([-2.0, -1.0, -0.0, 0.0, 1.0, 2.0, np.inf, -np.inf, np.nan]), size=shape,
                   p=[.15, .15, .1, .1, .15, .15, .07, .07, .06])
    return x.astype(dtype)


def _bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@settings(max_examples=40, deadline=None)
@given(N=st.integers(0, 3), C=st.integers(1, 3), H=st.integers(2, 9), W=st.integers(2, 9),
       dtype=st.sampled_from([np.float32, np.float64]), sign=st.sampled_from([1.0, -1.0]),
       divisor=st.sampled_from([0, 3, -7]), seed=st.integers(0, 2 ** 31))
def test_pool_2x2_fast_kernels_match_general_bit_for_bit(N, C, H, W, dtype, sign, divisor, seed):
    """The 2x2 stride-2 fast paths give the general kernels' bits: values, indices and gradients."""
    from numbacnn import pool as P

    rng = np.random.default_rng(seed)
    x = _pool_input(rng, (N, C, H, W), dtype)
    shape = (N, C, H // 2, W // 2)
    gy = _pool_input(rng, shape, dtype)
    out_g, out_f = np.empty(shape, dtype), np.empty(shape, dtype)
    idx_g, idx_f = np.empty(shape, np.int64), np.empty(shape, np.int64)
    P.max_pool2d_forward_cpu(x, out_g, idx_g, 2, 2, 2, 2, 0, 0, 1, 1, sign)
    P.max_pool2d_2x2_forward_cpu(x, out_f, idx_f, sign)
    assert _bits_equal(out_f, out_g) and np.array_equal(idx_f, idx_g)
    gx_g, gx_f = np.empty_like(x), np.full_like(x, 5.0)
    P.max_pool2d_backward_cpu(gy, idx_g, gx_g)
    P.max_pool2d_2x2_backward_cpu(gy, x, gx_f, sign)
    assert _bits_equal(gx_f, gx_g)
    P.avg_pool2d_forward_cpu(x, out_g, 2, 2, 2, 2, 0, 0, True, divisor)
    P.avg_pool2d_2x2_forward_cpu(x, out_f, float(divisor or 4))
    assert _bits_equal(out_f, out_g)
    gx_g, gx_f = np.empty_like(x), np.full_like(x, 5.0)
    P.avg_pool2d_backward_cpu(gy, gx_g, 2, 2, 2, 2, 0, 0, True, divisor)
    P.avg_pool2d_2x2_backward_cpu(gy, gx_f, float(divisor or 4))
    assert _bits_equal(gx_f, gx_g)


