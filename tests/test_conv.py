"""conv2d / conv2d_backward / corr2d: golden files, the book's numbers, finite differences, live PyTorch parity."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import numbacnn as nc
from numbacnn import reference as ref
from numbacnn.geometry import conv_geometry
from golden.format import load_cases
from helpers import HAS_TORCH, assert_close

CASES = load_cases("conv")


def _opts(o):
    pad = o["padding"]
    return dict(stride=o["stride"], padding=tuple(pad) if isinstance(pad, list) else pad,
                dilation=o["dilation"], groups=o["groups"])


def _ref_opts(x, w, o):
    geo = conv_geometry(x.shape, w.shape, None, **_opts(o))
    return dict(stride=geo.stride, padding=geo.padding, dilation=geo.dilation, groups=geo.groups, flip=o["flip"])


@pytest.mark.parametrize("name,opts,a", CASES, ids=[c[0] for c in CASES])
def test_kernels_match_golden(name, opts, a):
    tol = dict(atol=1e-4, rtol=1e-4)
    y = nc.conv2d(a["x"], a["weight"], a.get("bias"), **_opts(opts), flip=opts["flip"])
    assert y.dtype == a["x"].dtype
    assert_close(y, a["y"], name=f"{name} y", **tol)
    gx, gw, gb = nc.conv2d_backward(a["grad_out"], a["x"], a["weight"], a.get("bias"), **_opts(opts),
                                    flip=opts["flip"])
    assert_close(gx, a["grad_x"], name=f"{name} grad_x", **tol)
    assert_close(gw, a["grad_weight"], name=f"{name} grad_weight", **tol)
    if opts["bias"]:
        assert_close(gb, a["grad_bias"], name=f"{name} grad_bias", **tol)
    else:
        assert gb is None


@pytest.mark.parametrize("name,opts,a", CASES[::3], ids=[c[0] for c in CASES[::3]])
def test_reference_matches_golden(name, opts, a):
    ro = _ref_opts(a["x"], a["weight"], opts)
    assert_close(ref.conv2d(a["x"], a["weight"], a.get("bias"), **ro), a["y"], atol=1e-4, rtol=1e-4, name=name)
    gx, gw, gb = ref.conv2d_backward(a["grad_out"], a["x"], a["weight"], a.get("bias"), **ro)
    assert_close(gx, a["grad_x"], atol=1e-4, rtol=1e-4, name=f"{name} grad_x")
    assert_close(gw, a["grad_weight"], atol=1e-4, rtol=1e-4, name=f"{name} grad_weight")


# ---------------------------------------------------------------- the book's own numbers (D2L 6.2-6.4)

def test_book_corr2d():
    X = np.arange(9.0).reshape(3, 3)
    K = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(nc.corr2d(X, K), [[19, 25], [37, 43]])
    np.testing.assert_array_equal(ref.corr2d(X, K), [[19, 25], [37, 43]])


def _edge_image():
    X = np.ones((6, 8), dtype=np.float32)
    X[:, 2:6] = 0
    return X


def test_book_edge_detection():
    X, K = _edge_image(), np.array([[1.0, -1.0]], dtype=np.float32)
    Y = nc.corr2d(X, K)
    expected = np.zeros((6, 7), dtype=np.float32)
    expected[:, 1], expected[:, 5] = 1, -1
    np.testing.assert_array_equal(Y, expected)
    np.testing.assert_array_equal(nc.conv2d(X[None, None], K[None, None])[0, 0], expected)
    np.testing.assert_array_equal(nc.corr2d(X.T, K), np.zeros((8, 5)))  # horizontal edges are invisible to K


def test_book_multi_input_channels():
    X = np.array([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                  [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    np.testing.assert_array_equal(ref.corr2d_multi_in(X, K), [[56, 72], [104, 120]])
    np.testing.assert_array_equal(nc.conv2d(X[None], K[None])[0, 0], [[56, 72], [104, 120]])
    K3 = np.stack((K, K + 1, K + 2), 0)
    assert_close(nc.conv2d(X[None], K3)[0], ref.corr2d_multi_in_out(X, K3), name="multi out")


def test_book_one_by_one_is_a_matrix_product():
    rng = np.random.default_rng(0)
    X = rng.normal(0, 1, (3, 3, 3))
    K = rng.normal(0, 1, (2, 3, 1, 1))
    Y1 = ref.corr2d_multi_in_out_1x1(X, K)
    assert_close(nc.conv2d(X[None], K)[0], Y1, atol=1e-12, name="1x1")
    assert_close(ref.corr2d_multi_in_out(X, K), Y1, atol=1e-12, name="1x1 ref")


def test_book_padding_and_stride_shapes():
    X = np.random.default_rng(0).random((1, 1, 8, 8))
    assert nc.conv2d(X, np.ones((1, 1, 3, 3)), padding=1).shape == (1, 1, 8, 8)
    assert nc.conv2d(X, np.ones((1, 1, 5, 3)), padding=(2, 1)).shape == (1, 1, 8, 8)
    assert nc.conv2d(X, np.ones((1, 1, 3, 3)), padding=1, stride=2).shape == (1, 1, 4, 4)
    assert nc.conv2d(X, np.ones((1, 1, 3, 5)), padding=(0, 1), stride=(3, 4)).shape == (1, 1, 2, 2)


def test_flip_is_strict_convolution():
    rng = np.random.default_rng(3)
    x, w = rng.random((1, 1, 5, 5)), rng.random((1, 1, 2, 3))
    assert_close(nc.conv2d(x, w, flip=True), nc.conv2d(x, w[:, :, ::-1, ::-1]), atol=1e-12, name="flip")


def test_integer_inputs_become_float32():
    y = nc.conv2d(np.ones((1, 1, 3, 3), dtype=np.int64), np.ones((1, 1, 2, 2), dtype=np.int32))
    assert y.dtype == np.float32 and (y == 4).all()


# ---------------------------------------------------------------- finite differences in float64

FD_OPTS = [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=(1, 2)), dict(groups=2, padding=(1, 0)),
           dict(flip=True, stride=(1, 2))]


@pytest.mark.parametrize("opts", FD_OPTS, ids=[str(o) for o in FD_OPTS])
def test_finite_differences(opts):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 5, 6))
    w = rng.standard_normal((4, 2 // opts.get("groups", 1), 3, 2))
    b = rng.standard_normal(4)
    gy = rng.standard_normal(nc.conv2d(x, w, b, **opts).shape)

    def loss(x_, w_, b_):
        return float((nc.conv2d(x_, w_, b_, **opts) * gy).sum())

    gx, gw, gb = nc.conv2d_backward(gy, x, w, b, **opts)
    for arr, grad, label in ((x, gx, "x"), (w, gw, "weight"), (b, gb, "bias")):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + 1e-6
            up = loss(x, w, b)
            arr[idx] = old - 1e-6
            down = loss(x, w, b)
            arr[idx] = old
            num[idx] = (up - down) / 2e-6
        assert_close(grad, num, atol=1e-6, rtol=1e-6, name=f"d loss / d {label}")


# ---------------------------------------------------------------- live PyTorch parity (hypothesis)

@st.composite
def conv_problems(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C = groups * draw(st.integers(1, 2))
    O = groups * draw(st.one_of(st.integers(1, 6), st.integers(7, 40)))  # past one tile of channels (16) per group
    KH, KW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    kind = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    stride = (1, 1) if kind == "same" else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = {"int": draw(st.integers(0, 2)), "pair": (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
           "same": "same", "valid": "valid"}[kind]
    ph, pw = (pad, pad) if isinstance(pad, int) else (pad if isinstance(pad, tuple) else (0, 0))
    H = draw(st.integers(max(1, dil[0] * (KH - 1) + 1 - 2 * ph), 9))
    W = draw(st.integers(max(1, dil[1] * (KW - 1) + 1 - 2 * pw), 9))
    return dict(N=draw(st.integers(1, 3)), C=C, O=O, H=H, W=W, KH=KH, KW=KW, groups=groups, stride=stride,
                padding=pad, dilation=dil, bias=draw(st.booleans()), flip=draw(st.booleans()),
                seed=draw(st.integers(0, 2**31)))


@pytest.mark.skipif(not HAS_TORCH, reason="live parity needs torch")
@settings(max_examples=40, deadline=None)
@given(conv_problems())
def test_live_parity_with_torch(p):
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(p["seed"])
    x = rng.standard_normal((p["N"], p["C"], p["H"], p["W"])).astype(np.float32)
    w = rng.standard_normal((p["O"], p["C"] // p["groups"], p["KH"], p["KW"])).astype(np.float32)
    b = rng.standard_normal(p["O"]).astype(np.float32) if p["bias"] else None
    opts = dict(stride=p["stride"], padding=p["padding"], dilation=p["dilation"], groups=p["groups"])
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True) if p["bias"] else None
    ty = F.conv2d(tx, tw.flip(2, 3) if p["flip"] else tw, tb, **opts)
    gy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(gy))
    y = nc.conv2d(x, w, b, **opts, flip=p["flip"])
    assert_close(y, ty.detach().numpy(), atol=1e-4, rtol=1e-4, name="y")
    gx, gw, gb = nc.conv2d_backward(gy, x, w, b, **opts, flip=p["flip"])
    assert_close(gx, tx.grad.numpy(), atol=1e-4, rtol=1e-4, name="grad_x")
    assert_close(gw, tw.grad.numpy(), atol=1e-4, rtol=1e-4, name="grad_weight")
    if p["bias"]:
        assert_close(gb, tb.grad.numpy(), atol=1e-4, rtol=1e-4, name="grad_bias")


# ---------------------------------------------------------------- bad input

X4 = np.zeros((1, 2, 5, 5), np.float32)
W4 = np.zeros((3, 2, 3, 3), np.float32)


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(x=np.zeros((2, 5, 5))), ValueError, ["x", "4 dimensions", "3"]),
    (dict(weight=np.zeros((3, 2, 3))), ValueError, ["weight", "4 dimensions"]),
    (dict(weight=np.zeros((3, 1, 3, 3))), ValueError, ["channel", "C=2"]),
    (dict(groups=3, weight=np.zeros((3, 1, 3, 3))), ValueError, ["groups=3", "C=2"]),
    (dict(groups=2, weight=np.zeros((3, 1, 3, 3))), ValueError, ["groups=2", "3"]),
    (dict(groups=0), ValueError, ["groups", "0"]),
    (dict(weight=np.zeros((3, 2, 6, 6))), ValueError, ["output size", "6x6"]),
    (dict(stride=0), ValueError, ["stride", "0"]),
    (dict(stride=(1, -2)), ValueError, ["stride", "-2"]),
    (dict(dilation=0), ValueError, ["dilation", "0"]),
    (dict(padding=-1), ValueError, ["padding", "-1"]),
    (dict(padding="full"), ValueError, ["padding", "full"]),
    (dict(padding="same", stride=2), ValueError, ["same", "stride=2"]),
    (dict(weight=np.zeros((3, 2, 0, 3))), ValueError, ["kernel_size"]),
    (dict(x=X4.astype(np.complex64)), TypeError, ["x", "complex64"]),
    (dict(x=np.array([["a"]])), TypeError, ["x"]),
    (dict(bias=np.zeros(4)), ValueError, ["bias", "(3,)", "(4,)"]),
    (dict(target="tpu"), ValueError, ["target", "tpu"]),
    (dict(device="tpu"), ValueError, ["device", "tpu"]),
    (dict(kernel=5), ValueError, ["kernel", "conv2d", "5"]),
    (dict(kernel=2, stride=2), ValueError, ["kernel 2 of conv2d needs stride 1", "stride=(2, 2)", "kernel 1"]),
    (dict(flip=1), TypeError, ["flip", "True or False"]),
])
@pytest.mark.filterwarnings("ignore:target= is deprecated:DeprecationWarning")
def test_bad_input(kwargs, exc, words):
    args = dict(x=X4, weight=W4)
    args.update(kwargs)
    with pytest.raises(exc) as info:
        nc.conv2d(args.pop("x"), args.pop("weight"), **args)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


def test_target_is_a_deprecated_name_of_device():
    with pytest.warns(DeprecationWarning, match="use device="):
        y = nc.conv2d(X4, W4, target="cpu")
    assert np.array_equal(y, nc.conv2d(X4, W4, device="cpu"))


def test_bad_grad_out_shape():
    with pytest.raises(ValueError, match=r"grad_out .*\(1, 3, 3, 3\)"):
        nc.conv2d_backward(np.zeros((1, 3, 2, 2)), X4, W4)


def test_corr2d_kernel_and_device():
    X, K = np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(nc.corr2d(X, K, kernel=1, device="cpu"), [[19, 25], [37, 43]])
    with pytest.raises(ValueError, match="kernel"):
        nc.corr2d(X, K, kernel=2, device="cpu")


def test_corr2d_bad_input():
    with pytest.raises(ValueError, match="X must have 2 dimensions"):
        nc.corr2d(np.zeros((1, 3, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="fit inside"):
        nc.corr2d(np.zeros((2, 2)), np.zeros((3, 3)))
