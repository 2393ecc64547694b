"""Every numbered CPU pooling kernel (numbacnn.cpu.pool.KERNELS) against numbacnn.reference, and kernel 2 against
kernel 1 bit for bit."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import numbacnn as nc
from numbacnn import reference as ref
from numbacnn.cpu import pool as P
from helpers import assert_close

EXACT = dict(atol=0, rtol=0)


def _pool_input(rng, shape, dtype):
    """Values with many ties, signed zeros, infinities and NaNs, so every tie and NaN rule is exercised."""
    x = rng.choice(np.array([-2.0, -1.0, -0.0, 0.0, 1.0, 2.0, np.inf, -np.inf, np.nan]), size=shape,
                   p=[.15, .15, .1, .1, .15, .15, .07, .07, .06])
    return x.astype(dtype)


def _bits_equal(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _bits_equal_but_nan_sign(a, b):
    """Bit for bit, except that a NaN matches any NaN: a window sum holding both a NaN and inf + (-inf) gets the
    sign of whichever NaN the addition meets first, and that order differs between two compilations of the same
    kernel (seen with numbacnn 0.1's own kernels: fresh JIT and cached code disagree). PyTorch defines no NaN sign."""
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return (a.dtype == b.dtype and a.shape == b.shape and np.array_equal(nan_a, nan_b)
            and np.array_equal(np.where(nan_a, 0, a).view(np.uint8), np.where(nan_b, 0, b).view(np.uint8)))


# (op, kwargs, shape): the 2x2 stride-2 cases run every kernel number, the others kernel 1 (and refuse 2)
TWO_BY_TWO = [
    ("max_pool2d", dict(kernel_size=2), (2, 3, 6, 7)),  # odd W: a column outside every window
    ("min_pool2d", dict(kernel_size=2, stride=2), (2, 2, 7, 6)),
    ("max_pool2d", dict(kernel_size=(2, 2), stride=2, ceil_mode=True), (1, 2, 4, 6)),  # ceil_mode, even H, W
    ("avg_pool2d", dict(kernel_size=2), (2, 3, 6, 7)),
    ("avg_pool2d", dict(kernel_size=2, divisor_override=3), (1, 2, 5, 4)),
]
GENERAL = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True), (2, 2, 7, 6)),
    ("max_pool2d", dict(kernel_size=2, ceil_mode=True), (1, 2, 5, 5)),  # 2x2 but the last window sticks out
    ("min_pool2d", dict(kernel_size=(2, 3), stride=1, padding=1), (2, 2, 5, 6)),
    ("min_pool2d", dict(kernel_size=2, stride=2, padding=1), (1, 2, 6, 6)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 2, 6, 7)),
    ("avg_pool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), divisor_override=5), (1, 2, 7, 5)),
    ("adaptive_avg_pool2d", dict(output_size=(3, 4)), (2, 2, 7, 6)),
    ("adaptive_max_pool2d", dict(output_size=(9, 2)), (2, 2, 7, 6)),  # more outputs than rows: overlap
]
RUNS = [(op, kw, shape, k) for op, kw, shape in TWO_BY_TWO for k in P.KERNELS[op]] + \
       [(op, kw, shape, 1) for op, kw, shape in GENERAL]


def _inputs(op, shape, dtype, seed):
    """Max/min: ties, signed zeros, infinities, NaNs; averages: small integers (ties, exact sums)."""
    rng = np.random.default_rng(seed)
    if op in ("max_pool2d", "min_pool2d", "adaptive_max_pool2d"):
        return _pool_input(rng, shape, dtype)
    return rng.integers(-3, 4, shape).astype(dtype)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference on inf - inf
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,kwargs,shape,kernel", RUNS, ids=[f"{r[0]}-{i}-k{r[3]}" for i, r in enumerate(RUNS)])
def test_each_kernel_matches_reference(op, kwargs, shape, kernel, dtype):
    """Forward (values and indices) and backward of kernel ``kernel`` equal the NumPy reference: exactly for
    max/min and the average's forward, to rounding for the average's backward and adaptive averages."""
    x = _inputs(op, shape, dtype, 7)
    fwd, bwd = getattr(nc, op), getattr(nc, op + "_backward")
    with_indices = op in ("max_pool2d", "min_pool2d", "adaptive_max_pool2d")
    tol = EXACT if with_indices or op == "avg_pool2d" else dict(atol=1e-6, rtol=1e-6)
    if with_indices:
        (y, idx), (y_ref, idx_ref) = fwd(x, **kwargs, return_indices=True, kernel=kernel), \
            getattr(ref, op)(x, **kwargs, return_indices=True)
        np.testing.assert_array_equal(idx, idx_ref, err_msg=f"{op} kernel {kernel} indices")
    else:
        y, y_ref = fwd(x, **kwargs, kernel=kernel), getattr(ref, op)(x, **kwargs)
    assert y.dtype == dtype
    assert_close(y, y_ref, name=f"{op} kernel {kernel}", **tol)
    gy = np.random.default_rng(8).integers(-4, 5, y.shape).astype(dtype)  # integers: exact sums where windows overlap
    back = kernel if kernel in P.KERNELS[op + "_backward"] else 1
    gx = bwd(gy, x, **kwargs, kernel=back)
    assert gx.dtype == dtype
    tol = EXACT if with_indices else dict(atol=1e-6, rtol=1e-6)
    assert_close(gx, getattr(ref, op + "_backward")(gy, x, **kwargs), name=f"{op}_backward kernel {back}", **tol)
    if op in ("max_pool2d", "min_pool2d") and back == 1:  # kernel 1 also reads the forward's indices
        assert_close(bwd(gy, x, **kwargs, indices=idx, kernel=1), gx, name=f"{op}_backward indices=", **EXACT)


