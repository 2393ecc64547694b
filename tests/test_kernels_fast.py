"""The fast CPU kernels (flat shifted slices, blocked loops) against the simple ones that read like the formula."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from numbacnn import conv
from helpers import assert_close


_NAMES = ("y", "y (tiles)", "grad_x", "grad_weight", "grad_weight (tiles)")


def _simple_vs_fast(x, w, gy, pads, dil, groups):
    """(simple, fast) outputs of forward and grad_weight (both fast kernels of each) and grad_input, for stride 1."""
    N, C, H, W = x.shape
    O = w.shape[0]
    b = np.linspace(-1, 1, O).astype(x.dtype)
    pt, pb, pl, pr = pads
    y_s, y_f = np.empty(gy.shape, x.dtype), np.empty(gy.shape, x.dtype)
    conv.conv2d_forward_cpu_simple(x, w, b, y_s, 1, 1, pt, pl, *dil, groups)
    conv.conv2d_forward_cpu(x, w, b, y_f, *pads, *dil, groups)
    y_t = np.empty(gy.shape, x.dtype)  # the tile kernels (used for groups of 16+ channels) work for any group size
    conv.conv2d_forward_tiles_cpu(x, w, b, y_t, *pads, *dil, groups)
    gx_s, gx_f = np.empty_like(x), np.empty_like(x)
    conv.conv2d_grad_input_cpu_simple(gy, w, gx_s, 1, 1, pt, pl, *dil, groups)
    conv.conv2d_grad_input_cpu(gy, w, gx_f, *pads, *dil, groups)
    gw_s, gw_f = np.empty_like(w), np.empty_like(w)
    conv.conv2d_grad_weight_cpu_simple(gy, x, gw_s, 1, 1, pt, pl, *dil, groups)
    conv.conv2d_grad_weight_cpu(gy, x, gw_f, *pads, *dil, groups, 2)
    gw_t = np.empty_like(w)
    conv.conv2d_grad_weight_tiles_cpu(gy, x, gw_t, *pads, *dil, groups, 2)
    return (y_s, y_s, gx_s, gw_s, gw_s), (y_f, y_t, gx_f, gw_f, gw_t)


@settings(max_examples=40, deadline=None)
@given(N=st.integers(0, 3), Cg=st.integers(1, 5), Og=st.integers(1, 6), groups=st.integers(1, 2),
       H=st.integers(1, 9), W=st.integers(1, 9), KH=st.integers(1, 4), KW=st.integers(1, 4),
       pads=st.tuples(*[st.integers(0, 3)] * 4), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_conv_fast_kernels_match_simple(N, Cg, Og, groups, H, W, KH, KW, pads, dil, dtype, seed):
    HO = H + pads[0] + pads[1] - dil[0] * (KH - 1)
    WO = W + pads[2] + pads[3] - dil[1] * (KW - 1)
    if HO < 1 or WO < 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, Cg * groups, H, W)).astype(dtype)
    w = rng.standard_normal((Og * groups, Cg, KH, KW)).astype(dtype)
    gy = rng.standard_normal((N, Og * groups, HO, WO)).astype(dtype)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    for name, s, f in zip(_NAMES, *_simple_vs_fast(x, w, gy, pads, dil, groups)):
        assert_close(f, s, name=name, **tol)


@pytest.mark.parametrize("shape", [((4, 1, 28, 28), (6, 1, 5, 5), 2), ((3, 6, 14, 14), (16, 6, 5, 5), 0)],
                         ids=["conv1", "conv2"])
def test_conv_fast_kernels_lenet_shapes(shape):
    xs, ws, p = shape
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
    HO = xs[2] + 2 * p - ws[2] + 1
    gy = rng.standard_normal((xs[0], ws[0], HO, HO), dtype=np.float32)
    for name, s, f in zip(_NAMES, *_simple_vs_fast(x, w, gy, (p,) * 4, (1, 1), 1)):
        assert_close(f, s, name=name, atol=1e-4, rtol=1e-5)


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


def test_conv2d_backward_can_skip_grad_x():
    """need_grad_x=False returns None for grad_x and the very same grad_weight and grad_bias."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 7, 7), dtype=np.float32), rng.standard_normal((4, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(4, dtype=np.float32)
    for stride in (1, 2):
        gy = rng.standard_normal(conv.conv2d(x, w, b, stride=stride, padding=1).shape, dtype=np.float32)
        gx, gw, gb = conv.conv2d_backward(gy, x, w, b, stride=stride, padding=1)
        none, gw2, gb2 = conv.conv2d_backward(gy, x, w, b, stride=stride, padding=1, need_grad_x=False)
        assert none is None and gx.shape == x.shape
        assert np.array_equal(gw, gw2) and np.array_equal(gb, gb2)
    with pytest.raises(TypeError, match="need_grad_x"):
        conv.conv2d_backward(gy, x, w, b, stride=2, padding=1, need_grad_x="no")


