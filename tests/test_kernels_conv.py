"""The fast conv kernels (register tiles) against kernel 1, the formula."""
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