@pytest.mark.parametrize("op,kwargs,shape", [g for g in GENERAL if 2 in P.KERNELS[g[0]]])
def test_kernel_2_refuses_other_windows(op, kwargs, shape):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=f"kernel 2 of {op} needs a 2x2 window with stride 2, no padding, "
                                         r"dilation 1 and every window inside x \(ceil_mode=False, or even H and W\)"):
        getattr(nc, op)(x, **kwargs, kernel=2)
    y = getattr(nc, op)(x, **kwargs)
    with pytest.raises(ValueError, match=f"kernel 2 of {op}_backward needs a 2x2 window"):
        getattr(nc, op + "_backward")(y, x, **kwargs, kernel=2)


def test_kernel_numbers_and_formula_kernels():
    assert set(P.KERNELS) == {f"{op}{p}" for op in ("max_pool2d", "min_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
                                                     "adaptive_max_pool2d") for p in ("", "_backward")}
    assert all(k[0] == 1 and list(k) == sorted(k) for k in P.KERNELS.values())
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="kernel must be None .* or one of 1 for adaptive_max_pool2d, got 2"):
        nc.adaptive_max_pool2d(x, 2, kernel=2)
    with pytest.raises(ValueError, match="kernel 2 of max_pool2d_backward finds the winners again in x"):
        nc.max_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), x, 2, indices=np.zeros((1, 1, 2, 2), int), kernel=2)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(0, 3), C=st.integers(1, 3), H=st.integers(2, 9), W=st.integers(2, 9),
       dtype=st.sampled_from([np.float32, np.float64]), sign=st.sampled_from([1.0, -1.0]),
       divisor=st.sampled_from([0, 3, -7]), seed=st.integers(0, 2 ** 31))
def test_pool_2x2_fast_kernels_match_general_bit_for_bit(N, C, H, W, dtype, sign, divisor, seed):
    """Kernel 2 (2x2 stride 2) gives kernel 1's bits: values, indices and gradients."""
    rng = np.random.default_rng(seed)
    x = _pool_input(rng, (N, C, H, W), dtype)
    shape = (N, C, H // 2, W // 2)
    gy = _pool_input(rng, shape, dtype)
    out_g, out_f = np.empty(shape, dtype), np.empty(shape, dtype)
    idx_g, idx_f = np.empty(shape, np.int64), np.empty(shape, np.int64)
    P.max_pool2d_forward_kernel1(x, out_g, idx_g, 2, 2, 2, 2, 0, 0, 1, 1, sign)
    P.max_pool2d_forward_kernel2(x, out_f, idx_f, sign)
    assert _bits_equal(out_f, out_g) and np.array_equal(idx_f, idx_g)
    gx_g, gx_f = np.empty_like(x), np.full_like(x, 5.0)
    P.max_pool2d_backward_kernel1(gy, idx_g, gx_g)
    P.max_pool2d_backward_kernel2(gy, x, gx_f, sign)
    assert _bits_equal(gx_f, gx_g)
    P.avg_pool2d_forward_kernel1(x, out_g, 2, 2, 2, 2, 0, 0, True, divisor)
    P.avg_pool2d_forward_kernel2(x, out_f, float(divisor or 4))
    assert _bits_equal_but_nan_sign(out_f, out_g)
    gx_g, gx_f = np.empty_like(x), np.full_like(x, 5.0)
    P.avg_pool2d_backward_kernel1(gy, gx_g, 2, 2, 2, 2, 0, 0, True, divisor)
    P.avg_pool2d_backward_kernel2(gy, gx_f, float(divisor or 4))
    assert _bits_equal_but_nan_sign(gx_f, gx_g)