def test_sequential_backward_can_skip_the_first_input_gradient():
    from numbacnn.models import lenet

    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    a, b = lenet("d2l", seed=3), lenet("d2l", seed=3)
    seen = []

    class Obs:
        def on_forward(self, *args):
            pass

        def on_backward(self, i, name, layer, grad_y, grad_x):
            seen.append((i, grad_x is None))

    b.add_observer(Obs())
    ya, yb = a.forward(x), b.forward(x)
    assert a.backward(np.ones_like(ya)).shape == x.shape
    assert b.backward(np.ones_like(yb), need_grad_x=False) is None
    assert seen[-1] == (0, True) and not any(none for _, none in seen[:-1])
    assert all(np.array_equal(p.grad, q.grad) for p, q in zip(a.parameters(), b.parameters()))


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


@pytest.mark.parametrize("Cg", [1, 5, 7])
def test_conv_grad_input_blocks_keep_groups_apart(Cg):
    """A block of six sums covers fewer channels at a group's end; its unused sums must not land in the
    next group's channels: an infinity in group 0's output gradient leaves group 1's grad_x finite."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2 * Cg, 6, 6)).astype(np.float32)
    w = rng.standard_normal((6, Cg, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((2, 6, 6, 6)).astype(np.float32)
    gy[:, 0, 2, 2] = np.inf  # channel 0 is in group 0
    gx_s, gx_f = np.empty_like(x), np.empty_like(x)
    conv.conv2d_grad_input_cpu_simple(gy, w, gx_s, 1, 1, 1, 1, 1, 1, 2)
    conv.conv2d_grad_input_cpu(gy, w, gx_f, 1, 1, 1, 1, 1, 1, 2)
    assert np.isfinite(gx_f[:, Cg:]).all()
    np.testing.assert_array_equal(np.isfinite(gx_f), np.isfinite(gx_s))
    fin = np.isfinite(gx_s)
    assert_close(gx_f[fin], gx_s[fin], name="grad_x", atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("Cg, H, K", [(5, 1, 1), (6, 1, 1), (7, 2, 2), (12, 3, 2)])
def test_conv_grad_input_tiny_planes(Cg, H, K):
    """Padded planes shorter than a tile: one channel's tile reaches into the next plane, so the block's
    stores must keep plane order (a block once stored channel 4 before channel 3 and lost its sums)."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, Cg, K, K)).astype(np.float32)
    gy = rng.standard_normal((2, 3, H - K + 1, H - K + 1)).astype(np.float32)
    gx_s, gx_f = np.empty((2, Cg, H, H), np.float32), np.empty((2, Cg, H, H), np.float32)
    conv.conv2d_grad_input_cpu_simple(gy, w, gx_s, 1, 1, 0, 0, 1, 1, 1)
    conv.conv2d_grad_input_cpu(gy, w, gx_f, 0, 0, 0, 0, 1, 1, 1)
    assert_close(gx_f, gx_s, name="grad_x", atol=1e-5, rtol=1e-5)
