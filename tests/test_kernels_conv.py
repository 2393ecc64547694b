"""conv2d's CPU kernels: every numbered kernel against numbacnn.reference, and the fast ones against kernel 1."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import numbacnn as nc
from numbacnn import conv, reference as ref
from numbacnn.cpu import conv as cpu_conv, conv_lanes, conv_tiles
from numbacnn.geometry import conv_geometry
from helpers import HAS_TORCH, assert_close


_NAMES = ("y", "y (kernel 3)", "y (kernel 4)", "grad_x", "grad_x (kernel 3)", "grad_weight", "grad_weight (kernel 3)",
          "grad_weight (kernel 4)")


def _formula_vs_tiles(x, w, gy, pads, dil, groups):
    """(kernel 1, kernels 2-4) outputs of forward (kernels 2, 3, 4), grad_input (2, 3) and grad_weight (2, 3, 4),
    stride 1."""
    N, C, H, W = x.shape
    O = w.shape[0]
    b = np.linspace(-1, 1, O).astype(x.dtype)
    pt, pb, pl, pr = pads
    y_1, y_2 = np.empty(gy.shape, x.dtype), np.empty(gy.shape, x.dtype)
    cpu_conv.conv2d_forward_kernel1(x, w, b, y_1, 1, 1, pt, pl, *dil, groups)
    conv_tiles.conv2d_forward_kernel2(x, w, b, y_2, *pads, *dil, groups)
    y_3 = np.empty(gy.shape, x.dtype)  # kernels 3 (chosen for groups of 16+ channels) work for any group size
    conv_tiles.conv2d_forward_kernel3(x, w, b, y_3, *pads, *dil, groups)
    y_4 = np.empty(gy.shape, x.dtype)  # a tile of examples per call: fewer leave lanes empty
    conv_lanes.conv2d_forward_kernel4(x, w, b, y_4, *pads, *dil, groups, 0)
    gx_1, gx_2 = np.empty_like(x), np.empty_like(x)
    cpu_conv.conv2d_grad_input_kernel1(gy, w, gx_1, 1, 1, pt, pl, *dil, groups)
    conv_tiles.conv2d_grad_input_kernel2(gy, w, gx_2, *pads, *dil, groups)
    gx_3 = np.empty_like(x)  # a tile of examples per call: fewer leave lanes empty
    conv_lanes.conv2d_grad_input_kernel3(gy, w, gx_3, *pads, *dil, groups)
    gw_1, gw_2 = np.empty_like(w), np.empty_like(w)
    cpu_conv.conv2d_grad_weight_kernel1(gy, x, gw_1, 1, 1, pt, pl, *dil, groups)
    conv_tiles.conv2d_grad_weight_kernel2(gy, x, gw_2, *pads, *dil, groups, 2)
    gw_3 = np.empty_like(w)
    conv_tiles.conv2d_grad_weight_kernel3(gy, x, gw_3, *pads, *dil, groups, 2)
    gw_4 = np.empty_like(w)
    conv_lanes.conv2d_grad_weight_kernel4(gy, x, gw_4, *pads, *dil, groups)
    return (y_1, y_1, y_1, gx_1, gx_1, gw_1, gw_1, gw_1), (y_2, y_3, y_4, gx_2, gx_3, gw_2, gw_3, gw_4)


# Og up to 40: more than one tile of output channels per group (16 float32, 8 float64) for kernels 3.
@settings(max_examples=40, deadline=None)
@given(N=st.integers(0, 3), Cg=st.integers(1, 5), Og=st.integers(1, 40), groups=st.integers(1, 2),
       H=st.integers(1, 8), W=st.integers(1, 8), KH=st.integers(1, 4), KW=st.integers(1, 4),
       pads=st.tuples(*[st.integers(0, 3)] * 4), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2 ** 31))
def test_conv_tile_kernels_match_the_formula(N, Cg, Og, groups, H, W, KH, KW, pads, dil, dtype, seed):
    HO = H + pads[0] + pads[1] - dil[0] * (KH - 1)
    WO = W + pads[2] + pads[3] - dil[1] * (KW - 1)
    assume(HO >= 1 and WO >= 1)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, Cg * groups, H, W)).astype(dtype)
    w = rng.standard_normal((Og * groups, Cg, KH, KW)).astype(dtype)
    gy = rng.standard_normal((N, Og * groups, HO, WO)).astype(dtype)
    # float32: sums of up to 40 * 16 terms of size up to ~10 that may cancel to ~0.1 (hypothesis found -0.19630
    # summed to -0.19628 by kernel 2's grad_x, 1.7e-5 off): an absolute error of 1e-4 is a few ulps of the terms
    tol = dict(atol=1e-4, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    for name, s, f in zip(_NAMES, *_formula_vs_tiles(x, w, gy, pads, dil, groups)):
        assert_close(f, s, name=name, **tol)


@pytest.mark.parametrize("shape", [((4, 1, 28, 28), (6, 1, 5, 5), 2), ((3, 6, 14, 14), (16, 6, 5, 5), 0)],
                         ids=["conv1", "conv2"])
def test_conv_tile_kernels_lenet_shapes(shape):
    xs, ws, p = shape
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs, dtype=np.float32), rng.standard_normal(ws, dtype=np.float32)
    HO = xs[2] + 2 * p - ws[2] + 1
    gy = rng.standard_normal((xs[0], ws[0], HO, HO), dtype=np.float32)
    for name, s, f in zip(_NAMES, *_formula_vs_tiles(x, w, gy, (p,) * 4, (1, 1), 1)):
        assert_close(f, s, name=name, atol=1e-4, rtol=1e-5)


# ---------------------------------------------------------------- every kernel number against the reference

KERNEL_CASES = [  # (x shape, weight shape, options): stride 1, padding, dilation, groups, stride 2, flip, float64
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(padding=1), np.float32),
    ((2, 4, 6, 7), (6, 2, 2, 3), dict(groups=2, dilation=(2, 1), padding=(1, 0)), np.float32),
    ((1, 2, 5, 5), (20, 2, 3, 3), dict(padding="same", flip=True), np.float32),  # two tiles of channels
    ((2, 2, 6, 6), (10, 2, 3, 3), dict(), np.float64),  # float64: two tiles of 8 channels
    ((2, 3, 9, 8), (5, 3, 3, 3), dict(stride=2, padding=1), np.float32),
    ((1, 4, 7, 7), (4, 2, 2, 2), dict(stride=(1, 2), groups=2, flip=True), np.float64),
]


def _reference(x, w, b, gy, opts):
    o = dict(opts)
    flip = o.pop("flip", False)
    geo = conv_geometry(x.shape, w.shape, b.shape, **o)
    ro = dict(stride=geo.stride, padding=geo.padding, dilation=geo.dilation, groups=geo.groups, flip=flip)
    return ref.conv2d(x, w, b, **ro), ref.conv2d_backward(gy, x, w, b, **ro)


@pytest.mark.parametrize("kernel", sorted(set(cpu_conv.KERNELS["conv2d"]) | set(cpu_conv.KERNELS["conv2d_backward"])))
@pytest.mark.parametrize("xs,ws,opts,dtype", KERNEL_CASES)
def test_every_kernel_matches_the_reference(kernel, xs, ws, opts, dtype):
    """kernel=k runs kernel k for every pass (forward, grad_input, grad_weight, bias) and equals the reference;
    a kernel that cannot take the options (CPU kernels 2 and 3 need stride 1) says so."""
    rng = np.random.default_rng(kernel)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    gy = rng.standard_normal(nc.conv2d(x, w, b, **opts).shape).astype(dtype)
    if opts.get("stride", 1) != 1 and kernel != 1:
        with pytest.raises(ValueError, match=f"kernel {kernel} of conv2d needs stride 1, got stride=.*kernel 1"):
            nc.conv2d(x, w, b, **opts, kernel=kernel)
        with pytest.raises(ValueError, match=f"kernel {kernel} of conv2d_backward needs stride 1"):
            nc.conv2d_backward(gy, x, w, b, **opts, kernel=kernel)
        return
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-11, rtol=1e-11)
    y_ref, grads_ref = _reference(x, w, b, gy, opts)
    y = nc.conv2d(x, w, b, **opts, kernel=kernel)
    assert y.dtype == dtype
    assert_close(y, y_ref, name=f"kernel {kernel} y", **tol)
    grads = nc.conv2d_backward(gy, x, w, b, **opts, kernel=kernel)
    for got, want, name in zip(grads, grads_ref, ("grad_x", "grad_weight", "grad_bias")):
        assert_close(got, want, name=f"kernel {kernel} {name}", **tol)


@pytest.mark.parametrize("kernel", cpu_conv.KERNELS["corr2d"])
def test_every_corr2d_kernel_matches_the_reference(kernel):
    X = np.random.default_rng(0).standard_normal((6, 7))
    K = np.random.default_rng(1).standard_normal((3, 2))
    assert_close(nc.corr2d(X, K, kernel=kernel), ref.corr2d(X, K), atol=1e-12, name="corr2d")


def test_formula_kernels_runs_kernel_1_everywhere(monkeypatch):
    """Inside numbacnn.formula_kernels() the launchers get kernel 1 (and a stride-1 call runs the formula)."""
    seen = []
    for name in ("conv2d_forward_kernel1", "conv2d_grad_input_kernel1", "conv2d_grad_weight_kernel1"):
        original = getattr(cpu_conv, name)
        monkeypatch.setattr(cpu_conv, name, lambda *a, _f=original, _n=name: (seen.append(_n), _f(*a))[1])
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    with nc.formula_kernels():
        y = nc.conv2d(x, w, padding=1)
        nc.conv2d_backward(np.ones_like(y), x, w, padding=1)
    assert seen == ["conv2d_forward_kernel1", "conv2d_grad_input_kernel1", "conv2d_grad_weight_kernel1"]
    assert_close(y, nc.conv2d(x, w, padding=1), atol=1e-6, name="y")


@pytest.mark.parametrize("O,groups,dtype", [(17, 1, np.float32), (32, 1, np.float32), (64, 2, np.float32),
                                            (40, 1, np.float32), (17, 1, np.float64), (48, 3, np.float64)])
def test_many_output_channels_match_the_reference(O, groups, dtype):
    """More than one tile of output channels per group (16 float32, 8 float64), where the default kernels are
    kernels 3: a channel tile's offset lost would shift or repeat whole channels (issue #19)."""
    rng = np.random.default_rng(O)
    x = rng.standard_normal((2, 3 * groups, 8, 7)).astype(dtype)
    w = rng.standard_normal((O, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    gy = rng.standard_normal((2, O, 8, 7)).astype(dtype)
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == np.float32 else dict(atol=1e-11, rtol=1e-11)
    y_ref, grads_ref = _reference(x, w, b, gy, dict(padding=1, groups=groups))
    assert_close(nc.conv2d(x, w, b, padding=1, groups=groups), y_ref, name="y", **tol)
    for got, want, name in zip(nc.conv2d_backward(gy, x, w, b, padding=1, groups=groups), grads_ref,
                               ("grad_x", "grad_weight", "grad_bias")):
        assert_close(got, want, name=name, **tol)


@pytest.mark.skipif(not HAS_TORCH, reason="live parity needs torch")
@pytest.mark.parametrize("O", [17, 32, 64])
def test_many_output_channels_match_torch(O):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(O)
    x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((O, 4, 5, 5)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, padding=2)
    gy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(gy))
    assert_close(nc.conv2d(x, w, b, padding=2), ty.detach().numpy(), atol=1e-4, rtol=1e-4, name="y")
    for got, want, name in zip(nc.conv2d_backward(gy, x, w, b, padding=2), (tx.grad, tw.grad, tb.grad),
                               ("grad_x", "grad_weight", "grad_bias")):
        assert_close(got, want.numpy(), atol=1e-4, rtol=1e-4, name=name)


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
    gx_1, gx_2 = np.empty_like(x), np.empty_like(x)
    cpu_conv.conv2d_grad_input_kernel1(gy, w, gx_1, 1, 1, 1, 1, 1, 1, 2)
    conv_tiles.conv2d_grad_input_kernel2(gy, w, gx_2, 1, 1, 1, 1, 1, 1, 2)
    assert np.isfinite(gx_2[:, Cg:]).all()
    gx_3 = np.empty_like(x)
    conv_lanes.conv2d_grad_input_kernel3(gy, w, gx_3, 1, 1, 1, 1, 1, 1, 2)
    np.testing.assert_array_equal(np.isfinite(gx_3), np.isfinite(gx_1))
    np.testing.assert_array_equal(np.isfinite(gx_2), np.isfinite(gx_1))
    fin = np.isfinite(gx_1)
    assert_close(gx_2[fin], gx_1[fin], name="grad_x", atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("Cg, groups, pads, dil", [(6, 1, (0, 0, 0, 0), (1, 1)), (7, 2, (2, 1, 0, 3), (2, 1)),
                                                   (4, 1, (1, 1, 1, 1), (1, 2))])
def test_conv_grad_input_kernel3_has_kernel_2s_bits(Cg, groups, pads, dil, dtype):
    """Batches of whole tiles of examples and a partial last tile (21 = 16 + 5 float32, 8 + 8 + 5 float64),
    blocks of six channels and a short block, groups: kernel 3 sums kernel 2's terms in kernel 2's order, less
    the exact zeros of kernel 2's junk columns, so for finite data its grad_x is kernel 2's to the bit."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((21, Cg * groups, 9, 11)).astype(dtype)
    w = rng.standard_normal((5 * groups, Cg, 3, 4)).astype(dtype)
    HO = 9 + pads[0] + pads[1] - dil[0] * 2
    WO = 11 + pads[2] + pads[3] - dil[1] * 3
    gy = rng.standard_normal((21, 5 * groups, HO, WO)).astype(dtype)
    gx_1, gx_2, gx_3 = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    cpu_conv.conv2d_grad_input_kernel1(gy, w, gx_1, 1, 1, pads[0], pads[2], *dil, groups)
    conv_tiles.conv2d_grad_input_kernel2(gy, w, gx_2, *pads, *dil, groups)
    conv_lanes.conv2d_grad_input_kernel3(gy, w, gx_3, *pads, *dil, groups)
    np.testing.assert_array_equal(gx_3, gx_2)
    assert_close(gx_3, gx_1, name="grad_x", atol=1e-4 if dtype == np.float32 else 1e-12, rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs, ws, pads", [((21, 1, 28, 28), (6, 1, 5, 5), (2, 2, 2, 2)),
                                          ((21, 6, 14, 14), (16, 6, 5, 5), (0, 0, 0, 0)),
                                          ((21, 4, 7, 9), (10, 2, 3, 2), (1, 0, 2, 1))],
                         ids=["conv1", "conv2", "groups"])
def test_conv_forward_kernel4_has_the_bits_of_kernels_2_and_3(xs, ws, pads, dtype):
    """Whole tiles of examples and a partial last one (21), LeNet's shapes and a grouped, padded one (groups=2,
    a block of four and one of five channels): kernel 4 sums kernel 2's and 3's terms in their order, less the
    padding's exact zeros, so for finite data its output is theirs to the bit."""
    rng = np.random.default_rng(5)
    groups = xs[1] // ws[1]
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    HO, WO = xs[2] + pads[0] + pads[1] - ws[2] + 1, xs[3] + pads[2] + pads[3] - ws[3] + 1
    ys = [np.empty((xs[0], ws[0], HO, WO), dtype) for _ in range(3)]
    conv_tiles.conv2d_forward_kernel2(x, w, b, ys[0], *pads, 1, 1, groups)
    conv_tiles.conv2d_forward_kernel3(x, w, b, ys[1], *pads, 1, 1, groups)
    conv_lanes.conv2d_forward_kernel4(x, w, b, ys[2], *pads, 1, 1, groups, 0)
    np.testing.assert_array_equal(ys[2], ys[0])
    np.testing.assert_array_equal(ys[2], ys[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_forward_kernel4_relu_is_relu_of_its_output(dtype):
    """relu=True: relu_forward_kernel1's bits on the output (negatives to 0, zeros kept; NaN and -0.0: test_tiles)."""
    from numbacnn.cpu.functional import relu_forward_kernel1

    rng = np.random.default_rng(6)
    x = rng.integers(-2, 3, (17, 3, 6, 7)).astype(dtype)  # small integers: many exact zeros among the outputs
    w = rng.integers(-1, 2, (8, 3, 3, 3)).astype(dtype)
    b = np.array([0, -0.0, 1, -1, 0.5, 0, 2, -3], dtype)
    y, y_relu = np.empty((17, 8, 4, 5), dtype), np.empty((17, 8, 4, 5), dtype)
    conv_lanes.conv2d_forward_kernel4(x, w, b, y, 0, 0, 0, 0, 1, 1, 1, 0)
    conv_lanes.conv2d_forward_kernel4(x, w, b, y_relu, 0, 0, 0, 0, 1, 1, 1, 1)
    expected = np.empty_like(y)
    relu_forward_kernel1(y.reshape(-1), expected.reshape(-1))
    assert (y == 0).sum() > 20 and (y < 0).sum() > 100
    assert np.array_equal(y_relu.view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_activation_is_the_activation_of_conv2d_to_the_bit(activation, dtype):
    """The public conv2d_activation: kernel 4's fused activation (a tile of examples: 17 = 16 + 1 float32,
    8 + 8 + 1 float64), kernels 2/3 then the activation (fewer), and formula_kernels() all give the bits of
    the activation op on conv2d's output; large inputs reach sigmoid's saturation."""
    rng = np.random.default_rng(8)
    act = getattr(nc, activation)
    w, b = (rng.standard_normal((16, 6, 5, 5)) * 3).astype(dtype), rng.standard_normal(16).astype(dtype)
    for n in (17, 5):
        x = (rng.standard_normal((n, 6, 14, 14)) * 3).astype(dtype)
        want = act(nc.conv2d(x, w, b, padding=1))
        got = conv.conv2d_activation(x, w, b, padding=1, activation=activation)
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
        with nc.formula_kernels():
            got = conv.conv2d_activation(x, w, b, padding=1, activation=activation)
            assert np.array_equal(got.view(np.uint8), act(nc.conv2d(x, w, b, padding=1)).view(np.uint8))
    with pytest.raises(ValueError, match="activation must be 'relu' or 'sigmoid', got 'tanh'"):
        conv.conv2d_activation(x, w, b, activation="tanh")


def test_conv_forward_picks_kernel4_for_a_tile_of_examples(monkeypatch):
    """None takes kernel 4 from a tile of examples on (16 float32, 8 float64), kernel 3 below for conv2's shape."""
    called = []
    for name in ("conv2d_forward_kernel3", "conv2d_forward_kernel4"):
        real = getattr(cpu_conv, name)
        monkeypatch.setattr(cpu_conv, name, lambda *a, _real=real, _name=name: called.append(_name) or _real(*a))
    w = np.ones((16, 6, 5, 5), np.float32)
    for n, dtype in ((15, np.float32), (16, np.float32), (7, np.float64), (8, np.float64)):
        conv.conv2d(np.ones((n, 6, 14, 14), dtype), w.astype(dtype))
    assert called == ["conv2d_forward_kernel3", "conv2d_forward_kernel4"] * 2


def test_conv_backward_picks_by_channels_and_batch(monkeypatch):
    """conv2's 16 output channels: grad_weight_kernel3, with grad_input_kernel3 from a tile of examples on (kernel
    2's below); conv1's 6: grad_weight_kernel4 from a tile of examples on, kernel 2 below."""
    called = []
    for name in ("conv2d_grad_input_kernel2", "conv2d_grad_input_kernel3", "conv2d_grad_weight_kernel2",
                 "conv2d_grad_weight_kernel3", "conv2d_grad_weight_kernel4"):
        real = getattr(cpu_conv, name)
        monkeypatch.setattr(cpu_conv, name, lambda *a, _real=real, _name=name: called.append(_name) or _real(*a))
    for n in (15, 16):
        conv.conv2d_backward(np.ones((n, 16, 10, 10), np.float32), np.ones((n, 6, 14, 14), np.float32),
                             np.ones((16, 6, 5, 5), np.float32))
        conv.conv2d_backward(np.ones((n, 6, 28, 28), np.float32), np.ones((n, 1, 28, 28), np.float32),
                             np.ones((6, 1, 5, 5), np.float32), padding=2, need_grad_x=False)
    assert [c.replace("conv2d_", "") for c in called] == [
        "grad_input_kernel2", "grad_weight_kernel3", "grad_weight_kernel2",
        "grad_input_kernel3", "grad_weight_kernel3", "grad_weight_kernel4"]


@pytest.mark.parametrize("Cg, H, K", [(5, 1, 1), (6, 1, 1), (7, 2, 2), (12, 3, 2)])
def test_conv_grad_input_tiny_planes(Cg, H, K):
    """Padded planes shorter than a tile: one channel's tile reaches into the next plane, so the block's
    stores must keep plane order (a block once stored channel 4 before channel 3 and lost its sums)."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, Cg, K, K)).astype(np.float32)
    gy = rng.standard_normal((2, 3, H - K + 1, H - K + 1)).astype(np.float32)
    gx_1, gx_2 = np.empty((2, Cg, H, H), np.float32), np.empty((2, Cg, H, H), np.float32)
    cpu_conv.conv2d_grad_input_kernel1(gy, w, gx_1, 1, 1, 0, 0, 1, 1, 1)
    conv_tiles.conv2d_grad_input_kernel2(gy, w, gx_2, 0, 0, 0, 0, 1, 1, 1)
    assert_close(gx_2, gx_1, name="grad_x", atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("out_channels", [6, 16])  # kernel 2 (conv1's shape) and kernel 3 (conv2's)
def test_grad_weight_bits_do_not_depend_on_the_thread_count(out_channels):
    import numba

    import numbacnn as nc

    rng = np.random.default_rng(1)
    x = rng.standard_normal((37, 3, 12, 12)).astype(np.float32)
    w = rng.standard_normal((out_channels, 3, 5, 5)).astype(np.float32)
    gy = rng.standard_normal((37, out_channels, 8, 8)).astype(np.float32)
    before = numba.get_num_threads()
    grads = []
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            grads.append(nc.conv2d_backward(gy, x, w)[1])
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(grads[0], grads[1])
