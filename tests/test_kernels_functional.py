"""The fast linear, sigmoid and cross-entropy kernels against kernel 1, the formula."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from helpers import assert_close


@settings(max_examples=30, deadline=None)
@given(N=st.integers(0, 9), I=st.integers(1, 13), O=st.integers(1, 11),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_linear_fast_kernels_match_simple(N, I, O, dtype, seed):
    from numbacnn import functional as F

    rng = np.random.default_rng(seed)
    x, w, b, gy = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), (O,), (N, O)))
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    y_s, y_f = np.empty((N, O), dtype), np.empty((N, O), dtype)
    F.linear_forward_cpu_simple(x, w, b, y_s)
    F.linear_forward_cpu(x, w, b, y_f)
    assert_close(y_f, y_s, name="y", **tol)
    gx_s, gx_f = np.empty_like(x), np.empty_like(x)
    F.linear_grad_input_cpu_simple(gy, w, gx_s)
    F.linear_grad_input_cpu(gy, w, gx_f)
    assert_close(gx_f, gx_s, name="grad_x", **tol)
    gw_s, gw_f, gb_s, gb_f = np.empty_like(w), np.empty_like(w), np.empty_like(b), np.empty_like(b)
    F.linear_grad_weight_cpu_simple(gy, x, gw_s, gb_s)
    F.linear_grad_weight_cpu(gy, x, gw_f, gb_f)
    assert_close(gw_f, gw_s, name="grad_weight", **tol)
    assert_close(gb_f, gb_s, name="grad_bias", **tol)


@settings(max_examples=40, deadline=None)
@given(N=st.one_of(st.integers(0, 20), st.integers(60, 140)), I=st.integers(1, 40), O=st.integers(1, 20),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_linear_backward_tiles_match_simple(N, I, O, dtype, seed):
    """Shapes that reach the tile kernel (six or more rows of the result, a tile or more of columns), with
    a short last block of rows, a partial last tile of columns and sums over one to three blocks of k."""
    from numbacnn import functional as F

    rng = np.random.default_rng(seed)
    x, w, gy = (rng.standard_normal(s).astype(dtype) for s in ((N, I), (O, I), (N, O)))
    tol = dict(atol=1e-4, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    gx_s, gx_f = np.empty_like(x), np.full_like(x, np.nan)
    F.linear_grad_input_cpu_simple(gy, w, gx_s)
    F.linear_grad_input_cpu(gy, w, gx_f)
    assert_close(gx_f, gx_s, name="grad_x", **tol)
    gw_s, gw_f, gb_s, gb_f = np.empty_like(w), np.full_like(w, np.nan), np.empty(O, dtype), np.empty(O, dtype)
    F.linear_grad_weight_cpu_simple(gy, x, gw_s, gb_s)
    F.linear_grad_weight_cpu(gy, x, gw_f, gb_f)
    assert_close(gw_f, gw_s, name="grad_weight", **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_fast_exp_matches_libm(dtype):
    """The vectorized exp gives the same sigmoid as math.exp within three ulps, special values included.

    (In float32, math.exp(-x) overflows for x < -88.7 so the simple kernel gives 0 where the fast one keeps
    the exact subnormal value, below the smallest normal float32.)"""
    from numbacnn import functional as F

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(4000) * 10, rng.uniform(-800, 800, 1000), np.linspace(-40, 40, 1001),
                        [0.0, -0.0, 1e-30, -1e-30, 88.7, -88.7, 103.9, -103.9, 708.5, -708.5, 745.2, -745.2, 1e30,
                         -1e30, np.inf, -np.inf, np.nan]]).astype(dtype)
    gy = rng.standard_normal(x.shape).astype(dtype)
    a, e = np.empty_like(x), np.empty_like(x)
    F.sigmoid_cpu(x, a)
    F.sigmoid_cpu_simple(x, e)
    ulp = np.spacing(np.abs(e).astype(dtype))
    assert np.array_equal(np.isnan(a), np.isnan(e))
    ok = np.isnan(e) | (np.abs(a.astype(np.float64) - e) <= np.maximum(3 * ulp, np.finfo(dtype).tiny))
    assert ok.all(), f"sigmoid: {x[~ok][:5]} -> {a[~ok][:5]}, expected {e[~ok][:5]}"
    # backward against the exact derivative, exp(-|x|) / (1 + exp(-|x|))**2 in float64 (the simple kernel
    # loses digits in s * (1 - s) where s is near 1; the fast one does not)
    F.sigmoid_backward_cpu(gy, x, a)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(x.astype(np.float64)))
        exact = gy * e / (1 + e) ** 2
    assert_close(a, exact, atol=1e-37, rtol=1e-6 if dtype == np.float32 else 1e-12, name="sigmoid_backward")



@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 9), K=st.integers(1, 12), scale=st.sampled_from([0.1, 1.0, 30.0]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_cross_entropy_fast_kernel_matches_simple(N, K, scale, dtype, seed):
    """The fused forward (label check in the kernel, vectorized exp) against cross_entropy_cpu."""
    from numbacnn import functional as F

    rng = np.random.default_rng(seed)
    logits = (rng.standard_normal((N, K)) * scale).astype(dtype)
    t = rng.integers(0, K, N)
    fast = F.cross_entropy_cpu_fused
    loss, bad = fast(logits, t)
    assert bad == -1
    assert_close(loss, F.cross_entropy_cpu(logits, t), atol=1e-6 if dtype == np.float32 else 1e-13,
                 rtol=1e-6 if dtype == np.float32 else 1e-13, name="loss")
    t2 = t.copy()
    t2[N // 2:] = K  # out of range from row N // 2 on: the first bad row is reported
    assert fast(logits, t2)[1] == N // 2


